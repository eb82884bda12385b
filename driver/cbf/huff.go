package cbf

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
)

// huffEncoder writes deflate blocks (RFC 1951) of literals only, each with
// a dynamic Huffman code built from that block's byte histogram: the
// format of klauspost/compress's Huffman-only level, specialised for the
// blocks of gzipBlockPixels of byte-offset data. No LZ77 and no window:
// one histogram pass (which also gives GzipAuto its zero count, a pass of
// its own before) and one coding pass over a block that is still in the
// CPU cache, with a 64-bit bit buffer that emits three or four codes per
// unaligned 8-byte store. A block continues the deflate block before it
// (no new header) when that block's code codes it in no more bits, which
// keeps the files at least as small as klauspost's.
//
// Its blocks are appended to a caller's buffer and chain into one deflate
// stream bit by bit; the stream is brought to a byte boundary only by
// syncFlush (an empty stored block, where another writer takes over) and
// finish (an empty final block). The encoder holds no memory of the data
// between blocks, so any writer's byte-aligned output may precede or
// follow it.
type huffEncoder struct {
	bits  uint64 // pending bits, LSB first
	nbits uint   // number of pending bits, < 8 between calls
	buf   []byte // the output, appended to

	hist   [8][256]uint32 // byte counts of the block, by position in a word
	freq   [257]uint32    // literals and end-of-block
	lens   [257]uint8     // literal/length code lengths
	codes  [257]uint32    // bit-reversed code | length<<16, per symbol
	open   bool           // a block is open: codes code it, its end-of-block is pending
	maxLen uint8          // the longest literal code of the open block

	clFreq  [19]uint32
	clLens  [19]uint8
	clCodes [19]uint16
	rle     [258 + 1]uint16 // code-length symbols: symbol | extra<<8

	keys [257]uint64     // freq<<9 | symbol, for buildLengths and fastLengths
	tree [2 * 257]uint32 // fastLengths: node weights, then parents and depths
}

const (
	huffMaxBits   = 15 // literal/length code lengths (RFC 1951)
	clMaxBits     = 7  // code-length code lengths
	huffEOB       = 256
	storedMaxSize = math.MaxUint16
)

// clOrder is the order in which the code-length code lengths are sent.
var clOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// reset forgets the stream, for the start of a new one.
func (h *huffEncoder) reset() {
	h.bits, h.nbits, h.open = 0, 0, false
}

// histogram counts the bytes of b into h.freq (and the end-of-block
// symbol, once). Byte-offset data is dominated by a few small deltas, so
// each byte position of a word counts into a table of its own: increments
// of the same counter are then a whole round apart, not chained through
// memory.
func (h *huffEncoder) histogram(b []byte) {
	h.hist = [8][256]uint32{}
	t := &h.hist
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		t[0][uint8(v)]++
		t[1][uint8(v>>8)]++
		t[2][uint8(v>>16)]++
		t[3][uint8(v>>24)]++
		t[4][uint8(v>>32)]++
		t[5][uint8(v>>40)]++
		t[6][uint8(v>>48)]++
		t[7][uint8(v>>56)]++
		b = b[8:]
	}
	for _, c := range b {
		t[0][c]++
	}
	for i := range 256 {
		h.freq[i] = t[0][i] + t[1][i] + t[2][i] + t[3][i] + t[4][i] + t[5][i] + t[6][i] + t[7][i]
	}
	h.freq[huffEOB] = 1
}

// writeBits appends the n low bits of v (n <= 32) to the stream.
func (h *huffEncoder) writeBits(v uint64, n uint) {
	h.bits |= v << h.nbits
	h.nbits += n
	for h.nbits >= 8 {
		h.buf = append(h.buf, byte(h.bits))
		h.bits >>= 8
		h.nbits -= 8
	}
}

// align pads the stream with zero bits to a byte boundary.
func (h *huffEncoder) align() {
	if h.nbits > 0 {
		h.buf = append(h.buf, byte(h.bits))
	}
	h.bits, h.nbits = 0, 0
}

