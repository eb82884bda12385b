//go:build (amd64 || arm64) && gc && !purego

package codec

import "unsafe"

// ld64 returns the little-endian word at b[i:i+8] without a bounds check.
// Only the transpose kernels use it, and runKernel checks once per block
// that every offset they form lies inside their buffers. amd64 and arm64
// are little-endian with fast unaligned loads; the purego tag (or any other
// platform) selects the checked version in load_portable.go.
func ld64(b []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

// st64 stores v little-endian at b[i:i+8] without a bounds check (see ld64).
func st64(b []byte, i int, v uint64) {
	*(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i)) = v
}
