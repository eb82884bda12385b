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
// DIALS builds a summed-area table of the whole frame; here the box sums
// slide: per-column sums over the 2k+1 rows around the current row are
// updated by one row in and one row out, and the box sums slide along the
// row by one column in and one column out. The sums are integers, so the
// sliding is exact, and the scratch is three rows of columns, not a table
// the size of the frame.

const dispersionBig = 1 << 24

type dispersionScratch struct {
	colN []int32
	colS []int64
	colQ []int64
	bTab []float64 // per m: m - 1 + σ_b sqrt(2 (m-1))
	tabK int
	tabB float64
}

func (d *dispersionScratch) prepare(width int, p *Params) {
	d.colN = grow(d.colN, width)
	d.colS = grow(d.colS, width)
	d.colQ = grow(d.colQ, width)
	clear(d.colN)
	clear(d.colS)
	clear(d.colQ)
	box := (2*p.KernelSize + 1) * (2*p.KernelSize + 1)
	if d.tabK != p.KernelSize || d.tabB != p.SigmaBackground || len(d.bTab) != box+1 {
		d.bTab = grow(d.bTab, box+1)
		for m := range d.bTab {
			if m >= 1 {
				d.bTab[m] = float64(m-1) + p.SigmaBackground*math.Sqrt(2*float64(m-1))
			}
		}
		d.tabK, d.tabB = p.KernelSize, p.SigmaBackground
	}
}

// addRow adds (sign +1) or removes (sign -1) row y to the column sums.
func addRow[T pixel](d *dispersionScratch, px []T, shell []uint8, width, y int, sign int64) {
	allOnes := uint32(^T(0))
	row := px[y*width : (y+1)*width]
	srow := shell[y*width : (y+1)*width]
	colN, colS, colQ := d.colN[:width], d.colS[:width], d.colQ[:width]
	for x, p := range row {
		v := uint32(p)
		if srow[x] == excludedShell || v == allOnes || v >= dispersionBig {
			continue
		}
		colN[x] += int32(sign)
		colS[x] += sign * int64(v)
		colQ[x] += sign * int64(v) * int64(v)
	}
}

func dispersion[T pixel](d *dispersionScratch, dst []int32, limit int, px []T, shell []uint8, width int, p *Params) ([]int32, bool) {
	height := len(px) / width
	k := p.KernelSize
	d.prepare(width, p)
	allOnes := uint32(^T(0))
	gain := p.EffectiveGain()
	strong2 := p.SigmaStrong * p.SigmaStrong * gain
	gthr := p.GlobalThreshold
	minLocal := int32(p.MinLocal)
	for y := 0; y < k && y < height; y++ {
		addRow(d, px, shell, width, y, 1)
	}
	colN, colS, colQ := d.colN[:width], d.colS[:width], d.colQ[:width]
	bTab := d.bTab
	for y := 0; y < height; y++ {
		if y+k < height {
			addRow(d, px, shell, width, y+k, 1)
		}
		if y-k-1 >= 0 {
			addRow(d, px, shell, width, y-k-1, -1)
		}
		row := px[y*width : (y+1)*width]
		srow := shell[y*width : (y+1)*width]
		var m int32
		var s, q int64
		for x := 0; x < k && x < width; x++ {
			m += colN[x]
			s += colS[x]
			q += colQ[x]
		}
		for x := 0; x < width; x++ {
			if x+k < width {
				m += colN[x+k]
				s += colS[x+k]
				q += colQ[x+k]
			}
			if x-k-1 >= 0 {
				m -= colN[x-k-1]
				s -= colS[x-k-1]
				q -= colQ[x-k-1]
			}
			v := uint32(row[x])
			if srow[x] == excludedShell || v == allOnes || m < minLocal || float64(v) <= gthr {
				continue
			}
			fm, fs, fv := float64(m), float64(s), float64(v)
			b := fm*fv - fs
			if b <= 0 || b*b <= strong2*fs*fm {
				continue
			}
			if fm*float64(q)-fs*fs > gain*fs*bTab[m] {
				if len(dst) >= limit {
					return dst, true
				}
				dst = append(dst, int32(y*width+x))
			}
		}
	}
	return dst, false
}
