package analysis

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"

	"tioga/driver/detector"
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
	frames, hits, blanks int
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

func eiger4M(tb testing.TB) detector.Profile {
	p, ok := detector.ByName("eiger4m")
	if !ok {
		tb.Fatal("no eiger4m profile")
	}
	return p
}

func TestExploreSerial(t *testing.T) {
	cfg := diffraction.DefaultConfig(eiger4M(t))
	g, err := diffraction.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tab := simTables(t, g, DefaultParams())
	frames := simulate(t, g, tab, 60)
	f := judge(frames)
	t.Log(f.String())
	for i := range frames {
		fr := &frames[i]
		t.Logf("frame %d hit %v dcut %.2f dmin %.2f true %d strong %d | found %d cand %d strongpx %d score %.1f res %.2f IS %.0f bg %.3f",
			i, fr.truth.Hit, fr.truth.DCut, fr.truth.DMin, len(fr.truth.Spots), fr.truth.CountStrong(10), fr.res.Spots, fr.res.Candidates, fr.res.StrongPixels, fr.res.Score, fr.res.Resolution, fr.res.IS, fr.res.Background)
	}
}
