package stream

import (
	"fmt"
	"testing"

	"tioga/sim/fixtures"
)

// Facts of the capture (shared/fixtures/README.md).
const (
	v1Width     = 2070
	v1Height    = 2167
	v1FrameSize = 1170446 // bytes of each bs16-lz4< data part
)

func v1Part(tb testing.TB, n int) []byte {
	tb.Helper()
	return fixtures.Read(tb, "eiger-stream-v1", "eiger4m-bs16", fmt.Sprintf("streamfile_%d", n))
}

// v1HeaderParts is the series header as the detector sent it, with
// zero-filled blobs of the declared shape standing in for the flatfield and
// pixel mask (parts 4 and 6), which the capture leaves out.
func v1HeaderParts(tb testing.TB) [][]byte {
	tb.Helper()
	blob := 4 * v1Width * v1Height
	return [][]byte{
		v1Part(tb, 1), v1Part(tb, 2),
		v1Part(tb, 3), make([]byte, blob),
		v1Part(tb, 5), make([]byte, blob),
		v1Part(tb, 7), v1Part(tb, 8),
		v1Part(tb, 9),
	}
}

// v1ImageParts is frame 0, 1 or 2 of the capture.
func v1ImageParts(tb testing.TB, frame int) [][]byte {
	tb.Helper()
	first := 10 + 4*frame
	return [][]byte{v1Part(tb, first), v1Part(tb, first+1), v1Part(tb, first+2), v1Part(tb, first+3)}
}

func v1EndParts(tb testing.TB) [][]byte {
	tb.Helper()
	return [][]byte{v1Part(tb, 22)}
}

// v1Capture is the whole capture as messages, in arrival order.
func v1Capture(tb testing.TB) [][][]byte {
	tb.Helper()
	return [][][]byte{v1HeaderParts(tb), v1ImageParts(tb, 0), v1ImageParts(tb, 1), v1ImageParts(tb, 2), v1EndParts(tb)}
}

// The real EIGER2 V2 captures.
const (
	v2Dir16M = "eiger2-16m"
)

// v2Series500K describes one directory of real EIGER2 R 500K image messages.
type v2Series500K struct {
	dir      string
	elemSize int
	alg      string // "bslz4" or "lz4"
	uid      string
	realTime uint64 // ticks of 20 ns
}

var v2500K = []v2Series500K{
	{"dectris-r500k_bm_bslz4_8bit", 1, "bslz4", "01GRXWS1MWTNK0GJYNYKDWCNBY", 499995},
	{"dectris-r500k_bm_bslz4_16bit", 2, "bslz4", "01GRXWT80JSDY2FNW8SGCCDZD9", 999995},
	{"dectris-r500k_bm_bslz4_32bit", 4, "bslz4", "01GRXWYAQ9NN93NRNS0H4S7JYZ", 4999995},
	{"dectris-r500k_bm_lz4_16bit", 2, "lz4", "01GRXX5AEGDK0H95FQA1W4FCJ5", 999995},
}

func v2File(tb testing.TB, dir, name string) []byte {
	tb.Helper()
	return fixtures.Read(tb, "eiger-stream-v2", dir, name)
}

// v2ImageFile is image n (1..10) of a 500K directory; 11 is the end.
func v2ImageFile(tb testing.TB, dir string, n int) []byte {
	tb.Helper()
	return v2File(tb, dir, fmt.Sprintf("%06d.cbor", n))
}

func mustParseV1(tb testing.TB, parts [][]byte) Message {
	tb.Helper()
	m, err := ParseV1(parts)
	if err != nil {
		tb.Fatalf("ParseV1: %v", err)
	}
	return m
}

func mustParseV2(tb testing.TB, msg []byte) Message {
	tb.Helper()
	m, err := ParseV2(msg)
	if err != nil {
		tb.Fatalf("ParseV2: %v", err)
	}
	return m
}
