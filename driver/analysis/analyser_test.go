package analysis

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
)

// smallGeometry is a 64 x 64 frame with the beam in the middle: no EIGER
// profile has this size, so there is no gap mask.
var smallGeometry = Geometry{Width: 64, Height: 64, BeamX: 32, BeamY: 32, Distance: 0.05, Wavelength: 1, PixelSize: 75e-6}

func smallTables(t testing.TB, p Params) *Tables {
	t.Helper()
	p.Shells = 8
	tab, err := NewTables(smallGeometry, p, Masks{})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// handFrame draws the hand-made spots of TestSpotsGolden on a flat
// background bg: spot A (4 px), a diagonal chain B (3 px, weak), a pair C
// (2 px), a U whose arms only join in its last row, and a masked pixel
// touching A.
func handFrame(bg uint32) []uint32 {
	w := smallGeometry.Width
	px := make([]uint32, w*smallGeometry.Height)
	for i := range px {
		px[i] = bg
	}
	set := func(x, y int, v uint32) { px[y*w+x] = bg + v }
	set(10, 10, 10) // A
	set(11, 10, 20)
	set(10, 11, 30)
	set(11, 11, 40)
	px[10*w+12] = math.MaxUint32 // masked, touching A
	set(30, 40, 5)               // B: 8-connected only through corners
	set(31, 41, 5)
	set(32, 42, 5)
	set(50, 10, 100) // C: too small
	set(51, 10, 100)
	for y := 20; y <= 23; y++ { // U: two arms...
		set(40, y, 50)
		set(44, y, 50)
	}
	for x := 40; x <= 44; x++ { // ...joined by the bottom row
		set(x, 24, 50)
	}
	return px
}

func as[T uint8 | uint16 | uint32](px []uint32) []T {
	out := make([]T, len(px))
	for i, v := range px {
		if v == math.MaxUint32 {
			out[i] = ^T(0)
		} else {
			out[i] = T(v)
		}
	}
	return out
}

// TestSpotsGolden checks every number of every spot of a hand-made frame on
// a zero background, where the background is exactly 0 ± 0 and strong means
// v >= 2 (v > μ + 1). The weak chain B (I/σ = sqrt(15)) is a spot by the
// photon-counting test (15 counts where the background expects none); the
// U, whose peak (its first pixel of the flat 50s) lies 3.2 px from its
// centroid, is rejected by its shape.
func TestSpotsGolden(t *testing.T) {
	tab := smallTables(t, DefaultParams())
	a := NewAnalyser(tab)
	var res Result
	if err := AnalysePixels(a, as[uint16](handFrame(0)), &res); err != nil {
		t.Fatal(err)
	}
	g := smallGeometry
	wantA := Spot{X: 10.6, Y: 10.7, Intensity: 100, Sigma: 10, Peak: 40, NPix: 4, D: g.Resolution(10.6, 10.7)}
	uy := (2*(20+21+22+23) + 5*24) / 13.0
	wantU := Spot{X: 42, Y: uy, Intensity: 650, Sigma: math.Sqrt(650), Peak: 50, NPix: 13, D: g.Resolution(42, uy)}
	wantB := Spot{X: 31, Y: 41, Intensity: 15, Sigma: math.Sqrt(15), Peak: 5, NPix: 3, D: g.Resolution(31, 41)}
	want := []Spot{wantA, wantB}
	if len(res.SpotList) != len(want) {
		t.Fatalf("spots %+v, want %+v", res.SpotList, want)
	}
	for i, s := range res.SpotList {
		if !spotClose(s, want[i]) {
			t.Errorf("spot %d = %+v, want %+v", i, s, want[i])
		}
	}
	if res.Spots != 2 || res.Candidates != 4 || res.StrongPixels != 4+3+2+13 || res.Masked != 1 || res.IS != 115 || res.Background != 0 || res.ShapeRejected != 1 {
		t.Errorf("result %+v", res)
	}
	// Two spots are below min-spots (5): no diffraction.
	if res.Score != 0 || res.Resolution != 0 || res.Hit {
		t.Errorf("score %v resolution %v hit %v with 2 spots, want 0 0 false", res.Score, res.Resolution, res.Hit)
	}

	// Relax the filters: U (no shape test) and C (2 px) come in, and with
	// min-spots 2 the frame verdict follows the documented formulas.
	p := DefaultParams()
	p.MinSNR, p.SpotSize, p.MinSpots, p.HitThreshold, p.MaxSeparation = 0, 2, 2, 0.1, 1000
	a.SetTables(smallTables(t, p))
	if err := AnalysePixels(a, as[uint16](handFrame(0)), &res); err != nil {
		t.Fatal(err)
	}
	if res.Spots != 4 {
		t.Fatalf("%d spots with relaxed filters, want 4", res.Spots)
	}
	if !spotClose(res.SpotList[2], wantU) {
		t.Errorf("U = %+v, want %+v", res.SpotList[2], wantU)
	}
	// Spots come in row-major order of their first pixel: A, C, U, B.
	if !spotClose(res.SpotList[3], wantB) {
		t.Errorf("diagonal spot = %+v, want %+v", res.SpotList[3], wantB)
	}
	score, is := 0.0, 0.0
	var qs []float64
	for _, s := range res.SpotList {
		score += math.Log1p(s.Intensity/s.Sigma) / (s.D * s.D)
		is += s.Intensity
		qs = append(qs, 1/(s.D*s.D))
	}
	slices.Sort(qs)
	// N = 4, j = round(0.95·4) = 4, clamped to N-1 = 3: Q = q_(3)·5/3.
	q := math.Min(qs[2]*5/3, tab.qHi)
	if math.Abs(res.Score-10*score) > 1e-9*score || res.IS != is || math.Abs(res.Resolution-1/math.Sqrt(q)) > 1e-12 || !res.Hit {
		t.Errorf("score %v (want %v), IS %v (want %v), resolution %v (want %v), hit %v", res.Score, 10*score, res.IS, is, res.Resolution, 1/math.Sqrt(q), res.Hit)
	}
	p.HitThreshold = 10 * score * 1.01
	a.SetTables(smallTables(t, p))
	if err := AnalysePixels(a, as[uint16](handFrame(0)), &res); err != nil {
		t.Fatal(err)
	}
	if res.Hit || res.Score == 0 {
		t.Errorf("score %v below hit-threshold %v: hit %v", res.Score, p.HitThreshold, res.Hit)
	}
}

func spotClose(a, b Spot) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	return near(a.X, b.X) && near(a.Y, b.Y) && near(a.Intensity, b.Intensity) && near(a.Sigma, b.Sigma) &&
		a.Peak == b.Peak && a.NPix == b.NPix && near(a.D, b.D)
}

