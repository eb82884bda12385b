package codec

import "fmt"

// Bit layout of one bitshuffle block (the bitshuffle library's format):
//
// A block of m elements (m a multiple of 8) of s bytes each is stored as 8*s
// "bit rows" of m/8 bytes. Bit b of byte j of element i sits in row
// r = 8*j + b, at byte r*(m/8) + i/8, bit i%8. Row 8*j+b thus holds bit b of
// byte j of every element, eight elements per byte.
//
// How the transpose works. Take 64 consecutive elements: they occupy 8 bytes
// (one little-endian uint64) in each of the 8*s rows, and 8*s uint64 words of
// output. Number the bits of those 8*s words by (W, Y, B): W the word, Y the
// byte within the word (3 bits), B the bit within the byte (3 bits). In the
// shuffled words W = (j, b), Y = k, B = u, where the element is 8k+u within
// the 64; in the plain words the byte address 8W+Y is the element's byte,
// (8k+u)*s + j, and B = b. Moving between the two is a permutation of index
// bits (the bits of j, b, k and u trade places), and each exchange
// of one word-index bit with one in-word position bit is a "delta swap"
// between pairs of words: t = ((a >> d) ^ b) & m; b ^= t; a ^= t << d.
// Six such exchanges do the whole transpose for any element size, at six
// integer operations per pair of words: about 2.3 operations per byte. The
// stages are their own inverses, so shuffling runs the same stages
// backwards.

// dswap exchanges the bits of a at positions p+d (for every p selected by m)
// with the bits of b at positions p. m must select only positions whose bit
// log2(d) is 0.
func dswap(a, b uint64, d uint, m uint64) (uint64, uint64) {
	t := ((a >> d) ^ b) & m
	return a ^ (t << d), b ^ t
}

// Masks for the delta swaps, indexed by the in-word position bit q they
// exchange (d = 1 << q): each selects the positions whose bit q is 0.
const (
	m0 = 0x5555555555555555 // q=0, d=1  (bit-in-byte bit 0)
	m1 = 0x3333333333333333 // q=1, d=2  (bit-in-byte bit 1)
	m2 = 0x0F0F0F0F0F0F0F0F // q=2, d=4  (bit-in-byte bit 2)
	m3 = 0x00FF00FF00FF00FF // q=3, d=8  (byte-in-word bit 0)
	m4 = 0x0000FFFF0000FFFF // q=4, d=16 (byte-in-word bit 1)
	m5 = 0x00000000FFFFFFFF // q=5, d=32 (byte-in-word bit 2)
)

// checkBlock panics with a clear message when BitShuffle/BitUnshuffle are
// called with buffers that are not one valid block. These are programming
// errors (the decoder validates its input before it gets here).
func checkBlock(op string, dst, src []byte, elemSize int) {
	if !validElemSize(elemSize) {
		panic(fmt.Sprintf("codec.%s: element size %d (want 1, 2, 4 or 8)", op, elemSize))
	}
	if len(dst) != len(src) || len(src)%(8*elemSize) != 0 {
		panic(fmt.Sprintf("codec.%s: len(dst)=%d len(src)=%d, want equal and a multiple of %d", op, len(dst), len(src), 8*elemSize))
	}
}

// BitUnshuffle undoes BitShuffle for one block: src holds the 8*elemSize bit
// rows of len(src)/(8*elemSize) bytes each, dst receives the elements.
// len(dst) must equal len(src) and be a multiple of 8*elemSize; elemSize
// must be 1, 2, 4 or 8. It panics otherwise (a programming error). dst and
// src must not overlap.
func BitUnshuffle(dst, src []byte, elemSize int) {
	checkBlock("BitUnshuffle", dst, src, elemSize)
	transposeBlock(dst, src, elemSize, false)
}

