package analysis

import (
	"fmt"
	"slices"
	"testing"

	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// TestHotPixels: five 3-pixel hot clusters and a 30-pixel hot column
// segment on a serial series (seed not used while tuning). Without the map
// the clusters make every blank a hit (issue 14); with it the column is
// rejected by its shape from the first frame, the clusters join the map
// after hot-pixel-frames frames, from then on blanks have no spots and no
// Bragg pixel is taken for a hot one. Reset empties the map.
func TestHotPixels(t *testing.T) {
	cfg := diffraction.DefaultConfig(eiger4M(t))
	cfg.Seed = 53
	cfg.Hot = diffraction.Hot{Clusters: 5, Column: 30, Counts: 200}
	g, err := diffraction.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	run := func(p Params, hm *HotMap) (blankHits, blankSpots, blanks, lineRejects int, hits []bool) {
		mask := make([]uint32, g.Width()*g.Height())
		if err := g.PixelMask(mask); err != nil {
			t.Fatal(err)
		}
		tab, err := NewTables(simGeometry(g), p, Masks{Pixel: mask, Hot: hm})
		if err != nil {
			t.Fatal(err)
		}
		a := NewAnalyser(tab)
		buf := make([]byte, g.FrameBytes())
		var tr truth.Frame
		var res Result
		for i := 0; i < n; i++ {
			if err := g.Frame(i, buf, &tr); err != nil {
				t.Fatal(err)
			}
			if err := a.Analyse(buf, g.ElemSize(), &res); err != nil {
				t.Fatal(err)
			}
			lineRejects += res.ShapeRejected
			hits = append(hits, res.Hit)
			if tr.Hit || i < p.HotPixelFrames {
				continue
			}
			blanks++
			blankSpots += res.Spots
			if res.Hit {
				blankHits++
			}
		}
		return
	}

	off := DefaultParams()
	off.HotPixelFrames = 0
	bh, bs, nb, lines, _ := run(off, nil)
	t.Logf("no map: %d of %d blanks hits, %.1f spots each, %d line rejections", bh, nb, float64(bs)/float64(nb), lines)
	// The control: the clusters make (nearly) every blank a hit. A frame
	// where a cluster's photons fall short of min-snr may escape.
	if bh < nb*9/10 || lines < n {
		t.Errorf("without the map (nearly) every blank should be a hit (clusters) and the column rejected on every frame: %d/%d hits, %d line rejections", bh, nb, lines)
	}

	hm := NewHotMap()
	p := DefaultParams()
	bh, bs, nb, lines, _ = run(p, hm)
	summary := fmt.Sprintf("hot-pixel map: %d of %d blanks after %d frames hits, %.2f spots each; map holds %d pixels after %d frames; %d line rejections",
		bh, nb, p.HotPixelFrames, float64(bs)/float64(nb), hm.Pixels(), hm.Frames(), lines)
	t.Log(summary)
	if testing.Verbose() {
		fmt.Println(summary)
	}
	if nb < 5 || bh != 0 || bs != 0 {
		t.Errorf("blanks with the map: %s", summary)
	}
	want := g.HotPixels()
	got := hm.HotPixels()
	for _, px := range want {
		if !slices.Contains(got, px) {
			t.Errorf("hot pixel (%d, %d) not in the map", px%int32(g.Width()), px/int32(g.Width()))
		}
	}
	if len(got) != len(want) {
		t.Errorf("map holds %d pixels, the simulator made %d hot", len(got), len(want))
	}
	hm.Reset()
	if hm.Pixels() != 0 || hm.Frames() != 0 || len(hm.HotPixels()) != 0 {
		t.Error("Reset left pixels in the map")
	}
}
