package analysis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unsafe"
)

// pixel is an EIGER pixel type; the all-ones value marks a masked pixel.
type pixel interface{ ~uint8 | ~uint16 | ~uint32 }

// Spot is one accepted Bragg spot.
type Spot struct {
	X, Y      float64 // intensity-weighted centroid, pixels (pixel i centred on i)
	Intensity float64 // Σ (v - background) over the spot's pixels, counts
	Sigma     float64 // σ(I) = sqrt(I + Σ background variance), counts
	Peak      uint32  // largest pixel value of the spot, counts
	NPix      int     // strong pixels in the spot
	D         float64 // resolution of the centroid, Å
}

// ISigma is the spot's signal to noise, I/σ(I).
func (s Spot) ISigma() float64 {
	if s.Sigma <= 0 {
		return 0
	}
	return s.Intensity / s.Sigma
}

// Result is the analysis of one frame. Analyse overwrites every field and
// reuses SpotList's storage, so one Result per worker allocates nothing
// once its spot list has grown to the largest spot count seen.
type Result struct {
	Spots      int     // accepted spots (len(SpotList))
	Score      float64 // see the package documentation; 0 without diffraction
	Resolution float64 // Å; 0 with fewer than MinSpots spots
	IS         float64 // integrated signal: Σ of accepted spots' intensities, counts
	Hit        bool    // Score >= HitThreshold (and Spots >= MinSpots)
	SpotList   []Spot  // accepted spots in row-major order of their first pixel

	// Diagnostics.
	Background   float64 // mean background of the analysed pixels, counts per pixel
	StrongPixels int     // pixels that passed the strong-pixel test
	Candidates   int     // connected groups of strong pixels before the spot filters
	Masked       int     // all-ones pixels not already excluded by the tables
	Rebinned     int     // shells whose bright background needed the binned second pass
	// Ice: an ice ring was detected (ice.go); IceRings the detected bands
	// (bit i: Tables.IceRingD), IceSpots the spots removed from the list,
	// score and resolution because they lie on an excluded ring.
	Ice      bool
	IceRings uint64
	IceSpots int
	// HotPixels: strong pixels dropped because the hot-pixel map (Masks.Hot)
	// holds them. ShapeRejected: connected groups of the accepted size and
	// I/σ rejected by their shape (one pixel wide: hot columns; peak more
	// than max-separation from the centroid: streaks, diffuse blobs).
	// BlobFragments: groups that would have been spots but lie within the
	// extent of a rejected blob (shape-rejected or larger than
	// max-spot-size): the pieces a diffuse blob breaks into. Neither is in
	// the spots, the score or the resolution.
	HotPixels     int
	Grown         int // pixels added to the strong pixels by grow-level
	ShapeRejected int
	BlobFragments int
	// Overloaded: more than max-strong-fraction of the analysed pixels were
	// strong (a flooded, shadowed or broken frame, or parameters far off).
	// The frame then has no spots and score 0, and StrongPixels stops at
	// the limit. The pipeline should count such frames.
	Overloaded bool
}

func (r *Result) reset() {
	list := r.SpotList[:0]
	*r = Result{SpotList: list}
}

// Analyser analyses frames of one series. It owns one worker's scratch
// (histograms, strong-pixel list, labels, spot accumulators): it is not safe
// for concurrent use, and it allocates nothing per frame once its scratch
// has grown to the largest frame content seen. Use one Analyser per
// worker goroutine; they share one read-only *Tables.
type Analyser struct {
	t *Tables

	h     histograms
	stats [maxShells]shellStats
	thr   [256]uint32 // strong-pixel threshold per shell: v > thr[shell]; thr[excludedShell] = MaxUint32
	thrLo [256]uint32 // grow threshold per shell (grow-level), same form
	near  [256]uint32 // growSpots: lowest thrLo of a shell and the shells bordering it
	bgVar [256]float64

	strong  []int32  // strong pixel indices, row-major order
	mark    []uint64 // bit per pixel: grown (growSpots); all zero between frames
	merged  []int32  // growSpots' merge buffer, swapped with strong
	size    []int32  // measureT: component sizes, then their places in acc
	strongV []uint32 // measureT: the strong pixels' values
	strongS []uint8  // measureT: the strong pixels' shells
	touch   uint32   // growSpots' prefetching loads end here, so they are not dropped
	parent  []int32  // union-find over strong
	root    []int32  // measureT: the component (its root) of each strong pixel
	acc     []spotAcc
	qs      []float64 // 1/d² of accepted spots, for the resolution limit
	blobs   []blobBox // rejected blobs of the frame, for their fragments

	disp   dispersionScratch
	iceScr iceScratch
	strScr strongScratch

	// Staging for frames that cannot be viewed in place (unaligned bytes or
	// a big-endian host).
	stage16 []uint16
	stage32 []uint32
}

