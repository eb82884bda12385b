package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"tioga/driver/codec"
)

// This file walks the few CBOR structures that carry arrays of pixels or
// table values: MultiDimArray (tag 40) over a typed array (RFC 8746), whose
// byte string may be replaced by the DECTRIS compression tag 56500.
//
// fxamacker/cbor decodes everything else. It would copy every byte string it
// decodes, and an image message is megabytes of one byte string, so these
// items are located instead: the result aliases the message buffer. The
// caller has already checked the whole message is well-formed CBOR with
// fxamacker, but the walker still checks every bound itself, because a
// fuzzer (or a bug) may hand it anything.

// CBOR major types.
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// CBOR tags the stream uses.
const (
	tagDateTime      = 0
	tagMultiDim      = 40    // RFC 8746 row-major multi-dimensional array
	tagMultiDimCol   = 1040  // RFC 8746 column-major: not used by EIGER, rejected
	tagUint8         = 64    // RFC 8746 uint8 typed array
	tagUint16LE      = 69    // RFC 8746 uint16 little-endian
	tagUint32LE      = 70    // RFC 8746 uint32 little-endian
	tagFloat32LE     = 85    // RFC 8746 float32 little-endian
	tagSelfDescribe  = 55799 // RFC 8949 3.4.6 "this is CBOR"
	tagDectrisCompr  = 56500 // DECTRIS compression [algorithm, elem_size, bytes]
	indefiniteLength = 31    // additional information of an indefinite-length item
)

var errTruncated = errors.New("truncated CBOR item")

// cborReader reads CBOR item heads from a byte slice.
type cborReader struct {
	b   []byte
	off int
}

// head reads one item head: major type, additional information and argument
// (the length, count, tag number or value).
func (r *cborReader) head() (major, info byte, arg uint64, err error) {
	if r.off >= len(r.b) {
		return 0, 0, 0, errTruncated
	}
	ib := r.b[r.off]
	r.off++
	major, info = ib>>5, ib&0x1f
	switch {
	case info < 24:
		return major, info, uint64(info), nil
	case info <= 27:
		n := 1 << (info - 24)
		if len(r.b)-r.off < n {
			return 0, 0, 0, errTruncated
		}
		p := r.b[r.off : r.off+n]
		r.off += n
		switch n {
		case 1:
			arg = uint64(p[0])
		case 2:
			arg = uint64(binary.BigEndian.Uint16(p))
		case 4:
			arg = uint64(binary.BigEndian.Uint32(p))
		default:
			arg = binary.BigEndian.Uint64(p)
		}
		return major, info, arg, nil
	case info == indefiniteLength:
		return major, info, 0, nil
	}
	return 0, 0, 0, fmt.Errorf("reserved CBOR additional information %d", info)
}

// uint reads an unsigned integer item.
func (r *cborReader) uint(what string) (uint64, error) {
	major, info, arg, err := r.head()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if major != majorUint || info == indefiniteLength {
		return 0, fmt.Errorf("%s: want an unsigned integer, got %s", what, majorName(major))
	}
	return arg, nil
}

