package analysis

import "math"

// DIALS' dispersion test (dials/algorithms/image/threshold/local.h,
// DispersionThreshold, the "dispersion" algorithm of dials.find_spots).
// For each valid pixel, with m valid pixels in the (2k+1)² box around it
// (itself included), S their sum and Q their sum of squares:
//
//	background-rejecting:  m Q - S²  >  g S (m - 1 + σ_b sqrt(2 (m-1)))
//	                       (index of dispersion var/mean above 1 by σ_b of its spread)
//	strong:                m v - S   >  σ_s sqrt(g S m)
//	                       (v above the local mean by σ_s Poisson σ)
//
// and v > global-threshold, m >= min-local. Like DIALS, values of 2^24 and
// more are left out of the box sums (they are overloads, not background).
//
// DIALS builds summed-area tables of the whole frame; here the box sums
// slide: per-column sums over the 2k+1 rows around the current row are
// updated by one row in and one row out (updateColumns), and the box sums
// slide along the row by one column in and one column out (slideRow). The
// sums are integers, so the sliding is exact, and the scratch is a few
// rows, not tables the size of the frame. What makes it cheap per pixel:
//
//   - m and S share one uint64 (m above bit dispersionShift, S below it):
//     both are sums of non-negative integers and S < 2^40 for any box of
//     fewer than 2^16 pixels below 2^24, so adding and subtracting packed
//     words is exact in each field: one word, one add, one subtract carry
//     both sums.
//   - The packed pixels of the box's rows are kept in a ring of 2k+1 rows,
//     so the leaving row is not tested for validity again, and Q's column
//     sums take its square from there.
//   - The strong test, for a full box (m = (2k+1)², all pixels but those
//     near edges, gaps and masks) of a sum S below dispersionVminLen, is
//     v >= vmin[S], a table of the least v that passes it: one load and
//     one compare instead of conversions and products in floating point,
//     and no unpredictable branch (true for a random few per cent of
//     background pixels). The table is the test itself, exactly (see
//     fillVmin); other boxes take the test in floating point.
//   - Only the pixels passing the strong test (a few per cent) sum Q over
//     the 2k+1 columns and take the background-rejecting test, with
//     DIALS' expressions on the same exact integers.

const (
	dispersionBig   = 1 << 24
	dispersionShift = 40
	dispersionMaskS = 1<<dispersionShift - 1
	dispersionOne   = 1 << dispersionShift // one valid pixel in the m field
)

type dispersionScratch struct {
	col  []uint64  // packed column sums: k+1 zero words, the columns, k zero words
	colQ []uint64  // column sums of squares, padded as col
	ring []uint64  // packed pixels of the 2k+1 rows in the box, row r at r mod (2k+1)
	none []uint8   // a row of excludedShell: the rows beyond the frame
	cand []int32   // x of the current row's candidates
	cacc []uint64  // their packed box sums
	bTab []float64 // per m: m - 1 + σ_b sqrt(2 (m-1))
	tabK int
	tabB float64

	// vmin[S]: the least v passing strongAbove in a full box of S; built
	// for vminBox and vminStrong2.
	vmin        []uint32
	vminBox     uint64
	vminStrong2 float64
}

// dispersionVminLen is how many box sums S the table vmin covers: boxes
// of a mean up to 334 counts (7 x 7) take the table, brighter ones the
// floating-point test; 64 KiB of table.
const dispersionVminLen = 1 << 14

