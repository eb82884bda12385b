package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"tioga/driver/codec/internal/cbitshuffle"
)

// oddLengths are element counts that exercise every structural case of the
// bitshuffle container: no block at all (< 8), only a raw tail, exactly one
// group of 8, partial 64-element chunks, a last block shorter than the
// rest, and many blocks with a tail.
var oddLengths = []int{0, 1, 7, 8, 9, 63, 64, 65, 4095, 4096, 4097, 8193, 100003}

// diffractionLike returns n pixels of s bytes that look like a detector
// frame 1030 pixels wide: a Poisson-like background of a few counts, a few
// bright Gaussian peaks, and all-ones gap lines (every 257th column and
// every 129th row), as EIGER sends masked and gap pixels.
func diffractionLike(r *rand.Rand, n, s int) []byte {
	const width = 1030
	all := uint64(1)<<(8*s) - 1
	vals := make([]uint64, n)
	for i := range vals {
		// Background: sum of a few Bernoulli draws, mean about 1.5 counts.
		v := uint64(0)
		for range 6 {
			if r.IntN(4) == 0 {
				v++
			}
		}
		vals[i] = v
	}
	for range 1 + n/50000 {
		c := r.IntN(max(n, 1))
		height := float64(min(all-1, 1+uint64(r.IntN(20000))))
		for dy := -4; dy <= 4; dy++ {
			for dx := -4; dx <= 4; dx++ {
				k := c + dy*width + dx
				if k < 0 || k >= n {
					continue
				}
				add := uint64(height * math.Exp(-float64(dx*dx+dy*dy)/3))
				vals[k] = min(vals[k]+add, all-1)
			}
		}
	}
	for i := range vals {
		if x, y := i%width, i/width; x%257 == 256 || y%129 == 128 {
			vals[i] = all
		}
	}
	out := make([]byte, n*s)
	for i, v := range vals {
		for b := range s {
			out[i*s+b] = byte(v >> (8 * b))
		}
	}
	return out
}

type dataKind struct {
	name string
	gen  func(r *rand.Rand, n, s int) []byte
}

var dataKinds = []dataKind{
	{"random", func(r *rand.Rand, n, s int) []byte { return randomBytes(r, n*s) }},
	{"diffraction", diffractionLike},
}

