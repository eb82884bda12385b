package codec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"tioga/driver/codec/internal/cbitshuffle"
)

// refBitShuffle is the bit layout written out literally from the format
// description (docs/eiger-stream.md): bit b of byte j of element i goes to
// row r = 8*j+b, byte r*(m/8) + i/8, bit i%8. It is deliberately naive, an
// independent statement of the format for the fast kernels to agree with.
func refBitShuffle(src []byte, s int) []byte {
	m := len(src) / s
	rowLen := m / 8
	out := make([]byte, len(src))
	for i := range m {
		for j := range s {
			for b := range 8 {
				if src[i*s+j]>>b&1 == 1 {
					r := 8*j + b
					out[r*rowLen+i/8] |= 1 << (i % 8)
				}
			}
		}
	}
	return out
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// blockLengths are element counts of one block: every multiple of 8 up to
// 200 (all partial-chunk remainders, below and above one 64-element chunk)
// and EIGER's block lengths.
func blockLengths() []int {
	var ms []int
	for m := 0; m <= 200; m += 8 {
		ms = append(ms, m)
	}
	return append(ms, 568, 1024, 2048, 4096, 8192)
}

// TestBitShuffleMatchesFormat checks both directions against the literal
// format description and against the bitshuffle C library, for every
// element size and block lengths covering every remainder.
func TestBitShuffleMatchesFormat(t *testing.T) {
	if err := cbitshuffle.Load(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range []int{1, 2, 4, 8} {
		for _, m := range blockLengths() {
			src := randomBytes(r, m*s)
			want := refBitShuffle(src, s)
			got := make([]byte, len(src))
			BitShuffle(got, src, s)
			if !bytes.Equal(got, want) {
				t.Fatalf("elem %d, %d elements: BitShuffle differs from the format", s, m)
			}
			c := make([]byte, len(src))
			if err := cbitshuffle.BitShuffle(c, src, s); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c, want) {
				t.Fatalf("elem %d, %d elements: the C library differs from the format", s, m)
			}
			back := make([]byte, len(src))
			BitUnshuffle(back, want, s)
			if !bytes.Equal(back, src) {
				t.Fatalf("elem %d, %d elements: BitUnshuffle does not invert", s, m)
			}
		}
	}
}

// TestBitShuffleSingleBits moves every single bit of a 64-element chunk
// through the kernels: a wrong stage or output order shows up as the exact
// element, byte and bit that went astray.
func TestBitShuffleSingleBits(t *testing.T) {
	for _, s := range []int{1, 2, 4, 8} {
		m := 64
		src := make([]byte, m*s)
		got := make([]byte, m*s)
		back := make([]byte, m*s)
		for i := range m {
			for j := range s {
				for b := range 8 {
					clear(src)
					src[i*s+j] = 1 << b
					BitShuffle(got, src, s)
					if want := refBitShuffle(src, s); !bytes.Equal(got, want) {
						t.Fatalf("elem %d: element %d byte %d bit %d shuffled to %x, want %x", s, i, j, b, got, want)
					}
					BitUnshuffle(back, got, s)
					if !bytes.Equal(back, src) {
						t.Fatalf("elem %d: element %d byte %d bit %d unshuffled to %x", s, i, j, b, back)
					}
				}
			}
		}
	}
}

func TestBitShufflePanicsOnMisuse(t *testing.T) {
	cases := []struct {
		dst, src int
		s        int
	}{
		{16, 16, 3},  // element size
		{16, 8, 2},   // lengths differ
		{18, 18, 2},  // not a multiple of 8 elements
		{24, 24, 16}, // element size too large
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			BitUnshuffle(make([]byte, c.dst), make([]byte, c.src), c.s)
		})
	}
}

// vectorLengths are element counts for the vector kernel tests: every
// multiple of 8 up to 1100 (every number of 2- and 4-chunk groups up to 4
// and every remainder after them), EIGER's full 16- and 32-bit blocks, the
// last 16-bit block of a 4M frame, and a few odd ones.
func vectorLengths() []int {
	var ms []int
	for m := 0; m <= 1100; m += 8 {
		ms = append(ms, m)
	}
	return append(ms, 2048, 2280, 4096, 4104, 4600, 8192, 12296)
}

// vectorElemSizes are the element sizes with vector kernels.
var vectorElemSizes = []int{1, 2, 4}

// unshuffleFrom is the portable kernel of element size s from row offset c0.
func unshuffleFrom(dst, rows []byte, s, rowLen, c0, full int) {
	switch s {
	case 1:
		unshuffle1(dst, rows, rowLen, c0, full)
	case 2:
		unshuffle2(dst, rows, rowLen, c0, full)
	default:
		unshuffle4(dst, rows, rowLen, c0, full)
	}
}

// checkUnshuffleLevel compares the vector kernel of one level and element
// size s (1, 2 or 4), followed by the portable kernel for what it leaves, with
// the portable kernel alone, on one block of bit rows: every byte of dst,
// including those past the whole chunks that neither may touch.
func checkUnshuffleLevel(t *testing.T, rows []byte, s, level int) {
	t.Helper()
	rowLen := len(rows) / (8 * s)
	full := rowLen &^ 7
	want := make([]byte, len(rows))
	for i := range want {
		want[i] = byte(i*7 + 3)
	}
	got := bytes.Clone(want)
	unshuffleFrom(want, rows, s, rowLen, 0, full)
	var c0 int
	switch s {
	case 1:
		c0 = unshuffle1Level(got, rows, rowLen, full, level)
	case 2:
		c0 = unshuffle2Level(got, rows, rowLen, full, level)
	default:
		c0 = unshuffle4Level(got, rows, rowLen, full, level)
	}
	if c0 < 0 || c0 > full || c0%8 != 0 {
		t.Fatalf("elem %d level %d, %d elements: the vector kernel stopped at row offset %d of %d", s, level, len(rows)/s, c0, full)
	}
	unshuffleFrom(got, rows, s, rowLen, c0, full)
	if !bytes.Equal(want, got) {
		t.Fatalf("elem %d level %d, %d elements (vector part to row offset %d): differs from the portable kernel at byte %d", s, level, len(rows)/s, c0, firstDiff(want, got))
	}
}

// TestUnshuffleVectorMatchesPortable checks each vector kernel this
// machine runs against the portable kernel on random blocks, and the full
// BitUnshuffle with it against the literal format.
func TestUnshuffleVectorMatchesPortable(t *testing.T) {
	t.Logf("vector levels: %v", vecLevels())
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range vectorElemSizes {
		for _, level := range vecLevels() {
			for _, m := range vectorLengths() {
				checkUnshuffleLevel(t, randomBytes(r, s*m), s, level)
			}
		}
	}
	saved := vecLevel
	defer func() { vecLevel = saved }()
	for _, s := range vectorElemSizes {
		for _, level := range vecLevels() {
			vecLevel = level
			for _, m := range vectorLengths() {
				src := randomBytes(r, s*m)
				got := make([]byte, len(src))
				BitUnshuffle(got, refBitShuffle(src, s), s)
				if !bytes.Equal(got, src) {
					t.Fatalf("elem %d level %d, %d elements: BitUnshuffle does not invert the format", s, level, m)
				}
			}
		}
	}
}
