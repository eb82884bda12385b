// Package codec decodes and encodes the pixel encodings an EIGER detector
// puts on the wire: raw little-endian pixels, a single LZ4 block (Stream V1
// "lz4<"), bitshuffle+LZ4 (V1 "bsN-lz4<", V2 "bslz4") and LZ4 in the HDF5
// LZ4-filter framing (V2 "lz4").
//
// The package is on the per-frame hot path of the receiver, so it is built to
// allocate nothing once warm: callers own the destination buffers, and a
// Decoder or Encoder keeps its small scratch (one bitshuffle block) between
// frames. Use one Decoder per worker goroutine.
//
// Every input is treated as hostile: sizes announced by headers are checked
// against the caller's destination before anything is written, every block
// length is bounds-checked, and every problem is reported as an error that
// wraps one of the Err* sentinels (so a receiver can count them by kind),
// never as a panic.
//
// The bitshuffle format is the one of the bitshuffle library (Masui et al.),
// which EIGER firmware uses; see BitShuffle for the bit layout. Output of the
// Encoder is byte-for-byte what the bitshuffle C library and the HDF5 LZ4
// filter produce, because both sides use the reference LZ4 compressor's
// algorithm.
package codec

import (
	"errors"
	"fmt"
	"strings"
)

// Encoding identifies how pixel bytes are packed on the wire.
type Encoding uint8

const (
	// Raw is V1 "<": little-endian pixels as they are.
	Raw Encoding = iota + 1
	// LZ4Block is V1 "lz4<": ONE raw LZ4 block, no header; the decoded size
	// is pixels*elemSize.
	LZ4Block
	// BSLZ4 is V1 "bs8-lz4<"/"bs16-lz4<"/"bs32-lz4<" and V2 "bslz4":
	// bitshuffle+LZ4 with the 12-byte header. On decode, a container without
	// the header is also accepted (the header is present iff the first 8
	// bytes, big-endian, equal len(dst)).
	BSLZ4
	// BSLZ4NoHeader is the same container without the 12-byte header (some
	// simulators send it); decoding forces headerless and assumes EIGER's
	// block size of 8192 bytes.
	BSLZ4NoHeader
	// HDF5LZ4 is V2 "lz4": the HDF5 LZ4-filter framing (u64 BE total, u32 BE
	// block size, then blocks each preceded by a u32 BE length; a block is
	// stored raw when its length equals its uncompressed length).
	HDF5LZ4
)

