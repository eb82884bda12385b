package diffraction

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"tioga/device/detectormodel"
	"tioga/sim/truth"
)

func profile(t testing.TB, name string) detectormodel.Profile {
	t.Helper()
	p, ok := detectormodel.ByName(name)
	if !ok {
		t.Fatalf("no detector profile %q", name)
	}
	return p
}

func newGen(t testing.TB, c Config) *Generator {
	t.Helper()
	g, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func pixel(buf []byte, elem, p int) uint32 {
	switch elem {
	case 1:
		return uint32(buf[p])
	case 2:
		return uint32(binary.LittleEndian.Uint16(buf[2*p:]))
	}
	return binary.LittleEndian.Uint32(buf[4*p:])
}

// small500k is a fast configuration for tests: the 500K module.
func small500k(t testing.TB) Config {
	c := DefaultConfig(profile(t, "eiger500k"))
	c.Seed = 42
	c.HitFraction = 0.5
	c.MeanSpots = 60
	return c
}

func TestFrameIsDeterministicAndOrderFree(t *testing.T) {
	c := small500k(t)
	g1, g2 := newGen(t, c), newGen(t, c)
	a, b := make([]byte, g1.FrameBytes()), make([]byte, g1.FrameBytes())
	var ta, tb truth.Frame
	// g2 generates the frames in another order, interleaved with others.
	for _, i := range []int{7, 3, 0} {
		if err := g2.Frame(i+100, b, &tb); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 8; i++ {
		if err := g1.Frame(i, a, &ta); err != nil {
			t.Fatal(err)
		}
		if err := g2.Frame(i, b, &tb); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("frame %d differs between two generators of the same seed", i)
		}
		if len(ta.Spots) != len(tb.Spots) || ta.Hit != tb.Hit {
			t.Fatalf("frame %d truth differs", i)
		}
		for k := range ta.Spots {
			if ta.Spots[k] != tb.Spots[k] {
				t.Fatalf("frame %d spot %d differs: %+v vs %+v", i, k, ta.Spots[k], tb.Spots[k])
			}
		}
	}
	c.Seed++
	g3 := newGen(t, c)
	if err := g3.Frame(7, b, &tb); err != nil {
		t.Fatal(err)
	}
	if err := g1.Frame(7, a, &ta); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("another seed gave the same frame")
	}
}