func (d *dispersionScratch) prepare(width int, p *Params) {
	k := p.KernelSize
	d.col = grow(d.col, width+2*k+1)
	clear(d.col)
	d.colQ = grow(d.colQ, width+2*k+1)
	clear(d.colQ)
	d.ring = grow(d.ring, (2*k+1)*width)
	clear(d.ring)
	d.cand = grow(d.cand, width)
	d.cacc = grow(d.cacc, width)
	if len(d.none) != width {
		d.none = grow(d.none, width)
		for i := range d.none {
			d.none[i] = excludedShell
		}
	}
	box := (2*k + 1) * (2*k + 1)
	if d.tabK != k || d.tabB != p.SigmaBackground || len(d.bTab) != box+1 {
		d.bTab = grow(d.bTab, box+1)
		for m := range d.bTab {
			if m >= 1 {
				d.bTab[m] = float64(m-1) + p.SigmaBackground*math.Sqrt(2*float64(m-1))
			}
		}
		d.tabK, d.tabB = k, p.SigmaBackground
	}
	strong2 := p.SigmaStrong * p.SigmaStrong * p.EffectiveGain()
	if d.vminBox != uint64(box) || d.vminStrong2 != strong2 || len(d.vmin) != dispersionVminLen {
		d.vmin = grow(d.vmin, dispersionVminLen)
		fillVmin(d.vmin, uint64(box), strong2)
		d.vminBox, d.vminStrong2 = uint64(box), strong2
	}
}

// fillVmin fills vmin[S] with the least v for which strongAbove holds in a
// box of m pixels summing to S (math.MaxUint32 if none does). strongAbove
// is monotonic in v (b = m v - S is exact, and rounding b |b| keeps its
// order), so "v >= vmin[S]" is strongAbove itself, exactly: one load and
// one compare in place of three conversions and four products.
func fillVmin(vmin []uint32, m uint64, strong2 float64) {
	for s := range vmin {
		acc := m<<dispersionShift | uint64(s)
		test := func(v uint64) bool { return strongAbove(uint32(v), acc, strong2) }
		// The real solution of m v - S = sqrt(strong2 S m), then the
		// integer step where the test turns.
		fs, fm := float64(s), float64(m)
		est := (fs + math.Sqrt(strong2*fs*fm)) / fm
		v := uint64(math.MaxUint32)
		if est < math.MaxUint32-2 {
			v = uint64(max(est, 0))
		}
		for v > 0 && test(v-1) {
			v--
		}
		for v < math.MaxUint32 && !test(v) {
			v++
		}
		if !test(v) {
			v = math.MaxUint32 // only all ones, which is never valid, remains
		}
		vmin[s] = uint32(v)
	}
}

// packed returns a pixel's contribution to the packed box sums: one in m
// and v in S, or nothing when it is excluded, not a count (all ones) or
// an overload (2^24 and more).
func packed(v, allOnes uint32, s uint8) uint64 {
	if s == excludedShell || v == allOnes || v >= dispersionBig {
		return 0
	}
	return dispersionOne | uint64(v)
}

func dispersion[T pixel](d *dispersionScratch, dst []int32, limit int, px []T, shell []uint8, width int, p *Params) ([]int32, bool) {
	height := len(px) / width
	k := p.KernelSize
	d.prepare(width, p)
	allOnes := uint32(^T(0))
	gain := p.EffectiveGain()
	strong2 := p.SigmaStrong * p.SigmaStrong * gain
	// Column c's sum is col[c+k+1]; the box of x spans col[x+1 .. x+2k+1],
	// so it slides by col[x+2k+1] in and col[x] out, the zero padding
	// standing for the columns beyond the frame's edges.
	cols := d.col[k+1 : k+1+width]
	colsQ := d.colQ[k+1 : k+1+width]
	in, out := d.col[2*k+1:2*k+1+width], d.col[:width]
	cand, cacc := d.cand[:width], d.cacc[:width]
	rows := 2*k + 1
	slot := func(r int) []uint64 { return d.ring[r%rows*width : (r%rows+1)*width] }
	for y := 0; y < k && y < height; y++ {
		updateColumns(cols, colsQ, slot(y), px[y*width:(y+1)*width], shell[y*width:(y+1)*width])
	}
	for y := 0; y < height; y++ {
		// Row y+k enters the box and takes the ring slot of row y-k-1,
		// which leaves; beyond the frame, a row of excluded pixels
		// contributes nothing.
		nrow, nsh := px[:width], d.none
		if y+k < height {
			nrow, nsh = px[(y+k)*width:(y+k+1)*width], shell[(y+k)*width:(y+k+1)*width]
		}
		updateColumns(cols, colsQ, slot(y+k), nrow, nsh)

		var acc uint64 // the box of x = -1: columns 0..k-1
		for _, c := range d.col[:2*k+1] {
			acc += c
		}
		n := slideRow(in, out, px[y*width:(y+1)*width], cand, cacc, acc, strong2, d.vmin, d.vminBox)
		for i := range n {
			x := int(cand[i])
			if dispersionTail(px, shell, d.colQ[x+1:x+2*k+2], cacc[i], y*width+x, allOnes, p, gain, d.bTab) {
				if len(dst) >= limit {
					return dst, true
				}
				dst = append(dst, int32(y*width+x))
			}
		}
	}
	return dst, false
}