// NewAnalyser returns an analyser using t, which may be shared.
func NewAnalyser(t *Tables) *Analyser { return &Analyser{t: t} }

// Tables returns the tables in use.
func (a *Analyser) Tables() *Tables { return a.t }

// SetTables switches to other tables, e.g. after a parameter change
// (Tables.WithParams) or at the next series. Scratch is kept.
func (a *Analyser) SetTables(t *Tables) { a.t = t }

// ShellBackground returns the background of shell s in the last frame
// analysed: clipped mean and standard deviation, counts.
func (a *Analyser) ShellBackground(s int) (mean, sigma float64) {
	if s < 0 || s >= a.t.nShells {
		return 0, 0
	}
	return a.stats[s].mean, a.stats[s].sigma
}

// Errors returned by Analyse.
var (
	ErrFrameSize = errors.New("analysis: frame size does not match the tables")
	ErrElemSize  = errors.New("analysis: pixel size must be 1, 2 or 4 bytes")
)

var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Analyse analyses one decoded frame: pixels are Width*Height little-endian
// unsigned integers of elemSize bytes (1, 2 or 4), row-major, the all-ones
// value marking masked pixels. On error res is reset and the frame is not
// analysed.
func (a *Analyser) Analyse(pixels []byte, elemSize int, res *Result) error {
	n := a.t.geom.Width * a.t.geom.Height
	switch elemSize {
	case 1, 2, 4:
	default:
		res.reset()
		return fmt.Errorf("%w: got %d", ErrElemSize, elemSize)
	}
	if len(pixels) != n*elemSize {
		res.reset()
		return fmt.Errorf("%w: %d bytes for %d x %d x %d", ErrFrameSize, len(pixels), a.t.geom.Width, a.t.geom.Height, elemSize)
	}
	switch elemSize {
	case 1:
		return analyse(a, pixels, res)
	case 2:
		if hostLittleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(pixels)))%2 == 0 {
			return analyse(a, unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(pixels))), n), res)
		}
		a.stage16 = grow(a.stage16, n)
		for i := range a.stage16 {
			a.stage16[i] = binary.LittleEndian.Uint16(pixels[2*i:])
		}
		return analyse(a, a.stage16, res)
	default:
		if hostLittleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(pixels)))%4 == 0 {
			return analyse(a, unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(pixels))), n), res)
		}
		a.stage32 = grow(a.stage32, n)
		for i := range a.stage32 {
			a.stage32[i] = binary.LittleEndian.Uint32(pixels[4*i:])
		}
		return analyse(a, a.stage32, res)
	}
}

// AnalysePixels analyses a frame already in typed form (the simulator and
// tests produce these). px must hold Width*Height pixels.
func AnalysePixels[T uint8 | uint16 | uint32](a *Analyser, px []T, res *Result) error {
	if len(px) != a.t.geom.Width*a.t.geom.Height {
		res.reset()
		return fmt.Errorf("%w: %d pixels for %d x %d", ErrFrameSize, len(px), a.t.geom.Width, a.t.geom.Height)
	}
	return analyse(a, px, res)
}

func grow[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}