// TestSpotOnFlatBackground: on a noiseless background of 10 counts the
// shell background is 10 ± sqrt(10) (the Poisson floor), so strong means
// v > floor(10 + 6 sqrt(10)) = 28, and the spot's σ includes the
// background variance under it.
func TestSpotOnFlatBackground(t *testing.T) {
	w := smallGeometry.Width
	px := make([]uint16, w*w)
	for i := range px {
		px[i] = 10
	}
	px[20*w+20], px[20*w+21], px[21*w+20] = 110, 60, 40
	px[20*w+22] = 29 // just strong: joins the spot
	px[40*w+40] = 28 // just not strong
	a := NewAnalyser(smallTables(t, DefaultParams()))
	var res Result
	if err := AnalysePixels(a, px, &res); err != nil {
		t.Fatal(err)
	}
	for s := 0; s < a.Tables().Shells(); s++ {
		if m, sg := a.ShellBackground(s); m != 10 || sg != math.Sqrt(10) {
			t.Fatalf("shell %d background %v ± %v, want 10 ± sqrt(10)", s, m, sg)
		}
	}
	i := 100.0 + 50 + 30 + 19
	x := (20*100 + 21*50 + 20*30 + 22*19) / i
	y := (20*100 + 20*50 + 21*30 + 20*19) / i
	want := Spot{X: x, Y: y, Intensity: i, Sigma: math.Sqrt(i + 4*10), Peak: 110, NPix: 4, D: smallGeometry.Resolution(x, y)}
	if res.StrongPixels != 4 || len(res.SpotList) != 1 || !spotClose(res.SpotList[0], want) {
		t.Fatalf("strong %d, spots %+v, want %+v", res.StrongPixels, res.SpotList, want)
	}
}

// TestSpotSizeLimits: a blob of max-spot-size pixels is a spot, one pixel
// more is not (shape tests off: the flat 20 x 5 block is no Bragg spot).
func TestSpotSizeLimits(t *testing.T) {
	p := DefaultParams()
	p.MaxSpotSize, p.MaxSeparation = 100, 1000
	a := NewAnalyser(smallTables(t, p))
	w := smallGeometry.Width
	var res Result
	for _, n := range []int{100, 101} {
		px := make([]uint16, w*w)
		for k := 0; k < n; k++ {
			px[(5+k/20)*w+5+k%20] = 50
		}
		if err := AnalysePixels(a, px, &res); err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{100: 1, 101: 0}[n]; res.Spots != want || res.Candidates != 1 {
			t.Errorf("blob of %d px: %d spots of %d candidates, want %d of 1", n, res.Spots, res.Candidates, want)
		}
	}
}

