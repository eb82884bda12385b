package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"tioga/driver/codec/internal/cbitshuffle"
)

// The fuzz targets decode arbitrary bytes and check three things: no panic;
// the scratch never grows beyond the destination (a header announcing 2^60
// bytes is rejected against len(dst) before anything is sized by it); and
// whenever Decode accepts input, the reference C implementation decodes it
// to the same bytes (differential fuzzing).
//
// One known difference: the LZ4 format requires a block to end with at
// least five literals, and the reference LZ4_decompress_safe rejects a block
// that ends with a match; pierrec/lz4 (like several other decoders) accepts
// it, and its output is still fully determined by the sequences. Where only
// the C side rejects, the harnesses compare with refLZ4Decode, a literal
// reading of the sequences, instead. (Regression input:
// testdata/fuzz/FuzzDecodeLZ4Block/0060c341b88a600d.)

// maxFuzzDst bounds the destination the harnesses allocate.
const maxFuzzDst = 1 << 23

// fuzzDstLen picks the destination size: the size the input's header
// announces when asked to and when it is reasonable (so that seeds and their
// mutations reach the block decoding), else the fuzzer's own number.
func fuzzDstLen(src []byte, enc Encoding, useHeader bool, n uint32, s int) int {
	if total, ok := DecodedSize(src, enc); useHeader && ok && total <= maxFuzzDst {
		return total
	}
	return int(n%maxFuzzDst) / s * s
}

func addBitshuffleSeeds(f *testing.F) {
	f.Add(readFixture(f, "eiger-stream-v1", "eiger4m-bs16", "streamfile_12"), uint8(1), true, uint32(0), false)
	for i, s := range []string{"bslz4_8bit", "bslz4_16bit", "bslz4_32bit"} {
		f.Add(loadR500K(f, s, 1).Data, uint8(i), true, uint32(0), false)
	}
	r := rand.New(rand.NewPCG(19, 20))
	e := NewEncoder()
	e.SetBlockSize(64)
	for sel := range uint8(4) {
		s := 1 << sel
		for _, n := range []int{0, 3, 8, 20, 77} {
			src := diffractionLike(r, n, s)
			withHeader, _ := e.Encode(nil, src, BSLZ4, s)
			f.Add(withHeader, sel, true, uint32(len(src)), false)
			noHeader, _ := NewEncoder().Encode(nil, src, BSLZ4NoHeader, s)
			f.Add(noHeader, sel, false, uint32(len(src)), true)
		}
	}
	f.Add([]byte{0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0}, uint8(1), false, uint32(4096), false) // announces 2^60
}

// FuzzDecodeBSLZ4 decodes fuzzed bitshuffle containers, with or without
// header, with the element size taken from the input.
func FuzzDecodeBSLZ4(f *testing.F) {
	if err := cbitshuffle.Load(); err != nil {
		f.Fatal(err)
	}
	addBitshuffleSeeds(f)
	f.Fuzz(func(t *testing.T, src []byte, elemSel uint8, useHeader bool, n uint32, forceHeaderless bool) {
		d := NewDecoder() // fresh, so that its scratch reflects this input only
		s := 1 << (elemSel & 3)
		enc := BSLZ4
		if forceHeaderless {
			enc = BSLZ4NoHeader
		}
		dst := make([]byte, fuzzDstLen(src, BSLZ4, useHeader, n, s))
		used, err := d.Decode(dst, src, enc, s)
		if cap(d.block) > len(dst) {
			t.Fatalf("scratch of %d bytes for a %d-byte destination", cap(d.block), len(dst))
		}
		if err != nil {
			if used < 0 || used > len(src) {
				t.Fatalf("error at offset %d of %d", used, len(src))
			}
			return
		}
		if used != len(src) {
			t.Fatalf("accepted, consumed %d of %d", used, len(src))
		}
		// The C library must agree. It wants the header; give it one when
		// the input had none (the default block size is then implied).
		withHeader := src
		if total, ok := DecodedSize(src, BSLZ4); enc == BSLZ4NoHeader || !ok || total != len(dst) {
			withHeader = binary.BigEndian.AppendUint64(nil, uint64(len(dst)))
			withHeader = binary.BigEndian.AppendUint32(withHeader, uint32(DefaultBlockSize/s*s))
			withHeader = append(withHeader, src...)
		}
		ref := make([]byte, len(dst))
		if _, cerr := cbitshuffle.Decompress(ref, withHeader, s); cerr != nil {
			if rerr := refDecodeBitshuffle(ref, withHeader, s); rerr != nil {
				t.Fatalf("accepted input the C library (%v) and the reference reading (%v) reject", cerr, rerr)
			}
		}
		if !bytes.Equal(ref, dst) {
			t.Fatalf("decoded differently from the reference (first difference at %d)", firstDiff(ref, dst))
		}
	})
}

