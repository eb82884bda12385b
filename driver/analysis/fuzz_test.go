package analysis

import (
	"flag"
	"math"
	"reflect"
	"slices"
	"testing"
	"unsafe"
)

// fuzzHeader is the number of leading fuzz bytes that choose the frame and
// parameters; the rest are the pixels.
const fuzzHeader = 8

// fuzzCase turns fuzz bytes into a small frame, its geometry and
// parameters: width and height 1..48, 1/2/4-byte pixels, either method, a
// beam centre anywhere (off the frame too), and varied filters.
func fuzzCase(data []byte) (g Geometry, p Params, pixels []byte, elemSize int) {
	var h [fuzzHeader]byte
	copy(h[:], data)
	body := data[min(len(data), fuzzHeader):]
	g = Geometry{Width: 1 + int(h[0])%48, Height: 1 + int(h[1])%48, Distance: 0.01 + float64(h[5])/100, Wavelength: 1, PixelSize: 75e-6}
	g.BeamX = float64(int(h[4]&0x0f)-4) * float64(g.Width) / 8
	g.BeamY = float64(int(h[4]>>4)-4) * float64(g.Height) / 8
	elemSize = []int{1, 2, 4, 2}[h[2]&3]
	p = DefaultParams()
	p.Method = Method(h[2] >> 2 & 1)
	p.SpotSize = 1 + int(h[3]&3)
	p.MaxSpotSize = p.SpotSize + int(h[3]>>2&15)*8
	p.MinSNR = float64(h[3] >> 6)
	p.MinSpots = 1 + int(h[6]&3)
	p.SpotLevel = 1 + float64(h[6]>>2&15)
	p.KernelSize = 1 + int(h[7]&3)
	p.Gain = 0.5 + float64(h[7]>>2&3)
	p.Shells = 8 + int(h[7]>>4)
	if h[2]&0x10 != 0 {
		p.Beamstop = Rect{XMin: g.Width / 3, XMax: g.Width / 2, YMin: g.Height / 3, YMax: g.Height / 2}
	}
	// Pixels: the body repeated to fill the frame (an empty body: zeros).
	pixels = make([]byte, g.Width*g.Height*elemSize)
	if len(body) > 0 {
		for i := 0; i < len(pixels); i += len(body) {
			copy(pixels[i:], body)
		}
	}
	return g, p, pixels, elemSize
}

// fuzzSeed encodes a crop of a real frame as fuzz input.
func fuzzSeed(f fixtureFrame, x0, y0, w, h int, method Method) []byte {
	es := f.elemSize
	hdr := []byte{byte(w - 1), byte(h - 1), map[int]byte{1: 0, 2: 1, 4: 2}[es] | byte(method)<<2, 0x0a, 0x44, 10, 0x14, 0x35}
	out := slices.Clone(hdr)
	for y := y0; y < y0+h; y++ {
		row := f.pixels[(y*f.geom.Width+x0)*es : (y*f.geom.Width+x0+w)*es]
		out = append(out, row...)
	}
	return out
}

// FuzzAnalyse feeds arbitrary pixels, sizes and parameters to the analyser:
// it must never panic, must return a self-consistent result, must give the
// same result twice, and must not allocate on the second frame.
func FuzzAnalyse(f *testing.F) {
	fx := eiger4MFixture(f, 0)
	for _, s := range [][2]int{{1400, 700}, {1000, 1000}, {700, 1480}} { // crops with spots, gaps, masked pixels
		f.Add(fuzzSeed(fx, s[0], s[1], 48, 48, Threshold))
		f.Add(fuzzSeed(fx, s[0], s[1], 40, 33, Dispersion))
	}
	for _, dir := range []string{"dectris-r500k_bm_bslz4_8bit", "dectris-r500k_bm_bslz4_32bit"} {
		fx := eiger2_500KFixture(f, dir, 1)
		f.Add(fuzzSeed(fx, 500, 200, 48, 48, Threshold))
		f.Add(fuzzSeed(fx, 500, 200, 48, 48, Dispersion))
	}
	f.Add([]byte{})
	f.Add([]byte{47, 47, 2, 0, 0x44, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x10, 0, 0})
	// One analyser for all inputs, as a worker keeps its analyser across
	// series: SetTables switches geometry and parameters under it.
	var a *Analyser
	f.Fuzz(func(t *testing.T, data []byte) {
		g, p, pixels, es := fuzzCase(data)
		tab, err := NewTables(g, p, Masks{})
		if err != nil {
			return // e.g. every pixel under the beamstop: a clear error, not a panic
		}
		if a == nil {
			a = NewAnalyser(tab)
		}
		a.SetTables(tab)
		var res Result
		if err := a.Analyse(pixels, es, &res); err != nil {
			t.Fatalf("valid frame rejected: %v", err)
		}
		checkResult(t, g, p, &res)
		first := res
		first.SpotList = slices.Clone(res.SpotList)
		before := scratchOf(a, &res)
		again := func() {
			if err := a.Analyse(pixels, es, &res); err != nil {
				t.Fatal(err)
			}
		}
		if fuzzing() {
			// testing.AllocsPerRun stalls fuzz workers (it changes
			// GOMAXPROCS); while fuzzing, check instead that no scratch
			// buffer grew or moved: they are the only per-frame storage.
			again()
			if after := scratchOf(a, &res); after != before {
				t.Fatalf("scratch changed on the same frame:\n%+v\n%+v", before, after)
			}
		} else if allocs := testing.AllocsPerRun(1, again); allocs != 0 {
			t.Fatalf("%v allocations analysing the same frame again", allocs)
		}
		if !reflect.DeepEqual(res, first) && !(len(res.SpotList) == 0 && len(first.SpotList) == 0) {
			t.Fatalf("second analysis differs:\n%+v\n%+v", res, first)
		}
		// A frame of the wrong size is an error, never a panic.
		if err := a.Analyse(pixels[:len(pixels)-1], es, &res); err == nil {
			t.Fatal("short frame accepted")
		}
	})
}