func analyse[T pixel](a *Analyser, px []T, res *Result) error {
	t := a.t
	p := &t.params
	res.reset()

	// Pass 1: per-shell histograms, then the background of every shell.
	a.h.reset(t.nShells)
	fill(&a.h, px, t)
	for s := 0; s < t.nShells; s++ {
		st, again := a.h.estimate(s)
		a.stats[s] = st
		if again {
			a.h.rebinCount++
		}
	}
	if a.h.rebinCount > 0 {
		refill(&a.h, px, t)
		for s := 0; s < t.nShells; s++ {
			if a.h.rebin[s] {
				a.stats[s] = a.h.estimateRebinned(s)
			}
		}
	}
	res.Rebinned = a.h.rebinCount

	// Thresholds: v > mean + level*sigma and v > mean + gain (one photon),
	// as one integer comparison per pixel (counts are integers: v > x ⇔
	// v > floor(x)); sigma is at least the Poisson sqrt(gain*mean).
	gain := p.EffectiveGain()
	// Thresholds stop below the all-ones value, the detector's mark for a
	// pixel it masked in this frame, so that strongPixels sees every such
	// pixel outside the static masks (and counts it) but never takes one.
	maxThr := uint32(^T(0)) - 1
	var bgSum, bgN float64
	for s := 0; s < t.nShells; s++ {
		st := &a.stats[s]
		a.bgVar[s] = st.sigma * st.sigma
		n := float64(st.n) * float64(t.stride[s]) // the shell's pixels, not its sample's
		bgSum += st.mean * n
		bgN += n
		if st.n == 0 {
			a.thr[s], a.thrLo[s] = maxThr, maxThr
			continue
		}
		x := st.mean + math.Max(p.SpotLevel*math.Max(st.sigma, math.Sqrt(gain*st.mean)), gain)
		a.thr[s] = uint32(math.Min(math.Floor(x), float64(maxThr)))
		x = st.mean + math.Max(p.GrowLevel*math.Max(st.sigma, math.Sqrt(gain*st.mean)), gain)
		a.thrLo[s] = uint32(math.Min(math.Floor(x), float64(maxThr)))
	}
	for s := t.nShells; s < len(a.thr); s++ {
		a.thr[s] = math.MaxUint32
		a.thrLo[s] = math.MaxUint32
	}
	if bgN > 0 {
		res.Background = bgSum / bgN
	}

	// Pass 2: strong pixels, at most max-strong-fraction of the analysed
	// ones. More is not a diffraction pattern but a flooded, shadowed or
	// broken frame; stopping there also bounds the scratch the labelling
	// needs, whatever arrives.
	limit := int(p.MaxStrongFraction * float64(t.analysed))
	a.strong = a.strong[:0]
	switch p.Method {
	case Dispersion:
		a.strong, res.Overloaded = dispersion(&a.disp, a.strong, limit, px, t.shell, t.geom.Width, p)
		res.Masked = countMasked(px, t.shell)
	default:
		var ok bool
		a.strong, res.Masked, ok = strongPixelsBlocks(&a.strScr, t, a.strong, limit, px, &a.thr)
		if !ok {
			a.strong, res.Masked, res.Overloaded = strongPixels(a.strong, limit, px, t.shell, &a.thr)
		}
	}
	res.StrongPixels = len(a.strong)
	if res.Overloaded {
		a.strong = a.strong[:0] // no spots, score 0: see Result.Overloaded
	} else if hm := t.masks.Hot; hm != nil && p.HotPixelFrames > 0 {
		a.strong, res.HotPixels = hm.observe(len(px), a.strong, p.HotPixelFrames)
	}
	if !res.Overloaded && p.Method == Threshold && p.GrowLevel > 0 && len(a.strong) > 0 {
		res.Grown, res.Overloaded = growSpots(a, px, limit)
		if res.Overloaded {
			a.strong = a.strong[:0]
		}
	}

	// Spots.
	a.label()
	measureT(a, px, res)
	a.ice(res)
	a.verdict(res)
	return nil
}