// syncFlush ends the output on a byte boundary with an empty stored block,
// as a sync flush of zlib or compress/flate does, so that another writer
// can continue the stream.
func (h *huffEncoder) syncFlush() {
	h.closeBlock()
	h.writeBits(0, 3) // not final, stored
	h.align()
	h.buf = append(h.buf, 0, 0, 0xff, 0xff)
}

// finish ends the deflate stream with an empty final block of the fixed
// code (BFINAL, BTYPE 01, the 7-bit end-of-block code 0) and pads it to a
// byte boundary.
func (h *huffEncoder) finish() {
	h.closeBlock()
	h.writeBits(1|1<<1, 3)
	h.writeBits(0, 7)
	h.align()
}

// writeBlock appends b to the stream: as the continuation of the open
// block when the code of that block codes b in no more bits than a new
// block would take (header and end-of-block included), else as a new
// dynamic Huffman block of literals, or as stored blocks where those are
// smaller (incompressible data). The last block stays open (its
// end-of-block code not yet written) until the next header, syncFlush or
// finish. h.freq must hold b's histogram (histogram).
func (h *huffEncoder) writeBlock(b []byte) {
	h.fastLengths(h.freq[:], h.lens[:], huffMaxBits)
	hdrBits := h.prepareHeader()
	dataBits := uint64(0)
	for i, f := range h.freq {
		dataBits += uint64(f) * uint64(h.lens[i])
	}
	total := uint64(hdrBits) + dataBits
	if h.open {
		// The open block's code, if it has a code for every byte of b.
		old := uint64(0)
		for i, f := range h.freq[:256] {
			l := h.codes[i] >> 16
			if f != 0 && l == 0 {
				old = math.MaxUint64
				break
			}
			old += uint64(f) * uint64(l)
		}
		if old <= total+uint64(h.codes[huffEOB]>>16) {
			h.writeLiterals(b, h.maxLen)
			return
		}
	}
	// Stored: 3 header bits, up to 7 bits of padding and 4 bytes of
	// length per block of at most storedMaxSize bytes.
	nStored := max(1, (len(b)+storedMaxSize-1)/storedMaxSize)
	storedBits := uint64(len(b))*8 + uint64(nStored)*(3+7+32)
	if total >= storedBits {
		h.closeBlock()
		h.writeStored(b)
		return
	}
	h.closeBlock()
	h.writeHeader()
	h.assignCodes(h.lens[:], h.codes[:])
	h.maxLen = 0
	for _, l := range h.lens[:256] {
		h.maxLen = max(h.maxLen, l)
	}
	h.writeLiterals(b, h.maxLen)
	h.open = true
}

// closeBlock ends the open block, if any, with its end-of-block code.
func (h *huffEncoder) closeBlock() {
	if h.open {
		eob := h.codes[huffEOB]
		h.writeBits(uint64(eob&0xffff), uint(eob>>16))
		h.open = false
	}
}

