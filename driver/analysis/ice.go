package analysis

import (
	"math"
	"slices"
)

// Ice rings.
//
// Frozen water on the loop gives powder rings at the d-spacings of
// hexagonal ice: continuous when the ice is microcrystalline, spotty
// ("grainy") when a few larger crystallites each put a sharp reflection on
// the ring. Spotty rings look to a spot finder like hundreds of Bragg spots
// at a few resolutions, so a blank frame becomes the best "hit" of a scan,
// and single ice reflections far out set the resolution limit.
//
// The tables give every ice ring its own narrow shell (ice bands of
// ice-ring-width in 1/d², DIALS' ice filter's rings and width: every
// reflection of the cell 4.498, 4.498, 7.338 Å, P6₃/mmc), so the band's
// pixels get their own background and the neighbouring shells stay free of
// the ring. Per frame a band is an ice ring when
//
//   - its background stands out of the shell around it (a continuous ring:
//     at least 8 % and five Poisson standard errors above), or
//   - it holds far more spots than the spot density around it predicts
//     (a spotty ring): at least 3 spots in at least 3 of 16 azimuthal
//     sectors (ice is a ring; fragments of one blob or a lattice row are
//     not) and a Poisson tail probability below 1e-5 (about 40 bands are
//     tested per frame), or
//   - all bands together hold more spots than predicted (tail below 1e-4,
//     3 spots in 3 sectors at least): weak ice whose rings hold a spot or
//     two each.
//
// On a frame where either found ice, every band holding clearly more spots
// than predicted (k >= 1 and k > 2λ + 1/2) counts as a ring too: single
// crystallites on weak rings, which would otherwise set the resolution.
//
// Mode "auto" removes the spots of the detected rings from the spot list,
// the score and the resolution; "exclude" removes the spots of every band,
// detected or not (what dials.find_spots ice_rings.filter=True does);
// "off" does neither and reports no ice. The frame is flagged Ice when a
// ring was detected (in every mode but off).

// IceMode selects what the analysis does about ice rings.
type IceMode int

const (
	IceAuto    IceMode = iota // exclude the rings detected on the frame
	IceExclude                // always exclude every ice band
	IceOff                    // neither detect nor exclude
)

var iceModeNames = []string{"auto", "exclude", "off"}

func (m IceMode) String() string {
	if m >= 0 && int(m) < len(iceModeNames) {
		return iceModeNames[m]
	}
	return "IceMode(?)"
}

// iceCell is hexagonal ice Ih as DIALS' ice filter has it.
const (
	iceA, iceC   = 4.498, 7.338
	iceMinD      = 1.2 // Å: rings beyond are so dense that bands would cover everything
	maxIceBands  = 64  // a frame's rings are a bit mask
	iceSectors   = 16
	iceMinSpots  = 3
	iceMinSector = 3
	iceBandP     = 1e-5
	iceFrameP    = 1e-4
	iceBgExcess  = 0.08 // continuous ring: band background above its shell by this fraction
	iceBgZ       = 5.0  // and by this many standard errors
	iceWindowQ   = 0.02 // Å⁻²: half-width of the window the spot density is taken from
)

// iceRingQ are the 1/d² of the ice rings to iceMinD, sorted, duplicates
// (symmetry equivalents, coincidences) merged.
var iceRingQ = func() []float64 {
	var qs []float64
	hmax := int(math.Ceil(iceA / iceMinD * 2))
	lmax := int(math.Ceil(iceC / iceMinD))
	for h := -hmax; h <= hmax; h++ {
		for k := -hmax; k <= hmax; k++ {
			for l := 0; l <= lmax; l++ {
				if h == 0 && k == 0 && l == 0 {
					continue
				}
				// P6₃/mmc: hh(-2h)l and 000l need l even.
				i := -h - k
				if l%2 == 1 && (h == k || k == i || i == h) {
					continue
				}
				q := 4.0/3*float64(h*h+h*k+k*k)/(iceA*iceA) + float64(l*l)/(iceC*iceC)
				if q <= 1/(iceMinD*iceMinD) {
					qs = append(qs, q)
				}
			}
		}
	}
	slices.Sort(qs)
	out := qs[:0]
	for _, q := range qs {
		if len(out) == 0 || q-out[len(out)-1] > 1e-9 {
			out = append(out, q)
		}
	}
	return out
}()