// FuzzDecodeLZ4Block decodes fuzzed single LZ4 blocks and compares every
// accepted one with the reference LZ4_decompress_safe.
func FuzzDecodeLZ4Block(f *testing.F) {
	if err := cbitshuffle.Load(); err != nil {
		f.Fatal(err)
	}
	r := rand.New(rand.NewPCG(21, 22))
	e := NewEncoder()
	for _, n := range []int{0, 1, 100, 5000} {
		src := diffractionLike(r, n, 2)
		b, _ := e.Encode(nil, src, LZ4Block, 2)
		f.Add(b, uint32(len(src)))
	}
	// A 4M-sized lz4< frame as the EIGER would send it, from the real frame.
	px := make([]byte, 4485690*2)
	if _, err := NewDecoder().Decode(px, readFixture(f, "eiger-stream-v1", "eiger4m-bs16", "streamfile_12"), BSLZ4, 2); err != nil {
		f.Fatal(err)
	}
	b, _ := e.Encode(nil, px, LZ4Block, 2)
	f.Add(b, uint32(len(px)))
	f.Add([]byte{0x10, 0, 0xff, 0x7f}, uint32(100))
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, src []byte, n uint32) {
		dst := make([]byte, int(n%maxFuzzDst))
		used, err := d.Decode(dst, src, LZ4Block, 0)
		if err != nil {
			return
		}
		if used != len(src) {
			t.Fatalf("accepted, consumed %d of %d", used, len(src))
		}
		ref := make([]byte, len(dst))
		k, err := cbitshuffle.LZ4Decompress(ref, src)
		if err != nil {
			k, err = refLZ4Decode(ref, src)
		}
		if err != nil || k != len(dst) || !bytes.Equal(ref, dst) {
			t.Fatalf("reference LZ4 disagrees: %d bytes, %v", k, err)
		}
	})
}

// refLZ4Decode decodes an LZ4 block by reading its sequences literally
// (token, literal length, literals, offset, match length, byte-wise match
// copy) and tolerates a block that ends with a match (see the top of this
// file). It is slow and obviously correct, for the fuzz harnesses only.
func refLZ4Decode(dst, src []byte) (int, error) {
	out, pos := 0, 0
	length := func(n int) (int, error) {
		if n != 15 {
			return n, nil
		}
		for {
			if pos >= len(src) {
				return 0, errors.New("truncated length")
			}
			b := src[pos]
			pos++
			n += int(b)
			if b != 255 {
				return n, nil
			}
		}
	}
	for pos < len(src) {
		token := src[pos]
		pos++
		lit, err := length(int(token >> 4))
		if err != nil {
			return 0, err
		}
		if lit > len(src)-pos || lit > len(dst)-out {
			return 0, errors.New("literals out of range")
		}
		out += copy(dst[out:], src[pos:pos+lit])
		pos += lit
		if pos == len(src) {
			break
		}
		if len(src)-pos < 2 {
			return 0, errors.New("truncated offset")
		}
		off := int(binary.LittleEndian.Uint16(src[pos:]))
		pos += 2
		ml, err := length(int(token & 15))
		if err != nil {
			return 0, err
		}
		ml += 4
		if off == 0 || off > out || ml > len(dst)-out {
			return 0, errors.New("match out of range")
		}
		for range ml {
			dst[out] = dst[out-off]
			out++
		}
	}
	return out, nil
}

