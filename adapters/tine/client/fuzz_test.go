package client

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"tioga/sim/fixtures"
)

// FuzzAssembler feeds hostile reply datagrams to the client's reassembly,
// seeded with every captured reply; a datagram is split at a fuzzed point
// into two, so that transfers of several datagrams are exercised too.
// Nothing may panic, and every completed transfer must be internally
// consistent.
func FuzzAssembler(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtures.Path(f, "tine"), "*.rep*.bin"))
	if len(files) != 345 {
		f.Fatalf("%d captured replies", len(files))
	}
	sort.Strings(files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		a := NewAssembler()
		a.MaxBytes = 1 << 20
		parts := [][]byte{b}
		if c := int(cut); c > 0 && c < len(b) {
			parts = [][]byte{b[:c], b[c:], b}
		}
		for _, p := range parts {
			rs, err := a.Add(p)
			if err != nil {
				continue
			}
			for _, r := range rs {
				if r.Blocks < 1 || len(r.Data.Bytes) > a.MaxBytes {
					t.Fatalf("transfer of %d blocks, %d bytes", r.Blocks, len(r.Data.Bytes))
				}
				_ = r.Data.String()
				_ = r.Err()
			}
		}
	})
}
