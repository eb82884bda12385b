package analysis

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"

	"tioga/device/detectormodel"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// simFrame is one simulated frame analysed, with its truth.
type simFrame struct {
	truth truth.Frame
	res   Result
}

// simulate generates frames [0, n) of the generator's series and analyses
// them with tables t, in parallel (frames are independent), and returns them
// in frame order.
func simulate(tb testing.TB, g *diffraction.Generator, t *Tables, n int) []simFrame {
	tb.Helper()
	out := make([]simFrame, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, g.FrameBytes())
			a := NewAnalyser(t)
			for i := range next {
				f := &out[i]
				if err := g.Frame(i, buf, &f.truth); err != nil {
					errs <- err
					return
				}
				if err := a.Analyse(buf, g.ElemSize(), &f.res); err != nil {
					errs <- err
					return
				}
				f.res.SpotList = slices.Clone(f.res.SpotList)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return out
}

// simGeometry is the analysis geometry of a simulated series.
func simGeometry(g *diffraction.Generator) Geometry {
	c := g.Config()
	return Geometry{Width: g.Width(), Height: g.Height(), BeamX: c.BeamX, BeamY: c.BeamY,
		Distance: c.Distance, Wavelength: c.Wavelength, PixelSize: c.Profile.PixelSize}
}

// simTables builds tables with the simulator's pixel mask, as the pipeline
// does with the mask of the stream header.
func simTables(tb testing.TB, g *diffraction.Generator, p Params) *Tables {
	tb.Helper()
	mask := make([]uint32, g.Width()*g.Height())
	if err := g.PixelMask(mask); err != nil {
		tb.Fatal(err)
	}
	t, err := NewTables(simGeometry(g), p, Masks{Pixel: mask})
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// figures are the judging numbers of spot-finding.md.
type figures struct {
	frames, hits, blanks    int
	strongTrue, strongFound int // true spots with I/σ >= 10, and how many were found
	found, foundTrue        int // accepted spots, and how many lie on a true spot
	blankSpots              int // accepted spots on blank frames
	blankZero               int // blank frames with score 0
	correct                 int // frames whose hit flag matches the truth
	resFrames, resWithin    int // hits with a resolution, and within 10 % of the cut-off
	resErrs                 []float64
}

func (f *figures) recall() float64    { return ratio(f.strongFound, f.strongTrue) }
func (f *figures) precision() float64 { return ratio(f.foundTrue, f.found) }
func (f *figures) blankMean() float64 { return ratio(f.blankSpots, f.blanks) }
func (f *figures) blankZeroFrac() float64 {
	return ratio(f.blankZero, f.blanks)
}
func (f *figures) accuracy() float64 { return ratio(f.correct, f.frames) }
func (f *figures) resFrac() float64  { return ratio(f.resWithin, f.hits) }
func (f *figures) resMedian() float64 {
	if len(f.resErrs) == 0 {
		return math.NaN()
	}
	e := slices.Clone(f.resErrs)
	slices.Sort(e)
	return e[len(e)/2]
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// matchRadius: a found spot matches a true spot whose centroid is within
// this distance (pixels).
const matchRadius = 2.0

func judge(frames []simFrame) figures {
	var f figures
	for i := range frames {
		tr, res := &frames[i].truth, &frames[i].res
		f.frames++
		if res.Hit == tr.Hit {
			f.correct++
		}
		for _, ts := range tr.Spots {
			if ts.ISigma < 10 {
				continue
			}
			f.strongTrue++
			for _, s := range res.SpotList {
				if math.Hypot(s.X-ts.X, s.Y-ts.Y) <= matchRadius {
					f.strongFound++
					break
				}
			}
		}
		for _, s := range res.SpotList {
			f.found++
			for _, ts := range tr.Spots {
				if math.Hypot(s.X-ts.X, s.Y-ts.Y) <= matchRadius {
					f.foundTrue++
					break
				}
			}
		}
		if !tr.Hit {
			f.blanks++
			f.blankSpots += res.Spots
			if res.Score == 0 {
				f.blankZero++
			}
			continue
		}
		f.hits++
		if res.Resolution > 0 {
			f.resFrames++
			e := math.Abs(res.Resolution-tr.DCut) / tr.DCut
			f.resErrs = append(f.resErrs, e)
			if e <= 0.1 {
				f.resWithin++
			}
		}
	}
	return f
}

func (f *figures) String() string {
	return fmt.Sprintf("frames %d (hits %d, blanks %d): recall %.3f (%d/%d true spots with I/σ>=10), precision %.3f (%d/%d), false spots per blank %.3f, score 0 on %.1f%% of blanks, hit accuracy %.1f%%, resolution within 10%% on %.1f%% of hits (median error %.1f%%)",
		f.frames, f.hits, f.blanks, f.recall(), f.strongFound, f.strongTrue, f.precision(), f.foundTrue, f.found,
		f.blankMean(), 100*f.blankZeroFrac(), 100*f.accuracy(), 100*f.resFrac(), 100*f.resMedian())
}

func eiger4M(tb testing.TB) detectormodel.Profile {
	p, ok := detectormodel.ByName("eiger4m")
	if !ok {
		tb.Fatal("no eiger4m profile")
	}
	return p
}

// The judging thresholds of spot-finding.md ("How it is judged").
const (
	wantRecall       = 0.90 // of true spots with I/σ >= 10
	wantPrecision    = 0.95
	wantBlankSpots   = 0.5  // mean accepted spots per blank frame, at most
	wantBlankZero    = 0.99 // fraction of blank frames with score 0, at least
	wantHitAccuracy  = 0.98
	wantResolution   = 0.10 // relative error of the resolution on hits
	wantResWithinFrc = 0.95 // fraction of hits whose resolution is within wantResolution
)

// TestGroundTruth is the acceptance test of issue 4: simulated EIGER 4M
// frames with ground truth, a serial series of mixed hits and blanks and a
// raster over one crystal (whose edge cells diffract weakly), judged by the
// numbers of spot-finding.md. It prints the figures (t.Log, and one summary
// line per series on stdout with -v) and asserts the thresholds.
func TestGroundTruth(t *testing.T) {
	prof := eiger4M(t)
	serial := diffraction.DefaultConfig(prof)
	serial.Seed = 4

	raster := diffraction.DefaultConfig(prof)
	raster.Seed = 5
	r := diffraction.DefaultRaster()
	// A 12 x 30 corner of the standard 37 x 213 grid with the crystal
	// scaled to it: 360 frames, a third of them on the crystal.
	r.Lines, r.FramesPerLine = 12, 30
	r.CenterColumn, r.CenterLine, r.RadiusColumns, r.RadiusLines = 15.3, 5.6, 9, 4
	raster.Raster = &r

	dispersion := serial
	dispersion.Seed = 6
	pd := DefaultParams()
	pd.Method = Dispersion

	for _, c := range []struct {
		name   string
		cfg    diffraction.Config
		params Params
		frames int
	}{
		{"serial", serial, DefaultParams(), 240},
		{"raster", raster, DefaultParams(), r.Frames()},
		{"serial-dispersion", dispersion, pd, 80},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := diffraction.New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			frames := simulate(t, g, simTables(t, g, c.params), c.frames)
			f := judge(frames)
			t.Log(f.String())
			if testing.Verbose() {
				fmt.Printf("ground truth %s (%s, %s): %s\n", c.name, prof.Name, c.params.Method, f.String())
			}
			if f.hits < c.frames/5 || f.blanks < c.frames/5 {
				t.Fatalf("series not mixed enough to judge: %d hits, %d blanks", f.hits, f.blanks)
			}
			check := func(name string, got, want float64, atLeast bool) {
				t.Helper()
				if math.IsNaN(got) || (atLeast && got < want) || (!atLeast && got > want) {
					t.Errorf("%s = %.4f, want %s %.4f", name, got, map[bool]string{true: ">=", false: "<="}[atLeast], want)
				}
			}
			check("recall", f.recall(), wantRecall, true)
			check("precision", f.precision(), wantPrecision, true)
			check("false spots per blank frame", f.blankMean(), wantBlankSpots, false)
			check("blank frames with score 0", f.blankZeroFrac(), wantBlankZero, true)
			check("hit accuracy", f.accuracy(), wantHitAccuracy, true)
			check("hits with resolution within 10%", f.resFrac(), wantResWithinFrc, true)
			check("median resolution error", f.resMedian(), wantResolution, false)
		})
	}
}
