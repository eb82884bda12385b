package pipeline

import (
	"math"
	"runtime"
	"syscall"
	"testing"
	"time"

	"tioga/driver/stream"
)

// cacheHeader is a series header of a w x h detector with beam centre
// (bx, by) and the given pixel mask (nil: none).
func cacheHeader(id uint64, w, h int, bx, by float64, mask []uint32) *stream.Series {
	s := &stream.Series{ID: id, Width: w, Height: h, ElemSize: 2,
		BeamCenterX: bx, BeamCenterY: by, DetectorDistance: 0.2, Wavelength: 1.0,
		PixelSizeX: 75e-6, PixelSizeY: 75e-6}
	if mask != nil {
		s.PixelMask = []stream.Table{{Width: w, Height: h, Uint32: mask}}
	}
	return s
}

// A series with the header of the previous one starts with its tables
// (same shells, no rebuild); a changed beam centre, pixel mask or
// series-level parameter rebuilds them, and the tables the workers get
// say so in their values: the shell and resolution of a pixel follow the
// beam, a newly masked pixel is excluded, a per-frame parameter change is
// taken without a rebuild.
func TestSeriesTablesReused(t *testing.T) {
	p := newTestPipeline(t, Config{WriterEnabled: false})
	const w, h = 200, 180
	mask := func(masked ...int) []uint32 {
		m := make([]uint32, w*h)
		for _, i := range masked {
			m[i] = 1
		}
		return m
	}
	start := func(id uint64, bx, by float64, m []uint32) *series {
		t.Helper()
		s := &series{header: cacheHeader(id, w, h, bx, by, m)}
		p.prepare(s, w, h, 2)
		if s.analysisErr != "" || s.tables.Load() == nil {
			t.Fatalf("series %d: no tables: %s", id, s.analysisErr)
		}
		return s
	}
	want := func(step string, reused, built int) {
		t.Helper()
		if r, b := p.tableCache.counts(); r != reused || b != built {
			t.Fatalf("%s: %d reused, %d built; want %d, %d", step, r, b, reused, built)
		}
	}
	const px, py = 150, 90 // a pixel away from the beam
	const maskedPx = 20*w + 30

	s1 := start(1, 100.5, 90.5, mask(maskedPx))
	want("first series", 0, 1)
	t1 := s1.tables.Load()
	if t1.Shell(30, 20) != -1 || t1.Shell(31, 20) == -1 {
		t.Fatalf("masked pixel shell %d, its neighbour %d", t1.Shell(30, 20), t1.Shell(31, 20))
	}

	// Same header, a new mask slice with the same contents: reused.
	s2 := start(2, 100.5, 90.5, mask(maskedPx))
	want("same header", 1, 1)
	t2 := s2.tables.Load()
	if t2.Shell(px, py) != t1.Shell(px, py) || t2.AnalysedPixels() != t1.AnalysedPixels() || t2.Shell(30, 20) != -1 {
		t.Errorf("reused tables differ: shell %d/%d, analysed %d/%d", t2.Shell(px, py), t1.Shell(px, py), t2.AnalysedPixels(), t1.AnalysedPixels())
	}

	// The beam moves 40 pixels towards the pixel: rebuilt, and the pixel's
	// resolution is lower (larger d), its shell different.
	s3 := start(3, 140.5, 90.5, mask(maskedPx))
	want("beam moved", 1, 2)
	t3 := s3.tables.Load()
	d1 := t1.Geometry().Resolution(px, py)
	d3 := t3.Geometry().Resolution(px, py)
	if !(d3 > d1) || t3.Shell(px, py) == t1.Shell(px, py) || t3.Geometry().BeamX != 140 {
		t.Errorf("after the beam moved: d %.3f -> %.3f Å, shell %d -> %d, beam x %v", d1, d3, t1.Shell(px, py), t3.Shell(px, py), t3.Geometry().BeamX)
	}

	// One more masked pixel: rebuilt, and that pixel is excluded.
	s4 := start(4, 140.5, 90.5, mask(maskedPx, py*w+px))
	want("mask changed", 1, 3)
	t4 := s4.tables.Load()
	if t4.Shell(px, py) != -1 || t4.AnalysedPixels() != t3.AnalysedPixels()-1 {
		t.Errorf("newly masked pixel: shell %d, analysed %d (was %d)", t4.Shell(px, py), t4.AnalysedPixels(), t3.AnalysedPixels())
	}
	// No mask at all: rebuilt, both pixels analysed again.
	s5 := start(5, 140.5, 90.5, nil)
	want("mask removed", 1, 4)
	if t5 := s5.tables.Load(); t5.Shell(px, py) == -1 || t5.Shell(30, 20) == -1 {
		t.Errorf("without a mask: shells %d %d", t5.Shell(px, py), t5.Shell(30, 20))
	}

	// A per-frame parameter changed between series: reused, with it.
	if err := p.setParam("spot-level", 4.5); err != nil {
		t.Fatal(err)
	}
	s6 := start(6, 140.5, 90.5, nil)
	want("per-frame parameter", 2, 4)
	if got := s6.tables.Load().Params().SpotLevel; got != 4.5 {
		t.Errorf("spot-level in the reused tables %v", got)
	}
	// A series-level parameter (d-min) changed: rebuilt, and a pixel
	// beyond the new limit is excluded.
	corner := s6.tables.Load().Geometry().Resolution(0, 0)
	if err := p.setParam("d-min", math.Ceil(corner*100+1)/100); err != nil {
		t.Fatal(err)
	}
	s7 := start(7, 140.5, 90.5, nil)
	want("series parameter", 2, 5)
	if s7.tables.Load().Shell(0, 0) != -1 || s6.tables.Load().Shell(0, 0) == -1 {
		t.Errorf("corner at %.3f Å: shell %d before d-min, %d after", corner, s6.tables.Load().Shell(0, 0), s7.tables.Load().Shell(0, 0))
	}
}

// BenchmarkSeriesStart measures what a series start costs the dispatcher
// for an EIGER 4M with a pixel mask: "rebuild" builds the tables every
// time (the cost before the cache), "reuse" starts series with the header
// of the previous one (a fresh mask slice each time, as a new header
// decodes one). cpu-ms/start is the dispatcher thread's CPU time, which
// the load of a shared machine does not inflate as it does wall time.
func BenchmarkSeriesStart(b *testing.B) {
	const w, h = 2070, 2167
	m := make([]uint32, w*h)
	for i := 0; i < len(m); i += 997 {
		m[i] = 1
	}
	for _, mode := range []string{"rebuild", "reuse"} {
		b.Run(mode, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			p := newTestPipeline(b, Config{WriterEnabled: false})
			start := func(id int) {
				s := &series{header: cacheHeader(uint64(id), w, h, 1000.5, 1100.5, append([]uint32(nil), m...))}
				p.prepare(s, w, h, 2)
				if s.tables.Load() == nil {
					b.Fatal(s.analysisErr)
				}
			}
			start(0) // the first series always builds
			var cpu time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "rebuild" {
					p.tableCache = tableCache{}
				}
				c0 := threadCPU(b)
				start(i + 1)
				cpu += threadCPU(b) - c0
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/1000, "cpu-ms/start")
		})
	}
}

// threadCPU is the CPU time of the calling thread (Linux RUSAGE_THREAD);
// the caller locks its goroutine to the thread.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