// BitShuffle bit-shuffles one block of elements: element i's byte j bit b
// goes to bit i%8 of byte r*(m/8)+i/8 with r = 8*j+b, m = len(src)/elemSize.
// len(dst) must equal len(src) and be a multiple of 8*elemSize; elemSize
// must be 1, 2, 4 or 8. It panics otherwise (a programming error). dst and
// src must not overlap.
func BitShuffle(dst, src []byte, elemSize int) {
	checkBlock("BitShuffle", dst, src, elemSize)
	transposeBlock(dst, src, elemSize, true)
}

// transposeBlock runs the chunk kernels over the whole 64-element chunks of
// a block and pads the last partial chunk (blocks are multiples of 8, not of
// 64, elements) through a small stack buffer.
func transposeBlock(dst, src []byte, s int, shuffle bool) {
	rowLen := len(src) / (8 * s) // bytes per bit row = elements / 8
	full := rowLen &^ 7          // row bytes covered by whole 64-element chunks
	if full > 0 {
		runKernel(dst, src, s, rowLen, full, shuffle)
	}
	rem := rowLen - full
	if rem == 0 {
		return
	}
	// The partial chunk: rem bytes per row, rem*8 elements.
	var rows, elems [64 * MaxElemSize]byte
	rowsBuf, elemsBuf := rows[:64*s], elems[:64*s]
	plain := rem * 8 * s // bytes of elements in the partial chunk
	if shuffle {
		copy(elemsBuf, src[full*8*s:])
		runKernel(rowsBuf, elemsBuf, s, 8, 8, true)
		for r := 0; r < 8*s; r++ {
			copy(dst[r*rowLen+full:r*rowLen+rowLen], rowsBuf[r*8:r*8+rem])
		}
		return
	}
	for r := 0; r < 8*s; r++ {
		copy(rowsBuf[r*8:r*8+rem], src[r*rowLen+full:r*rowLen+rowLen])
	}
	runKernel(elemsBuf, rowsBuf, s, 8, 8, false)
	copy(dst[full*8*s:], elemsBuf[:plain])
}

// runKernel transposes the 64-element chunks at row offsets 0, 8, ...,
// full-8. For unshuffle src is the rows and dst the elements; for shuffle
// the other way round. The kernels load and store without bounds checks
// (ld64, st64); the check here, once per block, is what keeps every offset
// they form (below 8*s*rowLen) inside both buffers.
func runKernel(dst, src []byte, s, rowLen, full int, shuffle bool) {
	if full < 0 || full%8 != 0 || full > rowLen || len(src) < 8*s*rowLen || len(dst) < 8*s*rowLen {
		panic(fmt.Sprintf("codec: internal error: transpose of %d/%d bytes, row %d, chunks to %d", len(dst), len(src), rowLen, full))
	}
	switch {
	case s == 1 && !shuffle:
		unshuffle1(dst, src, rowLen, unshuffle1Vec(dst, src, rowLen, full), full)
	case s == 1:
		shuffle1(dst, src, rowLen, full)
	case s == 2 && !shuffle:
		unshuffle2(dst, src, rowLen, unshuffle2Vec(dst, src, rowLen, full), full)
	case s == 2:
		shuffle2(dst, src, rowLen, full)
	case s == 4 && !shuffle:
		unshuffle4(dst, src, rowLen, unshuffle4Vec(dst, src, rowLen, full), full)
	case s == 4:
		shuffle4(dst, src, rowLen, full)
	case s == 8 && !shuffle:
		unshuffle8(dst, src, rowLen, full)
	default:
		shuffle8(dst, src, rowLen, full)
	}
}

// unshuffle2Vec runs the vector kernel of vecLevel (see
// bitshuffle_amd64.go), if any, over the leading chunks of the 2-byte
// unshuffle (arguments as for runKernel) and returns the row offset where
// the portable unshuffle2 must continue: 0 where there is none.
func unshuffle2Vec(dst, src []byte, rowLen, full int) int {
	return unshuffle2Level(dst, src, rowLen, full, vecLevel)
}

// unshuffle1Vec is unshuffle2Vec for the 1-byte unshuffle.
func unshuffle1Vec(dst, src []byte, rowLen, full int) int {
	return unshuffle1Level(dst, src, rowLen, full, vecLevel)
}

