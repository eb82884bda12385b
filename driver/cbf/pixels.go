package cbf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Pixels is one decoded detector frame as the stream delivers it: Width x
// Height unsigned little-endian elements of ElemSize bytes (1, 2 or 4: the
// detector's 8-, 16- or 32-bit image depth), row-major, fast axis first.
//
// The file formats store signed 32-bit counts, so every element is mapped
// the same way by every writer of this project (CBF and TIFF alike):
//
//   - the all-ones value of the element type (0xFF, 0xFFFF, 0xFFFFFFFF) is
//     how the detector marks gap, masked and defective pixels: it is written
//     as -1, the value MX programs treat as "no data";
//   - every other value is a count and is written as is, except that 32-bit
//     counts above math.MaxInt32 (which no EIGER produces: its counters
//     saturate far lower) are clipped to math.MaxInt32 so that they stay
//     counts rather than wrapping to negative "masked" values.
type Pixels struct {
	Data     []byte
	Width    int
	Height   int
	ElemSize int
}

// Validate reports whether the frame is well formed: a known element size,
// positive dimensions and exactly Width*Height*ElemSize bytes of data.
func (p Pixels) Validate() error {
	if p.ElemSize != 1 && p.ElemSize != 2 && p.ElemSize != 4 {
		return fmt.Errorf("cbf: pixel element size %d not supported (want 1, 2 or 4 bytes)", p.ElemSize)
	}
	if p.Width <= 0 || p.Height <= 0 {
		return fmt.Errorf("cbf: bad frame size %d x %d", p.Width, p.Height)
	}
	n := int64(p.Width) * int64(p.Height)
	if n > maxElements {
		return fmt.Errorf("cbf: frame %d x %d has more than %d pixels", p.Width, p.Height, maxElements)
	}
	if int64(len(p.Data)) != n*int64(p.ElemSize) {
		return fmt.Errorf("cbf: frame %d x %d x %d bytes needs %d bytes of data, got %d",
			p.Width, p.Height, p.ElemSize, n*int64(p.ElemSize), len(p.Data))
	}
	return nil
}

// Len is the number of pixels, Width*Height.
func (p Pixels) Len() int { return p.Width * p.Height }

// Value returns pixel i (row-major) as written to a file: -1 for the
// all-ones masked value, the count otherwise (clipped to math.MaxInt32).
func (p Pixels) Value(i int) int32 {
	switch p.ElemSize {
	case 1:
		return fromU8(p.Data[i])
	case 2:
		return fromU16(binary.LittleEndian.Uint16(p.Data[2*i:]))
	default:
		return fromU32(binary.LittleEndian.Uint32(p.Data[4*i:]))
	}
}

// AppendInt32LE appends pixels [from, to) as signed 32-bit little-endian
// values, mapped as Value does. It is how the TIFF writer gets its strips.
func (p Pixels) AppendInt32LE(dst []byte, from, to int) []byte {
	n := to - from
	start := len(dst)
	if cap(dst)-start < 4*n {
		grown := make([]byte, start, start+4*n)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:start+4*n]
	out := dst[start:]
	switch p.ElemSize {
	case 1:
		src := p.Data[from:to]
		for i, b := range src {
			binary.LittleEndian.PutUint32(out[4*i:], uint32(fromU8(b)))
		}
	case 2:
		src := p.Data[2*from : 2*to]
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(out[4*i:], uint32(fromU16(binary.LittleEndian.Uint16(src[2*i:]))))
		}
	default:
		src := p.Data[4*from : 4*to]
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(out[4*i:], uint32(fromU32(binary.LittleEndian.Uint32(src[4*i:]))))
		}
	}
	return dst
}

// fromU8 maps 0xFF to -1 without a branch: (v+1)>>8 is 1 only for 0xFF.
func fromU8(v uint8) int32 {
	x := int32(v)
	return x - (x+1)>>8<<8
}

// fromU16 maps 0xFFFF to -1 without a branch.
func fromU16(v uint16) int32 {
	x := int32(v)
	return x - (x+1)>>16<<16
}

// fromU32 maps 0xFFFFFFFF to -1 and clips other values above MaxInt32.
func fromU32(v uint32) int32 {
	switch {
	case v == math.MaxUint32:
		return -1
	case v > math.MaxInt32:
		return math.MaxInt32
	}
	return int32(v)
}