// IceRingSpacings returns the d-spacings (Å) of the hexagonal ice rings the
// analysis knows, from low to high resolution.
func IceRingSpacings() []float64 {
	out := make([]float64, len(iceRingQ))
	for i, q := range iceRingQ {
		out[i] = 1 / math.Sqrt(q)
	}
	return out
}

// iceBand is a range of 1/d² around one or more ice rings (overlapping
// ranges merged), analysed as a shell of its own.
type iceBand struct {
	qLo, qHi float64
	d        float64 // Å: the first ring of the band
	shell    int     // the band's shell index
	ref      int     // regular shell whose centre is just below the band's centre
	refW     float64 // linear-interpolation weight of shell ref+1 at the band's centre
}

// iceBands returns the bands of width w (1/d²) that overlap [qLo, qHi].
func iceBands(w, qLo, qHi float64) []iceBand {
	if w <= 0 {
		return nil
	}
	var out []iceBand
	for _, q := range iceRingQ {
		lo, hi := q-w/2, q+w/2
		if hi < qLo || lo > qHi {
			continue
		}
		if n := len(out); n > 0 && lo <= out[n-1].qHi {
			out[n-1].qHi = hi
			continue
		}
		if len(out) == maxIceBands {
			break
		}
		out = append(out, iceBand{qLo: lo, qHi: hi, d: 1 / math.Sqrt(q)})
	}
	return out
}

// bandOf returns the ice band holding 1/d² q, or -1.
func (t *Tables) bandOf(q float64) int {
	b := t.ice
	i, _ := slices.BinarySearchFunc(b, q, func(x iceBand, q float64) int {
		switch {
		case x.qHi < q:
			return -1
		case x.qLo > q:
			return 1
		}
		return 0
	})
	if i < len(b) && b[i].qLo <= q && q <= b[i].qHi {
		return i
	}
	return -1
}

// IceRings returns the number of ice bands of the tables (0 when
// ice-ring-width is 0 or no ring falls on the analysed pixels).
func (t *Tables) IceRings() int { return len(t.ice) }

// IceRingD appends to dst the d-spacing (Å) of every ice band set in mask
// (Result.IceRings), from low to high resolution.
func (t *Tables) IceRingD(mask uint64, dst []float64) []float64 {
	for i := range t.ice {
		if mask&(1<<i) != 0 {
			dst = append(dst, t.ice[i].d)
		}
	}
	return dst
}

// poissonTail is P(X >= k) for X ~ Poisson(lambda).
func poissonTail(k int, lambda float64) float64 {
	if k <= 0 {
		return 1
	}
	if lambda <= 0 {
		return 0
	}
	// 1 - Σ_{i<k} e^-λ λ^i / i!, summed from the top term for accuracy
	// when the tail is small: P(X >= k) = Σ_{i>=k} terms.
	term := math.Exp(-lambda + float64(k)*math.Log(lambda) - lgamma(k+1))
	sum := 0.0
	for i := k; i < k+1000 && term > 1e-300; i++ {
		sum += term
		term *= lambda / float64(i+1)
		if term < sum*1e-12 {
			break
		}
	}
	return math.Min(sum, 1)
}

func lgamma(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}

// iceScratch is the per-frame work of the ice test.
type iceScratch struct {
	band    []int8 // per spot: its band, or -1
	count   [maxIceBands]int
	sectors [maxIceBands]uint16
	expect  [maxIceBands]float64
}

