//go:build comparedeflate

package cbf_test

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"tioga/device/detectormodel"
	"tioga/driver/cbf"
	"tioga/driver/cbf/cbftest"
	"tioga/driver/cbf/internal/cdeflate"
	"tioga/sim/diffraction"
	"tioga/sim/fixtures"
	"tioga/sim/truth"
)

// TestCompareDeflate prints, per frame, the CPU time and the compressed size
// of the frame's byte-offset data (the data stream of a .cbf.gz, header
// aside) for the Encoder's klauspost path and for ISA-L and libdeflate at
// their fast levels. Every output is inflated and compared first. The
// candidates run round-robin, best of several rounds each, so that a load
// spike on a shared machine hits them alike. Run: make compare-deflate.
func TestCompareDeflate(t *testing.T) {
	runtime.LockOSThread() // thread CPU time below
	defer runtime.UnlockOSThread()
	names, frames := compareFrames(t)
	c := cdeflate.New()
	defer c.Close()
	out := make([]byte, 8<<20)
	kp := map[int]*cbf.CompareKlauspost{}
	for _, l := range []int{cbf.GzipAuto, -2, 1} {
		k, err := cbf.NewCompareKlauspost(l)
		if err != nil {
			t.Fatal(err)
		}
		kp[l] = k
	}
	fmt.Println("| frame | compressor | CPU ms/frame | Mpx/cpu-s | bytes | size / auto |")
	fmt.Println("|---|---|---|---|---|---|")
	for fi, p := range frames {
		bl := cbf.CompareBlocks(p)
		all := bytes.Join(bl, nil)
		type cand struct {
			name string
			f    func() ([]byte, error)
		}
		cands := []cand{
			{"klauspost auto (today)", func() ([]byte, error) { return kp[cbf.GzipAuto].Compress(bl) }},
			{"klauspost -2 (Huffman-only)", func() ([]byte, error) { return kp[-2].Compress(bl) }},
			{"klauspost 1", func() ([]byte, error) { return kp[1].Compress(bl) }},
		}
		for _, l := range []int{0, 1, 2} {
			cands = append(cands,
				cand{fmt.Sprintf("isa-l %d stateless", l), func() ([]byte, error) { return c.ISAL(l, all, 0, out) }},
				cand{fmt.Sprintf("isa-l %d stream 64 KiB", l), func() ([]byte, error) { return c.ISAL(l, all, 64<<10, out) }})
		}
		for _, l := range []int{1, 2, 3} {
			cands = append(cands, cand{fmt.Sprintf("libdeflate %d", l), func() ([]byte, error) { return c.Libdeflate(l, all, out) }})
		}
		sizes := make([]int, len(cands))
		best := make([]time.Duration, len(cands))
		for i, cd := range cands {
			z, err := cd.f()
			if err != nil {
				t.Fatalf("%s %s: %v", names[fi], cd.name, err)
			}
			got, err := io.ReadAll(flate.NewReader(bytes.NewReader(z)))
			if err != nil || !bytes.Equal(got, all) {
				t.Fatalf("%s %s: does not inflate to the input (%v)", names[fi], cd.name, err)
			}
			sizes[i], best[i] = len(z), time.Hour
		}
		const rounds, reps = 4, 3
		for r := 0; r < rounds; r++ {
			for i, cd := range cands {
				c0 := threadCPU()
				for k := 0; k < reps; k++ {
					if _, err := cd.f(); err != nil {
						t.Fatal(err)
					}
				}
				best[i] = min(best[i], (threadCPU()-c0)/reps)
			}
		}
		for i, cd := range cands {
			fmt.Printf("| %s | %s | %.1f | %.0f | %d | %.3f |\n", names[fi], cd.name, float64(best[i])/1e6,
				float64(p.Len())/best[i].Seconds()/1e6, sizes[i], float64(sizes[i])/float64(sizes[0]))
		}
	}
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// compareFrames returns the real EIGER 4M fixture frame (unpacked by
// Debian's bitshuffle, as TestRealEIGERFrame does), the synthetic frame of
// the cbf benchmarks, a sparse version of it, and a frame of the
// pipeline benchmarks' simulator.
func compareFrames(t *testing.T) ([]string, []cbf.Pixels) {
	blob := fixtures.Path(t, "eiger-stream-v1", "eiger4m-bs16", "streamfile_12")
	rawPath := filepath.Join(t.TempDir(), "frame.u16")
	cbftest.Python(t, `
import struct, sys
import numpy as np, bitshuffle
b = open(sys.argv[1], "rb").read()
n, block = struct.unpack(">QI", b[:12])
a = bitshuffle.decompress_lz4(np.frombuffer(b[12:], np.uint8), (n // 2,), np.dtype("<u2"), block // 2)
a.tofile(sys.argv[2])
`, blob, rawPath)
	raw, err := os.ReadFile(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	sparse := cbftest.EIGER4M
	sparse.Background = 0.05
	prof, _ := detectormodel.ByName("eiger4m")
	dc := diffraction.DefaultConfig(prof)
	dc.HitFraction, dc.Seed = 0.5, 3
	gen, err := diffraction.New(dc)
	if err != nil {
		t.Fatal(err)
	}
	sim := make([]byte, prof.Pixels()*2)
	var tr truth.Frame
	if err := gen.Frame(0, sim, &tr); err != nil {
		t.Fatal(err)
	}
	return []string{"real 4M", "cbftest 4M", "cbftest 4M bg 0.05", "pipeline sim 4M"}, []cbf.Pixels{
		{Data: raw, Width: 2070, Height: 2167, ElemSize: 2},
		cbftest.EIGER4M.Pixels(),
		sparse.Pixels(),
		{Data: sim, Width: prof.Width(), Height: prof.Height(), ElemSize: 2},
	}
}