// String returns the name used in logs and errors; it is not a wire name
// (see ParseV1Encoding and ParseV2Algorithm for those).
func (e Encoding) String() string {
	switch e {
	case Raw:
		return "raw"
	case LZ4Block:
		return "lz4-block"
	case BSLZ4:
		return "bslz4"
	case BSLZ4NoHeader:
		return "bslz4-noheader"
	case HDF5LZ4:
		return "hdf5-lz4"
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// Errors wrapped by every error this package returns, so that callers can
// classify (and count) failures with errors.Is.
var (
	// ErrTruncated: the input ends before the data it announces.
	ErrTruncated = errors.New("codec: input truncated")
	// ErrTrailingData: bytes remain after the last block (and tail).
	ErrTrailingData = errors.New("codec: trailing bytes after the encoded data")
	// ErrSizeMismatch: the decoded size (announced or actual) differs from
	// the destination buffer.
	ErrSizeMismatch = errors.New("codec: size mismatch")
	// ErrCorrupt: a header field or a compressed block is invalid.
	ErrCorrupt = errors.New("codec: corrupt data")
	// ErrUnsupported: an encoding, element size or block size this package
	// does not handle (a caller or configuration error, not a data error).
	ErrUnsupported = errors.New("codec: unsupported")
)

// Sizes of the framing fields.
const (
	// headerSize is the u64 BE total + u32 BE block size header that both
	// the bitshuffle container and the HDF5 LZ4 framing start with.
	headerSize = 12
	// blockLenSize is the u32 BE length before each compressed block.
	blockLenSize = 4
)

// DefaultBlockSize is EIGER's bitshuffle block size in bytes (4096 16-bit
// pixels). It is also the bitshuffle library's default for 1, 2, 4 and 8
// byte elements, which is what a headerless container is assumed to use.
const DefaultBlockSize = 8192

// DefaultHDF5BlockSize is the block size in bytes the Encoder uses for
// HDF5LZ4 unless SetHDF5BlockSize changes it. It is the size DECTRIS
// firmware uses for Stream V2 "lz4" (the real EIGER2 500K fixtures carry it
// in their headers); the decoder accepts any block size.
const DefaultHDF5BlockSize = 8192

// MaxElemSize is the largest element (pixel) size in bytes the bitshuffle
// codec handles. EIGER sends 1, 2 and 4; 8 costs nothing to support.
const MaxElemSize = 8

// validElemSize reports whether s is a bitshuffle element size this package
// handles: a power of two from 1 to MaxElemSize.
func validElemSize(s int) bool {
	return s == 1 || s == 2 || s == 4 || s == 8
}

// checkElemSize validates elemSize for enc and that dstLen holds a whole
// number of elements. Bitshuffle needs a real element size; the other
// encodings do not depend on it (V2 announces elem_size 0 for "lz4"), so
// there 0 means "unknown" and is accepted.
func checkElemSize(enc Encoding, elemSize, dstLen int) error {
	switch enc {
	case BSLZ4, BSLZ4NoHeader:
		if !validElemSize(elemSize) {
			return fmt.Errorf("%w: element size %d for %v (want 1, 2, 4 or 8)", ErrUnsupported, elemSize, enc)
		}
	case Raw, LZ4Block, HDF5LZ4:
		if elemSize != 0 && !validElemSize(elemSize) {
			return fmt.Errorf("%w: element size %d for %v (want 0, 1, 2, 4 or 8)", ErrUnsupported, elemSize, enc)
		}
	default:
		return fmt.Errorf("%w: encoding %v", ErrUnsupported, enc)
	}
	if elemSize > 0 && dstLen%elemSize != 0 {
		return fmt.Errorf("%w: %d bytes is not a whole number of %d-byte elements", ErrSizeMismatch, dstLen, elemSize)
	}
	return nil
}

// ParseV1Encoding maps a Stream V1 "encoding" value (grammar
// `[bs<8|16|32>-][lz4]<`) to an Encoding. For the bitshuffle encodings it
// also returns the element size in bytes the name implies (bs16 -> 2), which
// the caller should check against the "type" field; for "<" and "lz4<" the
// element size comes from "type" alone and 0 is returned.
//
// Bitshuffle without LZ4 ("bs16-<") and big-endian data (">") are legal in
// the grammar but no EIGER sends them; they are reported as ErrUnsupported.
func ParseV1Encoding(s string) (enc Encoding, elemSize int, err error) {
	switch s {
	case "<":
		return Raw, 0, nil
	case "lz4<":
		return LZ4Block, 0, nil
	case "bs8-lz4<":
		return BSLZ4, 1, nil
	case "bs16-lz4<":
		return BSLZ4, 2, nil
	case "bs32-lz4<":
		return BSLZ4, 4, nil
	}
	if strings.HasSuffix(s, ">") {
		return 0, 0, fmt.Errorf("%w: big-endian V1 encoding %q", ErrUnsupported, s)
	}
	return 0, 0, fmt.Errorf("%w: V1 encoding %q (want <, lz4<, bs8-lz4<, bs16-lz4< or bs32-lz4<)", ErrUnsupported, s)
}

// ParseV2Algorithm maps the algorithm of a Stream V2 compression tag (56500)
// to an Encoding: "bslz4" -> BSLZ4, "lz4" -> HDF5LZ4. Note that V2 "lz4" is
// not the same bytes as V1 "lz4<".
func ParseV2Algorithm(alg string) (Encoding, error) {
	switch alg {
	case "bslz4":
		return BSLZ4, nil
	case "lz4":
		return HDF5LZ4, nil
	}
	// A copy in the error: alg then does not escape, so a caller's
	// string(bytes) conversion needs no allocation (the per-frame path).
	return 0, fmt.Errorf("%w: V2 compression algorithm %q (want bslz4 or lz4)", ErrUnsupported, strings.Clone(alg))
}
