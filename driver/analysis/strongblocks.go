package analysis

import (
	"math/bits"
	"slices"
	"unsafe"
)

// The block scan of the strong-pixel test for 16-bit frames.
//
// Why: strongPixels looks up every pixel's shell and that shell's
// threshold, about 0.9 ns per pixel and 4 of the 10 ms the threshold
// method spends on a real 4M frame, while strong pixels are a few thousand
// of millions. A run of strongBlock pixels lies in a few adjacent shells,
// so the lowest threshold of those shells (its bound) is a threshold for
// all of the run that needs no shell lookup: the vector kernel compares 32
// pixels with it in a handful of instructions (AVX2: two loads, two
// saturating subtractions, a compare, a pack, a movemask) and yields the
// bit mask of the block's pixels above the bound, minus the statically
// excluded ones (module gaps, masks, beamstop: they hold any value, gaps
// arrive all-ones). Only those pixels are then tested against their own
// shell's threshold, in index order: the strong list and the masked count
// are exactly strongPixels'. An overloaded frame (more strong pixels than
// the limit) is handed back to strongPixels, which knows where to cut.

const (
	strongBlock = 32 // pixels per block: one 64-byte cache line of 16-bit pixels
	// maxBlockSpan is the widest range of regular shells a block may span
	// and still get a bound (the rest get 0: every non-zero pixel is
	// tested). Equal steps of 1/d² make shells a few pixels wide at the
	// edge of a 4M detector: a block spans up to five of the default 128
	// (six of 250).
	maxBlockSpan = 6
	// blockPixel is the span index of a block with bound 0: the entry
	// after the table's spans, which is always 0.
	blockPixel = maxBlockSpan * 256
)

// blockTables are the static tables of the block scan (Tables.blocks).
type blockTables struct {
	// shells per whole block: the index in strongScratch.span of its
	// regular shells' range ((highest - lowest)*256 + lowest), or
	// blockPixel when it has two ice bands or spans more than
	// maxBlockSpan shells, | its ice band (excludedShell for none)<<16.
	shells []uint32
	// excl per whole block: bit j set when pixel j is statically excluded.
	excl []uint32
}

// newBlockTables builds the block scan's tables from the shell map.
func newBlockTables(shell []uint8, nRegular int) blockTables {
	nb := len(shell) / strongBlock
	bt := blockTables{shells: make([]uint32, nb), excl: make([]uint32, nb)}
	for b := range nb {
		lo, hi, ice := uint8(excludedShell), uint8(0), uint8(excludedShell)
		var excl uint32
		twoBands := false
		for j, s := range shell[b*strongBlock : (b+1)*strongBlock] {
			switch {
			case s == excludedShell:
				excl |= 1 << j
			case int(s) < nRegular:
				lo, hi = min(lo, s), max(hi, s)
			case ice == excludedShell || ice == s:
				ice = s
			default:
				twoBands = true
			}
		}
		bt.excl[b] = excl
		switch {
		case twoBands || (lo <= hi && int(hi-lo) >= maxBlockSpan):
			bt.shells[b] = blockPixel | uint32(excludedShell)<<16
		case lo > hi: // no regular shell: the ice band alone, or nothing
			bt.shells[b] = uint32(ice) | uint32(ice)<<16
		default:
			bt.shells[b] = uint32(lo) + uint32(hi-lo)*256 | uint32(ice)<<16
		}
	}
	return bt
}

// strongScratch is an Analyser's scratch of the block scan.
type strongScratch struct {
	span [maxBlockSpan*256 + 1]uint16 // span[w*256+s]: lowest threshold of shells s..s+w; the last is 0
	cand []uint64                     // block | mask of its pixels above the bound<<32, descending
	pix  []int32                      // the pixels to test against their shell's threshold, ascending
}

// strongPixelsBlocks is strongPixels for 16-bit frames through the block
// scan, for a frame that is not overloaded; ok is false where the scan is
// not available (no kernel on this CPU) or the frame is overloaded (more
// than limit strong pixels), and then dst is returned as it came:
// strongPixels does the work, and knows where to cut.
func strongPixelsBlocks[T pixel](sc *strongScratch, t *Tables, dst []int32, limit int, px []T, thr *[256]uint32) (_ []int32, masked int, ok bool) {
	if !haveBlockScan || unsafe.Sizeof(px[0]) != 2 || t.blocks.shells == nil {
		return dst, 0, false
	}
	p16 := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(px))), len(px))
	span := &sc.span
	for s, v := range thr {
		span[s] = uint16(min(v, 0xFFFF)) // excludedShell: 0xFFFF, never the lowest
	}
	for w := 1; w < maxBlockSpan; w++ {
		for s := range 256 - w {
			span[w*256+s] = min(span[(w-1)*256+s], span[s+w])
		}
	}
	span[blockPixel] = 0
	shells := t.blocks.shells
	nb := len(shells)
	if cap(sc.cand) < nb {
		sc.cand = make([]uint64, nb)
	}
	cand := sc.cand[:nb]
	nc := 0
	if nb > 0 {
		nc = scanBlocks16(&p16[0], &shells[0], &span[0], &t.blocks.excl[0], nb, &cand[0])
	}
	// The pixels above their block's bound, and those after the last
	// whole block, then the exact test of each against its shell's
	// threshold. The test is branch-free: whether a pixel passes is as
	// likely as not, and a mispredicted branch on it waited for its shell
	// (a cache miss, the shell map being 4.5 MB on a 4M frame) before the
	// next pixel's load could start.
	pix := sc.pix[:0]
	for j := nc - 1; j >= 0; j-- { // the kernel lists the blocks from the last
		c := cand[j]
		base := int32(uint32(c)) * strongBlock
		for m := uint32(c >> 32); m != 0; m &= m - 1 {
			pix = append(pix, base+int32(bits.TrailingZeros32(m)))
		}
	}
	for k := nb * strongBlock; k < len(p16); k++ {
		pix = append(pix, int32(k))
	}
	sc.pix = pix
	n0 := len(dst)
	dst = slices.Grow(dst, len(pix))[:n0+len(pix)]
	out := dst[n0:]
	shell := t.shell[:len(p16)]
	n := 0
	for _, k := range pix {
		v := uint32(p16[k])
		up := b2i(v > thr[shell[k]])
		mk := b2i(v == 0xFFFF)
		out[n] = k
		n += up &^ mk
		masked += up & mk
	}
	if n > limit-n0 {
		return dst[:n0], 0, false // overloaded
	}
	return dst[:n0+n], masked, true
}

// b2i is 1 for true, without a branch.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
