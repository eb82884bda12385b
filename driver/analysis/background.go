package analysis

import (
	"math"
	"math/bits"
	"unsafe"
)

// Background estimation, per resolution shell, from histograms.
//
// Why histograms: EIGER backgrounds are small integer counts (a few photons
// per pixel per frame), so a histogram of 256 exact bins per shell holds the
// whole distribution of a shell in a few kilobytes. Filling it is one
// streaming pass over the shell's background sample; everything after that
// (median, MAD, sigma clipping to convergence) costs O(bins) per shell
// instead of O(pixels) per iteration. The estimate does not depend on the
// previous frame, so frames stay independent and can be analysed in any
// order by any worker.
//
// Why a sample (Tables.steps, sampleStride): a shell of a 4M frame holds
// 20 000-45 000 pixels, and its mean and sigma are known to about 1 % of
// sigma from a quarter of them, while histogramming every pixel was two
// thirds of the threshold method's time. Large shells give every 2nd or 4th
// pixel on a diagonal lattice (every row and column equally), small shells
// all of theirs, and so do ice bands and the shells they are compared with.
// The estimate is exact on the sample. The strong-pixel test still looks at
// every pixel.
//
// Why sigma clipping after median/MAD: the median and MAD are robust
// against the Bragg spots but, on integer counts with a mean below one
// photon, the MAD is 0 and the median is 0 or 1; the clipped mean and
// variance resolve fractions of a count. The clip window starts at the
// median ± 5 MAD-sigma and then iterates [μ - 3σ - 1, μ + 3σ + 3] to a
// fixed point. The extra counts matter when μ is a fraction of a photon:
// a symmetric μ ± 3σ window would keep only the values 0 and 1 and cut the
// long upper tail of the Poisson distribution (at μ = 0.3 the estimate came
// out 3 % low); three counts more above keep the tail to below 1e-4 of the
// pixels and are nothing against the σ of a bright background. Bragg spots
// sit far beyond the window either way. σ is floored at sqrt(μ): a
// photon-counting pixel cannot be quieter than Poisson.
//
// The overflow path: counts at or above 255 do not fit the exact bins. They
// are counted per shell on a log2 scale. A shell whose clip window reaches
// the top of its histogram (a bright background: long exposures, summed
// frames, 32-bit data) is histogrammed again in a second pass, with bins of
// 2^(b-7) counts covering [2^(b-2), 2^(b+1)) where 2^(b-1) <= median < 2^b;
// moments of binned data get Sheppard's correction w²/12. The second pass
// only happens on frames that need it and only counts the flagged shells.

const (
	histBits   = 8
	histBins   = 1 << histBits // exact bins per shell: counts 0..255 (0..254 for 8-bit frames)
	histCopies = 4             // interleaved histograms: consecutive pixels hit the same bin and would serialise on store-to-load forwarding
	// shellBins is the length of one shell's histogram in a copy: 16 bins
	// more than its 256, so that the low bins of the shells (where the
	// background counts are) fall in different cache sets. At 256 (1 KiB)
	// the 0-15 bins of every shell shared 4 of the 64 sets of the L1 cache,
	// and a row of a 4M frame crosses a hundred shells.
	shellBins = histBins + 16
	// histStride is the length of one copy: 256 more than the 256 shells'
	// histograms, so that the same bin of two copies is 1 KiB apart modulo
	// 4 KiB. At a multiple of 4 KiB the CPU takes an increment of one copy
	// for a possible alias of the store to the same bin of the previous
	// copy (it compares the low 12 address bits) and waits for it.
	histStride = 256*shellBins + histBins
	clipSigma  = 3.0
	startSigma = 5.0
	clipBelow  = 1.0 // counts added below μ - kσ
	clipAbove  = 3.0 // counts added above μ + kσ (see above)
	maxIter    = 50
)

// shellStats is the background of one shell in one frame.
type shellStats struct {
	n     int     // pixels of the shell in this frame (all-ones excluded)
	mean  float64 // clipped mean, counts
	sigma float64 // clipped standard deviation (floored at sqrt(mean)), counts
	used  int     // pixels inside the final clip window
}