// FuzzDecodeHDF5LZ4 decodes fuzzed HDF5 LZ4 framing and compares every
// accepted input with the reference liblz4 applied block by block.
func FuzzDecodeHDF5LZ4(f *testing.F) {
	if err := cbitshuffle.Load(); err != nil {
		f.Fatal(err)
	}
	f.Add(loadR500K(f, "lz4_16bit", 1).Data, true, uint32(0))
	r := rand.New(rand.NewPCG(23, 24))
	e := NewEncoder()
	e.SetHDF5BlockSize(64)
	for _, n := range []int{0, 1, 31, 32, 100} {
		for _, kind := range dataKinds {
			src := kind.gen(r, n, 2)
			b, _ := e.Encode(nil, src, HDF5LZ4, 2)
			f.Add(b, true, uint32(len(src)))
		}
	}
	f.Add([]byte{0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0}, false, uint32(4096)) // announces 2^60
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, src []byte, useHeader bool, n uint32) {
		dst := make([]byte, fuzzDstLen(src, HDF5LZ4, useHeader, n, 1))
		used, err := d.Decode(dst, src, HDF5LZ4, 0)
		if err != nil {
			return
		}
		if used != len(src) {
			t.Fatalf("accepted, consumed %d of %d", used, len(src))
		}
		ref := make([]byte, len(dst))
		if err := refDecodeHDF5LZ4Err(ref, src); err != nil {
			t.Fatalf("accepted input the reference rejects: %v", err)
		}
		if !bytes.Equal(ref, dst) {
			t.Fatalf("decoded differently from the reference (first difference at %d)", firstDiff(ref, dst))
		}
	})
}

// refDecodeHDF5LZ4Err is refDecodeHDF5LZ4 for arbitrary input: it reports
// instead of failing the test.
func refDecodeHDF5LZ4Err(dst, src []byte) error {
	if len(src) < headerSize || binary.BigEndian.Uint64(src) != uint64(len(dst)) {
		return errors.New("header")
	}
	bs := int(binary.BigEndian.Uint32(src[8:]))
	pos := headerSize
	for out := 0; out < len(dst); {
		if bs == 0 {
			return errors.New("block size 0")
		}
		size := min(bs, len(dst)-out)
		if len(src)-pos < 4 {
			return errors.New("truncated length")
		}
		l := int(binary.BigEndian.Uint32(src[pos:]))
		if l > len(src)-pos-4 {
			return errors.New("truncated block")
		}
		block := src[pos+4 : pos+4+l]
		if l == size {
			copy(dst[out:], block)
		} else if k, err := refLZ4Block(dst[out:out+size], block); err != nil || k != size {
			return errors.New("lz4")
		}
		pos += 4 + l
		out += size
	}
	if pos != len(src) {
		return errors.New("trailing")
	}
	return nil
}

// refLZ4Block decodes with the reference liblz4, or with refLZ4Decode where
// liblz4 rejects (see the top of this file).
func refLZ4Block(dst, src []byte) (int, error) {
	if k, err := cbitshuffle.LZ4Decompress(dst, src); err == nil {
		return k, nil
	}
	return refLZ4Decode(dst, src)
}

// refDecodeBitshuffle decodes a bitshuffle container with header using
// refLZ4Block and the literal format description (refBitShuffle, inverted
// bit by bit): the slow reference for inputs the C library rejects.
func refDecodeBitshuffle(dst, src []byte, s int) error {
	if len(src) < headerSize || binary.BigEndian.Uint64(src) != uint64(len(dst)) {
		return errors.New("header")
	}
	b := int(binary.BigEndian.Uint32(src[8:])) / s
	n := len(dst) / s
	pos, done := headerSize, 0
	for n-done >= 8 {
		m := min(b, (n-done)&^7)
		if len(src)-pos < 4 {
			return errors.New("truncated length")
		}
		l := int(binary.BigEndian.Uint32(src[pos:]))
		if l > len(src)-pos-4 {
			return errors.New("truncated block")
		}
		rows := make([]byte, m*s)
		if k, err := refLZ4Block(rows, src[pos+4:pos+4+l]); err != nil || k != len(rows) {
			return errors.New("lz4")
		}
		block := dst[done*s : (done+m)*s]
		clear(block)
		for i := range m {
			for j := range s {
				for bit := range 8 {
					r := 8*j + bit
					if rows[r*(m/8)+i/8]>>(i%8)&1 == 1 {
						block[i*s+j] |= 1 << bit
					}
				}
			}
		}
		pos += 4 + l
		done += m
	}
	tail := (n - done) * s
	if len(src)-pos != tail {
		return errors.New("tail")
	}
	copy(dst[done*s:], src[pos:])
	return nil
}