// strongPixels appends the indices of pixels above their shell's threshold;
// it stops and reports overload when limit pixels would be exceeded.
//
// Strong pixels are rare (a few thousand of millions), so the scan tests
// eight pixels at a time without a branch: t - v, computed in 64 bits, is
// negative exactly when v > t, and the sign bits of eight such differences
// are ORed. Only a block with a candidate is looked at pixel by pixel. Per
// pixel the loop is then loads, a subtraction and an OR; with a branch
// per pixel the same instructions took 1.5 times as long in one build as
// in another, depending on where they were placed.
func strongPixels[T pixel](dst []int32, limit int, px []T, shell []uint8, thr *[256]uint32) (_ []int32, masked int, overloaded bool) {
	allOnes := uint32(^T(0))
	shell = shell[:len(px)]
	n := len(px)
	i := 0
	for ; i+8 <= n; i += 8 {
		p, s := px[i:i+8:i+8], shell[i:i+8:i+8]
		any := (int64(thr[s[0]]) - int64(p[0])) | (int64(thr[s[1]]) - int64(p[1])) |
			(int64(thr[s[2]]) - int64(p[2])) | (int64(thr[s[3]]) - int64(p[3])) |
			(int64(thr[s[4]]) - int64(p[4])) | (int64(thr[s[5]]) - int64(p[5])) |
			(int64(thr[s[6]]) - int64(p[6])) | (int64(thr[s[7]]) - int64(p[7]))
		if any >= 0 {
			continue
		}
		for k := i; k < i+8; k++ {
			v := uint32(px[k])
			if v <= thr[shell[k]] {
				continue
			}
			if v == allOnes {
				masked++
				continue
			}
			if len(dst) >= limit {
				return dst, masked + countMasked(px[k+1:], shell[k+1:]), true
			}
			dst = append(dst, int32(k))
		}
	}
	for ; i < n; i++ {
		v := uint32(px[i])
		if v <= thr[shell[i]] {
			continue
		}
		if v == allOnes {
			masked++
			continue
		}
		if len(dst) >= limit {
			return dst, masked + countMasked(px[i+1:], shell[i+1:]), true
		}
		dst = append(dst, int32(i))
	}
	return dst, masked, false
}

// countMasked counts the all-ones pixels (masked by the detector in this
// frame) that the tables do not already exclude.
func countMasked[T pixel](px []T, shell []uint8) int {
	allOnes := ^T(0)
	shell = shell[:len(px)]
	n := 0
	for i, v := range px {
		if v == allOnes && shell[i] != excludedShell {
			n++
		}
	}
	return n
}

