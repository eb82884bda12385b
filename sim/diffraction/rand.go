package diffraction

import (
	"math"
	"math/bits"
)

// rng is wyrand: one 64-bit multiply per output, passes BigCrush/PractRand,
// and is seeded in a few nanoseconds. That matters because every frame gets
// its own generators (seeded from the series seed and the frame number), which
// is what makes frames independent of the order and the worker they are
// generated on. math/rand/v2's PCG would do as well statistically but costs
// about twice as much per pixel.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) * 0x1p-53 }

// splitmix64 scrambles seeds so that neighbouring (seed, frame, stream)
// triples give unrelated generators.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Independent random streams of one frame. Keeping them apart means, e.g.,
// that switching the background from fresh sampling to the pool does not
// change which frames are hits or where their spots are.
const (
	streamSeries     uint64 = iota + 1 // crystal, mask, calibration: once per series
	streamEvent                        // hit decision and orientation of a frame
	streamBackground                   // background pixels of a frame
	streamSpots                        // spot photons of a frame
	streamIce                          // ice reflections of a frame
	streamHot                          // hot pixels: placement (frame -1) and counts
)

func newRNG(seed uint64, frame int, stream uint64) rng {
	return rng{s: splitmix64(splitmix64(seed^splitmix64(uint64(frame)+0x51ed27)) + stream*0x9e3779b97f4a7c15)}
}

// poisson draws a Poisson variate of mean mu for the few thousand spot
// pixels of a frame (the millions of background pixels use the table sampler
// of background.go). Small means use sequential inversion; large means use
// Hörmann's transformed rejection (PTRS, 1993), exact and O(1).
func (r *rng) poisson(mu float64) int {
	switch {
	case mu <= 0:
		return 0
	case mu < 12:
		p := math.Exp(-mu)
		f := p
		u := r.float()
		k := 0
		for u > f {
			k++
			p *= mu / float64(k)
			f += p
			if p < 1e-300 { // u within rounding of 1: the tail is empty
				break
			}
		}
		return k
	}
	smu := math.Sqrt(mu)
	b := 0.931 + 2.53*smu
	a := -0.059 + 0.02483*b
	invAlpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	logMu := math.Log(mu)
	for {
		u := r.float() - 0.5
		v := r.float()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + mu + 0.43)
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invAlpha)-math.Log(a/(us*us)+b) <= -mu+k*logMu-lg {
			return int(k)
		}
	}
}

// exponential draws Exp(1).
func (r *rng) exponential() float64 { return -math.Log(1 - r.float()) }
