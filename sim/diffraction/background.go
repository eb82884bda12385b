package diffraction

import (
	"math"
)

// The background is the expensive part of a frame: a Poisson draw for each
// of millions of pixels. math/rand's per-draw cost (~40 ns) would make a 4M
// frame take 180 ms. Instead the mean map is computed once per series and
// quantised to buckets 1 % apart; every bucket gets an exact inverse-CDF
// table with a 256-entry guide (Chen & Asau's guide-table method). A pixel
// then costs 32 random bits, one guide lookup and on average about one
// comparison -- and the draw is still an exact Poisson sample of the
// bucket's mean (the CDF is held to 2⁻³² and its tail is not cut off, so
// the rare high counts that make false spots occur at their true rate).

const (
	bucketStep = 0.01   // relative width of a mean bucket
	bucketMin  = 1e-4   // smallest non-zero mean tabulated
	maskedID   = 0xFFFF // pixel id of gap and masked pixels
	zeroID     = 0      // pixel id of pixels with mean 0
)

// poissonTable samples Poisson(mean) from 32 random bits.
type poissonTable struct {
	mean  float64
	cdf   []uint64 // cdf[k] = round(P(X <= k) * 2³²); last entry 2³² (sentinel)
	guide [256]uint16
}

func newPoissonTable(mean float64) poissonTable {
	t := poissonTable{mean: mean}
	if mean <= 0 {
		t.cdf = []uint64{1 << 32}
		return t
	}
	// Accumulate in log space for large means (exp(-mean) underflows beyond
	// ~745), starting from the mode and walking both ways would be more
	// exact still; the means here stay below 5000, where a log-space walk
	// from k = 0 keeps the terms representable.
	logMean := math.Log(mean)
	var f float64
	for k := 0; ; k++ {
		lg, _ := math.Lgamma(float64(k) + 1)
		f += math.Exp(-mean + float64(k)*logMean - lg)
		v := uint64(math.Round(f * (1 << 32)))
		// Stop once the CDF rounds to 1 past the mode (or, as a guard against
		// rounding that never quite reaches 1, 30 sigma out).
		if float64(k) > mean && (v >= 1<<32 || f >= 1 || float64(k) > mean+30*math.Sqrt(mean)+30) {
			t.cdf = append(t.cdf, 1<<32)
			break
		}
		if v >= 1<<32 {
			v = 1<<32 - 1
		}
		t.cdf = append(t.cdf, v)
	}
	k := 0
	for j := range t.guide {
		start := uint64(j) << 24
		for t.cdf[k] <= start {
			k++
		}
		t.guide[j] = uint16(k)
	}
	return t
}

// sample returns the count for random bits u (low 32 bits used).
func (t *poissonTable) sample(u uint32) uint32 {
	k := uint32(t.guide[u>>24])
	v := uint64(u)
	for v >= t.cdf[k] {
		k++
	}
	return k
}

// bucketOf quantises a mean to its bucket number (0 for a zero mean).
func bucketOf(mean float64) int {
	if mean < bucketMin/2 {
		return 0
	}
	if mean < bucketMin {
		mean = bucketMin
	}
	return 1 + int(math.Round(math.Log(mean/bucketMin)/math.Log1p(bucketStep)))
}

// bucketMean is the representative mean of bucket b.
func bucketMean(b int) float64 {
	if b == 0 {
		return 0
	}
	return bucketMin * math.Pow(1+bucketStep, float64(b-1))
}

// waterRingD is the d-spacing of the water/ice-free amorphous solvent ring
// (the broad maximum near 3.7 Å); waterRingWidth its Gaussian sigma in s.
const (
	waterRingD     = 3.7
	waterRingWidth = 0.012 // Å⁻¹
	bgFalloffS     = 0.3   // Å⁻¹: background halves (solid angle aside) at s = 0.3
)

// backgroundMean is the mean count of a sensitive pixel at resolution
// s = 1/d whose diffraction angle has cosine cos2t, before the beamstop.
func (c *Config) backgroundMean(s, cos2t float64) float64 {
	solid := cos2t * cos2t * cos2t
	q := s / bgFalloffS
	m := c.Background / (1 + q*q)
	m *= 1 + c.iceBackground(s)
	if c.WaterRing > 0 {
		ds := (s - 1/waterRingD) / waterRingWidth
		m += c.Background * c.WaterRing * math.Exp(-0.5*ds*ds)
	}
	return m * solid
}

// inShadow reports whether pixel centre (x, y) lies behind the beamstop or
// its arm.
func (c *Config) inShadow(x, y float64) bool {
	b := &c.Beamstop
	dx, dy := x-c.BeamX, y-c.BeamY
	if b.Radius > 0 && dx*dx+dy*dy <= b.Radius*b.Radius {
		return true
	}
	if b.ArmWidth > 0 {
		a := b.ArmAngle * math.Pi / 180
		ux, uy := math.Cos(a), math.Sin(a)
		along := dx*ux + dy*uy
		across := math.Abs(-dx*uy + dy*ux)
		if along >= 0 && across <= b.ArmWidth/2 {
			return true
		}
	}
	return false
}
