package analysis

import (
	"fmt"
	"math"
	"testing"

	"tioga/sim/diffraction"
)

// The d-spacings of hexagonal ice that issue 14 lists must be among the
// rings the analysis knows (DIALS' ice cell and space group).
func TestIceRingSpacings(t *testing.T) {
	known := IceRingSpacings()
	for _, d := range []float64{3.897, 3.669, 3.441, 2.671, 2.249, 2.072, 1.948, 1.918, 1.883, 1.721} {
		found := false
		for _, k := range known {
			found = found || math.Abs(k-d) < 0.003
		}
		if !found {
			t.Errorf("ice ring %.3f Å missing from %v", d, known)
		}
	}
	// The simulator draws the same rings (it computes them on its own).
	for _, d := range diffraction.IceRingSpacings() {
		found := false
		for _, k := range known {
			found = found || math.Abs(k-d) < 1e-6
		}
		if !found {
			t.Errorf("simulated ice ring %.4f Å is not among the analysis' rings", d)
		}
	}
}

func TestPoissonTail(t *testing.T) {
	for _, c := range []struct {
		k      int
		lambda float64
		want   float64
	}{
		{0, 3, 1}, {1, 0.5, 1 - math.Exp(-0.5)}, {3, 0.6, 1 - math.Exp(-0.6)*(1+0.6+0.18)}, {5, 0, 0},
	} {
		if got := poissonTail(c.k, c.lambda); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("P(X >= %d | %v) = %v, want %v", c.k, c.lambda, got, c.want)
		}
	}
	if p := poissonTail(40, 2); p <= 0 || p > 1e-25 {
		t.Errorf("P(X >= 40 | 2) = %v", p)
	}
}

// iceFigures judges the ice handling on a simulated series.
type iceFigures struct {
	iced, icedFlagged     int // frames with spotty ice (>= 50 ice spots), and flagged
	clean, cleanFlagged   int // frames without ice, and flagged
	icedBlanks, blankHits int // blank frames with ice, and those called hits
	icedBlankSpots        int // spots left on them
	icedHits, hitsKept    int // hits with ice, and still hits
	resWithin             int // iced hits whose resolution is within 10 % of the cut-off
}

func (f iceFigures) String() string {
	return fmt.Sprintf("iced frames flagged %d/%d, clean frames flagged %d/%d, iced blanks called hits %d/%d (%.2f spots left each), iced hits kept %d/%d, resolution within 10%% on %d/%d",
		f.icedFlagged, f.iced, f.cleanFlagged, f.clean, f.blankHits, f.icedBlanks, float64(f.icedBlankSpots)/math.Max(float64(f.icedBlanks), 1),
		f.hitsKept, f.icedHits, f.resWithin, f.icedHits)
}

func judgeIce(frames []simFrame) iceFigures {
	var f iceFigures
	for i := range frames {
		tr, res := &frames[i].truth, &frames[i].res
		iced := len(tr.IceSpots) >= 50
		switch {
		case iced:
			f.iced++
			if res.Ice {
				f.icedFlagged++
			}
		case len(tr.IceSpots) == 0:
			f.clean++
			if res.Ice {
				f.cleanFlagged++
			}
		}
		if !iced {
			continue
		}
		if !tr.Hit {
			f.icedBlanks++
			f.icedBlankSpots += res.Spots
			if res.Hit {
				f.blankHits++
			}
			continue
		}
		f.icedHits++
		if res.Hit {
			f.hitsKept++
		}
		if math.Abs(res.Resolution-tr.DCut) <= 0.1*tr.DCut {
			f.resWithin++
		}
	}
	return f
}

// TestIceRings: spotty ice on half the frames of a serial series (seeds
// not used while tuning). With ice-rings auto every iced frame is flagged
// and no iced blank is a hit; with off the same blanks are strong "hits"
// (the failure of issue 14); clean frames are not flagged.
func TestIceRings(t *testing.T) {
	cfg := diffraction.DefaultConfig(eiger4M(t))
	cfg.Seed = 31
	cfg.Ice = diffraction.Ice{Fraction: 0.5, Spots: 500, SpotIntensity: 200}
	g, err := diffraction.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 48
	auto := judgeIce(simulate(t, g, simTables(t, g, DefaultParams()), n))
	t.Log("auto: " + auto.String())
	if testing.Verbose() {
		fmt.Println("ice rings (spotty, auto): " + auto.String())
	}
	if auto.iced < n/4 || auto.clean < n/4 || auto.icedBlanks < 5 || auto.icedHits < 3 {
		t.Fatalf("series not mixed enough: %s", auto)
	}
	if auto.icedFlagged != auto.iced || auto.cleanFlagged != 0 {
		t.Errorf("ice flags: %s", auto)
	}
	if auto.blankHits != 0 || float64(auto.icedBlankSpots)/float64(auto.icedBlanks) > 1 {
		t.Errorf("iced blanks: %s", auto)
	}
	if auto.hitsKept != auto.icedHits || auto.resWithin < auto.icedHits*8/10 {
		t.Errorf("iced hits: %s", auto)
	}

	off := DefaultParams()
	off.IceRings = IceOff
	o := judgeIce(simulate(t, g, simTables(t, g, off), n))
	t.Log("off: " + o.String())
	if o.icedFlagged != 0 || o.blankHits != o.icedBlanks {
		t.Errorf("ice-rings off: want no flags and every iced blank a hit: %s", o)
	}
}

// TestIceContinuous: continuous rings on every frame. No spots on blanks
// (the band has its own background), and the rings are detected from the
// band's background; exclude mode drops band spots on clean frames too but
// does not flag them.
func TestIceContinuous(t *testing.T) {
	cfg := diffraction.DefaultConfig(eiger4M(t))
	cfg.Seed = 37
	cfg.Ice = diffraction.Ice{Ring: 0.5}
	g, err := diffraction.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	frames := simulate(t, g, simTables(t, g, DefaultParams()), 16)
	for i := range frames {
		tr, res := &frames[i].truth, &frames[i].res
		if !res.Ice {
			t.Errorf("frame %d: continuous ice rings not detected", i)
		}
		if !tr.Hit && res.Spots != 0 {
			t.Errorf("blank frame %d: %d spots", i, res.Spots)
		}
		if tr.Hit && !res.Hit {
			t.Errorf("hit frame %d lost", i)
		}
	}

	cfg.Ice = diffraction.Ice{}
	g, err = diffraction.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ex := DefaultParams()
	ex.IceRings = IceExclude
	tab := simTables(t, g, ex)
	excluded := 0
	for _, f := range simulate(t, g, tab, 16) {
		if f.res.Ice {
			t.Errorf("frame %d without ice flagged", f.truth.Frame)
		}
		for _, s := range f.res.SpotList {
			if tab.bandOf(1/(s.D*s.D)) >= 0 {
				t.Errorf("frame %d: spot at %.3f Å in an ice band kept in exclude mode", f.truth.Frame, s.D)
			}
		}
		excluded += f.res.IceSpots
	}
	if excluded == 0 {
		t.Error("exclude mode removed no spot from 16 frames")
	}
}
