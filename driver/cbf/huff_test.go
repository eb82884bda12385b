package cbf_test

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"testing"

	kflate "github.com/klauspost/compress/flate"

	"tioga/driver/cbf"
	"tioga/driver/cbf/cbftest"
	"tioga/internal/testenv"
)

// inflate decodes a raw deflate stream with Go's reader.
func inflate(t testing.TB, z []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(z)))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

// checkHuff round-trips data through our encoder and Go's inflater, in
// blocks of blockSize, and returns the stream's size.
func checkHuff(t testing.TB, data []byte, blockSize int) int {
	t.Helper()
	for _, sync := range []bool{false, true} {
		z := cbf.HuffDeflate(nil, data, blockSize, sync)
		if out := inflate(t, z); !bytes.Equal(out, data) {
			t.Fatalf("%d bytes in blocks of %d (sync %v): inflated %d bytes that differ", len(data), blockSize, sync, len(out))
		}
	}
	return len(cbf.HuffDeflate(nil, data, blockSize, false))
}

// kraft checks that lens form a complete prefix code of at most 15 bits
// and returns the longest length.
func kraft(t *testing.T, lens []uint8) int {
	t.Helper()
	sum, longest := 0, 0
	for _, l := range lens {
		if l > 15 {
			t.Fatalf("length %d > 15", l)
		}
		if l > 0 {
			sum += 1 << (15 - l)
			longest = max(longest, int(l))
		}
	}
	if sum != 1<<15 {
		t.Fatalf("code lengths %v: Kraft sum %d/32768, not a complete code", lens, sum)
	}
	return longest
}

// Degenerate histograms: no data, one symbol, two, all 256 equally often,
// and frequencies in a Fibonacci progression, whose optimal unlimited code
// is 23 bits deep and must be limited to 15. Each stream inflates back,
// and the literal code is complete.
func TestHuffDegenerate(t *testing.T) {
	all := make([]byte, 256*64)
	for i := range all {
		all[i] = byte(i)
	}
	var fib []byte
	a, b := 1, 1
	for s := range 24 {
		fib = append(fib, bytes.Repeat([]byte{byte(s * 5)}, a)...)
		a, b = b, a+b
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(fib), func(i, j int) { fib[i], fib[j] = fib[j], fib[i] })
	for _, c := range []struct {
		name    string
		data    []byte
		longest int
	}{
		{"empty", nil, 1},
		{"one byte", []byte{7}, 1},
		{"one symbol", bytes.Repeat([]byte{0}, 100000), 1},
		{"two symbols", bytes.Repeat([]byte{0, 255, 255}, 1000), 2},
		{"all 256", all, 9},
		{"fibonacci", fib, 15},
	} {
		// The Fibonacci code is cut to at most 15 bits; how deep the limited
		// code ends up is the limiter's choice (fastLengths: 13).
		if got := kraft(t, cbf.HuffLengths(c.data)); got != c.longest && (c.name != "fibonacci" || got > c.longest) {
			t.Errorf("%s: longest code %d bits, want %d", c.name, got, c.longest)
		}
		checkHuff(t, c.data, 0)
		checkHuff(t, c.data, 1000)
	}
	// Incompressible data goes into stored blocks (at most 65535 bytes
	// each), barely larger than the data.
	noise := make([]byte, 200000)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	if n := checkHuff(t, noise, 0); n > len(noise)+40 {
		t.Errorf("200000 random bytes took %d bytes", n)
	}
}

// On the byte-offset stream of the synthetic 4M frame, in 32 KiB blocks,
// our stream is no larger than klauspost's Huffman-only level's.
func TestHuffSynthetic4M(t *testing.T) {
	testenv.SkipIfShort(t)
	data := cbf.ByteOffset(eiger4M())
	n := checkHuff(t, data, 1<<15)
	var k bytes.Buffer
	w, _ := kflate.NewWriter(&k, kflate.HuffmanOnly)
	for from := 0; from < len(data); from += 1 << 15 {
		w.Write(data[from:min(len(data), from+1<<15)])
	}
	w.Close()
	if n > k.Len() {
		t.Errorf("%d bytes of byte-offset data: %d deflated, klauspost Huffman-only %d", len(data), n, k.Len())
	}
	t.Logf("%d bytes of byte-offset data -> %d (klauspost Huffman-only %d)", len(data), n, k.Len())
}

// FuzzHuffRoundTrip: any data, plain or skewed (most bytes near zero, as
// byte-offset data), in any block size, inflates back with Go's reader.
// Seeded with the byte-offset stream of a small synthetic frame.
func FuzzHuffRoundTrip(f *testing.F) {
	data := cbf.ByteOffset(cbftest.Frame{Width: 256, Height: 160, ElemSize: 2, Background: 1.5, Spots: 5, Seed: 7}.Pixels())
	f.Add(data[:5000], uint16(1000), uint8(0))
	f.Add(data[5000:45000], uint16(0), uint8(1))
	f.Add([]byte{0}, uint16(1), uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, block uint16, skew uint8) {
		if skew%4 != 0 {
			// Stretch the data into a skewed histogram: byte v becomes
			// v >> (skew%8), repeated, so few symbols dominate.
			s := make([]byte, 0, 4*len(b))
			for _, v := range b {
				for range int(v%4) + 1 {
					s = append(s, v>>(skew%8))
				}
			}
			b = s
		}
		bs := int(block)
		if bs > 0 && len(b)/bs > 2000 {
			bs = len(b)/2000 + 1 // at most ~2000 blocks, to keep executions fast
		}
		checkHuff(t, b, bs)
	})
}

// BenchmarkHuffBlocks compares our encoder with klauspost's Huffman-only
// level on the byte-offset stream of the synthetic 4M frame, in blocks of
// 32 KiB as the .cbf.gz writer feeds them.
func BenchmarkHuffBlocks(b *testing.B) {
	data := cbf.ByteOffset(eiger4M())
	b.Run("ours", func(b *testing.B) {
		z := cbf.HuffDeflate(nil, data, 1<<15, false)
		b.SetBytes(int64(len(data)))
		b.ResetTimer()
		cpu := cbftest.StartCPU()
		for range b.N {
			z = cbf.HuffDeflate(z[:0], data, 1<<15, false)
		}
		cbftest.ReportThroughput(b, len(data), cpu)
		b.ReportMetric(float64(len(z)), "deflate-bytes")
	})
	b.Run("klauspost", func(b *testing.B) {
		var out bytes.Buffer
		w, _ := kflate.NewWriter(&out, kflate.HuffmanOnly)
		b.SetBytes(int64(len(data)))
		b.ResetTimer()
		cpu := cbftest.StartCPU()
		for range b.N {
			out.Reset()
			w.Reset(&out)
			for from := 0; from < len(data); from += 1 << 15 {
				w.Write(data[from:min(len(data), from+1<<15)])
			}
			w.Close()
		}
		cbftest.ReportThroughput(b, len(data), cpu)
		b.ReportMetric(float64(out.Len()), "deflate-bytes")
	})
}