// TestBitshuffleAgainstCLibrary is the byte-for-byte comparison with the
// bitshuffle C library on random and diffraction-like data of odd lengths,
// for every element size and for EIGER's and other block sizes: our Encode
// equals the library's output with the header prepended (and without it for
// BSLZ4NoHeader); our Decode of the library's output and the library's
// decode of ours both give back the original.
func TestBitshuffleAgainstCLibrary(t *testing.T) {
	if err := cbitshuffle.Load(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	d := NewDecoder()
	for _, s := range []int{1, 2, 4, 8} {
		for _, blockBytes := range []int{0, 1024, 2048 + 8*s, 65536} {
			e := NewEncoder()
			e.SetBlockSize(blockBytes)
			blockElems := 0 // the library's default: 8192 bytes
			if blockBytes > 0 {
				blockElems = blockBytes / s &^ 7
			}
			for _, kind := range dataKinds {
				for _, n := range oddLengths {
					name := fmt.Sprintf("elem%d/block%d/%s/%d", s, blockBytes, kind.name, n)
					src := kind.gen(r, n, s)
					want, err := cbitshuffle.Compress(nil, src, s, blockElems)
					if err != nil {
						t.Fatal(name, err)
					}
					got, err := e.Encode(nil, src, BSLZ4, s)
					if err != nil {
						t.Fatal(name, err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s: Encode gives %d bytes, C library %d, first difference at %d", name, len(got), len(want), firstDiff(got, want))
					}
					back := make([]byte, len(src))
					if used, err := d.Decode(back, want, BSLZ4, s); err != nil || used != len(want) || !bytes.Equal(back, src) {
						t.Fatalf("%s: Decode(C output): consumed %d of %d, %v, equal %v", name, used, len(want), err, bytes.Equal(back, src))
					}
					clear(back)
					if used, err := cbitshuffle.Decompress(back, got, s); err != nil || used != len(got) || !bytes.Equal(back, src) {
						t.Fatalf("%s: C decode of Encode: consumed %d of %d, %v", name, used, len(got), err)
					}
					if blockBytes == 0 {
						noHeader, err := e.Encode(nil, src, BSLZ4NoHeader, s)
						if err != nil || !bytes.Equal(noHeader, want[headerSize:]) {
							t.Fatalf("%s: headerless Encode is not the C output without header: %v", name, err)
						}
					}
				}
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestHeaderlessBitshuffle: a container without the 12-byte header (as some
// simulators send) is accepted by Decode(BSLZ4), which sees that the first 8
// bytes are not the frame size, and by Decode(BSLZ4NoHeader).
func TestHeaderlessBitshuffle(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	d, e := NewDecoder(), NewEncoder()
	for _, s := range []int{1, 2, 4} {
		for _, n := range oddLengths {
			src := diffractionLike(r, n, s)
			enc, err := e.Encode(nil, src, BSLZ4NoHeader, s)
			if err != nil {
				t.Fatal(err)
			}
			for _, as := range []Encoding{BSLZ4, BSLZ4NoHeader} {
				back := make([]byte, len(src))
				used, err := d.Decode(back, enc, as, s)
				if err != nil || used != len(enc) || !bytes.Equal(back, src) {
					t.Fatalf("elem %d, %d elements, decoded as %v: consumed %d of %d, %v", s, n, as, used, len(enc), err)
				}
			}
			// The other way round, a container with header is not headerless
			// data: its first block length would read as 0.
			withHeader, _ := e.Encode(nil, src, BSLZ4, s)
			if n >= 8 {
				if _, err := d.Decode(make([]byte, len(src)), withHeader, BSLZ4NoHeader, s); err == nil {
					t.Fatalf("elem %d, %d elements: header accepted as headerless data", s, n)
				}
			}
		}
	}
}

// TestLZ4BlockAgainstCLibrary: V1 "lz4<" is one raw LZ4 block. Encode equals
// the reference LZ4_compress_default byte for byte, and each side decodes
// the other's output.
func TestLZ4BlockAgainstCLibrary(t *testing.T) {
	if err := cbitshuffle.Load(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	d, e := NewDecoder(), NewEncoder()
	for _, kind := range dataKinds {
		for _, n := range []int{0, 1, 13, 4097, 65536 + 11, 1 << 20} {
			src := kind.gen(r, n, 2)
			got, err := e.Encode(nil, src, LZ4Block, 2)
			if err != nil {
				t.Fatal(err)
			}
			want, err := cbitshuffle.LZ4Compress(nil, src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s %d: Encode %d bytes, reference %d, first difference at %d", kind.name, n, len(got), len(want), firstDiff(got, want))
			}
			back := make([]byte, len(src))
			if used, err := d.Decode(back, got, LZ4Block, 2); err != nil || used != len(got) || !bytes.Equal(back, src) {
				t.Fatalf("%s %d: Decode: consumed %d of %d, %v", kind.name, n, used, len(got), err)
			}
			clear(back)
			if k, err := cbitshuffle.LZ4Decompress(back, got); err != nil || k != len(src) || !bytes.Equal(back, src) {
				t.Fatalf("%s %d: reference decode: %d, %v", kind.name, n, k, err)
			}
		}
	}
}

// TestHDF5LZ4RoundTrip covers the HDF5 framing: a short last block, blocks
// stored raw because LZ4 cannot shrink them, non-default block sizes, and a
// block size larger than the data (written clamped, as the HDF5 filter
// does). Every encoding is also decoded with the reference liblz4.
func TestHDF5LZ4RoundTrip(t *testing.T) {
	if err := cbitshuffle.Load(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 10))
	d := NewDecoder()
	for _, blockBytes := range []int{0, 1000, 1 << 20} {
		e := NewEncoder()
		e.SetHDF5BlockSize(blockBytes)
		bs := DefaultHDF5BlockSize
		if blockBytes > 0 {
			bs = blockBytes
		}
		for _, kind := range dataKinds {
			for _, n := range []int{0, 1, 4095, 4096, 100003} {
				name := fmt.Sprintf("block%d/%s/%d", blockBytes, kind.name, n)
				src := kind.gen(r, n, 2)
				enc, err := e.Encode(nil, src, HDF5LZ4, 2)
				if err != nil {
					t.Fatal(name, err)
				}
				if got, want := binary.BigEndian.Uint32(enc[8:]), uint32(min(bs, len(src))); got != want {
					t.Fatalf("%s: header block size %d, want %d", name, got, want)
				}
				raw, short := checkHDF5Blocks(t, name, enc, src)
				if kind.name == "random" && len(src) > 0 && raw == 0 {
					t.Fatalf("%s: no block stored raw for incompressible data", name)
				}
				if len(src)%bs != 0 && len(src) > bs && !short {
					t.Fatalf("%s: no short last block", name)
				}
				back := make([]byte, len(src))
				if used, err := d.Decode(back, enc, HDF5LZ4, 2); err != nil || used != len(enc) || !bytes.Equal(back, src) {
					t.Fatalf("%s: Decode: consumed %d of %d, %v", name, used, len(enc), err)
				}
				ref := make([]byte, len(src))
				refDecodeHDF5LZ4(t, ref, enc)
				if !bytes.Equal(ref, src) {
					t.Fatalf("%s: reference decode differs", name)
				}
			}
		}
	}
}

// checkHDF5Blocks walks an HDF5 LZ4 container of src and checks each block
// against the reference liblz4, as the HDF5 LZ4 filter would write it: the
// reference compression of the block when that is shorter, else the block
// stored raw. It returns how many blocks are stored raw and whether the last
// block is shorter than the block size.
func checkHDF5Blocks(t *testing.T, name string, enc, src []byte) (raw int, shortLast bool) {
	t.Helper()
	total := int(binary.BigEndian.Uint64(enc))
	bs := int(binary.BigEndian.Uint32(enc[8:]))
	pos := headerSize
	for out := 0; out < total; {
		size := min(bs, total-out)
		l := int(binary.BigEndian.Uint32(enc[pos:]))
		block := src[out : out+size]
		want, err := cbitshuffle.LZ4Compress(nil, block)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) >= size {
			want = block
			raw++
		}
		if !bytes.Equal(enc[pos+4:pos+4+l], want) {
			t.Fatalf("%s: block at input offset %d: %d bytes, the HDF5 filter would write %d", name, out, l, len(want))
		}
		shortLast = size < bs
		pos += 4 + l
		out += size
	}
	return raw, shortLast
}

// TestRawEncoding: raw is a copy, exact in length.
func TestRawEncoding(t *testing.T) {
	d, e := NewDecoder(), NewEncoder()
	src := []byte{1, 2, 3, 4, 5, 6}
	enc, err := e.Encode([]byte{9}, src, Raw, 2)
	if err != nil || !bytes.Equal(enc, []byte{9, 1, 2, 3, 4, 5, 6}) {
		t.Fatalf("Encode = %v, %v", enc, err)
	}
	back := make([]byte, 6)
	if n, err := d.Decode(back, enc[1:], Raw, 2); err != nil || n != 6 || !bytes.Equal(back, src) {
		t.Fatalf("Decode = %d, %v", n, err)
	}
}

// TestDecodeErrors feeds damaged input of every kind and checks for the
// specific error (never a panic, never success).
func TestDecodeErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	e := NewEncoder()
	src := diffractionLike(r, 3*4096+105, 2) // 3 full blocks, one of 104 elements, a tail of 1
	px := len(src)
	bs, _ := e.Encode(nil, src, BSLZ4, 2)
	bsNoHdr, _ := e.Encode(nil, src, BSLZ4NoHeader, 2)
	h5, _ := e.Encode(nil, src, HDF5LZ4, 2)
	lz, _ := e.Encode(nil, src, LZ4Block, 2)

	patch := func(b []byte, off int, v uint32) []byte {
		c := bytes.Clone(b)
		binary.BigEndian.PutUint32(c[off:], v)
		return c
	}
	patch64 := func(b []byte, v uint64) []byte {
		c := bytes.Clone(b)
		binary.BigEndian.PutUint64(c, v)
		return c
	}
	firstLen := int(binary.BigEndian.Uint32(bs[headerSize:]))
	cases := []struct {
		name     string
		src      []byte
		dstLen   int
		enc      Encoding
		elemSize int
		want     error
	}{
		{"bslz4 trailing garbage", append(bytes.Clone(bs), 0), px, BSLZ4, 2, ErrTrailingData},
		{"bslz4 headerless trailing garbage", append(bytes.Clone(bsNoHdr), 0, 0), px, BSLZ4NoHeader, 2, ErrTrailingData},
		{"bslz4 dst one pixel short", bs, px - 2, BSLZ4, 2, ErrSizeMismatch},
		{"bslz4 dst one pixel long", bs, px + 2, BSLZ4, 2, ErrSizeMismatch},
		{"bslz4 dst not whole pixels", bs, px + 1, BSLZ4, 2, ErrSizeMismatch},
		{"bslz4 header announces 2^60", patch64(bs, 1<<60), px, BSLZ4, 2, ErrSizeMismatch},
		{"bslz4 block size 0", patch(bs, 8, 0), px, BSLZ4, 2, ErrCorrupt},
		{"bslz4 block size not 8 elements", patch(bs, 8, 8190), px, BSLZ4, 2, ErrCorrupt},
		{"bslz4 block length beyond input", patch(bs, headerSize, 0xFFFFFFFF), px, BSLZ4, 2, ErrTruncated},
		{"bslz4 block length too short", patch(bs, headerSize, uint32(firstLen-1)), px, BSLZ4, 2, ErrCorrupt},
		{"bslz4 block length zero", patch(bs, headerSize, 0), px, BSLZ4, 2, ErrCorrupt},
		{"bslz4 LZ4 offset before start", corruptFirstBlock(bs, headerSize), px, BSLZ4, 2, ErrCorrupt},
		{"bslz4 elem size 3", bs, px, BSLZ4, 3, ErrUnsupported},
		{"bslz4 elem size 0", bs, px, BSLZ4, 0, ErrUnsupported},
		{"bslz4 elem size 16", bs, px, BSLZ4, 16, ErrUnsupported},
		{"bslz4 elem size -2", bs, px, BSLZ4, -2, ErrUnsupported},
		{"bslz4 header cut", bs[:10], px, BSLZ4, 2, ErrTruncated},
		{"hdf5 trailing garbage", append(bytes.Clone(h5), 1, 2, 3), px, HDF5LZ4, 2, ErrTrailingData},
		{"hdf5 dst short", h5, px - 2, HDF5LZ4, 0, ErrSizeMismatch},
		{"hdf5 header announces 2^60", patch64(h5, 1<<60), px, HDF5LZ4, 0, ErrSizeMismatch},
		{"hdf5 block size 0", patch(h5, 8, 0), px, HDF5LZ4, 0, ErrCorrupt},
		{"hdf5 block length beyond input", patch(h5, headerSize, 1<<31), px, HDF5LZ4, 0, ErrTruncated},
		{"hdf5 block length zero", patch(h5, headerSize, 0), px, HDF5LZ4, 0, ErrCorrupt},
		{"hdf5 LZ4 offset before start", corruptFirstBlock(h5, headerSize), px, HDF5LZ4, 0, ErrCorrupt},
		{"hdf5 elem size 3", h5, px, HDF5LZ4, 3, ErrUnsupported},
		{"hdf5 header cut", h5[:11], px, HDF5LZ4, 0, ErrTruncated},
		{"lz4 dst short", lz, px - 2, LZ4Block, 2, ErrCorrupt},
		{"lz4 dst long", lz, px + 2, LZ4Block, 2, ErrSizeMismatch},
		{"lz4 empty", nil, px, LZ4Block, 2, ErrTruncated},
		{"lz4 offset before start", corruptLZ4(lz), px, LZ4Block, 2, ErrCorrupt},
		{"raw short", src[:px-1], px, Raw, 0, ErrTruncated},
		{"raw long", append(bytes.Clone(src), 0), px, Raw, 0, ErrTrailingData},
		{"unknown encoding", src, px, Encoding(0), 2, ErrUnsupported},
		{"unknown encoding 99", src, px, Encoding(99), 2, ErrUnsupported},
	}
	d := NewDecoder()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.Decode(make([]byte, c.dstLen), c.src, c.enc, c.elemSize)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
	// A header announcing a huge size or block must not size the scratch.
	if cap(d.block) > 8192 {
		t.Fatalf("scratch grew to %d bytes", cap(d.block))
	}
}

// corruptFirstBlock rewrites the first LZ4 block after the header into a
// sequence whose match offset points before the start of the block.
func corruptFirstBlock(b []byte, at int) []byte {
	c := bytes.Clone(b)
	l := int(binary.BigEndian.Uint32(c[at:]))
	copy(c[at+4:at+4+l], corruptLZ4(c[at+4:at+4+l]))
	return c
}

// corruptLZ4 returns a copy of an LZ4 block whose first sequence is one
// literal followed by a match at offset 0x7fff: before the start of the
// output, which every decoder must reject.
func corruptLZ4(b []byte) []byte {
	c := bytes.Clone(b)
	c[0] = 0x10 // 1 literal, match length 4
	c[2], c[3] = 0xff, 0x7f
	return c
}

// TestDecodeTruncatedEverywhere cuts valid input at every length and checks
// that each prefix is reported as truncated (for the framed encodings) or at
// least as an error (a plain LZ4 block cannot tell truncation from
// corruption).
func TestDecodeTruncatedEverywhere(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	d, e := NewDecoder(), NewEncoder()
	e.SetBlockSize(256)
	e.SetHDF5BlockSize(256)
	src := diffractionLike(r, 300, 2) // 2 blocks of 128, one of 40, tail of 4
	for _, enc := range []Encoding{BSLZ4, BSLZ4NoHeader, HDF5LZ4, LZ4Block, Raw} {
		if enc == BSLZ4NoHeader {
			e.SetBlockSize(0) // headerless data uses the default block size
		}
		full, err := e.Encode(nil, src, enc, 2)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, len(src))
		for cut := 0; cut < len(full); cut++ {
			n, err := d.Decode(dst, full[:cut], enc, 2)
			if err == nil {
				t.Fatalf("%v cut at %d of %d: accepted", enc, cut, len(full))
			}
			if enc != LZ4Block && !errors.Is(err, ErrTruncated) {
				t.Fatalf("%v cut at %d of %d: %v, want ErrTruncated", enc, cut, len(full), err)
			}
			if n > cut {
				t.Fatalf("%v cut at %d: consumed %d", enc, cut, n)
			}
		}
	}
}

// TestDecodedSize reads the announced size of the framed encodings.
func TestDecodedSize(t *testing.T) {
	e := NewEncoder()
	src := make([]byte, 2*1000)
	for _, enc := range []Encoding{BSLZ4, HDF5LZ4} {
		b, _ := e.Encode(nil, src, enc, 2)
		if n, ok := DecodedSize(b, enc); !ok || n != 2000 {
			t.Fatalf("%v: %d %v", enc, n, ok)
		}
		if _, ok := DecodedSize(b[:11], enc); ok {
			t.Fatalf("%v: size read from 11 bytes", enc)
		}
	}
	huge := []byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0}
	if _, ok := DecodedSize(huge, BSLZ4); ok {
		t.Fatal("2^63 bytes accepted as an int")
	}
	for _, enc := range []Encoding{Raw, LZ4Block, BSLZ4NoHeader} {
		if _, ok := DecodedSize(make([]byte, 64), enc); ok {
			t.Fatalf("%v has no header", enc)
		}
	}
}

// TestMaxEncodedSize: the bound holds for incompressible data and for every
// structure, and an Encode into a buffer of that capacity never reallocates.
func TestMaxEncodedSize(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, s := range []int{1, 2, 4, 8} {
		for _, blockBytes := range []int{0, 64, 4096} {
			e := NewEncoder()
			e.SetBlockSize(blockBytes)
			e.SetHDF5BlockSize(blockBytes)
			for _, n := range oddLengths {
				src := randomBytes(r, n*s)
				for _, enc := range []Encoding{Raw, LZ4Block, BSLZ4, BSLZ4NoHeader, HDF5LZ4} {
					bound := e.MaxEncodedSize(len(src), enc, s)
					buf := make([]byte, 0, bound)
					out, err := e.Encode(buf, src, enc, s)
					if err != nil {
						t.Fatal(err)
					}
					if len(out) > bound || (bound > 0 && &out[:1][0] != &buf[:1][0]) {
						t.Fatalf("elem %d block %d %v n %d: %d bytes, bound %d", s, blockBytes, enc, n, len(out), bound)
					}
				}
			}
		}
	}
	if MaxEncodedSize(100, BSLZ4, 3) != 0 || MaxEncodedSize(-1, Raw, 1) != 0 || MaxEncodedSize(1, Encoding(0), 1) != 0 {
		t.Fatal("invalid arguments give a bound")
	}
	if got, want := MaxEncodedSize(4485690*2, BSLZ4, 2), NewEncoder().MaxEncodedSize(4485690*2, BSLZ4, 2); got != want {
		t.Fatalf("package and default Encoder bounds differ: %d, %d", got, want)
	}
}

// TestEncodeErrors: invalid arguments leave dst untouched.
func TestEncodeErrors(t *testing.T) {
	e := NewEncoder()
	dst := []byte{1, 2}
	for _, c := range []struct {
		src  int
		enc  Encoding
		s    int
		want error
	}{
		{16, BSLZ4, 3, ErrUnsupported},
		{16, BSLZ4NoHeader, 0, ErrUnsupported},
		{15, BSLZ4, 2, ErrSizeMismatch},
		{16, Encoding(0), 2, ErrUnsupported},
		{16, HDF5LZ4, 5, ErrUnsupported},
	} {
		out, err := e.Encode(dst, make([]byte, c.src), c.enc, c.s)
		if !errors.Is(err, c.want) || !bytes.Equal(out, dst) {
			t.Fatalf("%+v: %v, out %v", c, err, out)
		}
	}
}

// TestAllocations: once warm, Decode and Encode (into a pre-sized buffer)
// allocate nothing, for every encoding.
func TestAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	src := diffractionLike(r, 100003, 2)
	d, e := NewDecoder(), NewEncoder()
	for _, enc := range []Encoding{Raw, LZ4Block, BSLZ4, BSLZ4NoHeader, HDF5LZ4} {
		buf := make([]byte, 0, MaxEncodedSize(len(src), enc, 2))
		encoded, _ := e.Encode(nil, src, enc, 2)
		dst := make([]byte, len(src))
		if _, err := d.Decode(dst, encoded, enc, 2); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(5, func() {
			if _, err := d.Decode(dst, encoded, enc, 2); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("Decode %v: %v allocations", enc, a)
		}
		if a := testing.AllocsPerRun(5, func() {
			if _, err := e.Encode(buf[:0], src, enc, 2); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("Encode %v: %v allocations", enc, a)
		}
	}
}

func TestParseV1Encoding(t *testing.T) {
	for _, c := range []struct {
		s    string
		enc  Encoding
		size int
	}{
		{"<", Raw, 0}, {"lz4<", LZ4Block, 0},
		{"bs8-lz4<", BSLZ4, 1}, {"bs16-lz4<", BSLZ4, 2}, {"bs32-lz4<", BSLZ4, 4},
	} {
		enc, size, err := ParseV1Encoding(c.s)
		if err != nil || enc != c.enc || size != c.size {
			t.Errorf("%q: %v %d %v", c.s, enc, size, err)
		}
	}
	for _, s := range []string{"", ">", "lz4>", "bs16-<", "bs64-lz4<", "bslz4", "LZ4<"} {
		if _, _, err := ParseV1Encoding(s); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%q accepted (%v)", s, err)
		}
	}
	if e, err := ParseV2Algorithm("bslz4"); err != nil || e != BSLZ4 {
		t.Error("bslz4")
	}
	if e, err := ParseV2Algorithm("lz4"); err != nil || e != HDF5LZ4 {
		t.Error("lz4")
	}
	if _, err := ParseV2Algorithm("zstd"); !errors.Is(err, ErrUnsupported) {
		t.Error("zstd accepted")
	}
	names := map[Encoding]string{Raw: "raw", LZ4Block: "lz4-block", BSLZ4: "bslz4", BSLZ4NoHeader: "bslz4-noheader", HDF5LZ4: "hdf5-lz4", 0: "Encoding(0)"}
	for e, want := range names {
		if e.String() != want {
			t.Errorf("%d.String() = %q", e, e.String())
		}
	}
}