func checkResult(t *testing.T, g Geometry, p Params, res *Result) {
	t.Helper()
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if res.Spots != len(res.SpotList) || res.Spots > res.Candidates || res.Candidates > res.StrongPixels || res.StrongPixels > g.Width*g.Height {
		t.Fatalf("inconsistent counts: %+v", res)
	}
	is := 0.0
	// A centroid is a weighted mean of pixel coordinates: inside the frame
	// up to rounding.
	for _, s := range res.SpotList {
		if s.NPix < p.SpotSize || s.NPix > p.MaxSpotSize || s.ISigma() < p.MinSNR || !finite(s.Intensity) || !finite(s.Sigma) ||
			s.X < -1e-9 || s.Y < -1e-9 || s.X > float64(g.Width-1)+1e-9 || s.Y > float64(g.Height-1)+1e-9 || !(s.D > 0) {
			t.Fatalf("spot violates the filters or the frame: %+v (params %+v)", s, p)
		}
		is += s.Intensity
	}
	if !finite(res.Score) || res.Score < 0 || !finite(res.Resolution) || res.Resolution < 0 || !finite(res.IS) || !finite(res.Background) {
		t.Fatalf("non-finite or negative verdict: %+v", res)
	}
	if math.Abs(is-res.IS) > 1e-9*math.Max(1, math.Abs(is)) {
		t.Fatalf("IS %v, sum of spots %v", res.IS, is)
	}
	if res.Spots < p.MinSpots && (res.Score != 0 || res.Resolution != 0 || res.Hit) {
		t.Fatalf("%d spots < min-spots %d but score %v resolution %v hit %v", res.Spots, p.MinSpots, res.Score, res.Resolution, res.Hit)
	}
	if res.Overloaded && (res.Spots != 0 || res.StrongPixels > int(p.MaxStrongFraction*float64(g.Width*g.Height))) {
		t.Fatalf("overloaded frame with %d spots, %d strong pixels", res.Spots, res.StrongPixels)
	}
	if res.Hit && (res.Score < p.HitThreshold || res.Score == 0) {
		t.Fatalf("hit with score %v", res.Score)
	}
}

// fuzzing reports whether the test binary runs with -test.fuzz.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// scratch identifies an analyser's per-frame storage: where each buffer
// lives and how large it is.
type scratch struct {
	strong, parent, comp, acc, qs, spots, colN uintptr
	caps                                       [7]int
}

func scratchOf(a *Analyser, res *Result) scratch {
	ptr := func(p unsafe.Pointer) uintptr { return uintptr(p) }
	return scratch{
		strong: ptr(unsafe.Pointer(unsafe.SliceData(a.strong))), parent: ptr(unsafe.Pointer(unsafe.SliceData(a.parent))),
		comp: ptr(unsafe.Pointer(unsafe.SliceData(a.root))), acc: ptr(unsafe.Pointer(unsafe.SliceData(a.acc))),
		qs: ptr(unsafe.Pointer(unsafe.SliceData(a.qs))), spots: ptr(unsafe.Pointer(unsafe.SliceData(res.SpotList))),
		colN: ptr(unsafe.Pointer(unsafe.SliceData(a.disp.col))),
		caps: [7]int{cap(a.strong), cap(a.parent), cap(a.root), cap(a.acc), cap(a.qs), cap(res.SpotList), cap(a.disp.col)},
	}
}