// ice detects the frame's ice rings and removes the spots the mode
// excludes (see the top of this file).
func (a *Analyser) ice(res *Result) {
	t := a.t
	p := &t.params
	if p.IceRings == IceOff || len(t.ice) == 0 {
		return
	}
	sc := &a.iceScr
	nb := len(t.ice)
	clear(sc.count[:nb])
	clear(sc.sectors[:nb])
	sc.band = grow(sc.band, len(res.SpotList))
	a.qs = a.qs[:0] // 1/d² of the spots outside every band, sorted below
	for i := range res.SpotList {
		s := &res.SpotList[i]
		q := spotQ(s)
		b := t.bandOf(q)
		sc.band[i] = int8(b)
		if b < 0 {
			a.qs = append(a.qs, q)
			continue
		}
		sc.count[b]++
		phi := math.Atan2(s.Y-t.geom.BeamY, s.X-t.geom.BeamX)
		sec := int((phi + math.Pi) / (2 * math.Pi) * iceSectors)
		sc.sectors[b] |= 1 << (min(max(sec, 0), iceSectors-1))
	}
	slices.Sort(a.qs)

	// Spots per unit 1/d² outside the bands, over the whole frame (one
	// spot more than seen: a floor for frames with no spots outside).
	freeAll := t.qHi - t.qLo
	for c := range t.ice {
		freeAll -= math.Min(t.qHi, t.ice[c].qHi) - math.Max(t.qLo, t.ice[c].qLo)
	}
	globalDensity := float64(len(a.qs)+1) / math.Max(freeAll, 1e-9)

	var detected uint64
	totalK, totalL := 0, 0.0
	var allSectors uint16
	for b := range t.ice {
		band := &t.ice[b]
		// Continuous ring: the band's background against the shells around
		// it, interpolated to the band's centre (the water ring's slope
		// must not look like a ring).
		bs, r0, r1 := &a.stats[band.shell], &a.stats[band.ref], &a.stats[min(band.ref+1, t.nRegular-1)]
		if bs.n > 0 && r0.n > 0 && r1.n > 0 {
			w0, w1 := 1-band.refW, band.refW
			ref := w0*r0.mean + w1*r1.mean
			v := w0*r0.sigma*r0.sigma + w1*r1.sigma*r1.sigma
			excess := bs.mean - ref
			// The standard error of the excess counts both sides: the
			// band's mean and the reference's, each from its shell's
			// background sample. At a small fraction of a photon per pixel
			// the reference's own noise is several percent.
			v0 := math.Max(r0.sigma*r0.sigma, r0.mean) / float64(r0.n)
			v1 := math.Max(r1.sigma*r1.sigma, r1.mean) / float64(r1.n)
			se := math.Sqrt(math.Max(v, ref)/float64(bs.n) + w0*w0*v0 + w1*w1*v1)
			if ref > 0 && excess > iceBgExcess*ref && excess > iceBgZ*se {
				detected |= 1 << b
			}
		}
		// Spotty ring: spots against the density of spots around the band,
		// or over the whole frame where that is higher (an empty window
		// must not make a spot or two in the band significant).
		lo, hi := band.qLo-iceWindowQ, band.qHi+iceWindowQ
		lo, hi = math.Max(lo, t.qLo), math.Min(hi, t.qHi)
		free := hi - lo
		for c := range t.ice {
			if o := math.Min(hi, t.ice[c].qHi) - math.Max(lo, t.ice[c].qLo); o > 0 {
				free -= o
			}
		}
		density := globalDensity
		if free > 0 {
			density = math.Max(density, float64(countIn(a.qs, lo, hi))/free)
		}
		lambda := density * (band.qHi - band.qLo)
		sc.expect[b] = lambda
		k := sc.count[b]
		totalK += k
		totalL += lambda
		allSectors |= sc.sectors[b]
		if k >= iceMinSpots && bitsSet(sc.sectors[b]) >= iceMinSector && poissonTail(k, lambda) < iceBandP {
			detected |= 1 << b
		}
	}
	iced := detected != 0 ||
		(totalK >= iceMinSpots && bitsSet(allSectors) >= iceMinSector && poissonTail(totalK, totalL) < iceFrameP)
	if iced {
		// On a frame with ice, a band holding clearly more spots than the
		// density around it predicts holds ice crystallites too.
		for b := range t.ice {
			if k := float64(sc.count[b]); k >= 1 && k > 2*sc.expect[b]+0.5 {
				detected |= 1 << b
			}
		}
	}
	res.IceRings = detected
	res.Ice = detected != 0

	exclude := detected
	if p.IceRings == IceExclude {
		exclude = 1<<nb - 1
	}
	if exclude == 0 {
		return
	}
	kept := res.SpotList[:0]
	for i, s := range res.SpotList {
		if b := sc.band[i]; b >= 0 && exclude&(1<<b) != 0 {
			res.IceSpots++
			continue
		}
		kept = append(kept, s)
	}
	res.SpotList = kept
}

// spotQ is the spot's 1/d² (0 at the beam).
func spotQ(s *Spot) float64 {
	if s.D > 0 && !math.IsInf(s.D, 1) {
		return 1 / (s.D * s.D)
	}
	return 0
}

// countIn counts the sorted values in [lo, hi].
func countIn(qs []float64, lo, hi float64) int {
	i, _ := slices.BinarySearch(qs, lo)
	j, _ := slices.BinarySearch(qs, math.Nextafter(hi, math.Inf(1)))
	return j - i
}

func bitsSet(x uint16) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
