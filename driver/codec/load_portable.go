//go:build !((amd64 || arm64) && gc && !purego)

package codec

import "encoding/binary"

// ld64 returns the little-endian word at b[i:i+8].
func ld64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i : i+8]) }

// st64 stores v little-endian at b[i:i+8].
func st64(b []byte, i int, v uint64) { binary.LittleEndian.PutUint64(b[i:i+8], v) }