// str reads a definite-length byte or text string of the given major type
// and returns it without copying.
func (r *cborReader) str(major byte, what string) ([]byte, error) {
	m, info, n, err := r.head()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if m != major {
		return nil, fmt.Errorf("%s: want a %s, got %s", what, majorName(major), majorName(m))
	}
	if info == indefiniteLength {
		return nil, fmt.Errorf("%s: indefinite-length %s not supported", what, majorName(major))
	}
	if n > uint64(len(r.b)-r.off) {
		return nil, fmt.Errorf("%s: %s of %d bytes but only %d left: %w", what, majorName(major), n, len(r.b)-r.off, errTruncated)
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

// arrayHead reads the head of a definite-length array of want elements.
func (r *cborReader) arrayHead(want uint64, what string) error {
	major, info, n, err := r.head()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if major != majorArray || info == indefiniteLength {
		return fmt.Errorf("%s: want an array of %d, got %s", what, want, describeHead(major, info, n))
	}
	if n != want {
		return fmt.Errorf("%s: want an array of %d, got %d elements", what, want, n)
	}
	return nil
}

func majorName(major byte) string {
	return [...]string{"unsigned integer", "negative integer", "byte string", "text string", "array", "map", "tag", "simple value or float"}[major&7]
}

func describeHead(major, info byte, arg uint64) string {
	switch {
	case major == majorTag:
		return fmt.Sprintf("tag %d", arg)
	case info == indefiniteLength && major >= majorBytes && major <= majorMap:
		return "indefinite-length " + majorName(major)
	case major == majorArray:
		return fmt.Sprintf("array of %d", arg)
	}
	return majorName(major)
}

// elemType is the element type of an RFC 8746 typed array.
type elemType uint8

const (
	elemUnknown elemType = iota // a bare byte string: the field decides
	elemUint8
	elemUint16
	elemUint32
	elemFloat32
)

func (t elemType) size() int {
	switch t {
	case elemUint8:
		return 1
	case elemUint16:
		return 2
	case elemUint32, elemFloat32:
		return 4
	}
	return 0
}

func (t elemType) String() string {
	return [...]string{"untyped bytes", "uint8", "uint16", "uint32", "float32"}[t]
}

// typedArrayTag maps the four typed-array tags the stream uses to an element
// type. Their element size is 1 << (((tag>>4)&1) + (tag&3)) (RFC 8746 2.1);
// every other typed-array tag (big-endian, signed, clamped, 64-bit) is not
// something an EIGER sends.
func typedArrayTag(tag uint64) (elemType, bool) {
	switch tag {
	case tagUint8:
		return elemUint8, true
	case tagUint16LE:
		return elemUint16, true
	case tagUint32LE:
		return elemUint32, true
	case tagFloat32LE:
		return elemFloat32, true
	}
	return elemUnknown, false
}

// located is a typed array found in a message, not copied.
type located struct {
	elem    elemType
	hasDims bool
	rows    uint64 // slow axis (MultiDimArray dims[0])
	cols    uint64 // fast axis (MultiDimArray dims[1])
	enc     codec.Encoding
	// comprElem is the element size written in a 56500 tag (0 for raw data).
	comprElem uint64
	data      []byte // raw or compressed bytes, aliasing the message
}

// readArray reads a MultiDimArray (tag 40), a bare typed array (tag 64, 69,
// 70, 85), or a bare byte string, each possibly compressed with tag 56500.
// The bare forms occur in start messages: the count-rate lookup table is a
// typed array, and captured start messages have plain byte strings where the
// tables were emptied. Its errors name only the part of the item that is
// wrong; the caller says which item (so the per-frame path builds no
// strings).
func (r *cborReader) readArray() (located, error) {
	var a located
	start := r.off
	major, _, arg, err := r.head()
	if err != nil {
		return a, err
	}
	if major == majorTag && arg == tagMultiDimCol {
		return a, errors.New("column-major MultiDimArray (tag 1040) is not supported; the stream sends row-major (tag 40)")
	}
	if major == majorTag && arg == tagMultiDim {
		if err := r.arrayHead(2, "MultiDimArray"); err != nil {
			return a, err
		}
		if err := r.arrayHead(2, "MultiDimArray dimensions"); err != nil {
			return a, err
		}
		if a.rows, err = r.uint("rows"); err != nil {
			return a, err
		}
		if a.cols, err = r.uint("columns"); err != nil {
			return a, err
		}
		a.hasDims = true
		start = r.off
		if major, _, arg, err = r.head(); err != nil {
			return a, err
		}
	}
	if major == majorTag {
		if t, ok := typedArrayTag(arg); ok {
			a.elem = t
			start = r.off
			if major, _, arg, err = r.head(); err != nil {
				return a, err
			}
		} else if arg != tagDectrisCompr {
			return a, fmt.Errorf("unsupported typed array tag %d (want 64 uint8, 69 uint16, 70 uint32 or 85 float32, little-endian)", arg)
		}
	}
	if major == majorTag && arg == tagDectrisCompr {
		if err := r.arrayHead(3, "compression (tag 56500)"); err != nil {
			return a, err
		}
		alg, err := r.str(majorText, "compression algorithm")
		if err != nil {
			return a, err
		}
		if a.enc, err = codec.ParseV2Algorithm(string(alg)); err != nil {
			return a, err
		}
		if a.comprElem, err = r.uint("compression element size"); err != nil {
			return a, err
		}
		if a.data, err = r.str(majorBytes, "compressed data"); err != nil {
			return a, err
		}
		return a, nil
	}
	r.off = start
	a.enc = codec.Raw
	a.data, err = r.str(majorBytes, "array data")
	return a, err
}

// check validates a located array against its element size and dimensions:
// raw data must hold exactly rows*cols elements, compressed data must
// announce that many bytes in its header. elemSize is the size to check
// against when the array carries no type of its own.
func (a *located) check(elemSize int) (n int, err error) {
	if a.elem != elemUnknown {
		elemSize = a.elem.size()
	}
	if a.enc == codec.BSLZ4 && a.comprElem != uint64(elemSize) {
		return 0, fmt.Errorf("bslz4 element size %d but the array holds %d-byte elements", a.comprElem, elemSize)
	}
	if !a.hasDims {
		if a.enc == codec.Raw {
			if len(a.data)%elemSize != 0 {
				return 0, fmt.Errorf("%d bytes is not a whole number of %d-byte elements", len(a.data), elemSize)
			}
			return len(a.data) / elemSize, nil
		}
		size, ok := codec.DecodedSize(a.data, a.enc)
		if !ok || size%elemSize != 0 {
			return 0, fmt.Errorf("%s data header unreadable or not a whole number of %d-byte elements", a.enc, elemSize)
		}
		return size / elemSize, nil
	}
	if a.rows == 0 || a.cols == 0 || a.rows > maxDim || a.cols > maxDim || a.rows*a.cols > maxPixels {
		return 0, fmt.Errorf("dimensions [%d, %d] out of range (each 1..%d, at most %d elements)", a.rows, a.cols, maxDim, maxPixels)
	}
	n = int(a.rows * a.cols)
	want := n * elemSize
	if a.enc == codec.Raw {
		if len(a.data) != want {
			return 0, fmt.Errorf("%d bytes but dimensions [%d, %d] of %d-byte elements need %d", len(a.data), a.rows, a.cols, elemSize, want)
		}
		return n, nil
	}
	if size, ok := codec.DecodedSize(a.data, a.enc); !ok || size != want {
		if !ok {
			return 0, fmt.Errorf("%s data of %d bytes has no readable size header", a.enc, len(a.data))
		}
		return 0, fmt.Errorf("%s data decodes to %d bytes but dimensions [%d, %d] of %d-byte elements need %d", a.enc, size, a.rows, a.cols, elemSize, want)
	}
	return n, nil
}

// Size limits for anything a message declares, so a hostile or corrupt
// message cannot make the server allocate gigabytes. The largest EIGER2
// (16M) is 4148 x 4362.
const (
	maxDim    = 1 << 16
	maxPixels = 1 << 27
)

// float32sLE converts little-endian float32 bytes.
func float32sLE(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// uint32sLE converts little-endian unsigned integers of elemSize bytes,
// widening them to uint32.
func uint32sLE(b []byte, elemSize int) []uint32 {
	out := make([]uint32, len(b)/elemSize)
	switch elemSize {
	case 1:
		for i := range out {
			out[i] = uint32(b[i])
		}
	case 2:
		for i := range out {
			out[i] = uint32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	default:
		for i := range out {
			out[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
	}
	return out
}