// updateColumns moves the column sums (packed m and S in cols, Q in colsQ)
// down one row: the row (row, sh) enters, the row in slot leaves, and slot
// takes the entering row's packed pixels. It is a function of its own, as is slideRow, so that the compiler
// keeps its few values in registers; inside dispersion, with the
// candidates' calls around, they went to the stack at every pixel.
//
//go:noinline
func updateColumns[T pixel](cols, colsQ, slot []uint64, row []T, sh []uint8) {
	allOnes := uint32(^T(0))
	colsQ, slot, row, sh = colsQ[:len(cols)], slot[:len(cols)], row[:len(cols)], sh[:len(cols)]
	for x := range cols {
		w := packed(uint32(row[x]), allOnes, sh[x])
		o := slot[x]
		cols[x] += w - o
		slot[x] = w
		ws, os := w&dispersionMaskS, o&dispersionMaskS
		colsQ[x] += ws*ws - os*os
	}
}

// slideRow slides the box along a row (acc holds the box of x = -1 and
// moves by in[x] in, out[x] out) and notes the x and box sums of the
// pixels passing strongAbove in cand and cacc; it returns how many it
// noted. A full box (m = box, all but the boxes at edges, gaps and masks)
// of a sum within vmin takes the test as v >= vmin[S].
//
//go:noinline
func slideRow[T pixel](in, out []uint64, row []T, cand []int32, cacc []uint64, acc uint64, strong2 float64, vmin []uint32, box uint64) int {
	out, row = out[:len(in)], row[:len(in)]
	n := 0
	for x := range in {
		acc += in[x] - out[x]
		v := uint32(row[x])
		if s := acc & dispersionMaskS; acc>>dispersionShift == box && s < uint64(len(vmin)) {
			if v < vmin[s] {
				continue
			}
		} else if !strongAbove(v, acc, strong2) {
			continue
		}
		cand[n], cacc[n] = int32(x), acc
		n++
	}
	return n
}

// strongAbove is DIALS' strong test, m v - S > σ_s sqrt(g S m), for the
// packed box sums acc, in the form b |b| > σ_s² g S m with b = m v - S:
// for b > 0 that is b² against the same product, as the square of both
// sides, as the test was written before; for b <= 0 it is false, as the
// test is. The operands are exact integers in float64 (below 2^53), so the
// same pixels pass, and the form is monotonic in v, which fillVmin needs.
func strongAbove(v uint32, acc uint64, strong2 float64) bool {
	m, s := acc>>dispersionShift, acc&dispersionMaskS
	fm, fs := float64(m), float64(s)
	b := float64(int64(uint64(v)*m) - int64(s))
	return b*math.Abs(b) > strong2*fs*fm
}

// dispersionTail completes the test of pixel i, which passed strongAbove
// with the packed box sums acc: its own validity, the minimum count, the
// global threshold, and the background-rejecting test, with Q summed from
// colQ, the 2k+1 column sums of squares of its box.
func dispersionTail[T pixel](px []T, shell []uint8, colQ []uint64, acc uint64, i int, allOnes uint32, p *Params, gain float64, bTab []float64) bool {
	v := uint32(px[i])
	m := acc >> dispersionShift
	if shell[i] == excludedShell || v == allOnes || m < uint64(p.MinLocal) || float64(v) <= p.GlobalThreshold {
		return false
	}
	var q uint64
	for _, c := range colQ {
		q += c
	}
	fm, fs := float64(m), float64(acc&dispersionMaskS)
	return fm*float64(q)-fs*fs > gain*fs*bTab[m]
}