// overflow counts the pixels of a shell at or above the exact bins.
type overflow struct {
	n   uint32
	log [33]uint32 // by bits.Len32(value)
}

// histCopy is one copy of the exact histograms of every shell.
type histCopy [histStride]uint32

// bin is the index of value v (< 256) of shell s in a histCopy.
func bin(s uint8, v uint32) uint32 { return uint32(s)*shellBins + v }

// histograms is the per-worker scratch of the background pass.
type histograms struct {
	bins [histCopies]histCopy // [copy][bin(shell, value)]
	over [256]overflow

	// Rebinned shells (second pass).
	rebin      [256]bool
	base       [256]uint32
	shift      [256]uint8
	below      [256]uint32 // rebinned pass: counts under base
	above      [256]uint32 // rebinned pass: counts at or above base + 256 << shift
	cum, sum   [histBins + 1]float64
	sumSq      [histBins + 1]float64
	merged     [histBins]uint32
	rebinCount int
}

func (h *histograms) reset(nShells int) {
	for c := range h.bins {
		clear(h.bins[c][:nShells*shellBins])
	}
	clear(h.over[:nShells])
	clear(h.rebin[:])
	h.rebinCount = 0
}

// fill is the first pass: exact histograms of every shell, over the
// shell's background sample (Tables.steps), and the overflow counts.
//
// Why steps: the pass is bound by memory and instructions, not by the
// arithmetic. The pixel index list and the shell table are 10 MB on a 4M
// frame, read on top of the 9 MB of pixels (the sample touches every
// cache line of them); the steps are 2.8 MB, and a step holds the shell.
func fill[T pixel](h *histograms, px []T, t *Tables) {
	if haveFillSteps && len(px) >= len(t.shell) {
		switch p := any(px).(type) {
		case []uint16:
			fillAsm(h, p, t.steps)
			return
		case []uint32:
			fillAsm(h, p, t.steps)
			return
		}
	}
	fillGo(h, px, t)
}

// fillAsm is fill for 16- and 32-bit frames through the assembly loops
// (fillSteps16, fillSteps32); the groups of four steps that they leave (a
// value above the exact bins) are counted here. On a bright frame most
// groups hold such a value, and a call per group costs more than the Go
// loop: once more than one group in eight was left (and at least 64), the
// Go loop does the rest.
func fillAsm[T uint16 | uint32](h *histograms, px []T, steps []uint16) {
	allOnes := uint32(^T(0))
	k, i, left := 0, 0, 0
	for len(steps)-k >= 4 {
		var n, at int
		switch p := any(px).(type) {
		case []uint16:
			n, at = fillSteps16(&h.bins[0], unsafe.SliceData(p), &steps[k], len(steps)-k, i)
		case []uint32:
			n, at = fillSteps32(&h.bins[0], unsafe.SliceData(p), &steps[k], len(steps)-k, i)
		}
		k, i = k+n, at
		if len(steps)-k < 4 {
			break
		}
		for _, q := range steps[k : k+4] {
			i += int(q & 0xff)
			h.fillOne(&h.bins[0], uint8(q>>8), uint32(px[i]), histBins, allOnes)
		}
		k += 4
		if left++; left >= 64 && left*8 > k/4 {
			break
		}
	}
	fillSteps(h, px, steps[k:], i)
}

// fillGo is fill's portable loop.
func fillGo[T pixel](h *histograms, px []T, t *Tables) { fillSteps(h, px, t.steps, 0) }