// TestGolden pins the exact output of one seed, so an accidental change to
// the generator (which would silently change every recorded truth file) is
// caught. The numbers are amd64's: a platform that fuses multiply-adds may
// differ in the last bits of geometry.
func TestGolden(t *testing.T) {
	c := small500k(t)
	g := newGen(t, c)
	if got := g.Reflections(); got != golden.reflections {
		t.Errorf("reflections = %d, want %d", got, golden.reflections)
	}
	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	h := sha256.New()
	hits, spots := 0, 0
	for i := 0; i < 6; i++ {
		if err := g.Frame(i, buf, &tr); err != nil {
			t.Fatal(err)
		}
		h.Write(buf)
		if tr.Hit {
			hits++
			spots += len(tr.Spots)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != golden.sha256 {
		t.Errorf("sha256 of frames 0-5 = %s, want %s", got, golden.sha256)
	}
	if hits != golden.hits || spots != golden.spots {
		t.Errorf("hits %d spots %d, want %d and %d", hits, spots, golden.hits, golden.spots)
	}
}

var golden = struct {
	reflections, hits, spots int
	sha256                   string
}{47404, 4, 249, "67303c2dd2bd1b107cfa96471079b16879e1874c2eaff89cdf2f8dc087d6994b"}

func TestGeometryAndMask(t *testing.T) {
	for _, bits := range []int{8, 16, 32} {
		c := small500k(t)
		c.BitDepth = bits
		c.HitFraction = 1
		g := newGen(t, c)
		buf := make([]byte, g.FrameBytes())
		var tr truth.Frame
		if err := g.Frame(0, buf, &tr); err != nil {
			t.Fatal(err)
		}
		if g.Width() != 1030 || g.Height() != 514 || g.ElemSize() != bits/8 {
			t.Fatalf("%d-bit: geometry %dx%dx%d", bits, g.Width(), g.Height(), g.ElemSize())
		}
		maskValue := uint32(uint64(1)<<bits - 1)
		if g.MaskValue() != maskValue {
			t.Fatalf("mask value %#x, want %#x", g.MaskValue(), maskValue)
		}
		masked := 0
		for p := 0; p < g.Width()*g.Height(); p++ {
			v := pixel(buf, g.ElemSize(), p)
			if g.Masked(p%g.Width(), p/g.Width()) {
				masked++
				if v != maskValue {
					t.Fatalf("%d-bit: masked pixel %d = %#x", bits, p, v)
				}
			} else if v >= maskValue {
				t.Fatalf("%d-bit: sensitive pixel %d carries the mask value", bits, p)
			}
		}
		// A single module has no gaps: only the dead pixels are masked.
		want := int(math.Round(c.MaskedFraction * 1030 * 514))
		if masked != want || g.MaskedPixels() != want {
			t.Fatalf("%d-bit: %d masked pixels (reported %d), want %d", bits, masked, g.MaskedPixels(), want)
		}
	}
}

func TestGapsOf4MAnd16MROI(t *testing.T) {
	p16 := profile(t, "eiger16m")
	roi, err := p16.Mode("4M")
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig(roi)
	c.MaskedFraction = 0
	c.HitFraction = 0
	g := newGen(t, c)
	if g.Width() != 2070 || g.Height() != 2167 {
		t.Fatalf("16M in 4M mode is %dx%d", g.Width(), g.Height())
	}
	mask := make([]uint32, g.Width()*g.Height())
	if err := g.PixelMask(mask); err != nil {
		t.Fatal(err)
	}
	gaps := 0
	for _, m := range mask {
		if m == MaskGap {
			gaps++
		}
	}
	// 4M: 2070*2167 - 8 modules of 1030*514.
	if want := 2070*2167 - 8*1030*514; gaps != want {
		t.Fatalf("%d gap pixels, want %d", gaps, want)
	}
	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	if err := g.Frame(0, buf, &tr); err != nil {
		t.Fatal(err)
	}
	ones := 0
	for p := range mask {
		if binary.LittleEndian.Uint16(buf[2*p:]) == 0xFFFF {
			ones++
		}
	}
	if ones != gaps {
		t.Fatalf("%d all-ones pixels, want the %d gap pixels", ones, gaps)
	}
	// Row 514 (first gap row) and column 1030 (first gap column).
	for _, xy := range [][2]int{{0, 514}, {2069, 550}, {1030, 0}, {1039, 2166}} {
		if mask[xy[1]*2070+xy[0]] != MaskGap {
			t.Fatalf("pixel %v is not a gap", xy)
		}
	}
	for _, xy := range [][2]int{{0, 513}, {0, 551}, {1029, 0}, {1040, 0}} {
		if mask[xy[1]*2070+xy[0]] != 0 {
			t.Fatalf("pixel %v is masked", xy)
		}
	}
}

// TestSpotsObeyThePhysics checks every hit's spots against the geometry:
// d >= DCut, the spot sits where its d says (pixel -> resolution formula),
// blank frames have none, and the drawn photons are where the truth says.
func TestSpotsObeyThePhysics(t *testing.T) {
	c := DefaultConfig(profile(t, "eiger1m"))
	c.Seed = 7
	c.HitFraction = 0.5
	g := newGen(t, c)
	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	hits, blanks, spots, checked := 0, 0, 0, 0
	for i := 0; i < 24; i++ {
		if err := g.Frame(i, buf, &tr); err != nil {
			t.Fatal(err)
		}
		if !tr.Hit {
			blanks++
			if len(tr.Spots) != 0 || tr.DCut != 0 || tr.DMin != 0 || tr.Strength != 0 {
				t.Fatalf("blank frame %d has truth %+v", i, tr)
			}
			continue
		}
		hits++
		if tr.DCut != c.DCut || tr.Strength != 1 {
			t.Fatalf("hit %d: d_cut %v strength %v", i, tr.DCut, tr.Strength)
		}
		if len(tr.Spots) < c.MinSpots {
			t.Fatalf("hit %d has %d spots, fewer than MinSpots", i, len(tr.Spots))
		}
		dmin := math.Inf(1)
		for _, s := range tr.Spots {
			spots++
			if s.D < c.DCut {
				t.Fatalf("frame %d: spot at d = %v beyond the cut-off %v", i, s.D, c.DCut)
			}
			dmin = math.Min(dmin, s.D)
			// The spot lies on the Ewald sphere within the mosaic
			// tolerance, so its position's resolution matches its d.
			if dp := g.Resolution(s.X, s.Y); math.Abs(dp-s.D)/s.D > 0.01 {
				t.Fatalf("frame %d: spot at (%.1f, %.1f) has pixel d %.3f, reflection d %.3f", i, s.X, s.Y, dp, s.D)
			}
			if s.Sigma < c.SigmaMin || s.Sigma > c.SigmaMax {
				t.Fatalf("spot sigma %v", s.Sigma)
			}
			// Strong, isolated spots: the background-subtracted photons
			// within 4 sigma match the truth's intensity and centroid.
			if s.Intensity < 400 || !isolated(tr.Spots, s) {
				continue
			}
			var sum, sx, sy float64
			r := int(math.Ceil(4 * s.Sigma))
			for y := int(math.Round(s.Y)) - r; y <= int(math.Round(s.Y))+r; y++ {
				for x := int(math.Round(s.X)) - r; x <= int(math.Round(s.X))+r; x++ {
					if x < 0 || y < 0 || x >= g.Width() || y >= g.Height() || g.Masked(x, y) {
						continue
					}
					v := float64(pixel(buf, 2, y*g.Width()+x)) - g.BackgroundMean(x, y)
					sum += v
					sx += v * float64(x)
					sy += v * float64(y)
				}
			}
			tol := 5*math.Sqrt(s.Intensity+float64((2*r+1)*(2*r+1))*3) + 2
			if math.Abs(sum-s.Intensity) > tol {
				t.Fatalf("frame %d spot (%.1f,%.1f): %.0f photons drawn, truth says %.0f", i, s.X, s.Y, sum, s.Intensity)
			}
			if math.Abs(sx/sum-s.X) > 0.2 || math.Abs(sy/sum-s.Y) > 0.2 {
				t.Fatalf("frame %d: centroid (%.2f,%.2f), truth (%.2f,%.2f)", i, sx/sum, sy/sum, s.X, s.Y)
			}
			if s.ISigma <= 0 || s.ISigma > math.Sqrt(s.Intensity)+1e-9 {
				t.Fatalf("I/sigma %v for I = %v", s.ISigma, s.Intensity)
			}
			checked++
		}
		if tr.DMin != dmin {
			t.Fatalf("frame %d: d_min %v, spots reach %v", i, tr.DMin, dmin)
		}
	}
	if hits < 6 || blanks < 6 || checked < 20 {
		t.Fatalf("too little tested: %d hits, %d blanks, %d spots checked of %d", hits, blanks, checked, spots)
	}
	// The calibrated mosaic gives the requested spots per hit (±30 %: the
	// orientation and MinSpots make the count vary).
	if mean := float64(spots) / float64(hits); math.Abs(mean-c.MeanSpots) > 0.3*c.MeanSpots {
		t.Fatalf("%.1f spots per hit, asked for %v", mean, c.MeanSpots)
	}
}

func isolated(spots []truth.Spot, s truth.Spot) bool {
	for _, o := range spots {
		if o != s && math.Hypot(o.X-s.X, o.Y-s.Y) < 12 {
			return false
		}
	}
	return true
}

// TestBackgroundIsPoisson checks a blank frame against its mean map:
// mean and variance per resolution band, the beamstop shadow and the ring.
func TestBackgroundIsPoisson(t *testing.T) {
	c := DefaultConfig(profile(t, "eiger4m"))
	c.HitFraction = 0
	c.Background = 2
	g := newGen(t, c)
	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	if err := g.Frame(3, buf, &tr); err != nil {
		t.Fatal(err)
	}
	var sumV, sumM, sumSq float64
	n := 0
	var shadowSum float64
	shadowN := 0
	for y := 0; y < g.Height(); y++ {
		for x := 0; x < g.Width(); x++ {
			if g.Masked(x, y) {
				continue
			}
			v := float64(pixel(buf, 2, y*g.Width()+x))
			m := g.BackgroundMean(x, y)
			sumV += v
			sumM += m
			sumSq += (v - m) * (v - m)
			n++
			if math.Hypot(float64(x)-c.BeamX, float64(y)-c.BeamY) < c.Beamstop.Radius {
				shadowSum += v
				shadowN++
			}
		}
	}
	// Sum of n Poisson variables: mean sumM, sd sqrt(sumM).
	if d := math.Abs(sumV - sumM); d > 5*math.Sqrt(sumM) {
		t.Fatalf("background total %.0f, expected %.0f ± %.0f", sumV, sumM, math.Sqrt(sumM))
	}
	// Σ(v-m)² has mean Σm for Poisson pixels.
	if r := sumSq / sumM; math.Abs(r-1) > 0.01 {
		t.Fatalf("variance / mean = %.4f, want 1 for Poisson", r)
	}
	if shadowN == 0 || shadowSum/float64(shadowN) > 0.1 {
		t.Fatalf("beamstop shadow: %d pixels with mean %.3f", shadowN, shadowSum/float64(shadowN))
	}
	// The water ring raises the background at 3.7 Å above its neighbours.
	ring := g.meanAtResolution(3.7)
	inside := g.meanAtResolution(5.0)
	if ring < 1.3*inside {
		t.Fatalf("water ring mean %.3f vs %.3f at 5 Å", ring, inside)
	}
}

// meanAtResolution returns the mean background along the +x axis from the
// beam at resolution d.
func (g *Generator) meanAtResolution(d float64) float64 {
	c := g.cfg
	twoTheta := 2 * math.Asin(c.Wavelength/(2*d))
	x := int(math.Round(c.BeamX + c.Distance*math.Tan(twoTheta)/c.Profile.PixelSize))
	y := int(math.Round(c.BeamY)) + 40 // off the beamstop arm
	return g.BackgroundMean(x, y)
}

func TestPoissonTableIsExact(t *testing.T) {
	r := newRNG(5, 0, 99)
	for _, mean := range []float64{0.02, 0.7, 3.7, 25, 400} {
		tab := newPoissonTable(mean)
		const n = 400000
		var s, s2 float64
		counts := map[uint32]int{}
		for i := 0; i < n; i++ {
			k := tab.sample(uint32(r.next()))
			s += float64(k)
			s2 += float64(k) * float64(k)
			counts[k]++
		}
		m := s / n
		v := s2/n - m*m
		if math.Abs(m-mean) > 5*math.Sqrt(mean/n) {
			t.Errorf("table mean %v: sample mean %v", mean, m)
		}
		if math.Abs(v-mean)/mean > 0.02 {
			t.Errorf("table mean %v: sample variance %v", mean, v)
		}
		// The modal probability matches the Poisson pmf.
		mode := uint32(math.Floor(mean))
		lg, _ := math.Lgamma(float64(mode) + 1)
		p := math.Exp(-mean + float64(mode)*math.Log(mean) - lg)
		if got := float64(counts[mode]) / n; math.Abs(got-p) > 5*math.Sqrt(p*(1-p)/n) {
			t.Errorf("mean %v: P(%d) = %v, want %v", mean, mode, got, p)
		}
		// Extremes of u stay in the table.
		_ = tab.sample(0)
		_ = tab.sample(math.MaxUint32)
	}
}

func TestPoissonRejectionSampler(t *testing.T) {
	r := newRNG(9, 0, 99)
	for _, mean := range []float64{0.3, 5, 11.9, 12, 80, 3000} {
		const n = 200000
		var s, s2 float64
		for i := 0; i < n; i++ {
			k := float64(r.poisson(mean))
			s += k
			s2 += k * k
		}
		m := s / n
		v := s2/n - m*m
		if math.Abs(m-mean) > 5*math.Sqrt(mean/n) || math.Abs(v-mean)/mean > 0.03 {
			t.Errorf("poisson(%v): mean %v variance %v", mean, m, v)
		}
	}
}

func TestSaturationClips(t *testing.T) {
	c := small500k(t)
	c.HitFraction = 1
	c.Saturation = 40
	c.SpotIntensity = 20000
	g := newGen(t, c)
	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	if err := g.Frame(1, buf, &tr); err != nil {
		t.Fatal(err)
	}
	saturated := 0
	for p := 0; p < g.Width()*g.Height(); p++ {
		v := pixel(buf, 2, p)
		if v == 0xFFFF {
			continue
		}
		if v > 40 {
			t.Fatalf("pixel %d = %d above saturation 40", p, v)
		}
		if v == 40 {
			saturated++
		}
	}
	if saturated == 0 {
		t.Fatal("no pixel reached saturation although the spots are very strong")
	}
}

func TestRaster(t *testing.T) {
	c := small500k(t)
	r := Raster{Lines: 9, FramesPerLine: 13, Serpentine: true,
		CenterColumn: 6, CenterLine: 4, RadiusColumns: 3.5, RadiusLines: 2.5, EdgeStrength: 0.3, Wobble: 0.2}
	c.Raster = &r
	c.MaskedFraction = 0
	g := newGen(t, c)
	if g.Frames() != 117 {
		t.Fatalf("raster frames %d", g.Frames())
	}
	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	hits := 0
	for n := 0; n < g.Frames(); n++ {
		if err := g.Frame(n, buf, &tr); err != nil {
			t.Fatal(err)
		}
		line, col := n/13, n%13
		if line%2 == 1 {
			col = 12 - col
		}
		if tr.Line != line || tr.Column != col {
			t.Fatalf("frame %d at (%d,%d), want (%d,%d)", n, tr.Line, tr.Column, line, col)
		}
		dx, dy := (float64(col)-6)/3.5, (float64(line)-4)/2.5
		inside := dx*dx+dy*dy <= 1
		if tr.Hit != inside {
			t.Fatalf("frame %d (line %d col %d): hit %v, inside crystal %v", n, line, col, tr.Hit, inside)
		}
		if inside {
			hits++
			want := 0.3 + 0.7*(1-(dx*dx+dy*dy))
			if math.Abs(tr.Strength-want) > 1e-12 || len(tr.Spots) == 0 {
				t.Fatalf("frame %d: strength %v (want %v), %d spots", n, tr.Strength, want, len(tr.Spots))
			}
		} else if len(tr.Spots) != 0 {
			t.Fatalf("blank raster frame %d has spots", n)
		}
	}
	if hits == 0 {
		t.Fatal("no hits in the raster")
	}
	if err := g.Frame(117, buf, &tr); err == nil {
		t.Fatal("frame beyond the raster accepted")
	}
	// Control-contract mapping on the default 37 x 213 grid.
	d := DefaultRaster()
	for _, c := range []struct{ n, line, col int }{{0, 0, 0}, {212, 0, 212}, {213, 1, 212}, {425, 1, 0}, {426, 2, 0}, {7880, 36, 212}} {
		if l, col := d.Cell(c.n); l != c.line || col != c.col {
			t.Errorf("serpentine frame %d -> (%d,%d), want (%d,%d)", c.n, l, col, c.line, c.col)
		}
	}
	d.Serpentine = false
	if l, col := d.Cell(213); l != 1 || col != 0 {
		t.Errorf("non-serpentine frame 213 -> (%d,%d)", l, col)
	}
}

func TestPoolKeepsEventsAndUsesPoolRows(t *testing.T) {
	c := small500k(t)
	fresh := newGen(t, c)
	c.BackgroundPool = 4
	pooled := newGen(t, c)
	a, b := make([]byte, fresh.FrameBytes()), make([]byte, fresh.FrameBytes())
	var ta, tb truth.Frame
	rowBytes := pooled.Width() * 2
	for i := 0; i < 6; i++ {
		if err := fresh.Frame(i, a, &ta); err != nil {
			t.Fatal(err)
		}
		if err := pooled.Frame(i, b, &tb); err != nil {
			t.Fatal(err)
		}
		if ta.Hit != tb.Hit || len(ta.Spots) != len(tb.Spots) {
			t.Fatalf("frame %d: the background mode changed the event", i)
		}
		if tb.Hit {
			continue
		}
		// A blank pooled frame is made of pool rows.
		for y := 0; y < pooled.Height(); y++ {
			row := b[y*rowBytes : (y+1)*rowBytes]
			found := false
			for _, p := range pooled.pool {
				if bytes.Equal(row, p[y*rowBytes:(y+1)*rowBytes]) {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("frame %d row %d is not from the pool", i, y)
			}
		}
	}
}

func TestFrameAllocatesNothing(t *testing.T) {
	c := small500k(t)
	c.HitFraction = 1
	g := newGen(t, c)
	buf := make([]byte, g.FrameBytes())
	tr := truth.Frame{Spots: make([]truth.Spot, 0, 4096)}
	i := 0
	allocs := testing.AllocsPerRun(5, func() {
		if err := g.Frame(i, buf, &tr); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("Frame allocates %v times per call", allocs)
	}
}

func TestConfigValidation(t *testing.T) {
	base := small500k(t)
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"bit depth", func(c *Config) { c.BitDepth = 12 }, "bit depth 12"},
		{"distance", func(c *Config) { c.Distance = 0 }, "distance must be > 0"},
		{"nan beam", func(c *Config) { c.BeamX = math.NaN() }, "beam centre x is NaN"},
		{"hit fraction", func(c *Config) { c.HitFraction = 1.5 }, "hit fraction 1.5"},
		{"ewald", func(c *Config) { c.DCut = 0.4 }, "Ewald limit"},
		{"cell order", func(c *Config) { c.CellMax = 20 }, "cell axes"},
		{"sigma", func(c *Config) { c.SigmaMax = 9 }, "spot sigma range"},
		{"no spots rule", func(c *Config) { c.MeanSpots, c.Mosaic = 0, 0 }, "mean spots per hit or a mosaic"},
		{"saturation", func(c *Config) { c.Saturation = 0xFFFF }, "saturation 65535"},
		{"raster", func(c *Config) { c.Raster = &Raster{} }, "raster 0 x 0"},
		{"background", func(c *Config) { c.Background = 1e6 }, "beyond what the sampler tabulates"},
		{"too many reflections", func(c *Config) { c.CellMin, c.CellMax, c.DCut = 900, 1000, 1.0 }, "reflections (max"},
	}
	for _, tc := range cases {
		c := base
		tc.mod(&c)
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	g := newGen(t, base)
	if err := g.Frame(0, make([]byte, 10), &truth.Frame{}); err == nil {
		t.Error("short buffer accepted")
	}
	if err := g.Frame(-1, make([]byte, g.FrameBytes()), &truth.Frame{}); err == nil {
		t.Error("negative frame accepted")
	}
}

func benchmarkGenerate(b *testing.B, hitFraction float64, pool int) {
	c := DefaultConfig(profile(b, "eiger4m"))
	c.HitFraction = hitFraction
	c.BackgroundPool = pool
	g := newGen(b, c)
	buf := make([]byte, g.FrameBytes())
	tr := truth.Frame{Spots: make([]truth.Spot, 0, 1024)}
	b.SetBytes(int64(g.FrameBytes()))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := g.Frame(i, buf, &tr); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/sec, "frames/s")
	b.ReportMetric(float64(b.N)*float64(g.Width()*g.Height())/sec/1e6, "Mpx/s")
}

// BenchmarkGenerate4M: one core generating EIGER 4M 16-bit frames.
func BenchmarkGenerate4M(b *testing.B) {
	b.Run("blank", func(b *testing.B) { benchmarkGenerate(b, 0, 0) })
	b.Run("hit", func(b *testing.B) { benchmarkGenerate(b, 1, 0) })
	b.Run("blank-pool", func(b *testing.B) { benchmarkGenerate(b, 0, 8) })
	b.Run("hit-pool", func(b *testing.B) { benchmarkGenerate(b, 1, 8) })
}
