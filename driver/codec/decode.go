package codec

import (
	"encoding/binary"
	"fmt"

	"github.com/pierrec/lz4/v4"
)

// Decoder decodes encoded pixel data into caller-owned buffers. Use one per
// worker goroutine; it is not safe for concurrent use. It keeps the scratch
// buffer for one bitshuffle block, so decoding allocates nothing after the
// first frame (the scratch only grows if a later frame announces larger
// blocks, and never beyond the destination's size).
type Decoder struct {
	// block receives one LZ4-decoded bitshuffle block (the bit rows) before
	// it is unshuffled into the destination; 8 KiB for EIGER, so it stays in
	// L1 cache between the two steps.
	block []byte
}

// NewDecoder returns a Decoder with no scratch yet.
func NewDecoder() *Decoder { return &Decoder{} }

// Decode decodes src, encoded as enc with elemSize-byte elements, into dst.
// len(dst) must be exactly the decoded size (pixels*elemSize). elemSize must
// be 1, 2, 4 or 8 for the bitshuffle encodings; for Raw, LZ4Block and
// HDF5LZ4 it only checks that dst holds whole elements, and 0 means unknown.
//
// src must be exactly one encoded frame: Decode returns the number of bytes
// it consumed, which on success is len(src); truncated input, bytes after
// the last block, sizes that disagree with len(dst) and corrupt blocks are
// errors wrapping ErrTruncated, ErrTrailingData, ErrSizeMismatch or
// ErrCorrupt. On error, consumed is the offset in src where the problem was
// found and dst holds partial output.
func (d *Decoder) Decode(dst, src []byte, enc Encoding, elemSize int) (consumed int, err error) {
	if err := checkElemSize(enc, elemSize, len(dst)); err != nil {
		return 0, err
	}
	switch enc {
	case Raw:
		return decodeRaw(dst, src)
	case LZ4Block:
		return decodeLZ4Block(dst, src)
	case BSLZ4:
		return d.decodeBitshuffle(dst, src, elemSize, true)
	case BSLZ4NoHeader:
		return d.decodeBitshuffle(dst, src, elemSize, false)
	default: // HDF5LZ4; checkElemSize rejected anything else
		return decodeHDF5LZ4(dst, src)
	}
}

// DecodedSize returns the total uncompressed size announced by src's header
// (BSLZ4 with header, HDF5LZ4), so that a V2 parser can check it against the
// array dimensions before decoding. It returns false when enc has no header,
// when src is shorter than the header, or when the size does not fit in an
// int. Note that a headerless BSLZ4 container cannot be told from a header by
// looking at src alone (Decode compares with len(dst)); DecodedSize takes the
// first 8 bytes as the size.
func DecodedSize(src []byte, enc Encoding) (int, bool) {
	if enc != BSLZ4 && enc != HDF5LZ4 {
		return 0, false
	}
	if len(src) < headerSize {
		return 0, false
	}
	total := binary.BigEndian.Uint64(src)
	if total > uint64(maxInt) {
		return 0, false
	}
	return int(total), true
}

const maxInt = int(^uint(0) >> 1)

func decodeRaw(dst, src []byte) (int, error) {
	if len(src) < len(dst) {
		return len(src), fmt.Errorf("%w: raw: %d bytes, want %d", ErrTruncated, len(src), len(dst))
	}
	n := copy(dst, src)
	if len(src) > n {
		return n, fmt.Errorf("%w: raw: %d bytes, want %d", ErrTrailingData, len(src), len(dst))
	}
	return n, nil
}

// decodeLZ4Block decodes one raw LZ4 block (V1 "lz4<"). An LZ4 block has no
// length of its own: its last sequence ends where src ends, so the whole of
// src is the block and the decoded length must be exactly len(dst).
func decodeLZ4Block(dst, src []byte) (int, error) {
	if len(src) == 0 {
		return 0, fmt.Errorf("%w: lz4 block: empty input (an LZ4 block has at least one byte)", ErrTruncated)
	}
	n, err := lz4.UncompressBlock(src, dst)
	if err != nil {
		return 0, fmt.Errorf("%w: lz4 block of %d bytes: invalid, truncated, or decodes to more than %d bytes", ErrCorrupt, len(src), len(dst))
	}
	if n != len(dst) {
		return len(src), fmt.Errorf("%w: lz4 block decodes to %d bytes, want %d", ErrSizeMismatch, n, len(dst))
	}
	return len(src), nil
}

