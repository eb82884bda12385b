//go:build gc && !purego

package cbf

// encodeU16Groups byte-offset encodes 16-bit pixels eight at a time while
// every difference of a group fits in one byte and every pixel is a count
// below 0x8000 or masked (0xFFFF): src points at the pixel BEFORE the first
// one to encode (the previous value of the first difference), n is the
// number of pixels after it that may be encoded. It stops at the first
// group that needs an escape or holds a raw value in 0x8000..0xFFFE, or when
// fewer than eight pixels are left, and returns the number of pixels
// encoded, a multiple of 8; it wrote exactly that many bytes at dst. The
// caller guarantees 2(n+1) readable bytes at src and n writable at dst.
//
// It is the same test as the portable SWAR loop of appendU16 (swarValid,
// swarBytes), done in SSE2 registers, eight lanes at once, which the Go
// compiler does not vectorise by itself.
//
//go:noescape
func encodeU16Groups(dst *byte, src *byte, n int) int

const haveU16Groups = true
