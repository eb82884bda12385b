//go:build !amd64 || !gc || purego

package cbf

// huffLiterals4 is never called where there is no assembly kernel
// (see huff_amd64.go).
func huffLiterals4(dst *byte, src *byte, n int, codes *[257]uint32, bits, nb uint64) (written int, bitsOut, nbOut uint64) {
	panic("cbf: huffLiterals4 without a kernel")
}

// huffLiterals3 is never called where there is no assembly kernel.
func huffLiterals3(dst *byte, src *byte, n int, codes *[257]uint32, bits, nb uint64) (written int, bitsOut, nbOut uint64) {
	panic("cbf: huffLiterals3 without a kernel")
}

const haveLiterals4 = false
