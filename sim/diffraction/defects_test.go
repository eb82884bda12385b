package diffraction

import (
	"math"
	"testing"

	"tioga/sim/truth"
)

// Spotty ice: an iced frame carries ice reflections in the truth (not
// among the Bragg spots), each at an ice ring's resolution and drawn on
// the frame; the share of iced frames follows Ice.Fraction; switching ice
// on changes nothing else (hits, Bragg spots).
func TestIceSpots(t *testing.T) {
	c := small500k(t)
	plain := newGen(t, c)
	c.Ice = Ice{Fraction: 0.5, Spots: 40, SpotIntensity: 400}
	g := newGen(t, c)
	buf := make([]byte, g.FrameBytes())
	var tr, tp truth.Frame
	iced := 0
	const n = 40
	for i := 0; i < n; i++ {
		if err := g.Frame(i, buf, &tr); err != nil {
			t.Fatal(err)
		}
		if err := plain.Frame(i, make([]byte, g.FrameBytes()), &tp); err != nil {
			t.Fatal(err)
		}
		if tr.Hit != tp.Hit || len(tr.Spots) != len(tp.Spots) {
			t.Fatalf("frame %d: ice changed the crystal's truth", i)
		}
		if len(tr.IceSpots) == 0 {
			continue
		}
		iced++
		for _, s := range tr.IceSpots {
			onRing := false
			for _, d := range IceRingSpacings() {
				onRing = onRing || math.Abs(1/(s.D*s.D)-1/(d*d)) < 5*iceStrain/(d*d)
			}
			if !onRing {
				t.Errorf("frame %d: ice spot at %.4f Å is on no ice ring", i, s.D)
			}
			if got := g.Resolution(s.X, s.Y); math.Abs(got-s.D) > 1e-6*s.D {
				t.Errorf("frame %d: ice spot at (%.1f, %.1f) lies at %.4f Å, truth says %.4f", i, s.X, s.Y, got, s.D)
			}
			if s.ISigma > 20 {
				p := int(math.Round(s.Y))*g.Width() + int(math.Round(s.X))
				if v := pixel(buf, g.ElemSize(), p); float64(v) < g.BackgroundMean(int(math.Round(s.X)), int(math.Round(s.Y)))+5 {
					t.Errorf("frame %d: strong ice spot (I/σ %.0f) not drawn: centre pixel %d", i, s.ISigma, v)
				}
			}
		}
	}
	if iced < n/4 || iced > 3*n/4 {
		t.Errorf("%d of %d frames iced, want about half", iced, n)
	}
}

// Continuous rings raise the background at the ice rings' resolutions only.
func TestIceContinuousRing(t *testing.T) {
	c := small500k(t)
	c.WaterRing = 0
	plain := newGen(t, c)
	c.Ice = Ice{Ring: 0.5}
	g := newGen(t, c)
	ringD := IceRingSpacings()[0] // 3.90 Å: the strongest
	raised, flat := 0, 0
	for y := 0; y < g.Height(); y += 3 {
		for x := 0; x < g.Width(); x += 3 {
			if g.Masked(x, y) {
				continue
			}
			d := g.Resolution(float64(x), float64(y))
			ratio := g.BackgroundMean(x, y) / plain.BackgroundMean(x, y)
			switch q := 1/(d*d) - 1/(ringD*ringD); {
			case math.Abs(q) < iceRingWidthQ/2:
				if ratio < 1.3 {
					t.Fatalf("pixel (%d, %d) at %.3f Å: background x%.2f on the ring", x, y, d, ratio)
				}
				raised++
			case math.Abs(q) > 0.01 && d > 4.2:
				if math.Abs(ratio-1) > 0.02 {
					t.Fatalf("pixel (%d, %d) at %.3f Å: background x%.2f off the rings", x, y, d, ratio)
				}
				flat++
			}
		}
	}
	if raised == 0 || flat == 0 {
		t.Fatalf("ring pixels %d, pixels off the rings %d", raised, flat)
	}
}

// Hot pixels: fixed per series, counting on every frame, in the shapes
// asked for (single pixels, 3-pixel clusters, one column segment).
func TestHotPixels(t *testing.T) {
	c := small500k(t)
	c.Hot = Hot{Pixels: 4, Clusters: 5, Column: 30, Counts: 200}
	g := newGen(t, c)
	hot := g.HotPixels()
	if len(hot) != 4+15+30 {
		t.Fatalf("%d hot pixels, want 49", len(hot))
	}
	cols := map[int]int{}
	for _, p := range hot {
		cols[int(p)%g.Width()]++
	}
	longest := 0
	for _, n := range cols {
		longest = max(longest, n)
	}
	if longest < 30 {
		t.Errorf("no column holds the 30-pixel segment (longest %d)", longest)
	}
	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	for i := 0; i < 3; i++ {
		if err := g.Frame(i, buf, &tr); err != nil {
			t.Fatal(err)
		}
		for _, p := range hot {
			if v := pixel(buf, g.ElemSize(), int(p)); v < 120 {
				t.Errorf("frame %d: hot pixel %d counts %d", i, p, v)
			}
		}
	}
	if g2 := newGen(t, c); len(g2.HotPixels()) != len(hot) || g2.HotPixels()[7] != hot[7] {
		t.Error("hot pixels differ between two generators of one seed")
	}
}