// readHeader reads the 12-byte header shared by the bitshuffle container and
// the HDF5 LZ4 framing and checks the announced total against len(dst)
// before anything is decoded, so a header announcing 2^60 bytes costs
// nothing.
func readHeader(src []byte, dstLen int, enc Encoding) (blockSize uint32, err error) {
	if len(src) < headerSize {
		return 0, fmt.Errorf("%w: %v: %d bytes, shorter than the %d-byte header", ErrTruncated, enc, len(src), headerSize)
	}
	total := binary.BigEndian.Uint64(src)
	if total != uint64(dstLen) {
		return 0, fmt.Errorf("%w: %v header announces %d bytes, destination holds %d", ErrSizeMismatch, enc, total, dstLen)
	}
	return binary.BigEndian.Uint32(src[8:]), nil
}

// decodeBitshuffle decodes the bitshuffle+LZ4 container: optional header,
// n/B full blocks of B elements, one block of (n%B)&^7 elements if any, each
// a u32 BE length and an LZ4 block holding the bit rows, then the last n%8
// elements raw.
func (d *Decoder) decodeBitshuffle(dst, src []byte, s int, headerAllowed bool) (int, error) {
	enc := BSLZ4NoHeader
	if headerAllowed {
		enc = BSLZ4
	}
	n := len(dst) / s
	blockElems := DefaultBlockSize / s
	pos := 0
	switch {
	case headerAllowed && len(src) >= headerSize && binary.BigEndian.Uint64(src) == uint64(len(dst)):
		bs, _ := readHeader(src, len(dst), enc)
		if bs == 0 || bs%uint32(8*s) != 0 {
			return 0, fmt.Errorf("%w: %v: block size %d bytes is not a positive multiple of %d (8 elements of %d bytes)", ErrCorrupt, enc, bs, 8*s, s)
		}
		// Blocks larger than the frame are legal (the frame is then one
		// block and the raw tail). Clamp to the frame, rounded up to whole
		// groups of 8 as the format's block sizes are, before converting:
		// a 4 GiB block size can then neither overflow nor size the scratch.
		if uint64(bs/uint32(s)) < uint64(n) {
			blockElems = int(bs / uint32(s))
		} else {
			blockElems = max((n+7)&^7, 8)
		}
		pos = headerSize
	case headerAllowed && n >= 8 && len(src) >= blockLenSize && !plausibleFirstBlock(binary.BigEndian.Uint32(src), s):
		// Headerless data starts with the length of its first block, which
		// is neither zero nor more than LZ4 can make of one default block;
		// so this is a header, cut short or announcing another size. Say
		// so rather than reporting a corrupt block. (readHeader fails here:
		// a header that matches took the case above.)
		if _, err := readHeader(src, len(dst), enc); err != nil {
			return 0, err
		}
	}

	blockBytes := min(blockElems, n&^7) * s
	if cap(d.block) < blockBytes {
		d.block = make([]byte, blockBytes)
	}
	fullBlocks := n / blockElems
	lastElems := (n % blockElems) &^ 7
	out := 0
	for i := 0; i <= fullBlocks; i++ {
		m := blockElems
		if i == fullBlocks {
			if m = lastElems; m == 0 {
				break
			}
		}
		size := m * s
		var err error
		if pos, err = d.decodeBitshuffleBlock(dst[out:out+size], src, pos, s, i, enc); err != nil {
			return pos, err
		}
		out += size
	}
	tail := len(dst) - out // (n%8)*s
	if len(src)-pos < tail {
		return pos, fmt.Errorf("%w: %v: raw tail of %d bytes at offset %d, only %d left", ErrTruncated, enc, tail, pos, len(src)-pos)
	}
	copy(dst[out:], src[pos:pos+tail])
	pos += tail
	if pos != len(src) {
		return pos, fmt.Errorf("%w: %v: %d bytes after the data, which ends at offset %d", ErrTrailingData, enc, len(src)-pos, pos)
	}
	return pos, nil
}

