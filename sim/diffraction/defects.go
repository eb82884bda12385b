package diffraction

import (
	"math"
	"slices"

	"tioga/sim/truth"
)

// What beamlines see besides a crystal's Bragg spots: ice and hot pixels.
// Both are off in DefaultConfig; tests of the analysis switch them on.

// Ice is frozen water on and around the sample. Hexagonal ice (Ih) gives
// powder rings at fixed d-spacings: continuous when the ice is
// microcrystalline, spotty when a few larger crystallites each put a sharp
// reflection somewhere on the ring (the grainy rings that make a blank
// frame look like a hit).
type Ice struct {
	// Fraction is the probability that a frame carries spotty ice
	// (1 = every frame, 0 = none).
	Fraction float64
	// Spots is the mean number of ice reflections on an iced frame, over
	// all rings (drawn by the rings' powder intensities).
	Spots float64
	// SpotIntensity is the mean photons of one ice reflection
	// (exponentially distributed).
	SpotIntensity float64
	// Ring adds continuous rings to every frame of the series: the
	// strongest ring's peak is Ring x the background at its resolution
	// (0 = none).
	Ring float64
}

// Hot is a set of defective pixels that count on every frame as if light
// fell on them, fixed per series: what a pixel mask that is out of date
// lets through.
type Hot struct {
	Pixels   int     // isolated hot pixels
	Clusters int     // clusters of 3 adjacent hot pixels (an L)
	Column   int     // length of one hot column segment, px (0 = none)
	Counts   float64 // mean counts of a hot pixel per frame (Poisson)
}

// iceRing is one powder ring of hexagonal ice.
type iceRing struct {
	d      float64 // Å
	weight float64 // relative powder intensity (strongest 1)
}

// iceRings are the rings of hexagonal ice Ih (a = 4.498 Å, c = 7.338 Å,
// P6₃/mmc, the cell DIALS' ice filter uses) to 1.5 Å with rough relative
// powder intensities: 100, 002, 101 strongest, then 110, 103, 102, 112...
var iceRings = func() []iceRing {
	const a, c = 4.498, 7.338
	w := map[[3]int]float64{
		{1, 0, 0}: 1, {0, 0, 2}: 0.8, {1, 0, 1}: 0.9, {1, 0, 2}: 0.3, {1, 1, 0}: 0.5,
		{1, 0, 3}: 0.45, {2, 0, 0}: 0.08, {1, 1, 2}: 0.35, {2, 0, 1}: 0.25, {0, 0, 4}: 0.05,
		{2, 0, 2}: 0.06, {1, 0, 4}: 0.04, {2, 0, 3}: 0.12, {2, 1, 0}: 0.08, {2, 1, 1}: 0.1,
	}
	var out []iceRing
	for hkl, wt := range w {
		h, k, l := float64(hkl[0]), float64(hkl[1]), float64(hkl[2])
		q := 4.0/3*(h*h+h*k+k*k)/(a*a) + l*l/(c*c)
		out = append(out, iceRing{d: 1 / math.Sqrt(q), weight: wt})
	}
	slices.SortFunc(out, func(x, y iceRing) int {
		if x.d > y.d {
			return -1
		}
		return 1
	})
	return out
}()

// IceRingSpacings returns the d-spacings (Å) of the ice rings the simulator
// draws, from low to high resolution.
func IceRingSpacings() []float64 {
	out := make([]float64, len(iceRings))
	for i, r := range iceRings {
		out[i] = r.d
	}
	return out
}

const (
	iceRingWidthQ = 0.0003 // Å⁻²: Gaussian σ in 1/d² of a continuous ring
	iceStrain     = 0.0004 // relative spread of a crystallite's 1/d² about its ring
)

// iceBackground is the continuous ice rings' contribution at s = 1/d, as
// a factor of the local background (before the solid-angle factor).
func (c *Config) iceBackground(s float64) float64 {
	if c.Ice.Ring <= 0 {
		return 0
	}
	q := s * s
	f := 0.0
	for _, r := range iceRings {
		dq := (q - 1/(r.d*r.d)) / iceRingWidthQ
		if dq > -6 && dq < 6 {
			f += r.weight * math.Exp(-0.5*dq*dq)
		}
	}
	return c.Ice.Ring * f
}