// growSpots is the second level of the threshold method's strong-pixel test
// (hysteresis, seed and grow): the pixels 8-connected to a strong pixel,
// directly or through other grown pixels, that exceed their shell's
// background by grow-level σ join the strong pixels. A pixel at 6σ seeds a
// spot; its weaker flanks, which alone would be noise, extend it. So a weak
// spot keeps the pixels that hold most of its photons (a Gaussian profile
// of σ 0.7 px puts half its intensity outside its brightest pixel), which
// raises its I/σ and its pixel count past the spot filters, while no
// component is formed without a seed: noise at grow-level alone never
// becomes a spot. It reports the pixels added and whether the strong
// pixels exceed limit (overload). a.strong is row-major sorted again.
func growSpots[T pixel](a *Analyser, px []T, limit int) (added int, overloaded bool) {
	t := a.t
	allOnes := uint32(^T(0))
	w, h := t.geom.Width, t.geom.Height
	// A neighbour is screened by the lowest grow threshold of the shells
	// next to its seed's before its own shell is looked up: most fail on
	// their value alone, so the scan touches the shell table once per seed.
	near := &a.near
	last := t.nRegular - 1
	for r := 0; r <= last; r++ {
		near[r] = min(a.thrLo[r], a.thrLo[max(r-1, 0)], a.thrLo[min(r+1, last)])
	}
	for j := range t.ice {
		// A band and the regular shells it borders (a pixel step is less
		// than a shell's width): each may neighbour the other.
		b := &t.ice[j]
		r0 := max(int((b.qLo-t.qLo)/t.qStep)-1, 0)
		r1 := min(int((b.qHi-t.qLo)/t.qStep)+1, last)
		lb := a.thrLo[b.shell]
		for r := r0; r <= r1; r++ {
			lb = min(lb, a.thrLo[r])
		}
		near[b.shell] = lb
		for r := r0; r <= r1; r++ {
			near[r] = min(near[r], a.thrLo[b.shell])
		}
	}
	if words := (len(px) + 63) / 64; len(a.mark) < words {
		a.mark = make([]uint64, words)
	}
	mark := a.mark // grown pixels; a pixel above thr is a seed (or hot) without looking
	uni := t.uniform[:(len(px)+63)/64]
	seeds := len(a.strong)
	const prefetch = 16
	var touch uint32
	for k := 0; k < len(a.strong) && !overloaded; k++ {
		i := int(a.strong[k])
		if k%prefetch == 0 {
			// The seeds are scattered over the frame, a few cache misses
			// each: a tight loop that only loads the next seeds' rows,
			// shells and bits has all their misses in flight at once, so
			// the work on them below waits for one round trip, not one
			// per seed.
			for _, n := range a.strong[k:min(k+prefetch, len(a.strong))] {
				n := int(n)
				touch += uint32(px[max(n-w, 0)]) + uint32(px[min(n+w, len(px)-1)]) + uint32(px[n]) +
					uint32(t.shell[n]) + uint32(uni[n>>6])
			}
		}
		lo := near[t.shell[i]]
		y := i / w
		x := i - y*w
		if x > 0 && x < w-1 && y > 0 && y < h-1 {
			// Most seeds are isolated noise pixels with no neighbour
			// above lo: one branch-free maximum of the eight lets the
			// loads of successive seeds overlap instead of each waiting
			// behind a mispredicted branch.
			r := px[i-w-1 : i+w+2 : i+w+2]
			m := max(r[0], r[1], r[2], r[w], r[w+2], r[2*w], r[2*w+1], r[2*w+2])
			if uint32(m) <= lo {
				continue
			}
			// Inside a spot most neighbours are seeds themselves: the
			// neighbours in the grow band (thrLo, thr] of their shell
			// are found without a branch, and only those are visited.
			// Where the nine pixels share the seed's shell (nearly
			// everywhere) its band serves for all eight.
			offs := [8]int{-w - 1, -w, -w + 1, -1, 1, w - 1, w, w + 1}
			var in uint32
			if uni[i>>6]&(1<<(i&63)) != 0 {
				s := t.shell[i]
				l, u := int64(a.thrLo[s]), int64(a.thr[s])+1
				for q, o := range offs {
					v := int64(r[w+1+o])
					in |= uint32(uint64((l-v)&(v-u))>>63) << q
				}
			} else {
				for q, o := range offs {
					j := i + o
					v, s := int64(px[j]), t.shell[j]
					in |= uint32(uint64((int64(a.thrLo[s])-v)&(v-int64(a.thr[s])-1))>>63) << q
				}
			}
			for ; in != 0; in &= in - 1 {
				j := i + offs[bits.TrailingZeros32(in)]
				if mark[j>>6]&(1<<(j&63)) != 0 || uint32(px[j]) == allOnes {
					continue
				}
				if len(a.strong) >= limit {
					overloaded = true
					break
				}
				mark[j>>6] |= 1 << (j & 63)
				a.strong = append(a.strong, int32(j))
			}
			continue
		}
		for yy := max(y-1, 0); yy <= min(y+1, h-1); yy++ {
			for xx := max(x-1, 0); xx <= min(x+1, w-1); xx++ {
				j := yy*w + xx
				v := uint32(px[j])
				if v <= lo || v == allOnes {
					continue
				}
				if s := t.shell[j]; v <= a.thrLo[s] || v > a.thr[s] {
					continue
				}
				if mark[j>>6]&(1<<(j&63)) != 0 {
					continue
				}
				if len(a.strong) >= limit {
					overloaded = true
					break
				}
				mark[j>>6] |= 1 << (j & 63)
				a.strong = append(a.strong, int32(j))
			}
		}
	}
	a.touch = touch
	grown := a.strong[seeds:]
	for _, i := range grown {
		mark[i>>6] &^= 1 << (i & 63)
	}
	if len(grown) == 0 || overloaded {
		return len(grown), overloaded
	}
	// Row-major order again: merge the sorted grown pixels into the seeds.
	slices.Sort(grown)
	a.merged = grow(a.merged, len(a.strong))
	m, p, q := a.merged, 0, seeds
	for o := range m {
		if q == len(a.strong) || (p < seeds && a.strong[p] < a.strong[q]) {
			m[o] = a.strong[p]
			p++
		} else {
			m[o] = a.strong[q]
			q++
		}
	}
	a.strong, a.merged = m, a.strong
	return len(grown), false
}

