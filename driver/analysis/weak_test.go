package analysis

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"tioga/internal/testenv"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// weakFigures are the judging numbers of issue 14 item 4 on weak data.
type weakFigures struct {
	hits, blanks          int
	weakTrue, weakFound   int // true spots with 5 <= I/σ < 7, and how many were found
	found, foundTrue      int // accepted spots on all frames, and how many lie on a true spot
	blankSpots            int // accepted spots on blank frames
	resHits, resWithin    int // hits, and those with a resolution within 10 % of the cut-off
	resErrs               []float64
	falseHits, missedHits int
}

func (f *weakFigures) recall() float64    { return ratio(f.weakFound, f.weakTrue) }
func (f *weakFigures) precision() float64 { return ratio(f.foundTrue, f.found) }
func (f *weakFigures) resFrac() float64   { return ratio(f.resWithin, f.resHits) }
func (f *weakFigures) resMedian() float64 {
	if len(f.resErrs) == 0 {
		return math.NaN()
	}
	e := slices.Clone(f.resErrs)
	slices.Sort(e)
	return e[len(e)/2]
}

func (f *weakFigures) String() string {
	return fmt.Sprintf("hits %d, blanks %d: recall at I/σ 5-7 %.3f (%d/%d), precision %.4f (%d/%d), false spots per blank %.3f, resolution within 10%% on %.2f of hits (median signed error %+.1f%%), false hits %d, missed hits %d",
		f.hits, f.blanks, f.recall(), f.weakFound, f.weakTrue, f.precision(), f.foundTrue, f.found, ratio(f.blankSpots, f.blanks),
		f.resFrac(), 100*f.resMedian(), f.falseHits, f.missedHits)
}