// appendIce appends the ice reflections of an iced frame: a ring drawn by
// powder intensity, a random azimuth, 1/d² spread by crystallite strain.
func (g *Generator) appendIce(dst []truth.Spot, r *rng) []truth.Spot {
	c := &g.cfg
	n := r.poisson(c.Ice.Spots)
	total := 0.0
	for _, ring := range iceRings {
		total += ring.weight
	}
	w, h := float64(g.width), float64(g.height)
	for k := 0; k < n; k++ {
		u := r.float() * total
		ring := iceRings[len(iceRings)-1]
		for _, x := range iceRings {
			if u < x.weight {
				ring = x
				break
			}
			u -= x.weight
		}
		q := 1 / (ring.d * ring.d) * (1 + iceStrain*gaussian(r))
		d := 1 / math.Sqrt(q)
		phi := 2 * math.Pi * r.float()
		inten := c.Ice.SpotIntensity * r.exponential()
		sigma := c.SigmaMin + (c.SigmaMax-c.SigmaMin)*r.float()
		sin := c.Wavelength / (2 * d)
		if sin >= 1 {
			continue
		}
		rad := c.Distance * math.Tan(2*math.Asin(sin)) / c.Profile.PixelSize
		x, y := c.BeamX+rad*math.Cos(phi), c.BeamY+rad*math.Sin(phi)
		if !(x >= -0.5 && x < w-0.5 && y >= -0.5 && y < h-0.5) {
			continue
		}
		ix, iy := int(math.Round(x)), int(math.Round(y))
		if ix >= g.width || iy >= g.height || g.ids[iy*g.width+ix] == maskedID || c.inShadow(x, y) {
			continue
		}
		dst = append(dst, truth.Spot{X: x, Y: y, D: d, Intensity: inten, Sigma: sigma})
	}
	return dst
}

// gaussian draws N(0, 1) (Box-Muller, one of the pair).
func gaussian(r *rng) float64 {
	u := 1 - r.float()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*r.float())
}

// placeHot chooses the hot pixels of the series (away from gaps and
// already masked pixels) from their own random stream, so that switching
// them on changes nothing else of the series.
func (g *Generator) placeHot() {
	c := &g.cfg
	if c.Hot.Pixels == 0 && c.Hot.Clusters == 0 && c.Hot.Column == 0 {
		return
	}
	r := newRNG(c.Seed, -1, streamHot)
	free := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < g.width && y < g.height && g.ids[y*g.width+x] != maskedID &&
			!slices.Contains(g.hot, int32(y*g.width+x))
	}
	pick := func() (int, int) {
		for {
			x, y := int(r.next()%uint64(g.width)), int(r.next()%uint64(g.height))
			if free(x, y) && free(x+1, y) && free(x, y+1) {
				return x, y
			}
		}
	}
	for i := 0; i < c.Hot.Pixels; i++ {
		x, y := pick()
		g.hot = append(g.hot, int32(y*g.width+x))
	}
	for i := 0; i < c.Hot.Clusters; i++ {
		x, y := pick()
		g.hot = append(g.hot, int32(y*g.width+x), int32(y*g.width+x+1), int32((y+1)*g.width+x))
	}
	if c.Hot.Column > 0 {
		for {
			x, y := pick()
			ok := true
			for j := 0; j < c.Hot.Column; j++ {
				ok = ok && free(x, y+j)
			}
			if !ok {
				continue
			}
			for j := 0; j < c.Hot.Column; j++ {
				g.hot = append(g.hot, int32((y+j)*g.width+x))
			}
			break
		}
	}
	slices.Sort(g.hot)
}

// HotPixels returns the indices (y*width + x) of the series' hot pixels,
// sorted.
func (g *Generator) HotPixels() []int32 { return slices.Clone(g.hot) }

// drawHot adds the hot pixels' counts of one frame.
func (g *Generator) drawHot(dst []byte, r *rng) {
	for _, p := range g.hot {
		if n := r.poisson(g.cfg.Hot.Counts); n > 0 {
			g.addCount(dst, int(p), uint64(n))
		}
	}
}
