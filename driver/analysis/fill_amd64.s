//go:build gc && !purego

#include "textflag.h"

// func fillSteps16(bins *histCopy, px *uint16, steps *uint16, n, i int) (k, at int)
//
// See fillSteps16 in fill_amd64.go. Four steps per iteration, one per
// histogram copy (copies are histStride*4 = 279552 bytes apart):
//
//	AX = pixel index, advanced by each step's low byte
//	DX = the step's pixel value; BX = OR of the group's four values
//	R10-R13 = bin(shell, value) = shell*272 + value
//
// A group whose OR reaches 256 is left to the caller, before any of its
// bins is counted.
TEXT ·fillSteps16(SB), NOSPLIT, $0-56
	MOVQ bins+0(FP), R8
	MOVQ px+8(FP), SI
	MOVQ steps+16(FP), DI
	MOVQ n+24(FP), R9
	SUBQ $4, R9                   // last start of a whole group
	MOVQ i+32(FP), AX
	XORQ CX, CX

loop:
	CMPQ CX, R9
	JGT  done
	MOVQ AX, i+32(FP)             // the index before this group
	MOVWLZX 0(DI)(CX*2), R10
	MOVWLZX 2(DI)(CX*2), R11
	MOVWLZX 4(DI)(CX*2), R12
	MOVWLZX 6(DI)(CX*2), R13

	MOVBQZX R10B, DX
	ADDQ DX, AX
	MOVWLZX (SI)(AX*2), DX
	MOVL DX, BX
	SHRL $8, R10
	IMUL3L $272, R10, R10
	ADDL DX, R10

	MOVBQZX R11B, DX
	ADDQ DX, AX
	MOVWLZX (SI)(AX*2), DX
	ORL  DX, BX
	SHRL $8, R11
	IMUL3L $272, R11, R11
	ADDL DX, R11

	MOVBQZX R12B, DX
	ADDQ DX, AX
	MOVWLZX (SI)(AX*2), DX
	ORL  DX, BX
	SHRL $8, R12
	IMUL3L $272, R12, R12
	ADDL DX, R12

	MOVBQZX R13B, DX
	ADDQ DX, AX
	MOVWLZX (SI)(AX*2), DX
	ORL  DX, BX
	SHRL $8, R13
	IMUL3L $272, R13, R13
	ADDL DX, R13

	TESTL $0xff00, BX
	JNZ  spill
	INCL 0(R8)(R10*4)
	INCL 279552(R8)(R11*4)
	INCL 559104(R8)(R12*4)
	INCL 838656(R8)(R13*4)
	ADDQ $4, CX
	JMP  loop

spill:
	MOVQ i+32(FP), AX

done:
	MOVQ CX, k+40(FP)
	MOVQ AX, at+48(FP)
	RET

// func fillSteps32(bins *histCopy, px *uint32, steps *uint16, n, i int) (k, at int)
//
// fillSteps16 for 32-bit frames.
TEXT ·fillSteps32(SB), NOSPLIT, $0-56
	MOVQ bins+0(FP), R8
	MOVQ px+8(FP), SI
	MOVQ steps+16(FP), DI
	MOVQ n+24(FP), R9
	SUBQ $4, R9                   // last start of a whole group
	MOVQ i+32(FP), AX
	XORQ CX, CX

loop32:
	CMPQ CX, R9
	JGT  done32
	MOVQ AX, i+32(FP)             // the index before this group
	MOVWLZX 0(DI)(CX*2), R10
	MOVWLZX 2(DI)(CX*2), R11
	MOVWLZX 4(DI)(CX*2), R12
	MOVWLZX 6(DI)(CX*2), R13

	MOVBQZX R10B, DX
	ADDQ DX, AX
	MOVL (SI)(AX*4), DX
	MOVL DX, BX
	SHRL $8, R10
	IMUL3L $272, R10, R10
	ADDL DX, R10

	MOVBQZX R11B, DX
	ADDQ DX, AX
	MOVL (SI)(AX*4), DX
	ORL  DX, BX
	SHRL $8, R11
	IMUL3L $272, R11, R11
	ADDL DX, R11

	MOVBQZX R12B, DX
	ADDQ DX, AX
	MOVL (SI)(AX*4), DX
	ORL  DX, BX
	SHRL $8, R12
	IMUL3L $272, R12, R12
	ADDL DX, R12

	MOVBQZX R13B, DX
	ADDQ DX, AX
	MOVL (SI)(AX*4), DX
	ORL  DX, BX
	SHRL $8, R13
	IMUL3L $272, R13, R13
	ADDL DX, R13

	TESTL $0xffffff00, BX
	JNZ  spill32
	INCL 0(R8)(R10*4)
	INCL 279552(R8)(R11*4)
	INCL 559104(R8)(R12*4)
	INCL 838656(R8)(R13*4)
	ADDQ $4, CX
	JMP  loop32

spill32:
	MOVQ i+32(FP), AX

done32:
	MOVQ CX, k+40(FP)
	MOVQ AX, at+48(FP)
	RET