func judgeWeak(frames []simFrame) weakFigures {
	var f weakFigures
	for i := range frames {
		tr, res := &frames[i].truth, &frames[i].res
		if tr.Hit && !res.Hit {
			f.missedHits++
		}
		if !tr.Hit && res.Hit {
			f.falseHits++
		}
		for _, ts := range tr.Spots {
			if ts.ISigma < 5 || ts.ISigma >= 7 {
				continue
			}
			f.weakTrue++
			for _, s := range res.SpotList {
				if math.Hypot(s.X-ts.X, s.Y-ts.Y) <= matchRadius {
					f.weakFound++
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
			continue
		}
		f.hits++
		f.resHits++
		if res.Resolution > 0 {
			e := (res.Resolution - tr.DCut) / tr.DCut
			f.resErrs = append(f.resErrs, e)
			if math.Abs(e) <= 0.1 {
				f.resWithin++
			}
		}
	}
	return f
}

// weakSeries simulates a serial series of weak crystals (spot intensity
// 120, the weak set) on the EIGER 4M.
func weakSeries(tb testing.TB, seed uint64, p Params, n int) weakFigures {
	tb.Helper()
	cfg := diffraction.DefaultConfig(eiger4M(tb))
	cfg.Seed = seed
	cfg.SpotIntensity = 120
	cfg.HitFraction = 0.5
	g, err := diffraction.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return judgeWeak(simulate(tb, g, simTables(tb, g, p), n))
}

// TestWeakTuning is the tuning run (seeds 101 and 102, never the seeds of
// TestWeakData), by hand, with parameters from ZLEVEL, ZMINSNR, ZQ, ZSIZE:
// ZZWEAK=1 go test -run WeakTuning -v ./driver/analysis/
func TestWeakTuning(t *testing.T) {
	if os.Getenv("ZZWEAK") == "" {
		t.Skip()
	}
	n, _ := strconv.Atoi(os.Getenv("ZZN"))
	if n == 0 {
		n = 60
	}
	p := DefaultParams()
	for _, kv := range [][2]string{{"min-snr", "ZMINSNR"}, {"spot-level", "ZLEVEL"}, {"resolution-quantile", "ZQ"}, {"spot-size", "ZSIZE"}} {
		if v := os.Getenv(kv[1]); v != "" {
			x, _ := strconv.ParseFloat(v, 64)
			if err := p.Set(kv[0], x); err != nil {
				t.Fatal(err)
			}
		}
	}
	if os.Getenv("ZDISP") != "" {
		p.Method = Dispersion
	}
	for _, kv := range strings.Split(os.Getenv("ZP"), ",") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Set(k, x); err != nil {
			t.Fatal(err)
		}
	}
	seeds := []uint64{101, 102}
	if s := os.Getenv("ZSEEDS"); s != "" {
		seeds = nil
		for _, f := range strings.Split(s, ",") {
			x, _ := strconv.ParseUint(f, 10, 64)
			seeds = append(seeds, x)
		}
	}
	for _, seed := range seeds {
		f := weakSeries(t, seed, p, n)
		fmt.Printf("seed %d: %s\n", seed, f.String())
	}
}

// TestWeakData measures issue 14 item 4 on weak crystals (spot intensity
// 120) on a seed not used while tuning (101 and 102 were): the same frames
// analysed with the defaults (spot-level 6, min-snr 5 and the grow step
// at grow-level 2.5, chosen on the tuning seeds and the real frames) and
// without the grow step (grow-level 0, the defaults before it): recall of
// true spots with I/σ 5-7, precision, false spots per blank frame, and the
// resolution estimate against the true cut-off on every hit. The defaults
// must meet the goal (recall >= 0.8 at precision >= 0.98, no false
// spot on a blank, resolution within 10 % on >= 80 % of hits); without
// the grow step the figures asserted are the ones achieved, less a margin.
func TestWeakData(t *testing.T) {
	testenv.SkipIfShort(t)
	noGrow := DefaultParams()
	noGrow.GrowLevel = 0
	cfg := diffraction.DefaultConfig(eiger4M(t))
	cfg.Seed = 201
	cfg.SpotIntensity = 120
	cfg.HitFraction = 0.5
	g, err := diffraction.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	def := simTables(t, g, DefaultParams())
	ng, err := def.WithParams(noGrow)
	if err != nil {
		t.Fatal(err)
	}
	runs := simulateWith(t, g, []*Tables{def, ng}, 40)
	for i, c := range []struct {
		name                   string
		recall, precision, res float64
	}{
		{"defaults (grow-level 2.5)", 0.8, 0.98, 0.8},
		{"grow-level 0", 0.45, 0.98, 0.8},
	} {
		f := judgeWeak(runs[i])
		t.Logf("%s (seed %d): %s", c.name, cfg.Seed, f.String())
		if f.hits < 10 || f.blanks < 10 {
			t.Fatalf("%s: %d hits, %d blanks: not mixed enough to judge", c.name, f.hits, f.blanks)
		}
		if r := f.recall(); !(r >= c.recall) {
			t.Errorf("%s: recall at I/σ 5-7 %.3f, want >= %.2f", c.name, r, c.recall)
		}
		if pr := f.precision(); !(pr >= c.precision) {
			t.Errorf("%s: precision %.4f, want >= %.2f", c.name, pr, c.precision)
		}
		if f.blankSpots != 0 || f.falseHits != 0 {
			t.Errorf("%s: %d spots on %d blank frames, %d false hits; want none", c.name, f.blankSpots, f.blanks, f.falseHits)
		}
		if r := f.resFrac(); !(r >= c.res) {
			t.Errorf("%s: resolution within 10 %% on %.2f of hits, want >= %.2f", c.name, r, c.res)
		}
	}
}

// simulateWith generates frames [0, n) once and analyses each with every
// one of tabs (in parallel over frames, as simulate): runs[k] holds the
// frames analysed with tabs[k].
func simulateWith(tb testing.TB, g *diffraction.Generator, tabs []*Tables, n int) [][]simFrame {
	tb.Helper()
	runs := make([][]simFrame, len(tabs))
	for k := range runs {
		runs[k] = make([]simFrame, n)
	}
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, g.FrameBytes())
			as := make([]*Analyser, len(tabs))
			for k, t := range tabs {
				as[k] = NewAnalyser(t)
			}
			var tr truth.Frame
			for i := range next {
				if err := g.Frame(i, buf, &tr); err != nil {
					errs <- err
					return
				}
				for k, a := range as {
					f := &runs[k][i]
					if err := a.Analyse(buf, g.ElemSize(), &f.res); err != nil {
						errs <- err
						return
					}
					f.res.SpotList = slices.Clone(f.res.SpotList)
					f.truth = tr
					f.truth.Spots = slices.Clone(tr.Spots)
				}
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
	return runs
}