// label groups the strong pixels into connected components with a
// union-find over the (row-major sorted) strong list: each pixel is linked
// to its left neighbour and to the up-to-three neighbours in the previous
// row (8-connected, the threshold method), or only the one above it
// (4-connected, the dispersion method, as DIALS labels), found with a
// pointer that only moves forward. No label image is
// made, so the cost is proportional to the strong pixels, not the frame.
func (a *Analyser) label() {
	w := int32(a.t.geom.Width)
	n := len(a.strong)
	reach := int32(1) // neighbours in the previous row: x-reach..x+reach
	if a.t.params.Method == Dispersion {
		reach = 0
	}
	a.parent = grow(a.parent, n)
	parent := a.parent
	for k := range parent {
		parent[k] = int32(k)
	}
	find := func(k int32) int32 {
		for parent[k] != k {
			parent[k] = parent[parent[k]]
			k = parent[k]
		}
		return k
	}
	union := func(i, j int32) {
		ri, rj := find(i), find(j)
		switch {
		case ri < rj:
			parent[rj] = ri
		case rj < ri:
			parent[ri] = rj
		}
	}
	strong := a.strong
	curY := int32(-2)
	rowStart, prevStart, prevEnd, p := 0, 0, 0, 0
	for k := 0; k < n; k++ {
		idx := strong[k]
		y := idx / w
		x := idx - y*w
		if y != curY {
			if y == curY+1 {
				prevStart, prevEnd = rowStart, k
			} else {
				prevStart, prevEnd = k, k
			}
			rowStart, curY, p = k, y, prevStart
		}
		if k > rowStart && strong[k-1] == idx-1 {
			union(int32(k), int32(k-1))
		}
		for p < prevEnd && strong[p]-(y-1)*w < x-reach {
			p++
		}
		for q := p; q < prevEnd && strong[q]-(y-1)*w <= x+reach; q++ {
			union(int32(k), int32(q))
		}
	}
}

// spotAcc accumulates one connected component.
type spotAcc struct {
	npix     int
	signal   float64 // Σ (v - b)
	wsum     float64 // Σ max(v - b, 0): centroid weights
	wx, wy   float64
	wxx, wyy float64 // Σ weight·x², Σ weight·y²: the spot's width
	ux, uy   float64 // unweighted sums, for a spot with no positive weight
	variance float64 // Σ background variance
	bsum     float64 // Σ background mean, counts
	peak     uint32
	peakIdx  int32 // pixel index of the peak
	x0, x1   int32 // bounding box
	y0, y1   int32
	// Seeds (strong pixels not added by growSpots): their count and
	// bounding box, for the line test.
	nseed    int
	sx0, sx1 int32
	sy0, sy1 int32
}

