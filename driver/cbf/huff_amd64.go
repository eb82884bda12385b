//go:build gc && !purego

package cbf

import "golang.org/x/sys/cpu"

// huffLiterals4 codes the bytes of src four at a time (n/4 rounds; the
// last n%4 bytes are left to the caller) with codes (bit-reversed code |
// length<<16, no code longer than 14 bits), into the bit buffer bits of
// nb < 8 pending bits, storing whole 64-bit words at dst. It returns the
// number of bytes completed at dst and the pending bits. The caller
// guarantees room for every code and an 8-byte store beyond.
//
// It is writeLiterals' four-code round in assembly: the Go compiler
// spilled five values of that round to the stack (the shifts by CL pin
// one register) and checked bounds on every byte, and the round took
// about 1.7 ns per byte on the 2-core AMD EPYC machine.
//
//go:noescape
func huffLiterals4(dst *byte, src *byte, n int, codes *[257]uint32, bits, nb uint64) (written int, bitsOut, nbOut uint64)

// huffLiterals3 is huffLiterals4 for codes of up to 15 bits: three bytes
// per round, n/3 rounds (the last n%3 bytes are left to the caller).
//
//go:noescape
func huffLiterals3(dst *byte, src *byte, n int, codes *[257]uint32, bits, nb uint64) (written int, bitsOut, nbOut uint64)

// haveLiterals4 says huffLiterals4 and huffLiterals3 may run: they need
// BMI2 (SHLX, SHRX).
var haveLiterals4 = cpu.X86.HasBMI2
