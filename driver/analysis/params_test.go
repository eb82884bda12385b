package analysis

import (
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestDefaultParamsAreTheDocumentedOnes(t *testing.T) {
	p := DefaultParams()
	want := Params{
		Method: Threshold, SpotLevel: 6, GrowLevel: 2.5, SpotSize: 3, MaxSpotSize: 1000, MinSNR: 5, MaxSeparation: 2, PoissonBackground: 0.02, MaxStrongFraction: 0.25,
		MinSpots: 5, HitThreshold: 2, ResolutionQuantile: 0.95,
		DMax: 0, DMin: 0, Beamstop: NoRect, Shells: 128, IceRings: IceAuto, IceRingWidth: 0.002, HotPixelFrames: 10,
		KernelSize: 3, SigmaBackground: 6, SigmaStrong: 3, Gain: 0, MinLocal: 2, GlobalThreshold: 0,
	}
	if p != want {
		t.Fatalf("DefaultParams() = %+v\nwant %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if !p.Beamstop.Empty() {
		t.Error("default beamstop is not empty")
	}
}

func TestParamTable(t *testing.T) {
	name := regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	seen := map[string]bool{}
	p := DefaultParams()
	for _, info := range ParamTable() {
		if !name.MatchString(info.Name) {
			t.Errorf("parameter name %q is not lower-case-with-dashes", info.Name)
		}
		if seen[info.Name] {
			t.Errorf("parameter %q listed twice", info.Name)
		}
		seen[info.Name] = true
		if info.Description == "" {
			t.Errorf("%s: no description", info.Name)
		}
		if !(info.Min <= info.Default && info.Default <= info.Max) {
			t.Errorf("%s: default %v outside [%v, %v]", info.Name, info.Default, info.Min, info.Max)
		}
		got, err := p.Get(info.Name)
		if err != nil || got != info.Default {
			t.Errorf("%s: Get = %v, %v; want the default %v", info.Name, got, err, info.Default)
		}
		// Every limit is settable and reads back.
		for _, v := range []float64{info.Min, info.Max} {
			q := DefaultParams()
			if err := q.Set(info.Name, v); err != nil {
				t.Errorf("%s: Set(%v): %v", info.Name, v, err)
				continue
			}
			if got, _ := q.Get(info.Name); got != v {
				t.Errorf("%s: Set(%v) then Get = %v", info.Name, v, got)
			}
		}
		q := DefaultParams()
		for _, bad := range []float64{info.Min - 1, info.Max + 1, math.NaN(), math.Inf(1)} {
			if err := q.Set(info.Name, bad); err == nil {
				t.Errorf("%s: Set(%v) accepted", info.Name, bad)
			}
		}
		if info.Integer && info.Max > info.Min {
			if err := q.Set(info.Name, info.Min+0.5); err == nil || !strings.Contains(err.Error(), "whole number") {
				t.Errorf("%s: Set(%v) = %v, want a whole-number error", info.Name, info.Min+0.5, err)
			}
		}
		if q != DefaultParams() {
			t.Errorf("%s: rejected Set changed the parameters", info.Name)
		}
	}
	// Every field of Params is reachable by name.
	for _, n := range []string{"method", "spot-level", "grow-level", "spot-size", "max-spot-size", "min-snr", "max-separation", "poisson-background", "min-spots",
		"hit-threshold", "resolution-quantile", "max-strong-fraction", "d-max", "d-min", "ix-min", "ix-max", "iy-min", "iy-max", "shells",
		"ice-rings", "ice-ring-width", "hot-pixel-frames", "kernel-size", "sigma-background", "sigma-strong", "gain", "min-local", "global-threshold"} {
		if !seen[n] {
			t.Errorf("parameter %q missing from the table", n)
		}
	}
	if len(seen) != 28 {
		t.Errorf("%d parameters, want 28 (a new field needs a table entry and this test)", len(seen))
	}
}

func TestParamSetFields(t *testing.T) {
	p := DefaultParams()
	for name, v := range map[string]float64{"method": 1, "spot-level": 4.5, "ix-min": 10, "ix-max": 20, "iy-min": 30, "iy-max": 40, "d-min": 1.8, "shells": 64} {
		if err := p.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	if p.Method != Dispersion || p.SpotLevel != 4.5 || p.Beamstop != (Rect{10, 20, 30, 40}) || p.DMin != 1.8 || p.Shells != 64 {
		t.Fatalf("Set did not reach the fields: %+v", p)
	}
	if _, err := p.Get("no-such"); err == nil {
		t.Error("Get of an unknown name succeeded")
	}
	if err := p.Set("no-such", 1); err == nil {
		t.Error("Set of an unknown name succeeded")
	}
}

func TestParamTableIsACopy(t *testing.T) {
	tab := ParamTable()
	for i := range tab {
		if tab[i].Name == "method" {
			tab[i].Choices[0] = "changed"
		}
	}
	if ParamTable()[0].Choices[0] != "threshold" {
		t.Fatal("ParamTable exposes the package's own table")
	}
}

func TestValidateCrossRules(t *testing.T) {
	p := DefaultParams()
	p.SpotSize, p.MaxSpotSize = 10, 5
	p.DMax, p.DMin = 3, 4
	p.KernelSize, p.MinLocal = 1, 10
	err := p.Validate()
	if err == nil {
		t.Fatal("inconsistent parameters validated")
	}
	for _, want := range []string{"spot-size 10 > max-spot-size 5", "d-min 4 Å must be below d-max 3 Å", "min-local 10 exceeds the 9 pixels"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestParseMethod(t *testing.T) {
	for s, want := range map[string]Method{"threshold": Threshold, "Dispersion": Dispersion} {
		if m, err := ParseMethod(s); err != nil || m != want {
			t.Errorf("ParseMethod(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMethod("dozor"); err == nil {
		t.Error("ParseMethod accepted an unknown method")
	}
	if Dispersion.String() != "dispersion" || Method(7).String() != "Method(7)" {
		t.Error("Method.String")
	}
}
