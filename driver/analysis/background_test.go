package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// poisson draws a Poisson count (Knuth below 30, a rounded normal above:
// the test compares the estimator with the exact moments of the sample it
// drew, so the sampler need not be exact).
func poisson(r *rand.Rand, lambda float64) float64 {
	if lambda < 30 {
		l, k, p := math.Exp(-lambda), 0.0, 1.0
		for {
			p *= r.Float64()
			if p <= l {
				return k
			}
			k++
		}
	}
	return math.Max(0, math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64()))
}

// flatFrame is a frame of Poisson(lambda) background on which a fraction
// of pixels are bright outliers (spots) and a fraction masked (all-ones).
// It returns the frame and the exact mean and standard deviation of the
// clean background pixels.
func flatFrame[T uint8 | uint16 | uint32](n int, lambda float64, seed uint64) (px []T, mean, sd float64) {
	r := rand.New(rand.NewPCG(seed, 7))
	px = make([]T, n)
	var s, s2, c float64
	for i := range px {
		switch u := r.Float64(); {
		case u < 0.005:
			px[i] = ^T(0)
		case u < 0.015:
			px[i] = T(math.Min(lambda+50*math.Sqrt(lambda)+100+200*r.Float64(), float64(^T(0)-1)))
		default:
			v := poisson(r, lambda)
			px[i] = T(v)
			s += v
			s2 += v * v
			c++
		}
	}
	mean = s / c
	return px, mean, math.Sqrt(s2/c - mean*mean)
}

