package cbf

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// crc32Combine must give the CRC of the concatenation, for every split.
func TestCRC32Combine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 5000)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for _, cut := range []int{0, 1, 7, 100, 4096, 4999, 5000} {
		a, c := b[:cut], b[cut:]
		got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(c), int64(len(c)))
		if want := crc32.ChecksumIEEE(b); got != want {
			t.Errorf("cut %d: %08x, want %08x", cut, got, want)
		}
	}
}
