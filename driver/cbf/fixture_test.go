package cbf_test

import (
	"os"
	"path/filepath"
	"testing"

	"tioga/driver/cbf"
	"tioga/driver/cbf/cbftest"
	"tioga/sim/fixtures"
)

// A real EIGER 4M frame (frame 0 of the eiger-stream-v1 fixture), unpacked
// by Debian's own bitshuffle module rather than by our stream decoder, is
// written as .cbf.gz and read back: every pixel survives, and the masked
// pixels are exactly the 251 297 the fixture documents.
func TestRealEIGERFrame(t *testing.T) {
	blob := fixtures.Path(t, "eiger-stream-v1", "eiger4m-bs16", "streamfile_12")
	raw := filepath.Join(t.TempDir(), "frame.u16")
	cbftest.Python(t, `
import struct, sys
import numpy as np, bitshuffle
b = open(sys.argv[1], "rb").read()
n, block = struct.unpack(">QI", b[:12])   # HDF5 bslz4 framing
a = bitshuffle.decompress_lz4(np.frombuffer(b[12:], np.uint8), (n // 2,), np.dtype("<u2"), block // 2)
a.tofile(sys.argv[2])
`, blob, raw)
	data, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := cbf.Pixels{Data: data, Width: 2070, Height: 2167, ElemSize: 2}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	h := cbftest.Header()
	file := encode(t, cbf.Options{Gzip: true}, h, "real_1_00001", p)
	img, err := cbf.Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	masked := 0
	for i, v := range img.Pixels {
		if v != p.Value(i) {
			t.Fatalf("pixel %d: %d, want %d", i, v, p.Value(i))
		}
		if v == -1 {
			masked++
		}
	}
	if masked != 251297 {
		t.Fatalf("%d masked pixels, the fixture has 251297", masked)
	}
	t.Logf("real EIGER 4M frame: %d bytes as .cbf.gz (%.2f bytes/pixel)", len(file), float64(len(file))/float64(p.Len()))
	// The default level's own Huffman-only blocks compress this frame no
	// worse than klauspost's Huffman-only level (what the default level
	// used for its dense blocks before huffEncoder).
	if k := encode(t, cbf.Options{Gzip: true, GzipLevel: -2}, h, "real_1_00001", p); len(file) > len(k) {
		t.Errorf("real frame: %d bytes at the default level, %d with klauspost Huffman-only", len(file), len(k))
	} else {
		t.Logf("klauspost Huffman-only: %d bytes", len(k))
	}
}
