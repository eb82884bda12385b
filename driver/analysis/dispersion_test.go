package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// dialsDispersion is a direct transcription of DIALS' DispersionThreshold
// (dials/algorithms/image/threshold/local.h, compute_threshold with a gain
// map): for every pixel, the box sums are recomputed from scratch.
func dialsDispersion(px []uint32, valid []bool, w, h int, p Params) []int32 {
	var out []int32
	k := p.KernelSize
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			var m, sx, sy float64
			for yy := max(0, y-k); yy <= min(h-1, y+k); yy++ {
				for xx := max(0, x-k); xx <= min(w-1, x+k); xx++ {
					j := yy*w + xx
					if valid[j] && px[j] < 1<<24 {
						m++
						sx += float64(px[j])
						sy += float64(px[j]) * float64(px[j])
					}
				}
			}
			src := float64(px[i])
			if valid[i] && m >= float64(p.MinLocal) && sx >= 0 && src > p.GlobalThreshold {
				a := m*sy - sx*sx
				b := m*src - sx
				c := p.Gain * sx * (m - 1 + p.SigmaBackground*math.Sqrt(2*(m-1)))
				d := p.SigmaStrong * math.Sqrt(p.Gain*sx*m)
				if a > c && b > d {
					out = append(out, int32(i))
				}
			}
		}
	}
	return out
}

// TestDispersionMatchesDIALS: the sliding-window implementation selects
// exactly the pixels DIALS' formula selects, for several kernels, gains,
// thresholds and minimum counts, with masked and excluded pixels, frame
// edges and values beyond DIALS' 2^24 cut.
func TestDispersionMatchesDIALS(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	g := Geometry{Width: 97, Height: 83, BeamX: 40, BeamY: 30, Distance: 0.05, Wavelength: 1, PixelSize: 75e-6}
	for trial, c := range []struct {
		k        int
		gain     float64
		thr      float64
		minLocal int
	}{{3, 1, 0, 2}, {1, 1, 0, 2}, {5, 1.7, 0, 2}, {3, 1, 3, 2}, {3, 0.5, 0, 40}, {2, 1, 0, 25}} {
		p := DefaultParams()
		p.Method = Dispersion
		p.KernelSize, p.Gain, p.GlobalThreshold, p.MinLocal = c.k, c.gain, c.thr, c.minLocal
		p.Beamstop = Rect{XMin: 35, XMax: 45, YMin: 25, YMax: 35}
		p.Shells = 16
		tab, err := NewTables(g, p, Masks{})
		if err != nil {
			t.Fatal(err)
		}
		px := make([]uint32, g.Width*g.Height)
		valid := make([]bool, len(px))
		lambda := []float64{0.2, 2, 20}[trial%3]
		for i := range px {
			switch u := r.Float64(); {
			case u < 0.02:
				px[i] = math.MaxUint32
			case u < 0.03:
				px[i] = uint32(lambda + 30 + 100*r.Float64())
			case u < 0.031:
				px[i] = 1<<24 + uint32(r.IntN(1000))
			default:
				px[i] = uint32(poisson(r, lambda))
			}
			valid[i] = px[i] != math.MaxUint32 && tab.shell[i] != excludedShell
		}
		// A few spots.
		for s := 0; s < 10; s++ {
			cx, cy := r.IntN(g.Width), r.IntN(g.Height)
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					x, y := cx+dx, cy+dy
					if x >= 0 && y >= 0 && x < g.Width && y < g.Height && px[y*g.Width+x] != math.MaxUint32 {
						px[y*g.Width+x] += uint32(20 * (3 - abs(dx) - abs(dy)))
					}
				}
			}
		}
		want := dialsDispersion(px, valid, g.Width, g.Height, p)
		var d dispersionScratch
		got, over := dispersion(&d, nil, len(px), px, tab.shell, g.Width, &p)
		if over || !slices.Equal(got, want) {
			t.Errorf("case %+v: %d strong pixels, DIALS' formula %d", c, len(got), len(want))
		}
		if len(want) == 0 {
			t.Errorf("case %+v: no strong pixels: the comparison tests nothing", c)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