// unshuffle4Vec is unshuffle2Vec for the 4-byte unshuffle.
func unshuffle4Vec(dst, src []byte, rowLen, full int) int {
	return unshuffle4Level(dst, src, rowLen, full, vecLevel)
}

// The stages, as functions over 8 words that the compiler inlines. Comments
// name the index bits each stage exchanges (see the top of this file).

// transpose8 is the full 8x64 bit transpose of the 1-byte case: stages 1-3
// exchange the word index with the bit-in-byte index, stages 4-6 the word
// index with the byte-in-word index.
func transpose8(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0, x1, x2, x3, x4, x5, x6, x7 = stagesB(x0, x1, x2, x3, x4, x5, x6, x7)
	return stagesY(x0, x1, x2, x3, x4, x5, x6, x7)
}

// untranspose8 inverts transpose8 (the same stages in reverse order).
func untranspose8(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0, x1, x2, x3, x4, x5, x6, x7 = unstagesY(x0, x1, x2, x3, x4, x5, x6, x7)
	return unstagesB(x0, x1, x2, x3, x4, x5, x6, x7)
}

// stagesY exchange the 3-bit index of 8 words with their byte-in-word index:
// stages 4-6 of the 1-byte case, and of the 8-byte case across planes.
func stagesY(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0, x4 = dswap(x0, x4, 32, m5)
	x1, x5 = dswap(x1, x5, 32, m5)
	x2, x6 = dswap(x2, x6, 32, m5)
	x3, x7 = dswap(x3, x7, 32, m5)
	x0, x2 = dswap(x0, x2, 16, m4)
	x1, x3 = dswap(x1, x3, 16, m4)
	x4, x6 = dswap(x4, x6, 16, m4)
	x5, x7 = dswap(x5, x7, 16, m4)
	x0, x1 = dswap(x0, x1, 8, m3)
	x2, x3 = dswap(x2, x3, 8, m3)
	x4, x5 = dswap(x4, x5, 8, m3)
	x6, x7 = dswap(x6, x7, 8, m3)
	return x0, x1, x2, x3, x4, x5, x6, x7
}

// unstagesY inverts stagesY.
func unstagesY(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0, x1 = dswap(x0, x1, 8, m3)
	x2, x3 = dswap(x2, x3, 8, m3)
	x4, x5 = dswap(x4, x5, 8, m3)
	x6, x7 = dswap(x6, x7, 8, m3)
	x0, x2 = dswap(x0, x2, 16, m4)
	x1, x3 = dswap(x1, x3, 16, m4)
	x4, x6 = dswap(x4, x6, 16, m4)
	x5, x7 = dswap(x5, x7, 16, m4)
	x0, x4 = dswap(x0, x4, 32, m5)
	x1, x5 = dswap(x1, x5, 32, m5)
	x2, x6 = dswap(x2, x6, 32, m5)
	x3, x7 = dswap(x3, x7, 32, m5)
	return x0, x1, x2, x3, x4, x5, x6, x7
}

// stagesB are stages 1-3, common to every element size: within the 8 words
// of one byte plane j, exchange the word index b (the bit number) with the
// bit-in-byte index u (the element number mod 8). Afterwards word w holds,
// at byte k bit b, bit b of the element 8k+w.
func stagesB(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0, x4 = dswap(x0, x4, 4, m2)
	x1, x5 = dswap(x1, x5, 4, m2)
	x2, x6 = dswap(x2, x6, 4, m2)
	x3, x7 = dswap(x3, x7, 4, m2)
	x0, x2 = dswap(x0, x2, 2, m1)
	x1, x3 = dswap(x1, x3, 2, m1)
	x4, x6 = dswap(x4, x6, 2, m1)
	x5, x7 = dswap(x5, x7, 2, m1)
	x0, x1 = dswap(x0, x1, 1, m0)
	x2, x3 = dswap(x2, x3, 1, m0)
	x4, x5 = dswap(x4, x5, 1, m0)
	x6, x7 = dswap(x6, x7, 1, m0)
	return x0, x1, x2, x3, x4, x5, x6, x7
}

