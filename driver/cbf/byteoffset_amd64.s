//go:build gc && !purego

#include "textflag.h"

// func encodeU16Groups(dst *byte, src *byte, n int) int
//
// See encodeU16Groups in byteoffset_amd64.go. SSE2 only (every amd64 CPU):
// eight pixels per iteration, in 16-bit lanes read as int16, where the
// masked value 0xFFFF is already -1.
//
//	X0 = v, pixels i..i+7        X1 = p, pixels i-1..i+6 (one unaligned load back)
//	X2 = d = v - p (wrapping)    fail if v < -1 or p < -1 (raw 0x8000..0xFFFE,
//	                             whose value is not its int16 reading),
//	                             d > 127 or d < -127
//	else the eight bytes of d (PACKSSWB; no lane saturates) are the output.
TEXT ·encodeU16Groups(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	PCMPEQW X7, X7                  // -1 in every lane
	MOVQ $0x007f007f007f007f, R8
	MOVQ R8, X6
	PUNPCKLQDQ X6, X6               // 127
	MOVQ $0xff81ff81ff81ff81, R8
	MOVQ R8, X5
	PUNPCKLQDQ X5, X5               // -127

loop:
	LEAQ 8(AX), DX
	CMPQ DX, CX
	JGT  done
	MOVOU 2(SI)(AX*2), X0           // v
	MOVOU (SI)(AX*2), X1            // p
	MOVO X0, X2
	PSUBW X1, X2                    // d
	MOVO X7, X3
	PCMPGTW X0, X3                  // -1 > v
	MOVO X7, X4
	PCMPGTW X1, X4                  // -1 > p
	POR X4, X3
	MOVO X2, X8
	PCMPGTW X6, X8                  // d > 127
	POR X8, X3
	MOVO X5, X9
	PCMPGTW X2, X9                  // -127 > d
	POR X9, X3
	PMOVMSKB X3, R9
	TESTL R9, R9
	JNZ  done
	PACKSSWB X2, X2
	MOVQ X2, (DI)(AX*1)
	MOVQ DX, AX
	JMP  loop

done:
	MOVQ AX, ret+24(FP)
	RET