// measureT accumulates every component and keeps the spots that pass the
// size and I/σ filters.
func measureT[T pixel](a *Analyser, px []T, res *Result) {
	t := a.t
	p := &t.params
	w := int32(t.geom.Width)
	n := len(a.strong)
	a.root = grow(a.root, n)
	a.acc = a.acc[:0]
	// With growSpots the seeds are the pixels above thr; otherwise every
	// strong pixel is one (the dispersion test has its own thresholds).
	grown := res.Grown > 0
	// The strong pixels' values and shells first, in a loop of loads
	// only: they are scattered over the frame, and there the cache misses
	// of many pixels are in flight together, where the long loop below
	// would wait for them one or two at a time.
	a.strongV = grow(a.strongV, n)
	a.strongS = grow(a.strongS, n)
	sv, ss, shell := a.strongV[:n], a.strongS[:n], t.shell[:len(px)]
	for k, idx := range a.strong {
		sv[k], ss[k] = uint32(px[idx]), shell[idx]
	}
	// Components and their sizes first. Roots are the smallest index of
	// their component, so a root is met before any other member of its
	// component. A component smaller than spot-size is no spot whatever
	// its pixels hold, and on noisy frames most are single pixels (9 592
	// components, 324 spots on the real EIGER2 4M grid frame): their
	// pixels are not accumulated. size[r] becomes the root's index in
	// a.acc, or -1 for a component that is skipped.
	root := a.root[:n]
	a.size = grow(a.size, n)
	size := a.size[:n]
	ncomp := 0
	for k := 0; k < n; k++ {
		r := a.parent[k]
		for a.parent[r] != r {
			r = a.parent[r]
		}
		root[k] = r
		if int(r) == k {
			size[k] = 0
			ncomp++
		}
		size[r]++
	}
	for k := 0; k < n; k++ {
		r := root[k]
		idx := a.strong[k]
		if int(r) == k {
			if int(size[r]) < p.SpotSize {
				size[r] = -1
				continue
			}
			size[r] = int32(len(a.acc))
			a.acc = append(a.acc, spotAcc{x0: idx % w, x1: idx % w, y0: idx / w, y1: idx / w,
				sx0: math.MaxInt32, sx1: -1, sy0: math.MaxInt32, sy1: -1})
		}
		if size[r] < 0 {
			continue
		}
		c := &a.acc[size[r]]
		v, s := sv[k], ss[k]
		b := a.stats[s].mean
		y := idx / w
		x := float64(idx - y*w)
		fy := float64(y)
		sig := float64(v) - b
		c.npix++
		c.signal += sig
		if sig > 0 {
			c.wsum += sig
			c.wx += sig * x
			c.wy += sig * fy
			c.wxx += sig * x * x
			c.wyy += sig * fy * fy
		}
		c.ux += x
		c.uy += fy
		c.variance += a.bgVar[s]
		c.bsum += b
		if v > c.peak || c.npix == 1 {
			c.peak, c.peakIdx = v, idx
		}
		xi := idx - y*w
		c.x0, c.x1 = min(c.x0, xi), max(c.x1, xi)
		c.y0, c.y1 = min(c.y0, y), max(c.y1, y)
		if !grown || v > a.thr[s] {
			c.nseed++
			c.sx0, c.sx1 = min(c.sx0, xi), max(c.sx1, xi)
			c.sy0, c.sy1 = min(c.sy0, y), max(c.sy1, y)
		}
	}
	res.Candidates = ncomp
	a.blobs = a.blobs[:0]
	pThr := gaussTail(p.MinSNR) / float64(max(t.analysed, 1))
	for i := range a.acc {
		c := &a.acc[i]
		if c.npix < p.SpotSize {
			continue
		}
		if c.npix > p.MaxSpotSize {
			a.blobs = append(a.blobs, c.box())
			continue
		}
		sigma := math.Sqrt(p.EffectiveGain()*math.Max(c.signal, 0) + c.variance)
		if sigma <= 0 || (c.signal/sigma < p.MinSNR && !poissonSignificant(c, p, pThr)) {
			continue
		}
		if isLine(c) {
			res.ShapeRejected++
			continue
		}
		var cx, cy float64
		if c.wsum > 0 {
			cx, cy = c.wx/c.wsum, c.wy/c.wsum
		} else {
			cx, cy = c.ux/float64(c.npix), c.uy/float64(c.npix)
		}
		py := c.peakIdx / w
		px := c.peakIdx - py*w
		if math.Hypot(cx-float64(px), cy-float64(py)) > p.MaxSeparation || isDiffuse(c, cx, cy, 2*p.MaxSeparation) {
			res.ShapeRejected++
			a.blobs = append(a.blobs, c.box())
			continue
		}
		res.SpotList = append(res.SpotList, Spot{
			X: cx, Y: cy, Intensity: c.signal, Sigma: sigma, Peak: c.peak, NPix: c.npix,
			D: t.geom.Resolution(cx, cy),
		})
	}
	if len(a.blobs) > 0 {
		res.BlobFragments = dropFragments(a.blobs, res)
	}
}

// isDiffuse reports a large component whose intensity-weighted RMS radius
// exceeds maxRadius (twice max-separation): diffuse scatter, not a Bragg
// spot. A Bragg spot's
// profile is the beam's and the crystal's mosaic spread, one to three
// pixels; a diffuse blob (the real PILATUS high-background frame has
// some near 1.64 Å, 900 connected strong pixels of a smooth hump with
// an RMS radius of about 9 px) is roughly symmetric, so the
// peak-to-centroid test alone lets it through.
func isDiffuse(c *spotAcc, cx, cy, maxRadius float64) bool {
	if c.npix < minDiffusePixels || c.wsum <= 0 {
		return false
	}
	r2 := c.wxx/c.wsum - cx*cx + c.wyy/c.wsum - cy*cy
	return r2 > maxRadius*maxRadius
}

// minDiffusePixels: smaller components are not tested for width (their
// RMS radius is that of a few pixels).
const minDiffusePixels = 50

// blobBox is the extent of a rejected blob, widened by blobMargin.
type blobBox struct{ x0, x1, y0, y1 float64 }

