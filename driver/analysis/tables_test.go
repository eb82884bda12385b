package analysis

import (
	"math"
	"strings"
	"testing"

	"tioga/device/detectormodel"
)

// eiger1MGeometry: 1030 x 1065, one gap of 37 rows between two modules.
func eiger1MGeometry(t testing.TB) (Geometry, detectormodel.Profile) {
	t.Helper()
	p, ok := detectormodel.ByName("eiger1m")
	if !ok {
		t.Fatal("no eiger1m profile")
	}
	return Geometry{Width: p.Width(), Height: p.Height(), BeamX: 515.3, BeamY: 540.7, Distance: 0.12, Wavelength: 1.0, PixelSize: p.PixelSize}, p
}

func countExcluded(t *Tables) int {
	n := 0
	for _, s := range t.shell {
		if s == excludedShell {
			n++
		}
	}
	return n
}

func TestTablesGapMask(t *testing.T) {
	g, prof := eiger1MGeometry(t)
	tab, err := NewTables(g, DefaultParams(), Masks{})
	if err != nil {
		t.Fatal(err)
	}
	if tab.GapProfile() != "eiger1m" {
		t.Errorf("gap profile %q, want eiger1m", tab.GapProfile())
	}
	if got, want := countExcluded(tab), prof.GapPixels(); got != want || want != 37*1030 {
		t.Errorf("%d pixels excluded, want the %d gap pixels", got, want)
	}
	for y := 0; y < g.Height; y++ {
		for _, x := range []int{0, 700} {
			if (tab.Shell(x, y) < 0) != prof.IsGap(x, y) {
				t.Fatalf("pixel (%d, %d): shell %d, gap %v", x, y, tab.Shell(x, y), prof.IsGap(x, y))
			}
		}
	}
	if tab.AnalysedPixels() != g.Width*g.Height-prof.GapPixels() {
		t.Errorf("AnalysedPixels %d", tab.AnalysedPixels())
	}
	noGaps, err := NewTables(g, DefaultParams(), Masks{NoGaps: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := countExcluded(noGaps); n != 0 || noGaps.GapProfile() != "" {
		t.Errorf("NoGaps: %d excluded, profile %q", n, noGaps.GapProfile())
	}
}

func TestTablesMasksBeamstopAndRange(t *testing.T) {
	g, prof := eiger1MGeometry(t)
	n := g.Width * g.Height
	mask := make([]uint32, n)
	for i := 0; i < n; i += 997 {
		mask[i] = 1 << (i % 5) // any bit excludes
	}
	user := func(x, y int) bool { return x == 3 }
	p := DefaultParams()
	p.Beamstop = Rect{XMin: 500, XMax: 530, YMin: 520, YMax: 560}
	p.DMax, p.DMin = 20, 2.0
	tab, err := NewTables(g, p, Masks{Pixel: mask, Exclude: user})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for y := 0; y < g.Height; y++ {
		for x := 0; x < g.Width; x++ {
			d := g.Resolution(float64(x), float64(y))
			excl := prof.IsGap(x, y) || mask[y*g.Width+x] != 0 || user(x, y) ||
				(x >= 500 && x <= 530 && y >= 520 && y <= 560) || d > 20 || d < 2.0
			if excl {
				want++
			}
			if excl != (tab.Shell(x, y) < 0) {
				t.Fatalf("pixel (%d, %d) d %.3f: excluded %v, want %v", x, y, d, tab.Shell(x, y) < 0, excl)
			}
		}
	}
	if got := countExcluded(tab); got != want {
		t.Errorf("%d excluded, want %d", got, want)
	}
	// The shells span exactly the resolution range left.
	lo, _ := tab.ShellRange(0)
	_, hi := tab.ShellRange(tab.Shells() - 1)
	if lo > 20 || lo < 19 || math.Abs(hi-math.Max(2.0, minD(g, tab))) > 1e-9 {
		t.Errorf("shells span %.4f..%.4f Å, want about 20..%.4f", lo, hi, math.Max(2.0, minD(g, tab)))
	}
}

// minD is the smallest d of an analysed pixel.
func minD(g Geometry, tab *Tables) float64 {
	d := math.Inf(1)
	for y := 0; y < g.Height; y++ {
		for x := 0; x < g.Width; x++ {
			if tab.Shell(x, y) >= 0 {
				d = math.Min(d, g.Resolution(float64(x), float64(y)))
			}
		}
	}
	return d
}

func TestTablesShells(t *testing.T) {
	// No gaps, beam in the middle of a square frame: inside the inscribed
	// circle every shell is a complete ring, and rings equally spaced in
	// 1/d² hold (nearly) equal numbers of pixels.
	g := Geometry{Width: 1200, Height: 1200, BeamX: 600, BeamY: 600, Distance: 0.1, Wavelength: 1, PixelSize: 75e-6}
	p := DefaultParams()
	p.Shells = 64
	p.IceRingWidth = 0 // no ice bands: every pixel in a regular shell
	tab, err := NewTables(g, p, Masks{NoGaps: true})
	if err != nil {
		t.Fatal(err)
	}
	if tab.Shells() != 64 {
		t.Fatalf("%d shells", tab.Shells())
	}
	// Shell index never decreases outwards, and shells tile 1/d².
	prev := -1
	for x := 600; x < 1200; x++ {
		s := tab.Shell(x, 600)
		if s < prev {
			t.Fatalf("shell %d at x=%d after shell %d", s, x, prev)
		}
		prev = s
	}
	for s := 0; s+1 < tab.Shells(); s++ {
		_, hi := tab.ShellRange(s)
		lo, _ := tab.ShellRange(s + 1)
		if math.Abs(hi-lo) > 1e-12*hi {
			t.Fatalf("shell %d ends at %v Å, shell %d starts at %v Å", s, hi, s+1, lo)
		}
	}
	// Each complete ring (inside the inscribed circle) holds the pixels of
	// its annulus on the flat detector: π (r₁² - r₀²) with r = D tan 2θ and
	// cos 2θ = 1 - λ²/(2d²). Equal steps in 1/d² are equal solid angles, so
	// outer rings hold more pixels (by about 1/cos³ 2θ).
	radius := func(d float64) float64 {
		if math.IsInf(d, 1) {
			return 0
		}
		c := 1 - g.Wavelength*g.Wavelength/(2*d*d)
		return g.Distance * math.Tan(math.Acos(c)) / g.PixelSize
	}
	rings := 0
	for s := 0; s < tab.Shells(); s++ {
		dLow, dHigh := tab.ShellRange(s)
		r0, r1 := radius(dLow), radius(dHigh)
		if r1 >= 599 {
			break
		}
		want := math.Pi * (r1*r1 - r0*r0)
		if got := float64(tab.shellPixels[s]); math.Abs(got-want) > 0.01*want+10 {
			t.Errorf("shell %d (%.1f..%.1f px) holds %v pixels, annulus %.0f", s, r0, r1, got, want)
		}
		rings++
	}
	if rings < 20 {
		t.Fatalf("only %d complete rings", rings)
	}
}

func TestTablesErrors(t *testing.T) {
	g, _ := eiger1MGeometry(t)
	if _, err := NewTables(g, DefaultParams(), Masks{Pixel: make([]uint32, 10)}); err == nil || !strings.Contains(err.Error(), "pixel mask has 10 entries") {
		t.Errorf("short mask: %v", err)
	}
	p := DefaultParams()
	p.DMax, p.DMin = 0.5, 0.4 // beyond the detector
	if _, err := NewTables(g, p, Masks{}); err == nil || !strings.Contains(err.Error(), "every pixel") {
		t.Errorf("empty range: %v", err)
	}
	p = DefaultParams()
	p.Shells = 300
	if _, err := NewTables(g, p, Masks{}); err == nil {
		t.Error("300 shells accepted")
	}
	bad := g
	bad.Wavelength = 0
	if _, err := NewTables(bad, DefaultParams(), Masks{}); err == nil {
		t.Error("zero wavelength accepted")
	}
}

func TestTablesWithParams(t *testing.T) {
	g, _ := eiger1MGeometry(t)
	tab, err := NewTables(g, DefaultParams(), Masks{})
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultParams()
	p.SpotLevel = 4
	p.Method = Dispersion
	u, err := tab.WithParams(p)
	if err != nil {
		t.Fatal(err)
	}
	if &u.shell[0] != &tab.shell[0] || u.Params().SpotLevel != 4 || tab.Params().SpotLevel != 6 {
		t.Error("per-frame change did not share the shell table, or changed the original")
	}
	p.DMin = 3
	v, err := tab.WithParams(p)
	if err != nil {
		t.Fatal(err)
	}
	if &v.shell[0] == &tab.shell[0] || countExcluded(v) <= countExcluded(tab) {
		t.Error("d-min change did not rebuild the tables")
	}
	p.SpotSize = 0
	if _, err := tab.WithParams(p); err == nil {
		t.Error("invalid parameters accepted")
	}
}

// TestTablesIceBandShells: every analysed pixel whose 1/d² lies in an ice
// band has the band's shell, every other one a regular shell (the tables
// look bands up per regular shell; bandOf searches them all).
func TestTablesIceBandShells(t *testing.T) {
	g := Geometry{Width: 1028, Height: 1062, BeamX: 501.3, BeamY: 530.8, Distance: 0.08, Wavelength: 1, PixelSize: 75e-6}
	for _, shells := range []int{8, 128, 200} {
		p := DefaultParams()
		p.Shells = shells
		tab, err := NewTables(g, p, Masks{NoGaps: true})
		if err != nil {
			t.Fatal(err)
		}
		if tab.IceRings() < 5 {
			t.Fatalf("%d ice bands on the test geometry, want several", tab.IceRings())
		}
		inBands := 0
		for y := 0; y < g.Height; y++ {
			for x := 0; x < g.Width; x++ {
				s := int(tab.shell[y*g.Width+x])
				if s == excludedShell {
					continue
				}
				want := -1
				if b := tab.bandOf(g.InvD2(float64(x), float64(y))); b >= 0 {
					want = tab.ice[b].shell
					inBands++
				}
				if (want >= 0 && s != want) || (want < 0 && s >= shells) {
					t.Fatalf("%d shells: pixel (%d, %d) in shell %d, want %d (-1: a regular one)", shells, x, y, s, want)
				}
			}
		}
		if inBands == 0 {
			t.Fatalf("%d shells: no pixel in an ice band", shells)
		}
	}
}
