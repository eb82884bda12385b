package cbf_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	kflate "github.com/klauspost/compress/flate"

	"tioga/device/detectormodel"
	"tioga/driver/cbf"
	"tioga/driver/cbf/cbftest"
	"tioga/internal/testenv"
	"tioga/sim/diffraction"
	"tioga/sim/fixtures"
	"tioga/sim/truth"
)

// klauspostAuto is GzipAuto as it was with klauspost's writers alone
// (before huffEncoder): per block Huffman-only (level -2), or BestSpeed
// where at least autoZeroFraction (0.80) of the bytes are zero, the
// writers changing over with a sync flush.
func klauspostAuto(t *testing.T, bl [][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	huff, _ := kflate.NewWriter(nil, kflate.HuffmanOnly)
	fast, _ := kflate.NewWriter(nil, kflate.BestSpeed)
	var cur *kflate.Writer
	for _, b := range bl {
		w := huff
		if bytes.Count(b, []byte{0}) >= int(0.80*float64(len(b))) {
			w = fast
		}
		if w != cur {
			if cur != nil {
				if err := cur.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			w.Reset(&out)
			cur = w
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := cur.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// sizeFrames returns the frames the size comparison runs on: the real
// EIGER 4M fixture frame (unpacked by Debian's bitshuffle), the synthetic
// 4M frame, a sparse synthetic one and a frame of the pipeline's
// diffraction simulator.
func sizeFrames(t *testing.T) ([]string, []cbf.Pixels) {
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

// GzipAuto's data stream (huffEncoder for the dense blocks) inflates back
// to the byte-offset data and is no larger than klauspost's auto path (the
// one GzipAuto replaced) on real and simulated frames: the files compress
// at least as well as before (issue 17).
func TestAutoSizeAgainstKlauspost(t *testing.T) {
	testenv.SkipIfShort(t)
	names, frames := sizeFrames(t)
	for i, p := range frames {
		bl := cbf.ByteOffsetBlocks(p)
		data := bytes.Join(bl, nil)
		k := klauspostAuto(t, bl)
		auto, err := cbf.AutoDeflate(bl)
		if err != nil {
			t.Fatal(err)
		}
		if out := inflate(t, auto); !bytes.Equal(out, data) {
			t.Fatalf("%s: GzipAuto's stream inflates to %d bytes that differ", names[i], len(out))
		}
		r := float64(len(auto)) / float64(len(k))
		t.Logf("%s: %d bytes of byte-offset data; klauspost auto %d, GzipAuto %d (%.5f)", names[i], len(data), len(k), len(auto), r)
		if len(auto) > len(k) {
			t.Errorf("%s: GzipAuto %d bytes, %.5f of klauspost auto's %d", names[i], len(auto), r, len(k))
		}
	}
}
