package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// TestStrongBlocksMatchPixels pins the block scan to strongPixels: the
// same strong list, masked count and overload cut, on the real EIGER 4M
// frame with its own thresholds, and on synthetic frames with
// thresholds drawn at random per shell, all-ones pixels inside and
// outside the static masks, a pixel mask, a beamstop, many thin shells
// (blocks spanning more than maxBlockSpan of them, and two ice bands)
// and overload limits that cut the list anywhere.
func TestStrongBlocksMatchPixels(t *testing.T) {
	if !haveBlockScan {
		t.Skip("no AVX2 on this CPU: the block scan never runs")
	}
	r := rand.New(rand.NewPCG(3, 5))
	f := eiger4MFixture(t, 0)
	real := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(f.pixels))), len(f.pixels)/2)

	check := func(name string, tab *Tables, px []uint16, thr *[256]uint32, limit int) {
		t.Helper()
		var sc strongScratch
		want, wantMasked, wantOver := strongPixels(nil, limit, px, tab.shell, thr)
		got, gotMasked, ok := strongPixelsBlocks(&sc, tab, nil, limit, px, thr)
		gotOver := false
		if !ok {
			// Overloaded frames are left to strongPixels, as analyse does.
			if !wantOver {
				t.Fatalf("%s, limit %d: block scan not taken on a frame that is not overloaded", name, limit)
			}
			got, gotMasked, gotOver = strongPixels(got, limit, px, tab.shell, thr)
		} else if wantOver {
			t.Fatalf("%s, limit %d: block scan took an overloaded frame", name, limit)
		}
		if !slices.Equal(got, want) || gotMasked != wantMasked || gotOver != wantOver {
			t.Fatalf("%s, limit %d: blocks %d strong, %d masked, overloaded %v; pixels %d, %d, %v",
				name, limit, len(got), gotMasked, gotOver, len(want), wantMasked, wantOver)
		}
	}

	// The real frame, thresholds from its own analysis.
	tab, err := NewTables(f.geom, DefaultParams(), Masks{})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAnalyser(tab)
	var res Result
	if err := a.Analyse(f.pixels, f.elemSize, &res); err != nil {
		t.Fatal(err)
	}
	want, _, _ := strongPixels(nil, math.MaxInt, real, tab.shell, &a.thr)
	if len(want) < 1000 {
		t.Fatalf("real frame: %d strong pixels, want a frame with spots", len(want))
	}
	for _, limit := range []int{math.MaxInt, len(want), len(want) - 1, len(want) / 2, 1, 0} {
		check("real 4M", tab, real, &a.thr, limit)
	}

	// Synthetic frames on the same geometry with other tables.
	w, h := f.geom.Width, f.geom.Height
	mask := make([]uint32, w*h)
	for range 20000 {
		mask[r.IntN(len(mask))] = 1
	}
	thin := DefaultParams()
	thin.Shells = 250 // blocks at the edge span more than maxBlockSpan shells
	thin.IceRingWidth = 0.02
	stop := DefaultParams()
	stop.Beamstop = Rect{XMin: w/2 - 40, XMax: w/2 + 40, YMin: 0, YMax: h / 2}
	for _, c := range []struct {
		name string
		p    Params
		m    Masks
	}{
		{"default, pixel mask", DefaultParams(), Masks{Pixel: mask}},
		{"250 thin shells, wide ice bands", thin, Masks{}},
		{"beamstop, no gap mask", stop, Masks{NoGaps: true}},
	} {
		tab, err := NewTables(f.geom, c.p, c.m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		spans, wide := 0, 0
		for _, e := range tab.blocks.shells {
			if e&0xFFFF == blockPixel {
				wide++
			} else {
				spans = max(spans, int(e&0xFFFF)/256)
			}
		}
		t.Logf("%s: %d blocks, widest span %d shells, %d blocks with bound 0", c.name, len(tab.blocks.shells), spans+1, wide)
		if wide == 0 {
			t.Errorf("%s: no block takes the bound-0 path (two ice bands, or more than %d shells)", c.name, maxBlockSpan)
		}
		px := make([]uint16, w*h)
		var thr [256]uint32
		for range 3 {
			for s := range thr {
				thr[s] = uint32(2 + r.IntN(12))
				if r.IntN(20) == 0 {
					thr[s] = 0xFFFE // an empty shell's
				}
			}
			for s := tab.nShells; s < len(thr); s++ {
				thr[s] = math.MaxUint32
			}
			for i := range px {
				px[i] = uint16(r.IntN(4))
				switch r.IntN(400) {
				case 0:
					px[i] = uint16(5 + r.IntN(200)) // a spot pixel, or just below
				case 1:
					px[i] = 0xFFFF // masked by the detector in this frame
				case 2:
					px[i] = 0xFFFE
				}
			}
			all, _, _ := strongPixels(nil, math.MaxInt, px, tab.shell, &thr)
			n := len(all)
			for _, limit := range []int{math.MaxInt, n, n - 1, r.IntN(n + 1), 0} {
				check(c.name, tab, px, &thr, limit)
			}
		}
	}
}
