package codec

import (
	"encoding/binary"
	"syscall"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"

	"tioga/driver/codec/internal/cbitshuffle"
)

// Benchmarks run on one core (the Decoder is per worker) on the real
// fixtures: the EIGER 4M frame for 16-bit bitshuffle (and, re-encoded by our
// Encoder, for raw and lz4<), the EIGER2 500K frames for the others. They
// report decoded bytes per second and megapixels per second.

const pixels4M = 4485690

type benchFrame struct {
	src      []byte
	enc      Encoding
	elemSize int
	pixels   int
}

// frame4M returns the real 4M bs16-lz4 frame and its decoded pixels.
func frame4M(b *testing.B) (src, px []byte) {
	src = readFixture(b, "eiger-stream-v1", "eiger4m-bs16", "streamfile_12")
	px = make([]byte, pixels4M*2)
	if _, err := NewDecoder().Decode(px, src, BSLZ4, 2); err != nil {
		b.Fatal(err)
	}
	return src, px
}

func reportPixels(b *testing.B, pixels int) {
	b.ReportMetric(float64(pixels)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
}

// reportCPU adds megapixels per CPU-second of the process since cpu0
// (Mpx/cpu-s), the figure that stays meaningful on a shared machine.
func reportCPU(b *testing.B, pixels int, cpu0 time.Duration) {
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(pixels)*float64(b.N)/cpu.Seconds()/1e6, "Mpx/cpu-s")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkDecode(b *testing.B) {
	src4M, px4M := frame4M(b)
	e := NewEncoder()
	raw4M, _ := e.Encode(nil, px4M, Raw, 2)
	lz4M, _ := e.Encode(nil, px4M, LZ4Block, 2)
	r500k := func(series string, s int, enc Encoding) benchFrame {
		p := loadR500K(b, series, 1)
		return benchFrame{p.Data, enc, s, p.Rows * p.Cols}
	}
	cases := []struct {
		name  string
		frame benchFrame
	}{
		{"raw", benchFrame{raw4M, Raw, 2, pixels4M}},
		{"lz4", benchFrame{lz4M, LZ4Block, 2, pixels4M}},
		{"bslz4-8", r500k("bslz4_8bit", 1, BSLZ4)},
		{"bslz4-16", benchFrame{src4M, BSLZ4, 2, pixels4M}},
		{"bslz4-32", r500k("bslz4_32bit", 4, BSLZ4)},
		{"hdf5-lz4", r500k("lz4_16bit", 2, HDF5LZ4)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f := c.frame
			dst := make([]byte, f.pixels*f.elemSize)
			d := NewDecoder()
			if _, err := d.Decode(dst, f.src, f.enc, f.elemSize); err != nil { // warm up the scratch
				b.Fatal(err)
			}
			b.SetBytes(int64(len(dst)))
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if _, err := d.Decode(dst, f.src, f.enc, f.elemSize); err != nil {
					b.Fatal(err)
				}
			}
			reportPixels(b, f.pixels)
			reportCPU(b, f.pixels, cpu0)
		})
	}
}

// BenchmarkDecodeCLibrary is the bitshuffle C library (Debian's build, with
// its SSE2/AVX2 kernels) on the same 4M frame, for comparison.
func BenchmarkDecodeCLibrary(b *testing.B) {
	if err := cbitshuffle.Load(); err != nil {
		b.Fatal(err)
	}
	src, _ := frame4M(b)
	b.Run("bslz4-16", func(b *testing.B) {
		dst := make([]byte, pixels4M*2)
		if _, err := cbitshuffle.Decompress(dst, src, 2); err != nil { // warm up
			b.Fatal(err)
		}
		b.SetBytes(int64(len(dst)))
		cpu0 := processCPU()
		for b.Loop() {
			if _, err := cbitshuffle.Decompress(dst, src, 2); err != nil {
				b.Fatal(err)
			}
		}
		reportPixels(b, pixels4M)
		reportCPU(b, pixels4M, cpu0)
	})
}

// BenchmarkDecodeSteps splits the 4M bslz4-16 decode into its two steps:
// LZ4-decoding every block into the (cache-resident) scratch, and
// bit-unshuffling every block from it into the frame.
func BenchmarkDecodeSteps(b *testing.B) {
	src, _ := frame4M(b)
	type block struct{ data []byte }
	var blocks []block
	for pos, done := headerSize, 0; pixels4M-done >= 8; {
		l := int(binary.BigEndian.Uint32(src[pos:]))
		blocks = append(blocks, block{src[pos+4 : pos+4+l]})
		pos += 4 + l
		done += min(4096, (pixels4M-done)&^7)
	}
	scratch := make([]byte, 8192)
	b.Run("lz4", func(b *testing.B) {
		b.SetBytes(pixels4M * 2)
		for b.Loop() {
			for i, blk := range blocks {
				size := 8192
				if i == len(blocks)-1 {
					size = 568 * 2
				}
				if _, err := lz4.UncompressBlock(blk.data, scratch[:size]); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportPixels(b, pixels4M)
	})
	unshuffle := func(b *testing.B) {
		dst := make([]byte, pixels4M*2)
		b.SetBytes(pixels4M * 2)
		cpu0 := processCPU()
		for b.Loop() {
			for i := range blocks {
				size := 8192
				if i == len(blocks)-1 {
					size = 568 * 2
				}
				BitUnshuffle(dst[i*8192:i*8192+size], scratch[:size], 2)
			}
		}
		reportPixels(b, pixels4M)
		reportCPU(b, pixels4M, cpu0)
	}
	b.Run("unshuffle", unshuffle)
	// The same with each kernel this machine runs (the first is what
	// "unshuffle" uses).
	saved := vecLevel
	defer func() { vecLevel = saved }()
	for _, level := range vecLevels() {
		vecLevel = level
		b.Run("unshuffle-"+vecLevelName(level), unshuffle)
	}
}

func BenchmarkEncode(b *testing.B) {
	_, px := frame4M(b)
	b.Run("bslz4-16", func(b *testing.B) {
		e := NewEncoder()
		buf := make([]byte, 0, MaxEncodedSize(len(px), BSLZ4, 2))
		if _, err := e.Encode(buf[:0], px, BSLZ4, 2); err != nil { // warm up the scratch
			b.Fatal(err)
		}
		b.SetBytes(int64(len(px)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Encode(buf[:0], px, BSLZ4, 2); err != nil {
				b.Fatal(err)
			}
		}
		reportPixels(b, pixels4M)
	})
}
