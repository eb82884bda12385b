//go:build !amd64 || !gc || purego

package cbf

// encodeU16Groups encodes nothing where there is no vector kernel: appendU16
// does the work in its portable SWAR loop (see byteoffset_amd64.go).
func encodeU16Groups(dst *byte, src *byte, n int) int { return 0 }

const haveU16Groups = false