// unstagesB inverts stagesB.
func unstagesB(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0, x1 = dswap(x0, x1, 1, m0)
	x2, x3 = dswap(x2, x3, 1, m0)
	x4, x5 = dswap(x4, x5, 1, m0)
	x6, x7 = dswap(x6, x7, 1, m0)
	x0, x2 = dswap(x0, x2, 2, m1)
	x1, x3 = dswap(x1, x3, 2, m1)
	x4, x6 = dswap(x4, x6, 2, m1)
	x5, x7 = dswap(x5, x7, 2, m1)
	x0, x4 = dswap(x0, x4, 4, m2)
	x1, x5 = dswap(x1, x5, 4, m2)
	x2, x6 = dswap(x2, x6, 4, m2)
	x3, x7 = dswap(x3, x7, 4, m2)
	return x0, x1, x2, x3, x4, x5, x6, x7
}

// stages45For2 are stages 4 and 5 of the 2-byte case, within one byte plane:
// exchange word bit 1 (u1) with byte bit 2, and word bit 0 (u0) with byte
// bit 1.
func stages45For2(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0, x2 = dswap(x0, x2, 32, m5)
	x1, x3 = dswap(x1, x3, 32, m5)
	x4, x6 = dswap(x4, x6, 32, m5)
	x5, x7 = dswap(x5, x7, 32, m5)
	x0, x1 = dswap(x0, x1, 16, m4)
	x2, x3 = dswap(x2, x3, 16, m4)
	x4, x5 = dswap(x4, x5, 16, m4)
	x6, x7 = dswap(x6, x7, 16, m4)
	return x0, x1, x2, x3, x4, x5, x6, x7
}

// unstages45For2 inverts stages45For2.
func unstages45For2(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0, x1 = dswap(x0, x1, 16, m4)
	x2, x3 = dswap(x2, x3, 16, m4)
	x4, x5 = dswap(x4, x5, 16, m4)
	x6, x7 = dswap(x6, x7, 16, m4)
	x0, x2 = dswap(x0, x2, 32, m5)
	x1, x3 = dswap(x1, x3, 32, m5)
	x4, x6 = dswap(x4, x6, 32, m5)
	x5, x7 = dswap(x5, x7, 32, m5)
	return x0, x1, x2, x3, x4, x5, x6, x7
}

// stage4For4 is stage 4 of the 4-byte case within one plane: exchange word
// bit 0 (u0) with byte bit 2.
func stage4For4(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0, x1 = dswap(x0, x1, 32, m5)
	x2, x3 = dswap(x2, x3, 32, m5)
	x4, x5 = dswap(x4, x5, 32, m5)
	x6, x7 = dswap(x6, x7, 32, m5)
	return x0, x1, x2, x3, x4, x5, x6, x7
}

// The kernels are written out per element size: the stage pattern differs
// with the size, and spelling the words out keeps them in registers. Byte
// plane p (bits of byte p of each element) is rows 8p..8p+7, starting at
// byte 8*p*rowLen.

// loadPlane loads the 8 words of the byte plane starting at base, at row
// offset c.
func loadPlane(src []byte, base, rowLen, c int) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	o := base + c
	return ld64(src, o), ld64(src, o+rowLen), ld64(src, o+2*rowLen), ld64(src, o+3*rowLen),
		ld64(src, o+4*rowLen), ld64(src, o+5*rowLen), ld64(src, o+6*rowLen), ld64(src, o+7*rowLen)
}

// storePlane is the inverse of loadPlane.
func storePlane(dst []byte, base, rowLen, c int, x0, x1, x2, x3, x4, x5, x6, x7 uint64) {
	o := base + c
	st64(dst, o, x0)
	st64(dst, o+rowLen, x1)
	st64(dst, o+2*rowLen, x2)
	st64(dst, o+3*rowLen, x3)
	st64(dst, o+4*rowLen, x4)
	st64(dst, o+5*rowLen, x5)
	st64(dst, o+6*rowLen, x6)
	st64(dst, o+7*rowLen, x7)
}