// FuzzRoundTrip encodes fuzzed pixels with every encoding, element size and
// block size, and checks Decode(Encode(x)) == x, the MaxEncodedSize bound,
// and (for BSLZ4) byte equality with the C library's encoder.
func FuzzRoundTrip(f *testing.F) {
	if err := cbitshuffle.Load(); err != nil {
		f.Fatal(err)
	}
	r := rand.New(rand.NewPCG(25, 26))
	for encSel := range uint8(5) {
		f.Add(diffractionLike(r, 1000, 2), encSel, uint8(1), uint16(0))
		f.Add(randomBytes(r, 333), encSel, uint8(0), uint16(72))
		f.Add(diffractionLike(r, 77, 4), encSel, uint8(2), uint16(256))
	}
	encs := []Encoding{Raw, LZ4Block, BSLZ4, BSLZ4NoHeader, HDF5LZ4}
	d, e := NewDecoder(), NewEncoder()
	f.Fuzz(func(t *testing.T, data []byte, encSel, elemSel uint8, blockSel uint16) {
		enc := encs[int(encSel)%len(encs)]
		s := 1 << (elemSel & 3)
		src := data[:len(data)/s*s]
		blockBytes := int(blockSel)
		if enc == BSLZ4NoHeader {
			blockBytes = 0 // a headerless container is read with the default
		}
		e.SetBlockSize(blockBytes)
		e.SetHDF5BlockSize(blockBytes)
		out, err := e.Encode(nil, src, enc, s)
		if err != nil {
			t.Fatal(err)
		}
		if bound := e.MaxEncodedSize(len(src), enc, s); len(out) > bound {
			t.Fatalf("%v: %d bytes, bound %d", enc, len(out), bound)
		}
		back := make([]byte, len(src))
		used, err := d.Decode(back, out, enc, s)
		if err != nil || used != len(out) || !bytes.Equal(back, src) {
			t.Fatalf("%v elem %d block %d: consumed %d of %d, %v", enc, s, blockBytes, used, len(out), err)
		}
		if enc == BSLZ4 {
			want, err := cbitshuffle.Compress(nil, src, s, bitshuffleBlockElems(e.blockSize, s))
			if err != nil || !bytes.Equal(out, want) {
				t.Fatalf("elem %d block %d: differs from the C library (%v)", s, blockBytes, err)
			}
		}
	})
}

// FuzzUnshuffleVector compares the vector kernels of the 1-, 2- and 4-byte
// unshuffle (each level this machine runs) with the portable ones on fuzzed
// bit rows, every block length a multiple of 8 elements, byte for byte,
// including the output bytes past the whole chunks that neither may touch.
func FuzzUnshuffleVector(f *testing.F) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, m := range []int{0, 8, 64, 128, 256, 264, 520, 1088, 2280, 4096} {
		for sel, s := range vectorElemSizes {
			f.Add(randomBytes(r, s*m), uint8(sel))
		}
	}
	f.Fuzz(func(t *testing.T, rows []byte, elemSel uint8) {
		s := vectorElemSizes[int(elemSel)%len(vectorElemSizes)]
		rows = rows[:len(rows)/(8*s)*(8*s)]
		for _, level := range vecLevels() {
			checkUnshuffleLevel(t, rows, s, level)
		}
	})
}