// fillSteps counts the sampled pixels of steps, the first at i plus the
// first step.
func fillSteps[T pixel](h *histograms, px []T, steps []uint16, i int) {
	allOnes := uint32(^T(0))
	lim := uint32(histBins)
	if allOnes < lim {
		lim = allOnes // 8-bit frames: 255 is the masked value, not a count
	}
	h0, h1, h2, h3 := &h.bins[0], &h.bins[1], &h.bins[2], &h.bins[3]
	k := 0
	for ; k+4 <= len(steps); k += 4 {
		q := steps[k : k+4 : k+4]
		i0 := i + int(q[0]&0xff)
		i1 := i0 + int(q[1]&0xff)
		i2 := i1 + int(q[2]&0xff)
		i3 := i2 + int(q[3]&0xff)
		i = i3
		v0, v1, v2, v3 := uint32(px[i0]), uint32(px[i1]), uint32(px[i2]), uint32(px[i3])
		s0, s1, s2, s3 := uint8(q[0]>>8), uint8(q[1]>>8), uint8(q[2]>>8), uint8(q[3]>>8)
		if max(v0, v1, v2, v3) < lim {
			h0[bin(s0, v0)]++
			h1[bin(s1, v1)]++
			h2[bin(s2, v2)]++
			h3[bin(s3, v3)]++
			continue
		}
		h.fillOne(h0, s0, v0, lim, allOnes)
		h.fillOne(h1, s1, v1, lim, allOnes)
		h.fillOne(h2, s2, v2, lim, allOnes)
		h.fillOne(h3, s3, v3, lim, allOnes)
	}
	for ; k < len(steps); k++ {
		i += int(steps[k] & 0xff)
		h.fillOne(h0, uint8(steps[k]>>8), uint32(px[i]), lim, allOnes)
	}
}

// fillOne counts one value of shell s in the histogram copy b.
func (h *histograms) fillOne(b *histCopy, s uint8, v, lim, allOnes uint32) {
	if v < lim {
		b[bin(s, v)]++
	} else {
		h.spill(s, v, allOnes)
	}
}

// spill records a value beyond the exact bins; the all-ones value is not a
// count but a pixel the detector masked in this frame, and excludedShell
// is the no-pixel of a long step (Tables.steps).
func (h *histograms) spill(s uint8, v, allOnes uint32) {
	if v == allOnes || s == excludedShell {
		return
	}
	o := &h.over[s]
	o.n++
	o.log[bits.Len32(v)]++
}

// refill is the second pass for shells flagged by estimate: binned
// histograms around their median. Only flagged shells are counted.
func refill[T pixel](h *histograms, px []T, t *Tables) {
	allOnes := uint32(^T(0))
	b := &h.bins[0]
	i := 0
	for _, q := range t.steps {
		i += int(q & 0xff)
		s := uint8(q >> 8)
		if !h.rebin[s] { // never excludedShell, the shell of a long step's no-pixel
			continue
		}
		v := uint32(px[i])
		if v == allOnes {
			continue
		}
		if v < h.base[s] {
			h.below[s]++
			continue
		}
		k := (v - h.base[s]) >> h.shift[s]
		if k >= histBins {
			h.above[s]++
			continue
		}
		b[bin(s, k)]++
	}
}

// estimate computes the background of shell s from the exact histograms.
// It reports whether the shell needs the binned second pass, and if so
// sets up its bins.
func (h *histograms) estimate(s int) (st shellStats, needRebin bool) {
	lo := s * shellBins
	for b := range h.merged {
		var c uint32
		for k := range h.bins {
			c += h.bins[k][lo+b]
		}
		h.merged[b] = c
	}
	over := h.over[s].n
	st, median, topHit := h.clip(0, 0, 1, over)
	if over == 0 || !topHit {
		return st, false
	}
	// The window reaches beyond the exact bins: find the median's octave
	// (counting the exact bins as values below 256) and bin around it.
	if median < 0 {
		half := (uint64(st.n) + 1) / 2
		cum := uint64(st.n) - uint64(over)
		median = histBins
		for b, c := range h.over[s].log {
			cum += uint64(c)
			if cum >= half {
				median = 1 << max(b-1, 0)
				break
			}
		}
	}
	oct := bits.Len32(uint32(max(median, 1)))
	shift := max(oct-7, 0)
	base := 0
	if oct >= 2 {
		base = 1 << (oct - 2)
	}
	h.rebin[s] = true
	h.base[s] = uint32(base)
	h.shift[s] = uint8(shift)
	h.below[s], h.above[s] = 0, 0
	clear(h.bins[0][lo : lo+histBins])
	return st, true
}

