package analysis

import (
	"math"
	"strings"
	"testing"
)

func TestResolutionGolden(t *testing.T) {
	// 0.1 m, 1 Å, 75 µm pixels, 1000 px from the beam: r = 75 mm,
	// tan 2θ = 3/4, cos 2θ = 0.8, sin θ = sqrt(0.1): d = 1/(2 sqrt(0.1)).
	g := Geometry{Width: 2000, Height: 2000, BeamX: 500.25, BeamY: 700.5, Distance: 0.1, Wavelength: 1, PixelSize: 75e-6}
	want := 1 / (2 * math.Sqrt(0.1))
	for _, xy := range [][2]float64{{1500.25, 700.5}, {500.25, 1700.5}, {500.25 - 600, 700.5 - 800}} {
		if d := g.Resolution(xy[0], xy[1]); math.Abs(d-want) > 1e-12 {
			t.Errorf("d at %v = %.15f, want %.15f", xy, d, want)
		}
	}
	if d := g.Resolution(g.BeamX, g.BeamY); !math.IsInf(d, 1) {
		t.Errorf("d at the beam = %v, want +Inf", d)
	}
}

func TestInvD2MatchesBragg(t *testing.T) {
	// The cancellation-free form equals the textbook formula of
	// spot-finding.md everywhere, including a pixel from the beam.
	g := Geometry{Width: 4148, Height: 4362, BeamX: 2049.38, BeamY: 2163.62, Distance: 0.2, Wavelength: 0.918381, PixelSize: 75e-6}
	for _, xy := range [][2]float64{{2050, 2164}, {0, 0}, {4147, 4361}, {3000, 100}, {2049.38 + 1, 2163.62}} {
		dx, dy := (xy[0]-g.BeamX)*g.PixelSize, (xy[1]-g.BeamY)*g.PixelSize
		theta := math.Atan(math.Hypot(dx, dy)/g.Distance) / 2
		want := g.Wavelength / (2 * math.Sin(theta))
		if got := g.Resolution(xy[0], xy[1]); math.Abs(got-want)/want > 1e-12 {
			t.Errorf("d at %v = %.12g, textbook %.12g", xy, got, want)
		}
	}
}

func TestGeometryValidate(t *testing.T) {
	good := Geometry{Width: 10, Height: 10, BeamX: 5, BeamY: 5, Distance: 0.1, Wavelength: 1, PixelSize: 75e-6}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		mod  func(*Geometry)
		want string
	}{
		"zero width":      {func(g *Geometry) { g.Width = 0 }, "frame size 0 x 10"},
		"huge":            {func(g *Geometry) { g.Width, g.Height = 1<<16, 1<<16 }, "exceeds"},
		"zero distance":   {func(g *Geometry) { g.Distance = 0 }, "detector distance must be > 0"},
		"nan wavelength":  {func(g *Geometry) { g.Wavelength = math.NaN() }, "wavelength is NaN"},
		"negative pixel":  {func(g *Geometry) { g.PixelSize = -1 }, "pixel size must be > 0"},
		"absurd beam":     {func(g *Geometry) { g.BeamX = 1e9 }, "beam centre x"},
		"infinite beam y": {func(g *Geometry) { g.BeamY = math.Inf(-1) }, "beam centre y is -Inf"},
	} {
		g := good
		c.mod(&g)
		err := g.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v, want an error containing %q", name, err, c.want)
		}
	}
}