// TestElementSizesAgree: the same counts as 8-, 16- and 32-bit frames, as
// typed slices, as aligned and as unaligned little-endian bytes, give the
// same result.
func TestElementSizesAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	base := handFrame(0)
	for i := range base {
		if base[i] == 0 {
			base[i] = uint32(poisson(r, 1.5))
		}
	}
	for _, m := range []Method{Threshold, Dispersion} {
		p := DefaultParams()
		p.Method, p.MinSpots = m, 1
		a := NewAnalyser(smallTables(t, p))
		var ref Result
		if err := AnalysePixels(a, as[uint8](base), &ref); err != nil {
			t.Fatal(err)
		}
		if ref.Spots == 0 {
			t.Fatalf("%s: no spots on the reference frame", m)
		}
		ref.SpotList = slices.Clone(ref.SpotList)
		check := func(name string, err error, res *Result) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s %s: %v", m, name, err)
			}
			if !reflect.DeepEqual(*res, ref) {
				t.Errorf("%s %s: %+v\nwant %+v", m, name, *res, ref)
			}
		}
		var res Result
		check("uint16", AnalysePixels(a, as[uint16](base), &res), &res)
		check("uint32", AnalysePixels(a, as[uint32](base), &res), &res)
		for _, es := range []int{1, 2, 4} {
			for _, off := range []int{0, 1} {
				buf := make([]byte, off+len(base)*es)[off:]
				for i, v := range base {
					switch es {
					case 1:
						buf[i] = as[uint8]([]uint32{v})[0]
					case 2:
						binary.LittleEndian.PutUint16(buf[2*i:], as[uint16]([]uint32{v})[0])
					case 4:
						binary.LittleEndian.PutUint32(buf[4*i:], v)
					}
				}
				check("bytes", a.Analyse(buf, es, &res), &res)
			}
		}
	}
}

func TestAnalyseErrors(t *testing.T) {
	a := NewAnalyser(smallTables(t, DefaultParams()))
	res := Result{Spots: 3, SpotList: make([]Spot, 3)}
	n := smallGeometry.Width * smallGeometry.Height
	if err := a.Analyse(make([]byte, 3*n), 3, &res); !errors.Is(err, ErrElemSize) {
		t.Errorf("3-byte pixels: %v", err)
	}
	if res.Spots != 0 || len(res.SpotList) != 0 {
		t.Errorf("result not reset on error: %+v", res)
	}
	if err := a.Analyse(make([]byte, 2*n-2), 2, &res); !errors.Is(err, ErrFrameSize) {
		t.Errorf("short frame: %v", err)
	}
	if err := AnalysePixels(a, make([]uint16, n+1), &res); !errors.Is(err, ErrFrameSize) {
		t.Errorf("long typed frame: %v", err)
	}
	if err := a.Analyse(nil, 2, &res); !errors.Is(err, ErrFrameSize) {
		t.Errorf("nil frame: %v", err)
	}
}

// TestLabelMatchesFloodFill compares the union-find labelling with a plain
// 8-connected flood fill on random strong-pixel sets of every density.
func TestLabelMatchesFloodFill(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		w, h := 1+r.IntN(40), 1+r.IntN(40)
		density := r.Float64()
		grid := make([]bool, w*h)
		a := &Analyser{t: &Tables{geom: Geometry{Width: w, Height: h}}}
		for i := range grid {
			if r.Float64() < density {
				grid[i] = true
				a.strong = append(a.strong, int32(i))
			}
		}
		a.label()
		root := func(k int) int32 {
			for a.parent[k] != int32(k) {
				k = int(a.parent[k])
			}
			return int32(k)
		}
		// Flood fill labels.
		lab := make([]int, w*h)
		next := 0
		for i := range grid {
			if !grid[i] || lab[i] != 0 {
				continue
			}
			next++
			stack := []int{i}
			lab[i] = next
			for len(stack) > 0 {
				p := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				x, y := p%w, p/w
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						nx, ny := x+dx, y+dy
						if nx < 0 || ny < 0 || nx >= w || ny >= h {
							continue
						}
						q := ny*w + nx
						if grid[q] && lab[q] == 0 {
							lab[q] = next
							stack = append(stack, q)
						}
					}
				}
			}
		}
		// Same partition: k and l share a root iff they share a label.
		byLabel := map[int]int32{}
		byRoot := map[int32]int{}
		for k, idx := range a.strong {
			rt, lb := root(k), lab[idx]
			if r0, ok := byLabel[lb]; ok && r0 != rt {
				t.Fatalf("trial %d (%dx%d): pixel %d of component %d has root %d, not %d", trial, w, h, idx, lb, rt, r0)
			}
			if l0, ok := byRoot[rt]; ok && l0 != lb {
				t.Fatalf("trial %d (%dx%d): root %d spans components %d and %d", trial, w, h, rt, l0, lb)
			}
			byLabel[lb], byRoot[rt] = rt, lb
		}
		if len(byLabel) != next {
			t.Fatalf("trial %d: %d components, flood fill %d", trial, len(byLabel), next)
		}
	}
}

