package codec

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/pierrec/lz4/v4"
)

// maxBlockSize caps SetBlockSize and SetHDF5BlockSize: the headers store the
// block size in a u32, and no reader expects blocks anywhere near that.
const maxBlockSize = 1 << 30

// Encoder encodes pixel data; it is the inverse of Decoder, used by the
// detector simulator and by tests. Use one per goroutine; it is not safe for
// concurrent use. It keeps the LZ4 compressor state and one bitshuffle block
// of scratch, so encoding into a buffer pre-sized with MaxEncodedSize
// allocates nothing after the first frame.
//
// LZ4 blocks are compressed with a port of the reference implementation's
// LZ4_compress_default, so the output is byte-for-byte what the bitshuffle C
// library and the HDF5 LZ4 filter produce for the same input and block size.
type Encoder struct {
	lz4           lz4.CompressorCCompat
	blockSize     int    // bitshuffle block size in bytes; 0 means DefaultBlockSize
	hdf5BlockSize int    // HDF5 LZ4 block size in bytes; 0 means DefaultHDF5BlockSize
	rows          []byte // one bit-shuffled block, waiting to be compressed
}

// NewEncoder returns an Encoder with EIGER's block sizes.
func NewEncoder() *Encoder { return &Encoder{} }

// SetBlockSize sets the bitshuffle block size in bytes for BSLZ4 and
// BSLZ4NoHeader (default DefaultBlockSize, EIGER's). The block used for a
// given element size is bytes/elemSize elements rounded down to a multiple
// of 8 (at least 8), as the format requires. bytes <= 0 restores the
// default; sizes above 1 GiB are treated as 1 GiB. Decoders of a headerless
// container assume the default, so only change it for BSLZ4.
func (e *Encoder) SetBlockSize(bytes int) { e.blockSize = clampBlockSize(bytes) }

// SetHDF5BlockSize sets the HDF5LZ4 block size in bytes (default
// DefaultHDF5BlockSize). bytes <= 0 restores the default; sizes above 1 GiB
// are treated as 1 GiB.
func (e *Encoder) SetHDF5BlockSize(bytes int) { e.hdf5BlockSize = clampBlockSize(bytes) }

func clampBlockSize(bytes int) int {
	if bytes <= 0 {
		return 0
	}
	return min(bytes, maxBlockSize)
}

// bitshuffleBlockElems is the bitshuffle block length in elements for block
// size bytes (0 = default) and element size s.
func bitshuffleBlockElems(bytes, s int) int {
	if bytes == 0 {
		bytes = DefaultBlockSize
	}
	return max((bytes/s)&^7, 8)
}

func (e *Encoder) hdf5Block() int {
	if e.hdf5BlockSize == 0 {
		return DefaultHDF5BlockSize
	}
	return e.hdf5BlockSize
}

// MaxEncodedSize bounds the encoded size of n source bytes with the default
// block sizes, for pre-sizing buffers. It returns 0 for an unknown encoding
// or element size (Encode reports those).
func MaxEncodedSize(n int, enc Encoding, elemSize int) int {
	return maxEncodedSize(n, enc, elemSize, 0, DefaultHDF5BlockSize)
}

// MaxEncodedSize is like the package function MaxEncodedSize but uses this
// Encoder's block sizes.
func (e *Encoder) MaxEncodedSize(n int, enc Encoding, elemSize int) int {
	return maxEncodedSize(n, enc, elemSize, e.blockSize, e.hdf5Block())
}

func maxEncodedSize(n int, enc Encoding, s, bsBytes, hdf5Bytes int) int {
	if n < 0 {
		return 0
	}
	switch enc {
	case Raw:
		return n
	case LZ4Block:
		return lz4.CompressBlockBound(n)
	case BSLZ4, BSLZ4NoHeader:
		if !validElemSize(s) {
			return 0
		}
		elems := n / s
		b := bitshuffleBlockElems(bsBytes, s)
		size := (elems/b)*(blockLenSize+lz4.CompressBlockBound(b*s)) + (elems%8)*s
		if last := (elems % b) &^ 7; last > 0 {
			size += blockLenSize + lz4.CompressBlockBound(last*s)
		}
		if enc == BSLZ4 {
			size += headerSize
		}
		return size
	case HDF5LZ4:
		size := headerSize + (n/hdf5Bytes)*(blockLenSize+lz4.CompressBlockBound(hdf5Bytes))
		if last := n % hdf5Bytes; last > 0 {
			size += blockLenSize + lz4.CompressBlockBound(last)
		}
		return size
	}
	return 0
}