// load8 loads 8 consecutive words at o.
func load8(src []byte, o int) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	return ld64(src, o), ld64(src, o+8), ld64(src, o+16), ld64(src, o+24),
		ld64(src, o+32), ld64(src, o+40), ld64(src, o+48), ld64(src, o+56)
}

// store8 stores 8 consecutive words at o.
func store8(dst []byte, o int, x0, x1, x2, x3, x4, x5, x6, x7 uint64) {
	st64(dst, o, x0)
	st64(dst, o+8, x1)
	st64(dst, o+16, x2)
	st64(dst, o+24, x3)
	st64(dst, o+32, x4)
	st64(dst, o+40, x5)
	st64(dst, o+48, x6)
	st64(dst, o+56, x7)
}

// unshuffle1: one plane of 8 words; transpose8 leaves word k holding
// elements 8k..8k+7.
func unshuffle1(dst, src []byte, rowLen, c0, full int) {
	for c := c0; c < full; c += 8 {
		x0, x1, x2, x3, x4, x5, x6, x7 := loadPlane(src, 0, rowLen, c)
		x0, x1, x2, x3, x4, x5, x6, x7 = transpose8(x0, x1, x2, x3, x4, x5, x6, x7)
		store8(dst, 8*c, x0, x1, x2, x3, x4, x5, x6, x7)
	}
}

func shuffle1(dst, src []byte, rowLen, full int) {
	for c := 0; c < full; c += 8 {
		x0, x1, x2, x3, x4, x5, x6, x7 := load8(src, 8*c)
		x0, x1, x2, x3, x4, x5, x6, x7 = untranspose8(x0, x1, x2, x3, x4, x5, x6, x7)
		storePlane(dst, 0, rowLen, c, x0, x1, x2, x3, x4, x5, x6, x7)
	}
}

// unshuffle2: two planes, x (low bytes) and y (high bytes). After stages 1-3
// the word index is (j, u2, u1, u0); stages 4-5 (per plane) move u1, u0 into
// byte bits 2, 1, and stage 6 (across planes) moves j into byte bit 0.
// Plane j word w then holds output word (w&3)<<2 | j<<1 | w>>2 of the chunk.
// Plane x waits in t while plane y is transformed, so that 16 words need
// not fit in registers at once. It starts at row offset c0 (a multiple of
// 8): the vector kernel, where there is one, has done the chunks before.
func unshuffle2(dst, src []byte, rowLen, c0, full int) {
	var t [8]uint64
	hi := 8 * rowLen
	for c := c0; c < full; c += 8 {
		x0, x1, x2, x3, x4, x5, x6, x7 := loadPlane(src, 0, rowLen, c)
		x0, x1, x2, x3, x4, x5, x6, x7 = stagesB(x0, x1, x2, x3, x4, x5, x6, x7)
		t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7] = stages45For2(x0, x1, x2, x3, x4, x5, x6, x7)

		y0, y1, y2, y3, y4, y5, y6, y7 := loadPlane(src, hi, rowLen, c)
		y0, y1, y2, y3, y4, y5, y6, y7 = stagesB(y0, y1, y2, y3, y4, y5, y6, y7)
		y0, y1, y2, y3, y4, y5, y6, y7 = stages45For2(y0, y1, y2, y3, y4, y5, y6, y7)

		o := 16 * c
		var x uint64
		x, y0 = dswap(t[0], y0, 8, m3)
		st64(dst, o+0*8, x)
		st64(dst, o+2*8, y0)
		x, y1 = dswap(t[1], y1, 8, m3)
		st64(dst, o+4*8, x)
		st64(dst, o+6*8, y1)
		x, y2 = dswap(t[2], y2, 8, m3)
		st64(dst, o+8*8, x)
		st64(dst, o+10*8, y2)
		x, y3 = dswap(t[3], y3, 8, m3)
		st64(dst, o+12*8, x)
		st64(dst, o+14*8, y3)
		x, y4 = dswap(t[4], y4, 8, m3)
		st64(dst, o+1*8, x)
		st64(dst, o+3*8, y4)
		x, y5 = dswap(t[5], y5, 8, m3)
		st64(dst, o+5*8, x)
		st64(dst, o+7*8, y5)
		x, y6 = dswap(t[6], y6, 8, m3)
		st64(dst, o+9*8, x)
		st64(dst, o+11*8, y6)
		x, y7 = dswap(t[7], y7, 8, m3)
		st64(dst, o+13*8, x)
		st64(dst, o+15*8, y7)
	}
}

