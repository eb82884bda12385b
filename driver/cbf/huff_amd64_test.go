//go:build gc && !purego

package cbf

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// huffStream codes data in blocks as the .cbf.gz writer does, with the
// assembly round on or off.
func huffStream(data []byte, blockSize int, asm bool) []byte {
	defer func(old bool) { haveLiterals4 = old }(haveLiterals4)
	haveLiterals4 = asm
	var h huffEncoder
	for from := 0; from < len(data); from += blockSize {
		b := data[from:min(len(data), from+blockSize)]
		h.histogram(b)
		h.writeBlock(b)
	}
	h.finish()
	return h.buf
}

// TestLiterals4MatchesGo pins the assembly rounds (huffLiterals4 and
// huffLiterals3) to the Go loops they replace, bit for bit, on skewed data like byte-offset deltas (short
// codes), uniform bytes (8-bit codes), long-tailed data (codes up to 14
// bits and 15-bit ones, which the assembly must leave to the Go loop),
// every block length modulo 4 and odd bit positions between blocks.
func TestLiterals4MatchesGo(t *testing.T) {
	if !haveLiterals4 {
		t.Skip("no BMI2 on this CPU: the assembly round never runs")
	}
	r := rand.New(rand.NewPCG(7, 11))
	gens := map[string]func() byte{
		"skewed":  func() byte { return byte(int8(r.NormFloat64() * 3)) },
		"uniform": func() byte { return byte(r.Uint32()) },
		"tail":    func() byte { return byte(bitsLenTail(r)) },
	}
	longest := map[string]uint8{}
	for name, gen := range gens {
		for _, n := range []int{0, 1, 3, 4, 5, 7, 8, 1000, 4093, 1 << 15, 100_003} {
			data := make([]byte, n)
			for i := range data {
				data[i] = gen()
			}
			var h huffEncoder
			h.histogram(data)
			h.fastLengths(h.freq[:], h.lens[:], huffMaxBits)
			longest[name] = max(longest[name], slices.Max(h.lens[:256]))
			for _, bs := range []int{1 << 15, 1 << 12, 1001} {
				got, want := huffStream(data, bs, true), huffStream(data, bs, false)
				if !bytes.Equal(got, want) {
					t.Fatalf("%s, %d bytes in blocks of %d: assembly stream (%d bytes) differs from Go's (%d)", name, n, bs, len(got), len(want))
				}
			}
		}
	}
	// Both kernels ran: codes of at most 14 bits (four per round) and of
	// 15 (three per round).
	if longest["uniform"] > 14 || longest["tail"] != 15 {
		t.Fatalf("longest codes: uniform %d, tail %d; want <= 14 and 15", longest["uniform"], longest["tail"])
	}
}

// bitsLenTail draws bytes with geometric frequencies, so that the rare
// ones get codes of up to 15 bits (the limit).
func bitsLenTail(r *rand.Rand) int {
	v := 0
	for v < 255 && r.IntN(2) != 0 {
		v++
	}
	return v
}

// FuzzLiterals4 compares the assembly round with the Go loop on any
// bytes, in blocks of any size.
func FuzzLiterals4(f *testing.F) {
	f.Add([]byte("byte offset"), uint16(7))
	f.Add(bytes.Repeat([]byte{0, 1, 0xff, 2, 0, 0, 1}, 5000), uint16(4096))
	f.Fuzz(func(t *testing.T, data []byte, bs uint16) {
		if !haveLiterals4 {
			t.Skip("no BMI2")
		}
		b := max(64, int(bs))
		if got, want := huffStream(data, b, true), huffStream(data, b, false); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes in blocks of %d: streams differ", len(data), b)
		}
	})
}
