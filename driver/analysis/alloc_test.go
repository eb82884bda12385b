package analysis

import (
	"testing"

	"tioga/device/detectormodel"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// TestNoAllocationsPerFrame: once an analyser has seen a frame, analysing
// frames (hits and blanks alternately) allocates nothing, for every pixel
// size and both methods, including frames whose bright background takes the
// binned second pass.
func TestNoAllocationsPerFrame(t *testing.T) {
	prof, _ := detectormodel.ByName("eiger500k")
	for _, bits := range []int{8, 16, 32} {
		cfg := diffraction.DefaultConfig(prof)
		cfg.BitDepth = bits
		cfg.HitFraction = 0.5
		if bits == 32 {
			cfg.Background = 600 // beyond the exact bins: the rebinning pass
			cfg.SpotIntensity = 50000
		}
		g, err := diffraction.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var frames [][]byte
		hits := 0
		var tr truth.Frame
		for i := 0; len(frames) < 6; i++ {
			buf := make([]byte, g.FrameBytes())
			if err := g.Frame(i, buf, &tr); err != nil {
				t.Fatal(err)
			}
			if tr.Hit {
				hits++
			}
			frames = append(frames, buf)
		}
		if hits == 0 || hits == len(frames) {
			t.Fatalf("%d-bit: %d hits of %d frames: want both kinds", bits, hits, len(frames))
		}
		for _, m := range []Method{Threshold, Dispersion} {
			p := DefaultParams()
			p.Method = m
			a := NewAnalyser(simTables(t, g, p))
			var res Result
			// Warm-up: the scratch grows to the largest frame content.
			for _, f := range frames {
				if err := a.Analyse(f, g.ElemSize(), &res); err != nil {
					t.Fatal(err)
				}
			}
			rebinned := 0
			k := 0
			allocs := testing.AllocsPerRun(2*len(frames), func() {
				if err := a.Analyse(frames[k%len(frames)], g.ElemSize(), &res); err != nil {
					t.Fatal(err)
				}
				rebinned += res.Rebinned
				k++
			})
			if allocs != 0 {
				t.Errorf("%d-bit %s: %v allocations per frame", bits, m, allocs)
			}
			if bits == 32 && rebinned == 0 {
				t.Errorf("%d-bit %s: the bright background did not take the binned pass", bits, m)
			}
		}
	}
}
