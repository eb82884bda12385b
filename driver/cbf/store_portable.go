//go:build !((amd64 || arm64) && gc && !purego)

package cbf

import "encoding/binary"

// st64 stores v little-endian at b[i:i+8] (see store_unsafe.go).
func st64(b []byte, i int, v uint64) {
	binary.LittleEndian.PutUint64(b[i:i+8], v)
}