func shuffle2(dst, src []byte, rowLen, full int) {
	var t [8]uint64
	hi := 8 * rowLen
	for c := 0; c < full; c += 8 {
		o := 16 * c
		x0, y0 := dswap(ld64(src, o+0*8), ld64(src, o+2*8), 8, m3)
		x1, y1 := dswap(ld64(src, o+4*8), ld64(src, o+6*8), 8, m3)
		x2, y2 := dswap(ld64(src, o+8*8), ld64(src, o+10*8), 8, m3)
		x3, y3 := dswap(ld64(src, o+12*8), ld64(src, o+14*8), 8, m3)
		x4, y4 := dswap(ld64(src, o+1*8), ld64(src, o+3*8), 8, m3)
		x5, y5 := dswap(ld64(src, o+5*8), ld64(src, o+7*8), 8, m3)
		x6, y6 := dswap(ld64(src, o+9*8), ld64(src, o+11*8), 8, m3)
		x7, y7 := dswap(ld64(src, o+13*8), ld64(src, o+15*8), 8, m3)
		t = [8]uint64{y0, y1, y2, y3, y4, y5, y6, y7}

		x0, x1, x2, x3, x4, x5, x6, x7 = unstages45For2(x0, x1, x2, x3, x4, x5, x6, x7)
		x0, x1, x2, x3, x4, x5, x6, x7 = unstagesB(x0, x1, x2, x3, x4, x5, x6, x7)
		storePlane(dst, 0, rowLen, c, x0, x1, x2, x3, x4, x5, x6, x7)

		y0, y1, y2, y3, y4, y5, y6, y7 = unstages45For2(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7])
		y0, y1, y2, y3, y4, y5, y6, y7 = unstagesB(y0, y1, y2, y3, y4, y5, y6, y7)
		storePlane(dst, hi, rowLen, c, y0, y1, y2, y3, y4, y5, y6, y7)
	}
}

// unshuffle4: 4 planes. Stages 1-4 run per plane (word index within the
// plane (u2, u1, u0) -> (u2, u1, k2)), stages 5-6 across planes (plane bit 1
// <-> byte bit 1, plane bit 0 <-> byte bit 0). Plane j word w then holds
// output word (w&1)<<4 | j<<2 | w>>1. It starts at row offset c0, as
// unshuffle2 does.
func unshuffle4(dst, src []byte, rowLen, c0, full int) {
	var t [32]uint64
	for c := c0; c < full; c += 8 {
		for p := 0; p < 4; p++ {
			x0, x1, x2, x3, x4, x5, x6, x7 := loadPlane(src, 8*p*rowLen, rowLen, c)
			x0, x1, x2, x3, x4, x5, x6, x7 = stagesB(x0, x1, x2, x3, x4, x5, x6, x7)
			q := (*[8]uint64)(t[8*p:])
			q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7] = stage4For4(x0, x1, x2, x3, x4, x5, x6, x7)
		}
		o := 32 * c
		for w := 0; w < 8; w++ {
			a, b, cc, d := t[w], t[w+8], t[w+16], t[w+24]
			a, cc = dswap(a, cc, 16, m4)
			b, d = dswap(b, d, 16, m4)
			a, b = dswap(a, b, 8, m3)
			cc, d = dswap(cc, d, 8, m3)
			base := o + 8*((w&1)<<4|w>>1)
			st64(dst, base, a)
			st64(dst, base+8*4, b)
			st64(dst, base+8*8, cc)
			st64(dst, base+8*12, d)
		}
	}
}