// Encode appends src encoded as enc to dst and returns the extended slice.
// len(src) must be a whole number of elemSize-byte elements; elemSize must
// be 1, 2, 4 or 8 for the bitshuffle encodings (0 is accepted for the
// others, which do not depend on it). BSLZ4 and BSLZ4NoHeader use EIGER's
// block size of 8192 bytes unless SetBlockSize changed it; HDF5LZ4 uses
// DefaultHDF5BlockSize unless SetHDF5BlockSize changed it. On error dst is
// returned unchanged.
func (e *Encoder) Encode(dst, src []byte, enc Encoding, elemSize int) ([]byte, error) {
	if err := checkElemSize(enc, elemSize, len(src)); err != nil {
		return dst, err
	}
	need := e.MaxEncodedSize(len(src), enc, elemSize)
	start := len(dst)
	grown := slices.Grow(dst, need)
	out := grown[start : start+need]
	var n int
	var err error
	switch enc {
	case Raw:
		n = copy(out, src)
	case LZ4Block:
		n, err = e.compress(out, src)
	case BSLZ4, BSLZ4NoHeader:
		n, err = e.encodeBitshuffle(out, src, elemSize, enc == BSLZ4)
	default: // HDF5LZ4; checkElemSize rejected anything else
		n, err = e.encodeHDF5LZ4(out, src)
	}
	if err != nil {
		return dst, err
	}
	return grown[:start+n], nil
}

// compress writes one LZ4 block of src to out, which must hold at least
// lz4.CompressBlockBound(len(src)) bytes (then compression cannot fail for
// lack of room).
func (e *Encoder) compress(out, src []byte) (int, error) {
	n, err := e.lz4.CompressBlock(src, out)
	if err != nil || (n == 0 && len(src) > 0) {
		return 0, fmt.Errorf("%w: lz4 compression of %d bytes failed: %v", ErrUnsupported, len(src), err)
	}
	return n, nil
}

// encodeBitshuffle writes the bitshuffle+LZ4 container of src to out (sized
// by maxEncodedSize) and returns its length.
func (e *Encoder) encodeBitshuffle(out, src []byte, s int, header bool) (int, error) {
	n := len(src) / s
	b := bitshuffleBlockElems(e.blockSize, s)
	pos := 0
	if header {
		binary.BigEndian.PutUint64(out, uint64(len(src)))
		binary.BigEndian.PutUint32(out[8:], uint32(b*s))
		pos = headerSize
	}
	if need := min(b, n&^7) * s; cap(e.rows) < need {
		e.rows = make([]byte, need)
	}
	fullBlocks, last := n/b, (n%b)&^7
	in := 0
	for i := 0; i <= fullBlocks; i++ {
		m := b
		if i == fullBlocks {
			if m = last; m == 0 {
				break
			}
		}
		size := m * s
		rows := e.rows[:size]
		transposeBlock(rows, src[in:in+size], s, true)
		k, err := e.compress(out[pos+blockLenSize:], rows)
		if err != nil {
			return 0, err
		}
		binary.BigEndian.PutUint32(out[pos:], uint32(k))
		pos += blockLenSize + k
		in += size
	}
	pos += copy(out[pos:], src[in:]) // the last n%8 elements, raw
	return pos, nil
}

// encodeHDF5LZ4 writes the HDF5 LZ4-filter framing of src to out (sized by
// maxEncodedSize). As the HDF5 filter does, the header carries the block size
// clamped to the data size, and a block that LZ4 cannot shrink is stored raw.
func (e *Encoder) encodeHDF5LZ4(out, src []byte) (int, error) {
	bs := min(e.hdf5Block(), len(src))
	binary.BigEndian.PutUint64(out, uint64(len(src)))
	binary.BigEndian.PutUint32(out[8:], uint32(bs))
	pos := headerSize
	for in := 0; in < len(src); {
		block := src[in:min(in+bs, len(src))]
		k, err := e.compress(out[pos+blockLenSize:], block)
		if err != nil {
			return 0, err
		}
		if k >= len(block) {
			k = copy(out[pos+blockLenSize:], block)
		}
		binary.BigEndian.PutUint32(out[pos:], uint32(k))
		pos += blockLenSize + k
		in += len(block)
	}
	return pos, nil
}