func (c *spotAcc) box() blobBox {
	m := float64(max(c.x1-c.x0, c.y1-c.y0)+1)*blobMargin + 2
	return blobBox{float64(c.x0) - m, float64(c.x1) + m, float64(c.y0) - m, float64(c.y1) + m}
}

// blobMargin: a blob's extent is widened by this fraction of its larger
// side (plus two pixels) when looking for its fragments. A diffuse blob
// sits on a broad shoulder whose outer parts pass the strong-pixel test
// only in patches: on the real PILATUS high-background frame the pieces
// of the blob near 1.64 Å lie up to a quarter of its size beyond the
// bounding box of its connected core.
const blobMargin = 0.25

// dropFragments removes the spots whose centroid lies within a rejected
// blob's widened extent and returns how many it removed. Blobs are few
// (a handful per frame), so the quadratic scan is cheap.
func dropFragments(blobs []blobBox, res *Result) int {
	kept := res.SpotList[:0]
	n := 0
	for _, s := range res.SpotList {
		in := false
		for _, b := range blobs {
			if s.X >= b.x0 && s.X <= b.x1 && s.Y >= b.y0 && s.Y <= b.y1 {
				in = true
				break
			}
		}
		if in {
			n++
			continue
		}
		kept = append(kept, s)
	}
	res.SpotList = kept
	return n
}

// poissonSignificant is the photon-counting test of a spot on a low
// background: with λ the background photons expected under its pixels
// and k the photons it holds, it passes when P(X >= k | Poisson(λ)) is
// at most pThr, the one-sided Gaussian tail of min-snr. On a background
// of a few thousandths of a photon per pixel the Gaussian I/σ cannot tell
// 16 photons in 6 pixels (I/σ 4) from noise, though chance would put them
// there once in 10^40 frames. Above poisson-background photons per pixel
// the test is not used: there the strong pixels of diffuse scatter and of
// ring edges are not Poisson noise around a flat mean, and the I/σ test,
// which counts the spot's own shot noise, is the guard against them.
func poissonSignificant(c *spotAcc, p *Params, pThr float64) bool {
	g := p.EffectiveGain()
	lambda := c.bsum / g
	if lambda > p.PoissonBackground*float64(c.npix) {
		return false
	}
	k := int(math.Round((c.signal + c.bsum) / g))
	return float64(k) > lambda && poissonTail(k, lambda) <= pThr
}

// gaussTail is the one-sided upper tail of the standard normal at z.
func gaussTail(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// verdict turns the spot list into the frame's numbers: count, IS,
// resolution, score and hit (formulas in the package documentation).
func (a *Analyser) verdict(res *Result) {
	p := &a.t.params
	res.Spots = len(res.SpotList)
	a.qs = a.qs[:0]
	score := 0.0
	for i := range res.SpotList {
		s := &res.SpotList[i]
		res.IS += s.Intensity
		q := 0.0
		if s.D > 0 && !math.IsInf(s.D, 1) {
			q = 1 / (s.D * s.D)
		}
		a.qs = append(a.qs, q)
		score += math.Log1p(s.ISigma()) * q
	}
	if res.Spots < p.MinSpots {
		return
	}
	res.Score = ScoreScale * score
	slices.Sort(a.qs)
	if q := math.Min(limitQ(a.qs, p.ResolutionQuantile), a.t.qHi); q > 0 {
		res.Resolution = 1 / math.Sqrt(q)
	}
	res.Hit = res.Score > 0 && res.Score >= p.HitThreshold
}

// ScoreScale scales the score so that typical hits fall in 1..1000 (see the
// package documentation).
const ScoreScale = 10.0

// limitQ estimates the upper end Q of the distribution of the sorted 1/d²
// values qs (n >= 2) from one order statistic: for n values spread evenly
// over [0, Q] the j-th smallest has expectation Q·j/(n+1), so
// Q = q_(j)·(n+1)/j. j = round(p·n), at most n-1 so that one spurious spot
// at high angle cannot set the limit.
func limitQ(qs []float64, p float64) float64 {
	n := len(qs)
	if n < 2 {
		return 0
	}
	j := int(math.Round(p * float64(n)))
	j = max(1, min(j, n-1))
	return qs[j-1] * float64(n+1) / float64(j)
}