// TestSharedTables: analysers on several goroutines sharing one Tables give
// the results of a single analyser (run with -race to check the sharing).
func TestSharedTables(t *testing.T) {
	tab := smallTables(t, DefaultParams())
	r := rand.New(rand.NewPCG(5, 6))
	frames := make([][]uint16, 16)
	want := make([]Result, len(frames))
	one := NewAnalyser(tab)
	for i := range frames {
		base := handFrame(uint32(i % 3))
		for k := range base {
			if base[k] < 5 {
				base[k] += uint32(poisson(r, 0.5))
			}
		}
		frames[i] = as[uint16](base)
		if err := AnalysePixels(one, frames[i], &want[i]); err != nil {
			t.Fatal(err)
		}
		want[i].SpotList = slices.Clone(want[i].SpotList)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := NewAnalyser(tab)
			var res Result
			for rep := 0; rep < 3; rep++ {
				for i := range frames {
					if err := AnalysePixels(a, frames[i], &res); err != nil {
						t.Error(err)
						return
					}
					if !reflect.DeepEqual(res, want[i]) && !(len(res.SpotList) == 0 && len(want[i].SpotList) == 0) {
						t.Errorf("frame %d differs on a shared-tables analyser", i)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestOverloadedFrame: a frame whose right half is flooded (every shell
// half dark, half bright) has far more strong pixels than a diffraction
// pattern can; it is flagged, gets no spots, and the strong-pixel list
// stops at the limit instead of growing with the frame.
func TestOverloadedFrame(t *testing.T) {
	w := smallGeometry.Width
	px := make([]uint16, w*w)
	for i := range px {
		if i%w >= w/2+3 { // a little less than half of every ring: the dark side holds the medians
			px[i] = 1000
		}
	}
	tab := smallTables(t, DefaultParams())
	a := NewAnalyser(tab)
	var res Result
	if err := AnalysePixels(a, px, &res); err != nil {
		t.Fatal(err)
	}
	limit := int(0.25 * float64(tab.AnalysedPixels()))
	if !res.Overloaded || res.Spots != 0 || res.Score != 0 || res.StrongPixels != limit || cap(a.strong) > 2*limit {
		t.Errorf("flooded frame: overloaded %v, %d spots, score %v, %d strong (limit %d), scratch %d",
			res.Overloaded, res.Spots, res.Score, res.StrongPixels, limit, cap(a.strong))
	}
	// Allowing every pixel to be strong, the flood is one blob beyond
	// max-spot-size: still no spots, but not overloaded.
	p := DefaultParams()
	p.MaxStrongFraction = 1
	a.SetTables(smallTables(t, p))
	if err := AnalysePixels(a, px, &res); err != nil {
		t.Fatal(err)
	}
	if res.Overloaded || res.Spots != 0 || res.Candidates != 1 || res.StrongPixels < w*w/3 {
		t.Errorf("flooded frame, fraction 1: overloaded %v, %d spots of %d candidates, %d strong", res.Overloaded, res.Spots, res.Candidates, res.StrongPixels)
	}
}

// TestGain: the gain (counts per photon) scales the signal's shot noise in
// σ(I); 0 means 1.
func TestGain(t *testing.T) {
	for _, c := range []struct{ gain, sigma float64 }{{0, 10}, {1, 10}, {2, math.Sqrt(200)}} {
		p := DefaultParams()
		p.Gain = c.gain
		var res Result
		if err := AnalysePixels(NewAnalyser(smallTables(t, p)), as[uint16](handFrame(0)), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.SpotList) == 0 || math.Abs(res.SpotList[0].Sigma-c.sigma) > 1e-9 {
			t.Errorf("gain %v: spots %+v, want spot A with σ(I) %.4f", c.gain, res.SpotList, c.sigma)
		}
	}
}
