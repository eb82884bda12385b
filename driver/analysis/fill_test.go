package analysis

import (
	"testing"
)

// TestFillMatchesGo: fill's 16- and 32-bit paths (assembly on amd64) and
// its portable loop give the same histograms and overflow counts, on a
// frame with a sample of every stride, steps longer than 255 pixels (an
// excluded band of rows and a masked rectangle), values above the exact
// bins and all-ones pixels.
func TestFillMatchesGo(t *testing.T) {
	const w, h = 640, 480
	p := DefaultParams()
	p.Shells = 40
	g := Geometry{Width: w, Height: h, BeamX: w / 2, BeamY: h / 3, Distance: 0.05, Wavelength: 1, PixelSize: 75e-6}
	tab, err := NewTables(g, p, Masks{NoGaps: true, Exclude: func(x, y int) bool {
		return (y >= 200 && y < 203) || (x > 100 && x < 500 && y > 300 && y < 320)
	}})
	if err != nil {
		t.Fatal(err)
	}
	long := 0
	for _, q := range tab.steps {
		if q == 0xff|excludedShell<<8 {
			long++
		}
	}
	strides := map[int32]bool{}
	for s := 0; s < tab.nShells; s++ {
		strides[tab.stride[s]] = true
	}
	if long == 0 || len(strides) < 2 {
		t.Fatalf("frame does not exercise the loop: %d long steps, strides %v", long, strides)
	}
	for _, lambda := range []float64{0.05, 2, 40, 300} {
		checkFill[uint16](t, tab, lambda)
		checkFill[uint32](t, tab, lambda)
	}
}

// checkFill compares fill with the portable loop on a flat frame of mean
// lambda (with outliers and all-ones pixels, see flatFrame).
func checkFill[T uint16 | uint32](t *testing.T, tab *Tables, lambda float64) {
	t.Helper()
	w, h := tab.geom.Width, tab.geom.Height
	px, _, _ := flatFrame[T](w*h, lambda, uint64(lambda*10)+3)
	var a, b histograms
	a.reset(tab.nShells)
	b.reset(tab.nShells)
	fill(&a, px, tab)
	fillGo(&b, px, tab)
	for s := 0; s < tab.nShells; s++ {
		for v := range uint32(histBins) {
			var ca, cb uint32
			for c := range a.bins {
				ca += a.bins[c][bin(uint8(s), v)]
				cb += b.bins[c][bin(uint8(s), v)]
			}
			if ca != cb {
				t.Fatalf("%T λ=%v shell %d value %d: %d counts, portable loop %d", px[0], lambda, s, v, ca, cb)
			}
		}
		if a.over[s] != b.over[s] {
			t.Fatalf("%T λ=%v shell %d: overflow %+v, portable loop %+v", px[0], lambda, s, a.over[s], b.over[s])
		}
	}
}