// plausibleFirstBlock reports whether a headerless container could start
// with a block of length l: a compressed block is never empty, and LZ4 never
// needs more than its bound for one block of DefaultBlockSize bytes.
func plausibleFirstBlock(l uint32, s int) bool {
	return l > 0 && l <= uint32(lz4.CompressBlockBound(DefaultBlockSize/s*s))
}

// decodeBitshuffleBlock decodes block number i starting at src[pos] into dst
// and returns the offset after it.
func (d *Decoder) decodeBitshuffleBlock(dst, src []byte, pos, s, i int, enc Encoding) (int, error) {
	if len(src)-pos < blockLenSize {
		return pos, fmt.Errorf("%w: %v: block %d at offset %d: no room for its length", ErrTruncated, enc, i, pos)
	}
	clen := binary.BigEndian.Uint32(src[pos:])
	pos += blockLenSize
	if uint64(clen) > uint64(len(src)-pos) {
		return pos - blockLenSize, fmt.Errorf("%w: %v: block %d at offset %d announces %d bytes, only %d left", ErrTruncated, enc, i, pos-blockLenSize, clen, len(src)-pos)
	}
	rows := d.block[:len(dst)]
	k, err := lz4.UncompressBlock(src[pos:pos+int(clen)], rows)
	if err != nil || k != len(rows) {
		return pos - blockLenSize, fmt.Errorf("%w: %v: block %d at offset %d: LZ4 data of %d bytes does not decode to %d bytes", ErrCorrupt, enc, i, pos-blockLenSize, clen, len(rows))
	}
	transposeBlock(dst, rows, s, false)
	return pos + int(clen), nil
}

// decodeHDF5LZ4 decodes the HDF5 LZ4-filter framing: header, then blocks of
// min(blockSize, remaining) bytes, each a u32 BE length and either an LZ4
// block or (when the length equals the block's size) the bytes stored raw.
func decodeHDF5LZ4(dst, src []byte) (int, error) {
	bs, err := readHeader(src, len(dst), HDF5LZ4)
	if err != nil {
		return 0, err
	}
	if bs == 0 && len(dst) > 0 {
		return 0, fmt.Errorf("%w: %v: block size 0", ErrCorrupt, HDF5LZ4)
	}
	pos := headerSize
	for out, i := 0, 0; out < len(dst); i++ {
		size := len(dst) - out
		if uint64(bs) < uint64(size) {
			size = int(bs)
		}
		if len(src)-pos < blockLenSize {
			return pos, fmt.Errorf("%w: %v: block %d at offset %d: no room for its length", ErrTruncated, HDF5LZ4, i, pos)
		}
		clen := binary.BigEndian.Uint32(src[pos:])
		if uint64(clen) > uint64(len(src)-pos-blockLenSize) {
			return pos, fmt.Errorf("%w: %v: block %d at offset %d announces %d bytes, only %d left", ErrTruncated, HDF5LZ4, i, pos, clen, len(src)-pos-blockLenSize)
		}
		data := src[pos+blockLenSize : pos+blockLenSize+int(clen)]
		block := dst[out : out+size]
		if int(clen) == size {
			copy(block, data) // stored raw: LZ4 would not have saved anything
		} else if k, err := lz4.UncompressBlock(data, block); err != nil || k != size {
			return pos, fmt.Errorf("%w: %v: block %d at offset %d: LZ4 data of %d bytes does not decode to %d bytes", ErrCorrupt, HDF5LZ4, i, pos, clen, size)
		}
		pos += blockLenSize + int(clen)
		out += size
	}
	if pos != len(src) {
		return pos, fmt.Errorf("%w: %v: %d bytes after the data, which ends at offset %d", ErrTrailingData, HDF5LZ4, len(src)-pos, pos)
	}
	return pos, nil
}
