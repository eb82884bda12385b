package writer

import (
	"testing"

	"tioga/driver/cbf/cbftest"
)

// BenchmarkSeriesWrite is the whole per-frame path of one worker: encode
// the synthetic EIGER 4M 16-bit frame as .cbf.gz at the default level,
// write it to a temporary name and publish it (no fsync), on the test's
// temporary directory.
func BenchmarkSeriesWrite(b *testing.B) {
	p := cbftest.EIGER4M.Pixels()
	s, err := Open(Config{Directory: b.TempDir(), Prefix: "bench", Run: 1, Fsync: FsyncNever, MinFreeBytes: -1}, cbftest.Header())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var sc Scratch
	if _, err := s.Write(&sc, 0, p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cbftest.StartCPU()
	for i := 1; i <= b.N; i++ {
		if _, err := s.Write(&sc, i, p); err != nil {
			b.Fatal(err)
		}
	}
	cbftest.ReportThroughput(b, p.Len(), cpu)
}
