package cbf_test

import (
	"strconv"
	"testing"
	"time"

	"tioga/driver/cbf"
	"tioga/driver/cbf/cbftest"
)

// Benchmarks run on one core on the synthetic EIGER 4M 16-bit frame (see
// cbftest.EIGER4M) and report megapixels per second and the output size in
// bytes per pixel.

func BenchmarkByteOffset(b *testing.B) {
	p := eiger4M()
	vals := make([]int32, p.Len())
	for i := range vals {
		vals[i] = p.Value(i)
	}
	b.Run("u16", func(b *testing.B) {
		buf := make([]byte, 0, cbf.MaxByteOffsetSize(p.Len(), 2)+64)
		b.SetBytes(int64(len(p.Data)))
		b.ResetTimer()
		cpu := cbftest.StartCPU()
		for i := 0; i < b.N; i++ {
			buf, _ = cbf.AppendPixelsByteOffset(buf[:0], p)
		}
		report(b, p.Len(), len(buf), cpu)
	})
	b.Run("int32", func(b *testing.B) {
		buf := make([]byte, 0, cbf.MaxByteOffsetSize(len(vals), 0)+64)
		b.SetBytes(int64(4 * len(vals)))
		b.ResetTimer()
		cpu := cbftest.StartCPU()
		for i := 0; i < b.N; i++ {
			buf = cbf.AppendByteOffset(buf[:0], vals)
		}
		report(b, len(vals), len(buf), cpu)
	})
}

func BenchmarkCBF(b *testing.B) {
	benchEncode(b, cbf.Options{})
}

// BenchmarkCBFGzip measures the whole .cbf.gz file (byte-offset, header,
// gzip) at the default level, with Content-MD5 added, then at each level
// for the table of DefaultGzipLevel.
func BenchmarkCBFGzip(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchEncode(b, cbf.Options{Gzip: true}) })
	b.Run("default+md5", func(b *testing.B) { benchEncode(b, cbf.Options{Gzip: true, ContentMD5: true}) })
	for _, level := range []int{cbf.GzipAuto, -2, 1, 2, 3, 5, 6, 9} {
		b.Run("level="+levelName(level), func(b *testing.B) {
			benchEncode(b, cbf.Options{Gzip: true, GzipLevel: level})
		})
	}
}

func benchEncode(b *testing.B, o cbf.Options) {
	p := eiger4M()
	h := cbftest.Header()
	e, err := cbf.NewEncoder(o)
	if err != nil {
		b.Fatal(err)
	}
	out, err := e.Encode(&h, "bench_1_00001", p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p.Data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cbftest.StartCPU()
	for i := 0; i < b.N; i++ {
		if out, err = e.Encode(&h, "bench_1_00001", p); err != nil {
			b.Fatal(err)
		}
	}
	report(b, p.Len(), len(out), cpu)
}

func report(b *testing.B, pixels, outBytes int, cpu time.Duration) {
	cbftest.ReportThroughput(b, pixels, cpu)
	b.ReportMetric(float64(outBytes), "file-bytes")
}

func levelName(l int) string {
	if l == cbf.GzipAuto {
		return "auto"
	}
	return strconv.Itoa(l)
}
