//go:build (amd64 || arm64) && gc && !purego

package cbf

import "unsafe"

// st64 stores v little-endian at b[i:i+8] without a bounds check. Only
// huffEncoder.writeLiterals uses it, into a buffer it has grown
// beforehand by the longest possible coding of its input plus 16 bytes. amd64 and arm64 are
// little-endian with fast unaligned stores; the purego tag (or any other
// platform) selects the checked version in store_portable.go.
func st64(b []byte, i int, v uint64) {
	*(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i)) = v
}
