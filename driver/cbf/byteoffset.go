package cbf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Byte-offset compression (CBFlib's "x-CBF_BYTE_OFFSET"): each value is
// stored as its difference from the previous value (the first from 0), in
// one signed byte when it fits in -127..127; otherwise the byte 0x80 escapes
// to a signed 16-bit difference, whose reserved value 0x8000 escapes to a
// signed 32-bit difference, whose reserved value 0x80000000 escapes to a
// signed 64-bit difference. All multi-byte values are little-endian.
//
// Neighbouring pixels of a diffraction image rarely differ by more than 127,
// so the stream is about one byte per pixel, and the encoder is built around
// that case: it looks at eight pixels at a time and, when all eight
// differences fit in a byte, stores them with a single 8-byte write. For
// 16-bit frames, the EIGER case, an SSE2 kernel does those groups on amd64
// (byteoffset_amd64.s: 0.5 instead of 2.6 ns per pixel, 1700-2200 instead
// of 250-390 Mpx/cpu-s in BenchmarkByteOffset/u16); the portable SWAR loop
// below does them elsewhere and takes every group the kernel stops at.

// maxElements bounds the size of an image (2^28 pixels, 14x an EIGER2 16M)
// so that a corrupt header cannot make a reader allocate without limit.
const maxElements = 1 << 28

// ErrByteOffset is wrapped by every byte-offset decoding error.
var ErrByteOffset = errors.New("cbf: bad byte-offset data")

// MaxByteOffsetSize returns the largest encoded size of n values of
// elemSize bytes (1, 2 or 4; 0 for arbitrary int32 values): one escape chain
// per value in the worst case.
func MaxByteOffsetSize(n, elemSize int) int {
	switch elemSize {
	case 1: // deltas within +-255: at most the 16-bit escape
		return 3 * n
	case 2: // deltas within +-65536: at most the 32-bit escape
		return 7 * n
	default: // int32 deltas may need the 64-bit escape
		return 15 * n
	}
}

// AppendByteOffset appends the byte-offset encoding of src to dst and
// returns the extended slice. It allocates only when dst lacks capacity.
func AppendByteOffset(dst []byte, src []int32) []byte {
	o := len(dst)
	buf := grow(dst, MaxByteOffsetSize(len(src), 4)+8)
	var base int32
	for _, v := range src {
		o = putDelta(buf, o, int64(v)-int64(base))
		base = v
	}
	return buf[:o]
}

// appendPixels appends the byte-offset encoding of a frame, mapping its
// elements to int32 as Pixels.Value does, without an intermediate int32
// copy. p must be valid.
func appendPixels(dst []byte, p Pixels) []byte {
	return appendPixelRange(dst, p, 0, p.Len())
}

// appendPixelRange appends the byte-offset encoding of pixels [from, to)
// of a valid frame, continuing from pixel from-1: encoding a frame range
// by range, in order, gives exactly the bytes of encoding it whole. It is
// how the gzip path works through a frame in cache-sized blocks.
func appendPixelRange(dst []byte, p Pixels, from, to int) []byte {
	es := p.ElemSize
	src := p.Data[from*es : to*es]
	switch es {
	case 1:
		var base int32
		if from > 0 {
			base = fromU8(p.Data[from-1])
		}
		return appendU8(dst, src, base)
	case 2:
		var prev uint64
		if from > 0 {
			prev = uint64(binary.LittleEndian.Uint16(p.Data[2*from-2:]))
		}
		return appendU16(dst, src, prev)
	default:
		var base int32
		if from > 0 {
			base = fromU32(binary.LittleEndian.Uint32(p.Data[4*from-4:]))
		}
		return appendU32(dst, src, base)
	}
}

// grow returns dst extended to len(dst)+extra bytes of length, reusing its
// array when the capacity suffices. The new bytes are not cleared.
func grow(dst []byte, extra int) []byte {
	need := len(dst) + extra
	if cap(dst) >= need {
		return dst[:need]
	}
	out := make([]byte, need, need+need/8)
	copy(out, dst)
	return out
}

// Eight one-byte deltas are checked together: t = d+128 lies in 1..255
// exactly when d is in -127..127. The OR of the eight t values is at most
// 255 when all lie in 0..255, and the classic "has a zero byte" test on the
// packed t bytes excludes t = 0 (d = -128, the escape byte). The stored
// byte of d is then t XOR 0x80.
const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// The 16-bit path works on four pixels per uint64 ("SWAR": SIMD within a
// register), in 16-bit lanes. Read as int16, a raw value is its own mapped
// value when it is below 0x8000 (a count) or 0xFFFF (-1, masked), so for
// such lanes the lane-wise difference modulo 2^16 is the true difference
// whenever that lies in -127..127 (true differences then lie in
// -32768..32768, and no other representative of a small residue does).
// A group with any other value (0x8000..0xFFFE: near-saturated counts,
// rare) takes the exact per-pixel path.
const (
	lane16Hi  = 0x8000800080008000
	lane16Lo8 = 0x00ff00ff00ff00ff
	lane16One = 0x0100010001000100
	lane16x80 = 0x0080008000800080
)

// swarValid reports whether every 16-bit lane of w is below 0x8000 or is
// 0xFFFF.
func swarValid(w uint64) bool {
	m := (w & lane16Hi) >> 15 * 0xffff // 0xFFFF in lanes with the top bit set
	return w&m == m
}

// swarBytes returns the four one-byte differences of the lanes of w from
// the lanes of prev (prev's lanes are the pixels before w's) packed into
// the low 32 bits, and whether all four fit in -127..127.
func swarBytes(w, prev uint64) (uint32, bool) {
	d := ((w | lane16Hi) - (prev &^ lane16Hi)) ^ ((w ^ ^prev) & lane16Hi) // lane-wise w - prev
	t := ((d &^ lane16Hi) + lane16x80) ^ (d & lane16Hi)                   // lane-wise d + 128
	// Each t must be 1..255: no high byte, and t + 255 reaches 256.
	if t&^lane16Lo8 != 0 || (t+lane16Lo8)&lane16One != lane16One {
		return 0, false
	}
	x := t ^ lane16x80 // the difference bytes, one per lane
	x = (x | x>>8) & 0x0000ffff0000ffff
	x = (x | x>>16) & 0xffffffff
	return uint32(x), true
}

// appendU16 encodes 16-bit pixels; prevRaw is the raw value of the pixel
// before src (0 at the start of a frame). After the first group, whose
// previous pixel may lie outside src, encodeU16Groups takes the run of
// common groups and the loop body the group it stops at.
func appendU16(dst []byte, src []byte, prevRaw uint64) []byte {
	n := len(src) / 2
	o := len(dst)
	buf := grow(dst, MaxByteOffsetSize(n, 2)+16)
	i := 0
	for ; i+8 <= n; i += 8 {
		if haveU16Groups && i > 0 {
			// The vector kernel takes the common groups; the group it
			// stops at (if any) is done below.
			k := encodeU16Groups(&buf[o], &src[2*i-2], n-i)
			i += k
			o += k
			prevRaw = uint64(binary.LittleEndian.Uint16(src[2*i-2:]))
			if i+8 > n {
				break
			}
		}
		w0 := binary.LittleEndian.Uint64(src[2*i:])
		w1 := binary.LittleEndian.Uint64(src[2*i+8:])
		if swarValid(w0) && swarValid(w1) && swarValid(prevRaw) {
			b0, ok0 := swarBytes(w0, w0<<16|prevRaw)
			b1, ok1 := swarBytes(w1, w1<<16|w0>>48)
			if ok0 && ok1 {
				binary.LittleEndian.PutUint64(buf[o:], uint64(b0)|uint64(b1)<<32)
				o += 8
				prevRaw = w1 >> 48
				continue
			}
		}
		base := fromU16(uint16(prevRaw))
		for k := 0; k < 8; k++ {
			var v int32
			if k < 4 {
				v = fromU16(uint16(w0 >> (16 * k)))
			} else {
				v = fromU16(uint16(w1 >> (16 * (k - 4))))
			}
			o = putDelta(buf, o, int64(v-base))
			base = v
		}
		prevRaw = w1 >> 48
	}
	base := fromU16(uint16(prevRaw))
	for ; i < n; i++ {
		v := fromU16(binary.LittleEndian.Uint16(src[2*i:]))
		o = putDelta(buf, o, int64(v-base))
		base = v
	}
	return buf[:o]
}

// appendU8 encodes 8-bit pixels; base is the mapped value of the pixel
// before src (0 at the start of a frame).
func appendU8(dst []byte, src []byte, base int32) []byte {
	n := len(src)
	o := len(dst)
	buf := grow(dst, MaxByteOffsetSize(n, 1)+16)
	i := 0
	for ; i+8 <= n; i += 8 {
		w := binary.LittleEndian.Uint64(src[i : i+8])
		v0 := fromU8(uint8(w))
		v1 := fromU8(uint8(w >> 8))
		v2 := fromU8(uint8(w >> 16))
		v3 := fromU8(uint8(w >> 24))
		v4 := fromU8(uint8(w >> 32))
		v5 := fromU8(uint8(w >> 40))
		v6 := fromU8(uint8(w >> 48))
		v7 := fromU8(uint8(w >> 56))
		t0 := uint32(v0 - base + 128)
		t1 := uint32(v1 - v0 + 128)
		t2 := uint32(v2 - v1 + 128)
		t3 := uint32(v3 - v2 + 128)
		t4 := uint32(v4 - v3 + 128)
		t5 := uint32(v5 - v4 + 128)
		t6 := uint32(v6 - v5 + 128)
		t7 := uint32(v7 - v6 + 128)
		if t0|t1|t2|t3|t4|t5|t6|t7 <= 255 {
			packed := uint64(t0) | uint64(t1)<<8 | uint64(t2)<<16 | uint64(t3)<<24 |
				uint64(t4)<<32 | uint64(t5)<<40 | uint64(t6)<<48 | uint64(t7)<<56
			if (packed-lsb8)&^packed&msb8 == 0 {
				binary.LittleEndian.PutUint64(buf[o:], packed^msb8)
				o += 8
				base = v7
				continue
			}
		}
		o = putDelta(buf, o, int64(v0-base))
		o = putDelta(buf, o, int64(v1-v0))
		o = putDelta(buf, o, int64(v2-v1))
		o = putDelta(buf, o, int64(v3-v2))
		o = putDelta(buf, o, int64(v4-v3))
		o = putDelta(buf, o, int64(v5-v4))
		o = putDelta(buf, o, int64(v6-v5))
		o = putDelta(buf, o, int64(v7-v6))
		base = v7
	}
	for ; i < n; i++ {
		v := fromU8(src[i])
		o = putDelta(buf, o, int64(v-base))
		base = v
	}
	return buf[:o]
}

// appendU32 handles 32-bit frames, whose deltas can need the 64-bit escape
// (from -1 to a clipped MaxInt32 is 2^31); it has no eight-wide path since
// EIGER sends 32-bit frames only for long exposures, at low frame rates.
func appendU32(dst []byte, src []byte, base int32) []byte {
	n := len(src) / 4
	o := len(dst)
	buf := grow(dst, MaxByteOffsetSize(n, 4)+16)
	for i := 0; i < n; i++ {
		v := fromU32(binary.LittleEndian.Uint32(src[4*i:]))
		d := int64(v) - int64(base)
		if d >= -127 && d <= 127 {
			buf[o] = byte(d)
			o++
		} else {
			o = putDelta(buf, o, d)
		}
		base = v
	}
	return buf[:o]
}

// putDelta writes one difference at buf[o:] with the shortest escape chain
// and returns the new offset. buf must have room for 15 bytes.
func putDelta(buf []byte, o int, d int64) int {
	if d >= -127 && d <= 127 {
		buf[o] = byte(d)
		return o + 1
	}
	buf[o] = 0x80
	o++
	if d >= -32767 && d <= 32767 {
		binary.LittleEndian.PutUint16(buf[o:], uint16(d))
		return o + 2
	}
	buf[o], buf[o+1] = 0x00, 0x80
	o += 2
	if d >= -math.MaxInt32 && d <= math.MaxInt32 {
		binary.LittleEndian.PutUint32(buf[o:], uint32(d))
		return o + 4
	}
	binary.LittleEndian.PutUint32(buf[o:], 0x80000000)
	o += 4
	binary.LittleEndian.PutUint64(buf[o:], uint64(d))
	return o + 8
}

// DecodeByteOffset decodes exactly len(dst) values from src into dst and
// returns the number of bytes of src it consumed. It fails, wrapping
// ErrByteOffset, when src ends early (inside an escape or before len(dst)
// values) or when a value leaves the int32 range. Trailing bytes after the
// last value are left to the caller (CBF pads the binary section).
func DecodeByteOffset(dst []int32, src []byte) (int, error) {
	var base int64
	o := 0
	for i := range dst {
		if o >= len(src) {
			return o, fmt.Errorf("%w: data ends after %d of %d values", ErrByteOffset, i, len(dst))
		}
		d := int64(int8(src[o]))
		o++
		if d == -128 {
			if len(src)-o < 2 {
				return o, fmt.Errorf("%w: truncated 16-bit escape at value %d", ErrByteOffset, i)
			}
			d = int64(int16(binary.LittleEndian.Uint16(src[o:])))
			o += 2
			if d == math.MinInt16 {
				if len(src)-o < 4 {
					return o, fmt.Errorf("%w: truncated 32-bit escape at value %d", ErrByteOffset, i)
				}
				d = int64(int32(binary.LittleEndian.Uint32(src[o:])))
				o += 4
				if d == math.MinInt32 {
					if len(src)-o < 8 {
						return o, fmt.Errorf("%w: truncated 64-bit escape at value %d", ErrByteOffset, i)
					}
					d = int64(binary.LittleEndian.Uint64(src[o:]))
					o += 8
				}
			}
		}
		// base is an int32 value and d an int64: a 64-bit escape near the
		// int64 limits must not wrap, so check before adding.
		if d > math.MaxInt32-base || d < math.MinInt32-base {
			return o, fmt.Errorf("%w: value %d leaves the signed 32-bit range", ErrByteOffset, i)
		}
		base += d
		dst[i] = int32(base)
	}
	return o, nil
}

// AppendPixelsByteOffset appends the byte-offset encoding of a frame's
// pixels, mapped to int32 as Pixels.Value does (all-ones as -1), without an
// intermediate int32 copy; 8- and 16-bit frames take the eight-wide
// one-byte fast path. It allocates only when dst lacks capacity
// (MaxByteOffsetSize bounds what it needs).
func AppendPixelsByteOffset(dst []byte, p Pixels) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return dst, err
	}
	return appendPixels(dst, p), nil
}
