package cbitshuffle

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryLoads fails (never skips) when the C library is missing: the
// codec's reference comparisons depend on it and the Makefile installs it.
func TestLibraryLoads(t *testing.T) {
	if err := Load(); err != nil {
		t.Fatal(err)
	}
}

// TestKnownBitShuffle pins the C library's bit layout on a tiny block: 8
// uint16 elements 1, 2, 4, ..., 128 put a single set bit in each of the first
// eight bit rows, one element per row.
func TestKnownBitShuffle(t *testing.T) {
	src := []byte{1, 0, 2, 0, 4, 0, 8, 0, 16, 0, 32, 0, 64, 0, 128, 0}
	dst := make([]byte, len(src))
	if err := BitShuffle(dst, src, 2); err != nil {
		t.Fatal(err)
	}
	// Row r = 8*byte + bit holds bit i%8 for element i; element i has only
	// bit i of byte 0 set, so row i (i < 8) is 1<<i and rows 8-15 are zero.
	want, _ := hex.DecodeString("01020408102040800000000000000000")
	if !bytes.Equal(dst, want) {
		t.Fatalf("bitshuffle = %x, want %x", dst, want)
	}
	back := make([]byte, len(src))
	if err := BitUnshuffle(back, dst, 2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, src) {
		t.Fatalf("unshuffle = %x, want %x", back, src)
	}
}

// TestCompressDecompress checks the header this package adds and the round
// trip through the library, on an odd number of elements (two blocks of
// 4096, one of 48 and a raw tail of 3).
func TestCompressDecompress(t *testing.T) {
	n := 2*4096 + 48 + 3
	src := make([]byte, 2*n)
	for i := range n {
		src[2*i] = byte(i * 7)
		src[2*i+1] = byte(i >> 9)
	}
	enc, err := Compress([]byte("prefix"), src, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(enc[:6]) != "prefix" {
		t.Fatal("Compress did not append")
	}
	c := enc[6:]
	wantHeader := "00000000" + "00004066" + "00002000" // 16486 bytes, 8192-byte blocks
	if got := hex.EncodeToString(c[:12]); got != wantHeader {
		t.Fatalf("header %s, want %s", got, wantHeader)
	}
	if !bytes.Equal(c[len(c)-6:], src[len(src)-6:]) {
		t.Fatal("raw tail is not the last 3 elements")
	}
	back := make([]byte, len(src))
	used, err := Decompress(back, c, 2)
	if err != nil {
		t.Fatal(err)
	}
	if used != len(c) || !bytes.Equal(back, src) {
		t.Fatalf("round trip: consumed %d of %d, equal %v", used, len(c), bytes.Equal(back, src))
	}
	// Truncated input is refused before the C decoder can overread.
	if _, err := Decompress(back, c[:len(c)-7], 2); err == nil {
		t.Fatal("truncated input accepted")
	}
}

// TestMissingLibraryIsAnError runs this test binary again with a bogus
// library path and checks that Load reports it instead of crashing.
func TestMissingLibraryIsAnError(t *testing.T) {
	if os.Getenv("CBITSHUFFLE_CHILD") == "1" {
		err := Load()
		if err == nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("LOADERR " + err.Error() + "\n")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestMissingLibraryIsAnError$")
	cmd.Env = append(os.Environ(), "CBITSHUFFLE_CHILD=1", EnvPath+"=/nonexistent/libh5bshuf.so")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "LOADERR cbitshuffle: dlopen /nonexistent/libh5bshuf.so") {
		t.Fatalf("child output %q", out)
	}
}

// TestLZ4 checks the reference LZ4 round trip and a known tiny block: ten
// bytes are too short for a match (LZ4 starts none within the last 12 bytes
// of its input), so the block is the token 0xa0 (ten literals, no match)
// followed by the bytes.
func TestLZ4(t *testing.T) {
	src := make([]byte, 10)
	c, err := LZ4Compress(nil, src)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(c) != "a000000000000000000000" {
		t.Fatalf("compressed %x", c)
	}
	back := make([]byte, len(src))
	n, err := LZ4Decompress(back, c)
	if err != nil || n != len(src) || !bytes.Equal(back, src) {
		t.Fatalf("decompress: n=%d err=%v", n, err)
	}
	if _, err := LZ4Decompress(back[:5], c); err == nil {
		t.Fatal("decompress into a short buffer succeeded")
	}
}