// writeStored appends b as stored blocks.
func (h *huffEncoder) writeStored(b []byte) {
	for {
		n := min(len(b), storedMaxSize)
		h.writeBits(0, 3)
		h.align()
		h.buf = append(h.buf, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		h.buf = append(h.buf, b[:n]...)
		b = b[n:]
		if len(b) == 0 {
			return
		}
	}
}

// writeLiterals appends the codes of the bytes of b; no code is longer
// than maxLen. Each round joins the codes of three bytes (four when
// no code is longer than 14 bits) into one word, independently of the bit
// position, adds the word to the bit buffer, stores the whole 64-bit
// buffer and advances by the bytes completed. The loop-carried work is
// then one shift, one or and one add per round.
func (h *huffEncoder) writeLiterals(b []byte, maxLen uint8) {
	// Room for every code at maxLen bits and the 8-byte stores: st64
	// writes without bounds checks.
	h.buf = slices.Grow(h.buf, len(b)*int(maxLen)/8+16)
	codes := &h.codes
	n := len(h.buf)
	out := h.buf[:cap(h.buf)]
	bits, nb := h.bits, h.nbits
	i := 0
	if haveLiterals4 && len(b) >= 4 {
		var w int
		var nb64 uint64
		if maxLen <= 14 {
			w, bits, nb64 = huffLiterals4(&out[n], &b[0], len(b), codes, bits, uint64(nb))
			i = len(b) &^ 3
		} else {
			w, bits, nb64 = huffLiterals3(&out[n], &b[0], len(b), codes, bits, uint64(nb))
			i = len(b) / 3 * 3
		}
		n += w
		nb = uint(nb64)
	}
	if maxLen <= 14 {
		// nb < 8 at the top of each round, and four codes add at most 56.
		for ; i+4 <= len(b); i += 4 {
			c0, c1, c2, c3 := codes[b[i]], codes[b[i+1]], codes[b[i+2]], codes[b[i+3]]
			l0, l1, l2 := c0>>16, c1>>16, c2>>16
			l01 := l0 + l1
			w := uint64(c0&0xffff) | uint64(c1&0xffff)<<(l0&63) | uint64(c2&0xffff)<<(l01&63) | uint64(c3&0xffff)<<((l01+l2)&63)
			bits |= w << (nb & 63)
			nb += uint(l01 + l2 + c3>>16)
			st64(out, n, bits)
			n += int(nb >> 3)
			bits >>= (nb &^ 7) & 63
			nb &= 7
		}
	}
	// nb < 8 at the top of each round, and three codes add at most 45.
	for ; i+3 <= len(b); i += 3 {
		c0, c1, c2 := codes[b[i]], codes[b[i+1]], codes[b[i+2]]
		l0, l1 := c0>>16, c1>>16
		l01 := l0 + l1
		w := uint64(c0&0xffff) | uint64(c1&0xffff)<<(l0&63) | uint64(c2&0xffff)<<(l01&63)
		bits |= w << (nb & 63)
		nb += uint(l01 + c2>>16)
		st64(out, n, bits)
		n += int(nb >> 3)
		bits >>= (nb &^ 7) & 63
		nb &= 7
	}
	for ; i < len(b); i++ {
		e := codes[b[i]]
		bits |= uint64(e&0xffff) << (nb & 63)
		nb += uint(e >> 16)
		st64(out, n, bits)
		n += int(nb >> 3)
		bits >>= (nb &^ 7) & 63
		nb &= 7
	}
	h.buf = out[:n]
	h.bits, h.nbits = bits, nb
}

// prepareHeader run-length codes the code lengths (literals, end of block,
// and one distance code of length 1, as the format needs at least one),
// builds the code-length code, and returns the header's size in bits.
func (h *huffEncoder) prepareHeader() int {
	var all [258]uint8
	copy(all[:], h.lens[:])
	all[257] = 1 // the one distance code
	h.clFreq = [19]uint32{}
	nr := 0
	for i := 0; i < len(all); {
		l := all[i]
		run := 1
		for i+run < len(all) && all[i+run] == l {
			run++
		}
		i += run
		if l == 0 {
			for run >= 11 {
				r := min(run, 138)
				h.rle[nr] = 18 | uint16(r-11)<<8
				nr++
				h.clFreq[18]++
				run -= r
			}
			if run >= 3 {
				h.rle[nr] = 17 | uint16(run-3)<<8
				nr++
				h.clFreq[17]++
				run = 0
			}
		} else {
			h.rle[nr] = uint16(l)
			nr++
			h.clFreq[l]++
			run--
			for run >= 3 {
				r := min(run, 6)
				h.rle[nr] = 16 | uint16(r-3)<<8
				nr++
				h.clFreq[16]++
				run -= r
			}
		}
		for ; run > 0; run-- {
			h.rle[nr] = uint16(l)
			nr++
			h.clFreq[l]++
		}
	}
	h.rle[nr] = 0xffff // end
	h.buildLengths(h.clFreq[:], h.clLens[:], clMaxBits)
	var clCodes [19]uint32
	h.assignCodes(h.clLens[:], clCodes[:])
	for i, c := range clCodes {
		h.clCodes[i] = uint16(c)
	}
	ncl := 19
	for ncl > 4 && h.clLens[clOrder[ncl-1]] == 0 {
		ncl--
	}
	bits := 3 + 5 + 5 + 4 + 3*ncl
	for i := range 19 {
		bits += int(h.clFreq[i]) * int(h.clLens[i])
	}
	bits += int(h.clFreq[16])*2 + int(h.clFreq[17])*3 + int(h.clFreq[18])*7
	return bits
}

// writeHeader writes the block header prepared by prepareHeader.
func (h *huffEncoder) writeHeader() {
	ncl := 19
	for ncl > 4 && h.clLens[clOrder[ncl-1]] == 0 {
		ncl--
	}
	h.writeBits(2<<1, 3) // not final, dynamic Huffman
	h.writeBits(0, 5)    // HLIT: 257 literal/length codes
	h.writeBits(0, 5)    // HDIST: 1 distance code
	h.writeBits(uint64(ncl-4), 4)
	for _, s := range clOrder[:ncl] {
		h.writeBits(uint64(h.clLens[s]), 3)
	}
	for _, r := range h.rle {
		if r == 0xffff {
			break
		}
		s := r & 0xff
		h.writeBits(uint64(h.clCodes[s]), uint(h.clLens[s]))
		switch s {
		case 16:
			h.writeBits(uint64(r>>8), 2)
		case 17:
			h.writeBits(uint64(r>>8), 3)
		case 18:
			h.writeBits(uint64(r>>8), 7)
		}
	}
}

// assignCodes gives the symbols their canonical codes (RFC 1951 3.2.2)
// from lens, bit-reversed for LSB-first output, as code | len<<16.
func (h *huffEncoder) assignCodes(lens []uint8, codes []uint32) {
	var count [huffMaxBits + 1]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [huffMaxBits + 1]uint16
	code := uint16(0)
	for b := 1; b <= huffMaxBits; b++ {
		code = (code + count[b-1]) << 1
		next[b] = code
	}
	for i, l := range lens {
		if l == 0 {
			codes[i] = 0
			continue
		}
		c := next[l]
		next[l]++
		codes[i] = uint32(bits.Reverse16(c<<(16-l))) | uint32(l)<<16
	}
}

// sortedKeys clears lens and returns the used symbols of freq as
// frequency<<9 | symbol, in ascending order, for the two length builders.
// With at most two used symbols it sets their lengths itself (1 each, a
// lone symbol with a partner, as zlib rejects an incomplete code) and
// reports false: there is nothing left to build.
func (h *huffEncoder) sortedKeys(freq []uint32, lens []uint8) ([]uint64, bool) {
	keys := h.keys[:0]
	for i, f := range freq {
		lens[i] = 0
		if f != 0 {
			keys = append(keys, uint64(f)<<9|uint64(i))
		}
	}
	switch len(keys) {
	case 0:
		lens[0], lens[1] = 1, 1
		return nil, false
	case 1:
		s := keys[0] & 511
		lens[s] = 1
		lens[(s+1)%uint64(len(freq))] = 1
		return nil, false
	case 2:
		lens[keys[0]&511], lens[keys[1]&511] = 1, 1
		return nil, false
	}
	slices.Sort(keys)
	return keys, true
}

// buildLengths sets lens to the lengths of an optimal prefix code for freq
// of at most maxBits bits (zero for symbols of zero frequency). It is the
// boundary package-merge of Go's compress/flate (huffman_code.go,
// bitCounts), on a frequency list sorted in place. A lone used symbol gets
// a partner of length 1, as zlib rejects an incomplete code-length code.
// The sum of freq must stay below 1<<30.
func (h *huffEncoder) buildLengths(freq []uint32, lens []uint8, maxBits int32) {
	keys, ok := h.sortedKeys(freq, lens)
	if !ok {
		return
	}
	n := int32(len(keys))
	freqAt := func(i int32) int32 {
		if i >= n {
			return math.MaxInt32
		}
		return int32(keys[i] >> 9)
	}
	if maxBits > n-1 {
		maxBits = n - 1
	}
	type levelInfo struct {
		level, lastFreq, nextCharFreq, nextPairFreq, needed int32
	}
	var levels [huffMaxBits + 1]levelInfo
	var leafCounts [huffMaxBits + 1][huffMaxBits + 1]int32
	for level := int32(1); level <= maxBits; level++ {
		levels[level] = levelInfo{
			level:        level,
			lastFreq:     freqAt(1),
			nextCharFreq: freqAt(2),
			nextPairFreq: freqAt(0) + freqAt(1),
		}
		leafCounts[level][level] = 2
		if level == 1 {
			levels[level].nextPairFreq = math.MaxInt32
		}
	}
	levels[maxBits].needed = 2*n - 4
	level := maxBits
	for {
		l := &levels[level]
		if l.nextPairFreq == math.MaxInt32 && l.nextCharFreq == math.MaxInt32 {
			l.needed = 0
			levels[level+1].nextPairFreq = math.MaxInt32
			level++
			continue
		}
		prevFreq := l.lastFreq
		if l.nextCharFreq < l.nextPairFreq {
			c := leafCounts[level][level] + 1
			l.lastFreq = l.nextCharFreq
			leafCounts[level][level] = c
			l.nextCharFreq = freqAt(c)
		} else {
			l.lastFreq = l.nextPairFreq
			copy(leafCounts[level][:level], leafCounts[level-1][:level])
			levels[l.level-1].needed = 2
		}
		if l.needed--; l.needed == 0 {
			if l.level == maxBits {
				break
			}
			levels[l.level+1].nextPairFreq = prevFreq + l.lastFreq
			level++
		} else {
			for levels[level-1].needed > 0 {
				level--
			}
		}
	}
	// The most frequent symbols (at the end of keys) get the shortest codes.
	counts := &leafCounts[maxBits]
	i := n
	for b, level := uint8(1), maxBits; level > 0; b, level = b+1, level-1 {
		for range counts[level] - counts[level-1] {
			i--
			lens[keys[i]&511] = b
		}
	}
}

// fastLengths sets lens to the lengths of a prefix code for freq of at most
// maxBits bits: the Huffman code of the sorted frequencies (two queues,
// linear after the sort), and where that is deeper than maxBits, the
// lengths limited as zlib and miniz do (the deep codes cut to maxBits, then
// codes lengthened one at a time, from the longest below maxBits, until the
// Kraft sum is exact again). Optimal when no limit applies and close to it
// otherwise; far cheaper than buildLengths' package-merge on 257 symbols.
func (h *huffEncoder) fastLengths(freq []uint32, lens []uint8, maxBits int) {
	keys, ok := h.sortedKeys(freq, lens)
	if !ok {
		return
	}
	n := len(keys)
	// Nodes 0..n-1 are the leaves in ascending frequency, n..2n-2 the
	// internal nodes in the order built (ascending weight too). w holds
	// weights while building, then each node's parent.
	w := h.tree[:2*n-1]
	for i, k := range keys {
		w[i] = uint32(k >> 9)
	}
	leaf, inner := 0, n
	pick := func(next int) int {
		if leaf < n && (inner >= next || w[leaf] <= w[inner]) {
			leaf++
			return leaf - 1
		}
		inner++
		return inner - 1
	}
	for next := n; next < 2*n-1; next++ {
		a := pick(next)
		b := pick(next)
		w[next] = w[a] + w[b]
		w[a], w[b] = uint32(next), uint32(next)
	}
	// Depths, from the root down: a parent has a higher index than its
	// children, so one descending pass reads each parent's depth first.
	w[2*n-2] = 0
	var count [32]int
	for i := 2*n - 3; i >= 0; i-- {
		w[i] = w[w[i]] + 1
		if i < n {
			count[min(int(w[i]), 31)]++
		}
	}
	over := false
	for b := maxBits + 1; b < len(count); b++ {
		if count[b] > 0 {
			over = true
			count[maxBits] += count[b]
			count[b] = 0
		}
	}
	if over {
		total := 0
		for b := 1; b <= maxBits; b++ {
			total += count[b] << (maxBits - b)
		}
		for ; total > 1<<maxBits; total-- {
			count[maxBits]--
			for b := maxBits - 1; b > 0; b-- {
				if count[b] > 0 {
					count[b]--
					count[b+1] += 2
					break
				}
			}
		}
	}
	// The most frequent symbols (at the end of keys) get the shortest codes.
	i := n
	for b := 1; b <= maxBits; b++ {
		for range count[b] {
			i--
			lens[keys[i]&511] = uint8(b)
		}
	}
}
