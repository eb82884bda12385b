//go:build gc && !purego

#include "textflag.h"

// FIRST starts w (R14) with the code of byte b and the sum (R13) with its
// length.
#define FIRST(b) \
	MOVWQZX (R9)(b*4), R14 \
	MOVBLZX 2(R9)(b*4), R13

// JOIN adds the code of byte b to w, shifted by the lengths so far, and
// its length to the sum (b is free afterwards).
#define JOIN(b) \
	MOVWQZX (R9)(b*4), CX \
	SHLXQ   R13, CX, CX   \
	ORQ     CX, R14       \
	MOVBLZX 2(R9)(b*4), b \
	ADDL    b, R13

// FLUSH adds w to the bit buffer, stores its 8 bytes at DI and advances
// DI by the whole bytes, which leave the buffer.
#define FLUSH \
	SHLXQ BX, R14, R14 \
	ORQ   R14, AX      \
	ADDQ  R13, BX      \
	MOVQ  AX, (DI)     \
	MOVQ  BX, R11      \
	SHRQ  $3, R11      \
	ADDQ  R11, DI      \
	MOVQ  BX, R12      \
	ANDQ  $-8, R12     \
	SHRXQ R12, AX, AX  \
	ANDQ  $7, BX

// func huffLiterals4(dst *byte, src *byte, n int, codes *[257]uint32, bits, nb uint64) (written int, bitsOut, nbOut uint64)
//
// See huffLiterals4 in huff_amd64.go. Per round of four input bytes:
//
//	R14       w: the four codes joined, each shifted by the lengths before it
//	          (each byte, code and length is a load of its own: loads are
//	          cheaper here than the instructions that would split them
//	          out of a word)
//	R13       the lengths' sum
//	AX, BX    the bit buffer and its count (< 8 at the top of a round)
//
// The codes are joined off the loop-carried path; the path itself is
// one SHLX and OR into AX, the ADD into BX, and the SHRX/AND that drop
// the whole bytes after the 8-byte store. Needs BMI2 (SHLX/SHRX).
TEXT ·huffLiterals4(SB), NOSPLIT, $0-72
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	MOVQ codes+24(FP), R9
	MOVQ bits+32(FP), AX
	MOVQ nb+40(FP), BX
	MOVQ DI, R8
	SHRQ $2, DX
	JZ   done

loop:
	MOVBLZX (SI), R11
	MOVBLZX 1(SI), R12
	MOVBLZX 2(SI), R10
	MOVBLZX 3(SI), R15
	FIRST(R11)
	JOIN(R12)
	JOIN(R10)
	JOIN(R15)
	FLUSH

	ADDQ $4, SI
	DECQ DX
	JNZ  loop

done:
	SUBQ R8, DI
	MOVQ DI, written+48(FP)
	MOVQ AX, bitsOut+56(FP)
	MOVQ BX, nbOut+64(FP)
	RET

// func huffLiterals3(dst *byte, src *byte, n int, codes *[257]uint32, bits, nb uint64) (written int, bitsOut, nbOut uint64)
//
// huffLiterals4's round for codes of up to 15 bits: three bytes per
// round (nb < 8 and three codes add at most 52 bits), n/3 rounds.
TEXT ·huffLiterals3(SB), NOSPLIT, $0-72
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), AX
	MOVQ codes+24(FP), R9
	MOVQ bits+32(FP), R15
	MOVQ nb+40(FP), BX
	MOVQ DI, R8
	XORQ DX, DX
	MOVQ $3, CX
	DIVQ CX          // AX = rounds
	MOVQ AX, DX
	MOVQ R15, AX
	TESTQ DX, DX
	JZ   done3

loop3:
	MOVBLZX (SI), R11
	MOVBLZX 1(SI), R12
	MOVBLZX 2(SI), R10
	FIRST(R11)
	JOIN(R12)
	JOIN(R10)
	FLUSH

	ADDQ $3, SI
	DECQ DX
	JNZ  loop3

done3:
	SUBQ R8, DI
	MOVQ DI, written+48(FP)
	MOVQ AX, bitsOut+56(FP)
	MOVQ BX, nbOut+64(FP)
	RET