// estimateRebinned computes the background of a flagged shell from its
// binned histogram.
func (h *histograms) estimateRebinned(s int) shellStats {
	lo := s * shellBins
	copy(h.merged[:], h.bins[0][lo:lo+histBins])
	st, _, _ := h.clip(h.below[s], h.base[s], 1<<h.shift[s], h.above[s])
	return st
}

// clip runs median, MAD and sigma clipping on h.merged, whose bin b holds
// values base + b*w .. base + (b+1)*w - 1, with below and above pixels
// outside the bins. It returns the stats, the median value (-1 when it is
// above the bins) and whether the final window reached past the last bin
// while pixels lay above it.
func (h *histograms) clip(below, base, w, above uint32) (st shellStats, median int, topHit bool) {
	bw := float64(w)
	centre := func(b int) float64 { return float64(base) + float64(b)*bw + (bw-1)/2 }
	// Prefix sums over the occupied bins.
	top := -1
	for b := histBins - 1; b >= 0; b-- {
		if h.merged[b] != 0 {
			top = b
			break
		}
	}
	inBins := 0.0
	h.cum[0], h.sum[0], h.sumSq[0] = 0, 0, 0
	for b := 0; b <= top; b++ {
		c := float64(h.merged[b])
		v := centre(b)
		h.cum[b+1] = h.cum[b] + c
		h.sum[b+1] = h.sum[b] + c*v
		h.sumSq[b+1] = h.sumSq[b] + c*v*v
		inBins += c
	}
	total := float64(below) + inBins + float64(above)
	st.n = int(total)
	if total == 0 {
		return st, 0, false
	}
	// Median bin.
	half := total / 2
	mb := -1
	if float64(below) < half {
		for b := 0; b <= top; b++ {
			if float64(below)+h.cum[b+1] >= half {
				mb = b
				break
			}
		}
	}
	if mb < 0 {
		if float64(below) >= half {
			mb = 0 // pathological: most of the shell under the binned window
		} else {
			// Median above the bins: only estimate's octave search can help.
			st.mean = centre(histBins - 1)
			st.sigma = math.Sqrt(st.mean)
			return st, -1, true
		}
	}
	median = int(centre(mb))
	// MAD in bins: the smallest half-width d with half the pixels within
	// [mb-d, mb+d].
	mad := 0
	if top >= 0 {
		for d := 0; ; d++ {
			l, r := max(mb-d, 0), min(mb+d, top)
			within := h.cum[r+1] - h.cum[l]
			if within >= half || (l == 0 && r == top) {
				mad = d
				break
			}
		}
	}
	mu := centre(mb)
	sigma := math.Max(1.4826*float64(mad)*bw, math.Sqrt(math.Max(mu, 1)))
	k := startSigma
	bl, bh := -1, -1
	var n, mean, variance float64
	sheppard := (bw*bw - 1) / 12
	for iter := 0; iter < maxIter; iter++ {
		loV := mu - k*sigma - clipBelow
		hiV := mu + k*sigma + clipAbove
		nl := max(int(math.Ceil((loV-float64(base)-(bw-1)/2)/bw)), 0)
		nh := min(int(math.Floor((hiV-float64(base)-(bw-1)/2)/bw)), top)
		if nh < nl {
			break
		}
		if nl == bl && nh == bh {
			break
		}
		bl, bh = nl, nh
		n = h.cum[bh+1] - h.cum[bl]
		if n == 0 {
			break
		}
		mean = (h.sum[bh+1] - h.sum[bl]) / n
		variance = (h.sumSq[bh+1]-h.sumSq[bl])/n - mean*mean - sheppard
		mu = mean
		sigma = math.Sqrt(math.Max(variance, math.Max(mean, 0)))
		k = clipSigma
		// The window would extend past the bins while pixels lie there.
		topHit = above > 0 && mu+k*sigma+clipAbove >= centre(histBins-1)
	}
	if n == 0 {
		// Degenerate shell (every pixel outside any window): median alone.
		mean = centre(mb)
		sigma = math.Sqrt(math.Max(mean, 1))
	}
	st.mean = mu
	st.sigma = sigma
	st.used = int(n)
	return st, median, topHit
}