func shuffle4(dst, src []byte, rowLen, full int) {
	var t [32]uint64
	for c := 0; c < full; c += 8 {
		o := 32 * c
		for w := 0; w < 8; w++ {
			base := o + 8*((w&1)<<4|w>>1)
			a, b, cc, d := ld64(src, base), ld64(src, base+8*4), ld64(src, base+8*8), ld64(src, base+8*12)
			a, b = dswap(a, b, 8, m3)
			cc, d = dswap(cc, d, 8, m3)
			a, cc = dswap(a, cc, 16, m4)
			b, d = dswap(b, d, 16, m4)
			t[w], t[w+8], t[w+16], t[w+24] = a, b, cc, d
		}
		for p := 0; p < 4; p++ {
			q := (*[8]uint64)(t[8*p:])
			x0, x1, x2, x3, x4, x5, x6, x7 := stage4For4(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7])
			x0, x1, x2, x3, x4, x5, x6, x7 = unstagesB(x0, x1, x2, x3, x4, x5, x6, x7)
			storePlane(dst, 8*p*rowLen, rowLen, c, x0, x1, x2, x3, x4, x5, x6, x7)
		}
	}
}

// unshuffle8: 8 planes. Stages 1-3 run per plane, stages 4-6 across planes
// (plane bits <-> byte bits); plane j word w is then output word 8j+w, i.e.
// element 8j+w of the chunk.
func unshuffle8(dst, src []byte, rowLen, full int) {
	var t [64]uint64
	for c := 0; c < full; c += 8 {
		for p := 0; p < 8; p++ {
			x0, x1, x2, x3, x4, x5, x6, x7 := loadPlane(src, 8*p*rowLen, rowLen, c)
			q := (*[8]uint64)(t[8*p:])
			q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7] = stagesB(x0, x1, x2, x3, x4, x5, x6, x7)
		}
		o := 64 * c
		for w := 0; w < 8; w++ {
			x0, x1, x2, x3, x4, x5, x6, x7 := stagesY(t[w], t[w+8], t[w+16], t[w+24], t[w+32], t[w+40], t[w+48], t[w+56])
			st64(dst, o+8*(w+0), x0)
			st64(dst, o+8*(w+8), x1)
			st64(dst, o+8*(w+16), x2)
			st64(dst, o+8*(w+24), x3)
			st64(dst, o+8*(w+32), x4)
			st64(dst, o+8*(w+40), x5)
			st64(dst, o+8*(w+48), x6)
			st64(dst, o+8*(w+56), x7)
		}
	}
}

func shuffle8(dst, src []byte, rowLen, full int) {
	var t [64]uint64
	for c := 0; c < full; c += 8 {
		o := 64 * c
		for w := 0; w < 8; w++ {
			x0, x1, x2, x3 := ld64(src, o+8*(w+0)), ld64(src, o+8*(w+8)), ld64(src, o+8*(w+16)), ld64(src, o+8*(w+24))
			x4, x5, x6, x7 := ld64(src, o+8*(w+32)), ld64(src, o+8*(w+40)), ld64(src, o+8*(w+48)), ld64(src, o+8*(w+56))
			x0, x1, x2, x3, x4, x5, x6, x7 = unstagesY(x0, x1, x2, x3, x4, x5, x6, x7)
			t[w], t[w+8], t[w+16], t[w+24] = x0, x1, x2, x3
			t[w+32], t[w+40], t[w+48], t[w+56] = x4, x5, x6, x7
		}
		for p := 0; p < 8; p++ {
			q := (*[8]uint64)(t[8*p:])
			x0, x1, x2, x3, x4, x5, x6, x7 := unstagesB(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7])
			storePlane(dst, 8*p*rowLen, rowLen, c, x0, x1, x2, x3, x4, x5, x6, x7)
		}
	}
}
