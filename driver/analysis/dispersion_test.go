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

// BenchmarkDispersion measures the dispersion test alone (the strong-pixel
// pass of the dispersion method) on the simulated 4M hit and blank frames;
// BenchmarkAnalyse/dispersion measures the whole analysis around it.
func BenchmarkDispersion(b *testing.B) {
	for _, hit := range []bool{true, false} {
		name := "sim-4M-16bit-blank"
		if hit {
			name = "sim-4M-16bit-hit"
		}
		b.Run(name, func(b *testing.B) {
			g, frame := simFrameBytes(b, hit)
			p := DefaultParams()
			p.Method = Dispersion
			tab := simTables(b, g, p)
			px := make([]uint16, len(frame)/2)
			for i := range px {
				px[i] = uint16(frame[2*i]) | uint16(frame[2*i+1])<<8
			}
			var d dispersionScratch
			strong, _ := dispersion(&d, nil, len(px), px, tab.shell, tab.geom.Width, &tab.params)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				strong, _ = dispersion(&d, strong[:0], len(px), px, tab.shell, tab.geom.Width, &tab.params)
			}
			cpu := processCPU() - cpu0
			if cpu > 0 {
				b.ReportMetric(float64(len(px))*float64(b.N)/cpu.Seconds()/1e6, "Mpx/cpu-s")
			}
			b.ReportMetric(float64(len(strong)), "strong")
		})
	}
}

// TestVminIsStrongTest: the table of least strong values is the strong test
// itself, for every box sum it covers, on both sides of each entry, for
// several kernels, gains and σ_s (the table replaces the test exactly, not
// approximately).
func TestVminIsStrongTest(t *testing.T) {
	for _, c := range []struct {
		k           int
		gain, sigma float64
	}{{3, 1, 3}, {1, 1, 3}, {5, 1.7, 3}, {3, 2, 2.5}, {15, 0.5, 100}, {3, 100, 0}} {
		p := DefaultParams()
		p.KernelSize, p.Gain, p.SigmaStrong = c.k, c.gain, c.sigma
		var d dispersionScratch
		d.prepare(64, &p)
		box := uint64((2*c.k + 1) * (2*c.k + 1))
		strong2 := c.sigma * c.sigma * c.gain
		for s, vm := range d.vmin {
			acc := box<<dispersionShift | uint64(s)
			if !strongAbove(vm, acc, strong2) || vm > 0 && strongAbove(vm-1, acc, strong2) {
				t.Fatalf("case %+v: vmin[%d] = %d is not where the strong test turns", c, s, vm)
			}
		}
	}
}