func flatTables(t testing.TB, w, h int) *Tables {
	t.Helper()
	p := DefaultParams()
	p.Shells = 8
	p.IceRingWidth = 0 // bands of a few hundred pixels would test sampling noise, not the estimator
	tab, err := NewTables(Geometry{Width: w, Height: h, BeamX: float64(w) / 2, BeamY: float64(h) / 2, Distance: 0.05, Wavelength: 1, PixelSize: 75e-6}, p, Masks{NoGaps: true})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func checkFlat[T uint8 | uint16 | uint32](t *testing.T, tab *Tables, lambda float64, wantRebin bool) {
	t.Helper()
	w, h := tab.geom.Width, tab.geom.Height
	px, mean, _ := flatFrame[T](w*h, lambda, uint64(lambda*1000)+1)
	a := NewAnalyser(tab)
	var res Result
	if err := AnalysePixels(a, px, &res); err != nil {
		t.Fatal(err)
	}
	// The exact moments of each shell's clean pixels in its background
	// sample (outliers and masked pixels are recognisable: far above λ,
	// or all-ones): the estimator must reproduce them; that the sample
	// stands for the whole shell is checked on the frame's mean below.
	ns := tab.nShells // regular shells and ice bands
	sum, sum2, cnt := make([]float64, ns), make([]float64, ns), make([]float64, ns)
	cut := math.Min(lambda+40*math.Sqrt(lambda)+90, float64(^T(0)-2)) // outliers are above, or clamped to all-ones minus one
	sample := samplePixels(tab)
	for _, i := range sample {
		v := px[i]
		s := tab.Shell(int(i)%w, int(i)/w)
		if s < 0 || v == ^T(0) || float64(v) > cut {
			continue
		}
		sum[s] += float64(v)
		sum2[s] += float64(v) * float64(v)
		cnt[s]++
	}
	for s := 0; s < ns; s++ {
		m, sg := a.ShellBackground(s)
		sm := sum[s] / cnt[s]
		sd := math.Sqrt(sum2[s]/cnt[s] - sm*sm)
		wantSD := math.Max(sd, math.Sqrt(sm)) // the Poisson floor, by design
		if math.Abs(m-sm) > 0.01*sm+0.001 {
			t.Errorf("λ=%v shell %d: mean %.4f, sample %.4f", lambda, s, m, sm)
		}
		if math.Abs(sg-wantSD) > 0.04*wantSD+0.001 {
			t.Errorf("λ=%v shell %d: σ %.4f, sample %.4f", lambda, s, sg, wantSD)
		}
	}
	if got := res.Rebinned > 0; got != wantRebin {
		t.Errorf("λ=%v: %d shells rebinned, want rebinning %v", lambda, res.Rebinned, wantRebin)
	}
	// The frame's background from the samples against the mean of every
	// clean pixel: within 1 % plus four standard errors of the sample.
	if se := math.Sqrt(math.Max(lambda, 1e-3) / float64(len(sample))); math.Abs(res.Background-mean) > 0.01*mean+0.001+4*se {
		t.Errorf("λ=%v: frame background %.4f, sample %.4f", lambda, res.Background, mean)
	}
	if res.Masked == 0 {
		t.Errorf("λ=%v: masked pixels not counted", lambda)
	}
}

// TestBackgroundIsRobust: on flat Poisson frames with 1 % bright outliers
// and 0.5 % masked pixels, every shell's background is the clean sample's
// mean and standard deviation, from a fraction of a photon per pixel
// (where median and MAD are 0) to bright 32-bit backgrounds that need the
// binned second pass.
func TestBackgroundIsRobust(t *testing.T) {
	tab := flatTables(t, 300, 300)
	for _, lambda := range []float64{0.02, 0.3, 1, 4, 30, 150} {
		checkFlat[uint16](t, tab, lambda, false)
	}
	for _, lambda := range []float64{600, 5000} {
		checkFlat[uint16](t, tab, lambda, true)
	}
	for _, lambda := range []float64{0.3, 30, 100} {
		checkFlat[uint8](t, tab, lambda, false)
	}
	for _, lambda := range []float64{2, 1e5, 3e6} {
		checkFlat[uint32](t, tab, lambda, lambda > 200)
	}
}

// TestBackgroundMatchesSimulator compares the shell backgrounds of a blank
// simulated frame with the simulator's own per-pixel means (which include
// the water ring and the beamstop shadow, so a shell is not flat).
func TestBackgroundMatchesSimulator(t *testing.T) {
	cfg := diffraction.DefaultConfig(eiger4M(t))
	cfg.Background = 3
	g, err := diffraction.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tab := simTables(t, g, DefaultParams())
	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	frame := 0
	for ; ; frame++ {
		if err := g.Frame(frame, buf, &tr); err != nil {
			t.Fatal(err)
		}
		if !tr.Hit {
			break
		}
	}
	a := NewAnalyser(tab)
	var res Result
	if err := a.Analyse(buf, g.ElemSize(), &res); err != nil {
		t.Fatal(err)
	}
	sum := make([]float64, tab.nShells) // regular shells and ice bands
	cnt := make([]float64, tab.nShells)
	for y := 0; y < g.Height(); y++ {
		for x := 0; x < g.Width(); x++ {
			if s := tab.Shell(x, y); s >= 0 {
				sum[s] += g.BackgroundMean(x, y)
				cnt[s]++
			}
		}
	}
	worst := 0.0
	for s := range sum {
		truth := sum[s] / cnt[s]
		m, _ := a.ShellBackground(s)
		e := math.Abs(m-truth) / truth
		worst = math.Max(worst, e)
		// The beamstop arm (2 % transmission) crosses every shell and
		// sigma clipping rejects it as low outliers, so a shell's clipped
		// mean sits slightly above the plain average: a few per cent.
		// Tolerance: 3 % plus four standard errors of the shell's mean
		// (the outer, partial rings in the corners hold few pixels).
		if tol := 0.03 + 4*math.Sqrt(truth/cnt[s])/truth; e > tol {
			t.Errorf("shell %d (%v px): background %.4f, simulator's mean %.4f (%.1f%% > %.1f%%)", s, cnt[s], m, truth, 100*e, 100*tol)
		}
	}
	t.Logf("frame %d: worst shell background error %.2f%%", frame, 100*worst)
}

// samplePixels returns the pixels of the tables' background sample, in
// order, from its steps (the no-pixels of long steps left out).
func samplePixels(tab *Tables) []int32 {
	var px []int32
	i := 0
	for _, q := range tab.steps {
		i += int(q & 0xff)
		if uint8(q>>8) != excludedShell {
			px = append(px, int32(i))
		}
	}
	return px
}
