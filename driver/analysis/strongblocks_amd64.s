//go:build gc && !purego

#include "textflag.h"

// func scanBlocks16(px *uint16, shells *uint32, span *uint16, excl *uint32, nb int, cand *uint64) int
//
// See scanBlocks16 in strongblocks_amd64.go. Per block of 32 pixels:
//
//	R14     the block's bound: the lower of span[its shells' range] and
//	        span[its ice band]
//	Y2      the bound in all 16 lanes
//	Y0, Y1  pixels 0-15 and 16-31, minus the bound with unsigned
//	        saturation, compared with zero: all ones where a pixel is at
//	        or below the bound
//	        packed to bytes (VPACKSSWB interleaves the 128-bit halves,
//	        VPERMQ $0xD8 puts pixels 0-31 back in order) and VPMOVMSKB:
//	R9      bit j set when pixel j is at or below the bound
//
// ~(R9 | excl) is the mask of pixels above it that are not excluded. The
// entry is stored every time and the list grows by one only when the mask
// is not empty: no branch on the data. The blocks go from the last to the
// first: the background pass has just read the frame from first to last,
// and its end is still in the cache.
TEXT ·scanBlocks16(SB), NOSPLIT, $0-56
	MOVQ  px+0(FP), SI
	MOVQ  shells+8(FP), BX
	MOVQ  span+16(FP), R12
	MOVQ  excl+24(FP), R10
	MOVQ  nb+32(FP), CX
	MOVQ  cand+40(FP), DI
	XORQ  DX, DX
	VPXOR Y7, Y7, Y7
	TESTQ CX, CX
	JZ    done
	MOVQ  CX, AX
	DECQ  AX          // the last block first
	MOVQ  AX, R8
	SHLQ  $6, R8
	ADDQ  R8, SI

loop:
	MOVL         (BX)(AX*4), R13
	MOVWLZX      R13, R14
	MOVWLZX      (R12)(R14*2), R14
	SHRL         $16, R13
	MOVWLZX      (R12)(R13*2), R13
	CMPL         R13, R14
	CMOVLLT      R13, R14
	MOVL         R14, X2
	VPBROADCASTW X2, Y2
	VMOVDQU      (SI), Y0
	VMOVDQU      32(SI), Y1
	VPSUBUSW     Y2, Y0, Y0
	VPSUBUSW     Y2, Y1, Y1
	VPCMPEQW     Y7, Y0, Y0
	VPCMPEQW     Y7, Y1, Y1
	VPACKSSWB    Y1, Y0, Y0
	VPERMQ       $0xD8, Y0, Y0
	VPMOVMSKB    Y0, R9
	ORL          (R10)(AX*4), R9
	NOTL         R9
	MOVQ         R9, R11
	SHLQ         $32, R11
	ORQ          AX, R11
	MOVQ         R11, (DI)(DX*8)
	XORL         R8, R8
	TESTL        R9, R9
	SETNE        R8
	ADDQ         R8, DX
	SUBQ         $64, SI
	DECQ         AX
	JGE          loop

done:
	VZEROUPPER
	MOVQ DX, ret+48(FP)
	RET
