package pipeline

import (
	"context"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"

	"tioga/device/contract"
	"tioga/device/detectormodel"
	"tioga/driver/analysis"
	"tioga/driver/cbf"
	"tioga/driver/codec"
	"tioga/driver/stream"
	"tioga/driver/writer"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// benchFrames holds a few EIGER 4M 16-bit frames from the simulator, half
// hits and half blanks, raw and bslz4-encoded, made once per process.
var benchFrames struct {
	once sync.Once
	prof detectormodel.Profile
	gen  *diffraction.Generator
	raw  [][]byte
	enc  [][]byte
	err  error
}

func loadBenchFrames(b *testing.B) {
	benchFrames.once.Do(func() {
		prof, _ := detectormodel.ByName("eiger4m")
		c := diffraction.DefaultConfig(prof)
		c.HitFraction = 0.5
		c.Seed = 3
		gen, err := diffraction.New(c)
		if err != nil {
			benchFrames.err = err
			return
		}
		benchFrames.prof, benchFrames.gen = prof, gen
		e := codec.NewEncoder()
		var tr truth.Frame
		for i := 0; i < 8; i++ {
			raw := make([]byte, prof.Pixels()*2)
			if err := gen.Frame(i, raw, &tr); err != nil {
				benchFrames.err = err
				return
			}
			enc, err := e.Encode(nil, raw, codec.BSLZ4, 2)
			if err != nil {
				benchFrames.err = err
				return
			}
			benchFrames.raw = append(benchFrames.raw, raw)
			benchFrames.enc = append(benchFrames.enc, enc)
		}
	})
	if benchFrames.err != nil {
		b.Fatal(benchFrames.err)
	}
}

// tmpfsDir returns a directory on a RAM file system, so the benchmark
// measures the server and not the disk.
func tmpfsDir(b *testing.B) string {
	dir, err := os.MkdirTemp("/dev/shm", "tioga-bench-")
	if err != nil {
		b.Fatalf("need /dev/shm (tmpfs): %v", err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// reportPixels reports frames and megapixels per second of wall time, per
// core (wall time x cores), and per CPU-second of the whole process since
// cpu0 (Mpx/cpu-s: what one core achieves when it is busy, which stays
// meaningful on a machine shared with other work, unlike the wall-time
// figures). cores-used is the process's CPU time over the wall time: on a
// shared machine, 2 workers that get 1.1 cores between them cannot be
// 1.8 times as fast as one, and the scaling is judged against it.
func reportPixels(b *testing.B, frames int, px int, cores int, cpu0 time.Duration) {
	sec := b.Elapsed().Seconds()
	mpx := float64(frames) * float64(px) / 1e6
	b.ReportMetric(float64(frames)/sec, "frames/s")
	b.ReportMetric(mpx/sec, "Mpx/s")
	b.ReportMetric(mpx/sec/float64(cores), "Mpx/s/core")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(mpx/cpu.Seconds(), "Mpx/cpu-s")
		b.ReportMetric(cpu.Seconds()/sec, "cores-used")
	}
}

// processCPU is the CPU time (user + system) of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEndToEnd4M: EIGER 4M 16-bit bslz4 diffraction-like frames
// through the whole pipeline (decode, analyse, write .cbf.gz to tmpfs,
// commit, publish) with one worker per core (GOMAXPROCS: -cpu 1,2 gives
// the scaling from one worker to two). The series start is outside the
// timed region, its end inside.
func BenchmarkEndToEnd4M(b *testing.B) {
	loadBenchFrames(b)
	prof := benchFrames.prof
	dev, _ := contract.Build(contract.DefaultNames())
	sched, _ := gocron.NewScheduler()
	sched.Start()
	defer sched.Shutdown()
	g := benchFrames.gen.Config()
	cores := runtime.GOMAXPROCS(0)
	p, err := New(Config{Workers: cores, ExportPeriod: 300 * time.Millisecond, DisableHeatMap: true,
		Writer:        writer.Config{Directory: tmpfsDir(b), Prefix: "bench", Run: 1, MinFreeBytes: -1, Fsync: writer.FsyncNever},
		WriterEnabled: true}, dev, sched, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	in := make(chan stream.Message, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, in) }()
	in <- stream.Message{Series: &stream.Series{Version: 1, ID: 1, Width: prof.Width(), Height: prof.Height(), ElemSize: 2, BitDepth: 16,
		Description: "Dectris EIGER X 4M", PixelSizeX: 75e-6, PixelSizeY: 75e-6, BeamCenterX: g.BeamX + stream.PixelCentre, BeamCenterY: g.BeamY + stream.PixelCentre,
		DetectorDistance: g.Distance, Wavelength: g.Wavelength, CountTime: 0.001, FrameTime: 0.001, NumberOfImages: uint64(b.N + cores)}}
	// The messages are made before the timed region: allocs/op is the
	// pipeline's, not the benchmark's (an Image per frame was one of them).
	images := make([]stream.Image, b.N+cores)
	for i := range images {
		images[i] = stream.Image{Version: 1, SeriesID: 1, Number: uint64(i),
			Pixels: stream.Pixels{Width: prof.Width(), Height: prof.Height(), ElemSize: 2, Encoding: codec.BSLZ4,
				Data: benchFrames.enc[i%len(benchFrames.enc)]}}
	}
	image := func(i int) stream.Message { return stream.Message{Image: &images[i]} }
	// Warm up outside the timed region: the series start (analysis tables,
	// files) and one frame per worker (its buffers).
	for i := 0; i < cores; i++ {
		in <- image(i)
	}
	for {
		if s := p.cur.Load(); s != nil && s.committed.Load() >= uint64(cores) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.SetBytes(int64(prof.Pixels() * 2))
	b.ResetTimer()
	cpu0 := processCPU()
	for i := cores; i < b.N+cores; i++ {
		in <- image(i)
	}
	in <- stream.Message{End: &stream.End{Version: 1, SeriesID: 1}}
	for {
		if s, ok := p.LastSummary(); ok && s.SeriesID == 1 {
			if s.Processed != b.N+cores || s.Written != b.N+cores {
				b.Fatalf("summary %+v", s)
			}
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	reportPixels(b, b.N, prof.Pixels(), cores, cpu0)
	close(in)
	<-done
}

// The stages on one core, on the same frames, for the per-stage figures.

func BenchmarkStage4MDecode(b *testing.B) {
	loadBenchFrames(b)
	d := codec.NewDecoder()
	dst := make([]byte, benchFrames.prof.Pixels()*2)
	b.SetBytes(int64(len(dst)))
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		if _, err := d.Decode(dst, benchFrames.enc[i%len(benchFrames.enc)], codec.BSLZ4, 2); err != nil {
			b.Fatal(err)
		}
	}
	reportPixels(b, b.N, benchFrames.prof.Pixels(), 1, cpu0)
}

func BenchmarkStage4MAnalyse(b *testing.B) {
	loadBenchFrames(b)
	g := benchFrames.gen.Config()
	prof := benchFrames.prof
	t, err := analysis.NewTables(analysis.Geometry{Width: prof.Width(), Height: prof.Height(), BeamX: g.BeamX, BeamY: g.BeamY,
		Distance: g.Distance, Wavelength: g.Wavelength, PixelSize: prof.PixelSize}, analysis.DefaultParams(), analysis.Masks{})
	if err != nil {
		b.Fatal(err)
	}
	a := analysis.NewAnalyser(t)
	var res analysis.Result
	b.SetBytes(int64(prof.Pixels() * 2))
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		if err := a.Analyse(benchFrames.raw[i%len(benchFrames.raw)], 2, &res); err != nil {
			b.Fatal(err)
		}
	}
	reportPixels(b, b.N, prof.Pixels(), 1, cpu0)
}

func BenchmarkStage4MWriteCBFGzip(b *testing.B) {
	loadBenchFrames(b)
	prof := benchFrames.prof
	g := benchFrames.gen.Config()
	w, err := writer.Open(writer.Config{Directory: tmpfsDir(b), Prefix: "stage", Run: 1, MinFreeBytes: -1, Fsync: writer.FsyncNever},
		cbf.Header{Detector: "Dectris EIGER X 4M", PixelSizeX: 75e-6, PixelSizeY: 75e-6, Wavelength: g.Wavelength,
			Distance: g.Distance, BeamX: g.BeamX, BeamY: g.BeamY, ExposureTime: 0.001, ExposurePeriod: 0.001, CountCutoff: 65534})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	var sc writer.Scratch
	b.SetBytes(int64(prof.Pixels() * 2))
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(&sc, i, cbf.Pixels{Data: benchFrames.raw[i%len(benchFrames.raw)], Width: prof.Width(), Height: prof.Height(), ElemSize: 2}); err != nil {
			b.Fatal(err)
		}
	}
	reportPixels(b, b.N, prof.Pixels(), 1, cpu0)
}
