//go:build gc && !purego

#include "textflag.h"

// The 2-byte bit-untranspose (unshuffle2 in bitshuffle.go) over several
// 64-element chunks at once, in vector registers. See unshuffle2Vec in
// bitshuffle_amd64.go for the arguments and bitshuffle.go for the stages.
//
// Each register holds the same row of consecutive chunks, one chunk per
// 64-bit lane (4 in a Y register, 2 in an X register), so stages 1-3 (the
// delta swaps by 1, 2 and 4 bits, stagesB) are the Go code's, one lane per
// chunk. After them, in plane j word w of a chunk, byte k is byte j of
// element 8k+w, which belongs at byte 16k+2w+j of the chunk's 128 output
// bytes: the rest of the transpose only moves whole bytes, so it is done
// with unpacks instead of the Go code's stages 4-6. Interleaving the bytes
// of the two planes (PUNPCKLBW/PUNPCKHBW, x then y) gives, per chunk, the
// 16-bit elements 8k+w in word k of register w; an 8x8 transpose of 16-bit
// words (unpacks of words, double words, quad words) then makes register k
// hold elements 8k..8k+7, the chunk's output bytes 16k..16k+15.

DATA bsmasks<>+0(SB)/8, $0x5555555555555555  // m0: swap by 1
DATA bsmasks<>+8(SB)/8, $0x5555555555555555
DATA bsmasks<>+16(SB)/8, $0x3333333333333333 // m1: swap by 2
DATA bsmasks<>+24(SB)/8, $0x3333333333333333
DATA bsmasks<>+32(SB)/8, $0x0F0F0F0F0F0F0F0F // m2: swap by 4
DATA bsmasks<>+40(SB)/8, $0x0F0F0F0F0F0F0F0F
GLOBL bsmasks<>(SB), RODATA|NOPTR, $48

// PREFETCH4 asks for the 4 cache lines of output at off(DI) ahead of their
// stores. The output (a whole frame, 9 MB for a 4M 16-bit one) misses the
// caches; on the first Zen cores the AVX2 kernel's bursts of stores then
// stall (its unshuffle step of a 4M frame went from 2.9-3.1 to 3.1-3.3
// Gpx/cpu-s with it, bslz4-16 decode from 1355-1415 to 1467-1527
// Mpx/cpu-s), where the SSE2 kernels' stores, half as dense, measured the
// same with and without. PREFETCHT0 rather than PREFETCHW, which Go's
// assembler lacks and older Intel cores do not document.
#define PREFETCH4(off) \
	PREFETCHT0 off(DI); \
	PREFETCHT0 64+off(DI); \
	PREFETCHT0 128+off(DI); \
	PREFETCHT0 192+off(DI)

// VSWAP is dswap(a, b, d, m) on 64-bit lanes: t = ((a >> d) ^ b) & m;
// b ^= t; a ^= t << d. t is a scratch register.
#define VSWAP(a, b, d, m, t) \
	VPSRLQ $d, a, t; \
	VPXOR  b, t, t; \
	VPAND  m, t, t; \
	VPXOR  t, b, b; \
	VPSLLQ $d, t, t; \
	VPXOR  t, a, a

// VSWAP1 is VSWAP by one bit, its left shift an add (t+t): vector shifts
// have one execution port on the first Zen cores, adds three.
#define VSWAP1(a, b, m, t) \
	VPSRLQ $1, a, t; \
	VPXOR  b, t, t; \
	VPAND  m, t, t; \
	VPXOR  t, b, b; \
	VPADDQ t, t, t; \
	VPXOR  t, a, a

// VSTAGESB is stagesB on Y0..Y7 (masks in Y13, Y14, Y15; Y8 scratch).
#define VSTAGESB \
	VSWAP(Y0, Y4, 4, Y15, Y8); \
	VSWAP(Y1, Y5, 4, Y15, Y8); \
	VSWAP(Y2, Y6, 4, Y15, Y8); \
	VSWAP(Y3, Y7, 4, Y15, Y8); \
	VSWAP(Y0, Y2, 2, Y14, Y8); \
	VSWAP(Y1, Y3, 2, Y14, Y8); \
	VSWAP(Y4, Y6, 2, Y14, Y8); \
	VSWAP(Y5, Y7, 2, Y14, Y8); \
	VSWAP1(Y0, Y1, Y13, Y8); \
	VSWAP1(Y2, Y3, Y13, Y8); \
	VSWAP1(Y4, Y5, Y13, Y8); \
	VSWAP1(Y6, Y7, Y13, Y8)

// VLOAD8 loads the 8 rows of a plane (base b, row length DX, R8 = 3*DX,
// R9 = 5*DX, R10 = 7*DX) at the current offset into Y0..Y7.
#define VLOAD8(b) \
	VMOVDQU (b), Y0; \
	VMOVDQU (b)(DX*1), Y1; \
	VMOVDQU (b)(DX*2), Y2; \
	VMOVDQU (b)(R8*1), Y3; \
	VMOVDQU (b)(DX*4), Y4; \
	VMOVDQU (b)(R9*1), Y5; \
	VMOVDQU (b)(R8*2), Y6; \
	VMOVDQU (b)(R10*1), Y7

// VTRANSPOSE16 transposes the 8x8 16-bit words of Y8..Y15 (register w
// holds word k = element 8k+w, in each 128-bit lane) into Y0..Y7 (register
// k holds elements 8k..8k+7), through Y0..Y7 and Y8..Y15 again.
#define VTRANSPOSE16 \
	VPUNPCKLWD Y9, Y8, Y0; \
	VPUNPCKHWD Y9, Y8, Y1; \
	VPUNPCKLWD Y11, Y10, Y2; \
	VPUNPCKHWD Y11, Y10, Y3; \
	VPUNPCKLWD Y13, Y12, Y4; \
	VPUNPCKHWD Y13, Y12, Y5; \
	VPUNPCKLWD Y15, Y14, Y6; \
	VPUNPCKHWD Y15, Y14, Y7; \
	VPUNPCKLDQ Y2, Y0, Y8; \
	VPUNPCKHDQ Y2, Y0, Y9; \
	VPUNPCKLDQ Y3, Y1, Y10; \
	VPUNPCKHDQ Y3, Y1, Y11; \
	VPUNPCKLDQ Y6, Y4, Y12; \
	VPUNPCKHDQ Y6, Y4, Y13; \
	VPUNPCKLDQ Y7, Y5, Y14; \
	VPUNPCKHDQ Y7, Y5, Y15; \
	VPUNPCKLQDQ Y12, Y8, Y0; \
	VPUNPCKHQDQ Y12, Y8, Y1; \
	VPUNPCKLQDQ Y13, Y9, Y2; \
	VPUNPCKHQDQ Y13, Y9, Y3; \
	VPUNPCKLQDQ Y14, Y10, Y4; \
	VPUNPCKHQDQ Y14, Y10, Y5; \
	VPUNPCKLQDQ Y15, Y11, Y6; \
	VPUNPCKHQDQ Y15, Y11, Y7

// VSTORE2 stores row k (register a) of two chunks: the low 128-bit lane
// (the chunk at off-16k) at off, the high lane (the chunk 256 bytes on) at
// off+256. Two 128-bit stores rather than a lane permute and a 256-bit
// store: VPERM2I128 is 8 micro-ops on the first Zen cores.
#define VSTORE2(a, xa, off) \
	VMOVDQU xa, off(DI); \
	VEXTRACTI128 $1, a, 256+off(DI)

// func unshuffle2AVX2(dst, src *byte, rowLen, n int)
//
// n groups of four chunks (32 bytes of each row, 512 output bytes).
// Frame: the 8 registers of one plane, 256 bytes.
TEXT ·unshuffle2AVX2(SB), NOSPLIT, $256-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rowLen+16(FP), DX
	MOVQ n+24(FP), CX
	LEAQ (DX)(DX*2), R8      // 3 rows
	LEAQ (DX)(DX*4), R9      // 5 rows
	LEAQ (R8)(DX*4), R10     // 7 rows
	LEAQ (SI)(DX*8), R11     // plane 1 (high bytes): rows 8-15
	TESTQ CX, CX
	JLE  done

loop:
	VPBROADCASTQ bsmasks<>+0(SB), Y13
	VPBROADCASTQ bsmasks<>+16(SB), Y14
	VPBROADCASTQ bsmasks<>+32(SB), Y15

	PREFETCH4(1024)
	PREFETCH4(1280)

	// Plane 1 first, parked on the stack.
	VLOAD8(R11)
	VSTAGESB
	VMOVDQU Y0, 0(SP)
	VMOVDQU Y1, 32(SP)
	VMOVDQU Y2, 64(SP)
	VMOVDQU Y3, 96(SP)
	VMOVDQU Y4, 128(SP)
	VMOVDQU Y5, 160(SP)
	VMOVDQU Y6, 192(SP)
	VMOVDQU Y7, 224(SP)

	// Plane 0.
	VLOAD8(SI)
	VSTAGESB

	// Interleave the planes' bytes: low halves of each 128-bit lane
	// (chunks 0 and 2) into Y8..Y15, high halves (chunks 1 and 3) back
	// onto the stack in place of plane 1.
	VPUNPCKLBW 0(SP), Y0, Y8
	VPUNPCKHBW 0(SP), Y0, Y0
	VMOVDQU Y0, 0(SP)
	VPUNPCKLBW 32(SP), Y1, Y9
	VPUNPCKHBW 32(SP), Y1, Y1
	VMOVDQU Y1, 32(SP)
	VPUNPCKLBW 64(SP), Y2, Y10
	VPUNPCKHBW 64(SP), Y2, Y2
	VMOVDQU Y2, 64(SP)
	VPUNPCKLBW 96(SP), Y3, Y11
	VPUNPCKHBW 96(SP), Y3, Y3
	VMOVDQU Y3, 96(SP)
	VPUNPCKLBW 128(SP), Y4, Y12
	VPUNPCKHBW 128(SP), Y4, Y4
	VMOVDQU Y4, 128(SP)
	VPUNPCKLBW 160(SP), Y5, Y13
	VPUNPCKHBW 160(SP), Y5, Y5
	VMOVDQU Y5, 160(SP)
	VPUNPCKLBW 192(SP), Y6, Y14
	VPUNPCKHBW 192(SP), Y6, Y6
	VMOVDQU Y6, 192(SP)
	VPUNPCKLBW 224(SP), Y7, Y15
	VPUNPCKHBW 224(SP), Y7, Y7
	VMOVDQU Y7, 224(SP)

	// Chunks 0 (output +0) and 2 (+256).
	VTRANSPOSE16
	VSTORE2(Y0, X0, 0)
	VSTORE2(Y1, X1, 16)
	VSTORE2(Y2, X2, 32)
	VSTORE2(Y3, X3, 48)
	VSTORE2(Y4, X4, 64)
	VSTORE2(Y5, X5, 80)
	VSTORE2(Y6, X6, 96)
	VSTORE2(Y7, X7, 112)

	// Chunks 1 (+128) and 3 (+384).
	VMOVDQU 0(SP), Y8
	VMOVDQU 32(SP), Y9
	VMOVDQU 64(SP), Y10
	VMOVDQU 96(SP), Y11
	VMOVDQU 128(SP), Y12
	VMOVDQU 160(SP), Y13
	VMOVDQU 192(SP), Y14
	VMOVDQU 224(SP), Y15
	VTRANSPOSE16
	VSTORE2(Y0, X0, 128)
	VSTORE2(Y1, X1, 144)
	VSTORE2(Y2, X2, 160)
	VSTORE2(Y3, X3, 176)
	VSTORE2(Y4, X4, 192)
	VSTORE2(Y5, X5, 208)
	VSTORE2(Y6, X6, 224)
	VSTORE2(Y7, X7, 240)

	ADDQ $32, SI
	ADDQ $32, R11
	ADDQ $512, DI
	DECQ CX
	JNZ  loop
	VZEROUPPER

done:
	RET

// The SSE2 kernel: the same steps on X registers, two chunks (16 bytes of
// each row, 256 output bytes) per group, in two-operand form.

// SWAP is VSWAP for SSE2.
#define SWAP(a, b, d, m, t) \
	MOVO  a, t; \
	PSRLQ $d, t; \
	PXOR  b, t; \
	PAND  m, t; \
	PXOR  t, b; \
	PSLLQ $d, t; \
	PXOR  t, a

// SWAP1 is VSWAP1 for SSE2.
#define SWAP1(a, b, m, t) \
	MOVO  a, t; \
	PSRLQ $1, t; \
	PXOR  b, t; \
	PAND  m, t; \
	PXOR  t, b; \
	PADDQ t, t; \
	PXOR  t, a

// STAGESB is stagesB on X0..X7 (masks in X13, X14, X15; X8 scratch).
#define STAGESB \
	SWAP(X0, X4, 4, X15, X8); \
	SWAP(X1, X5, 4, X15, X8); \
	SWAP(X2, X6, 4, X15, X8); \
	SWAP(X3, X7, 4, X15, X8); \
	SWAP(X0, X2, 2, X14, X8); \
	SWAP(X1, X3, 2, X14, X8); \
	SWAP(X4, X6, 2, X14, X8); \
	SWAP(X5, X7, 2, X14, X8); \
	SWAP1(X0, X1, X13, X8); \
	SWAP1(X2, X3, X13, X8); \
	SWAP1(X4, X5, X13, X8); \
	SWAP1(X6, X7, X13, X8)

// LOAD8 is VLOAD8 for X registers.
#define LOAD8(b) \
	MOVOU (b), X0; \
	MOVOU (b)(DX*1), X1; \
	MOVOU (b)(DX*2), X2; \
	MOVOU (b)(R8*1), X3; \
	MOVOU (b)(DX*4), X4; \
	MOVOU (b)(R9*1), X5; \
	MOVOU (b)(R8*2), X6; \
	MOVOU (b)(R10*1), X7

// INTERLEAVE makes X<w> the low halves of X<w> and plane 1's register w
// (at off(SP)) interleaved byte by byte, and puts the high halves at
// off(SP) in its place. X8, X9 scratch.
#define INTERLEAVE(xw, off) \
	MOVOU off(SP), X8; \
	MOVO  xw, X9; \
	PUNPCKLBW X8, xw; \
	PUNPCKHBW X8, X9; \
	MOVOU X9, off(SP)

// TRANSPOSE16 is VTRANSPOSE16 for X registers, from X0..X7 (register w
// holds word k = element 8k+w), and stores the rows k (elements 8k..8k+7)
// at off+16k(DI).
#define TRANSPOSE16(off) \
	MOVO X0, X8; \
	PUNPCKLWL X1, X8; \
	PUNPCKHWL X1, X0; \
	MOVO X2, X9; \
	PUNPCKLWL X3, X9; \
	PUNPCKHWL X3, X2; \
	MOVO X4, X10; \
	PUNPCKLWL X5, X10; \
	PUNPCKHWL X5, X4; \
	MOVO X6, X11; \
	PUNPCKLWL X7, X11; \
	PUNPCKHWL X7, X6; \
	MOVO X8, X1; \
	PUNPCKLLQ X9, X1; \
	PUNPCKHLQ X9, X8; \
	MOVO X0, X3; \
	PUNPCKLLQ X2, X3; \
	PUNPCKHLQ X2, X0; \
	MOVO X10, X5; \
	PUNPCKLLQ X11, X5; \
	PUNPCKHLQ X11, X10; \
	MOVO X4, X7; \
	PUNPCKLLQ X6, X7; \
	PUNPCKHLQ X6, X4; \
	MOVO X1, X12; \
	PUNPCKLQDQ X5, X12; \
	PUNPCKHQDQ X5, X1; \
	MOVO X8, X13; \
	PUNPCKLQDQ X10, X13; \
	PUNPCKHQDQ X10, X8; \
	MOVO X3, X14; \
	PUNPCKLQDQ X7, X14; \
	PUNPCKHQDQ X7, X3; \
	MOVO X0, X15; \
	PUNPCKLQDQ X4, X15; \
	PUNPCKHQDQ X4, X0; \
	MOVOU X12, off(DI); \
	MOVOU X1, 16+off(DI); \
	MOVOU X13, 32+off(DI); \
	MOVOU X8, 48+off(DI); \
	MOVOU X14, 64+off(DI); \
	MOVOU X3, 80+off(DI); \
	MOVOU X15, 96+off(DI); \
	MOVOU X0, 112+off(DI)

// func unshuffle2SSE2(dst, src *byte, rowLen, n int)
//
// n groups of two chunks (16 bytes of each row, 256 output bytes).
// Frame: the 8 registers of one plane, 128 bytes.
TEXT ·unshuffle2SSE2(SB), NOSPLIT, $128-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rowLen+16(FP), DX
	MOVQ n+24(FP), CX
	LEAQ (DX)(DX*2), R8      // 3 rows
	LEAQ (DX)(DX*4), R9      // 5 rows
	LEAQ (R8)(DX*4), R10     // 7 rows
	LEAQ (SI)(DX*8), R11     // plane 1 (high bytes): rows 8-15
	TESTQ CX, CX
	JLE  sdone

sloop:
	MOVOU bsmasks<>+0(SB), X13
	MOVOU bsmasks<>+16(SB), X14
	MOVOU bsmasks<>+32(SB), X15

	// Plane 1 first, parked on the stack.
	LOAD8(R11)
	STAGESB
	MOVOU X0, 0(SP)
	MOVOU X1, 16(SP)
	MOVOU X2, 32(SP)
	MOVOU X3, 48(SP)
	MOVOU X4, 64(SP)
	MOVOU X5, 80(SP)
	MOVOU X6, 96(SP)
	MOVOU X7, 112(SP)

	// Plane 0, then the interleave: chunk 0 in X0..X7, chunk 1 on the
	// stack.
	LOAD8(SI)
	STAGESB
	INTERLEAVE(X0, 0)
	INTERLEAVE(X1, 16)
	INTERLEAVE(X2, 32)
	INTERLEAVE(X3, 48)
	INTERLEAVE(X4, 64)
	INTERLEAVE(X5, 80)
	INTERLEAVE(X6, 96)
	INTERLEAVE(X7, 112)
	TRANSPOSE16(0)

	MOVOU 0(SP), X0
	MOVOU 16(SP), X1
	MOVOU 32(SP), X2
	MOVOU 48(SP), X3
	MOVOU 64(SP), X4
	MOVOU 80(SP), X5
	MOVOU 96(SP), X6
	MOVOU 112(SP), X7
	TRANSPOSE16(128)

	ADDQ $16, SI
	ADDQ $16, R11
	ADDQ $256, DI
	DECQ CX
	JNZ  sloop

sdone:
	RET

// The 4-byte unshuffle (unshuffle4 in bitshuffle.go), SSE2, two chunks per
// group (16 bytes of each of the 32 rows, 512 output bytes). After stages
// 1-3, in plane j word w of a chunk, byte k is byte j of element 8k+w, at
// byte 32k+4w+j of the chunk's output. Three passes through a 512-byte
// frame (the 32 registers of the four planes do not fit in 16):
//  1. per plane, stages 1-3 on its 8 rows, parked at slot (j, w);
//  2. per w, planes 0 and 1 and planes 2 and 3 interleaved byte by byte,
//     the two results word by word: whole elements 8k+w, four k per
//     register, parked at slot (q, w), q = 2*chunk + k/4;
//  3. per q, two 4x4 transposes of 32-bit elements (w 0-3 and w 4-7) make
//     the rows k: elements 8k..8k+7 at 32k of the chunk.

// slot (j, w) of the frame: 128j + 16w.

// INTERLEAVE4 is pass 2 for one w (slot offset off = 16w), X0..X7.
#define INTERLEAVE4(off) \
	MOVOU off(SP), X0; \
	MOVOU 128+off(SP), X1; \
	MOVOU 256+off(SP), X2; \
	MOVOU 384+off(SP), X3; \
	MOVO  X0, X4; \
	PUNPCKLBW X1, X0; \
	PUNPCKHBW X1, X4; \
	MOVO  X2, X5; \
	PUNPCKLBW X3, X2; \
	PUNPCKHBW X3, X5; \
	MOVO  X0, X6; \
	PUNPCKLWL X2, X0; \
	PUNPCKHWL X2, X6; \
	MOVO  X4, X7; \
	PUNPCKLWL X5, X4; \
	PUNPCKHWL X5, X7; \
	MOVOU X0, off(SP); \
	MOVOU X6, 128+off(SP); \
	MOVOU X4, 256+off(SP); \
	MOVOU X7, 384+off(SP)

// TRANSPOSE32 transposes the 4x4 32-bit elements of r0..r3 (register w
// holds elements k = 0..3) and stores row k at off+32k(DI). t0, t1 scratch.
#define TRANSPOSE32(r0, r1, r2, r3, t0, t1, off) \
	MOVO r0, t0; \
	PUNPCKLLQ r1, t0; \
	PUNPCKHLQ r1, r0; \
	MOVO r2, t1; \
	PUNPCKLLQ r3, t1; \
	PUNPCKHLQ r3, r2; \
	MOVO t0, r1; \
	PUNPCKLQDQ t1, r1; \
	PUNPCKHQDQ t1, t0; \
	MOVO r0, r3; \
	PUNPCKLQDQ r2, r3; \
	PUNPCKHQDQ r2, r0; \
	MOVOU r1, off(DI); \
	MOVOU t0, 32+off(DI); \
	MOVOU r3, 64+off(DI); \
	MOVOU r0, 96+off(DI)

// ROWS4 is pass 3 for one q (slots at 128q, output at 128q(DI)).
#define ROWS4(q) \
	MOVOU (128*q)(SP), X0; \
	MOVOU (128*q+16)(SP), X1; \
	MOVOU (128*q+32)(SP), X2; \
	MOVOU (128*q+48)(SP), X3; \
	MOVOU (128*q+64)(SP), X8; \
	MOVOU (128*q+80)(SP), X9; \
	MOVOU (128*q+96)(SP), X10; \
	MOVOU (128*q+112)(SP), X11; \
	TRANSPOSE32(X0, X1, X2, X3, X4, X5, 128*q); \
	TRANSPOSE32(X8, X9, X10, X11, X12, X13, 128*q+16)

// PLANE4 is pass 1 for the plane at base b, parked at slots off..off+112.
#define PLANE4(b, off) \
	LOAD8(b); \
	STAGESB; \
	MOVOU X0, off(SP); \
	MOVOU X1, 16+off(SP); \
	MOVOU X2, 32+off(SP); \
	MOVOU X3, 48+off(SP); \
	MOVOU X4, 64+off(SP); \
	MOVOU X5, 80+off(SP); \
	MOVOU X6, 96+off(SP); \
	MOVOU X7, 112+off(SP)

// func unshuffle4SSE2(dst, src *byte, rowLen, n int)
//
// n groups of two chunks. Frame: the four planes, 512 bytes.
TEXT ·unshuffle4SSE2(SB), NOSPLIT, $512-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rowLen+16(FP), DX
	MOVQ n+24(FP), CX
	LEAQ (DX)(DX*2), R8      // 3 rows
	LEAQ (DX)(DX*4), R9      // 5 rows
	LEAQ (R8)(DX*4), R10     // 7 rows
	LEAQ (SI)(DX*8), R11     // plane 1: rows 8-15
	LEAQ (R11)(DX*8), R12    // plane 2: rows 16-23
	LEAQ (R12)(DX*8), R13    // plane 3: rows 24-31
	TESTQ CX, CX
	JLE  done4

loop4:
	MOVOU bsmasks<>+0(SB), X13
	MOVOU bsmasks<>+16(SB), X14
	MOVOU bsmasks<>+32(SB), X15
	PLANE4(SI, 0)
	PLANE4(R11, 128)
	PLANE4(R12, 256)
	PLANE4(R13, 384)
	INTERLEAVE4(0)
	INTERLEAVE4(16)
	INTERLEAVE4(32)
	INTERLEAVE4(48)
	INTERLEAVE4(64)
	INTERLEAVE4(80)
	INTERLEAVE4(96)
	INTERLEAVE4(112)
	ROWS4(0)
	ROWS4(1)
	ROWS4(2)
	ROWS4(3)

	ADDQ $16, SI
	ADDQ $16, R11
	ADDQ $16, R12
	ADDQ $16, R13
	ADDQ $512, DI
	DECQ CX
	JNZ  loop4

done4:
	RET

// The 1-byte unshuffle (unshuffle1 in bitshuffle.go), SSE2, two chunks per
// group (16 bytes of each of the 8 rows, 128 output bytes). After stages
// 1-3, byte k of word w of a chunk is element 8k+w: an 8x8 transpose of
// bytes (unpacks of bytes, words, double words) finishes it, the low
// halves of the registers giving chunk 0, the high halves chunk 1.

// ROWS1 transposes the bytes of a, b, c, d (the byte interleaves of words
// 0/1, 2/3, 4/5, 6/7: 16-bit word k holds elements 8k+w, 8k+w+1) and
// stores elements 0..63 of the chunk at off(DI). t0..t3 scratch.
#define ROWS1(a, b, c, d, t0, t1, t2, t3, off) \
	MOVO a, t0; \
	PUNPCKLWL b, t0; \
	PUNPCKHWL b, a; \
	MOVO c, t1; \
	PUNPCKLWL d, t1; \
	PUNPCKHWL d, c; \
	MOVO t0, t2; \
	PUNPCKLLQ t1, t2; \
	PUNPCKHLQ t1, t0; \
	MOVO a, t3; \
	PUNPCKLLQ c, t3; \
	PUNPCKHLQ c, a; \
	MOVOU t2, off(DI); \
	MOVOU t0, 16+off(DI); \
	MOVOU t3, 32+off(DI); \
	MOVOU a, 48+off(DI)

// func unshuffle1SSE2(dst, src *byte, rowLen, n int)
//
// n groups of two chunks: 16n <= rowLen, 128n writable bytes at dst.
TEXT ·unshuffle1SSE2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rowLen+16(FP), DX
	MOVQ n+24(FP), CX
	LEAQ (DX)(DX*2), R8      // 3 rows
	LEAQ (DX)(DX*4), R9      // 5 rows
	LEAQ (R8)(DX*4), R10     // 7 rows
	TESTQ CX, CX
	JLE  done1
	MOVOU bsmasks<>+0(SB), X13
	MOVOU bsmasks<>+16(SB), X14
	MOVOU bsmasks<>+32(SB), X15

loop1:
	LOAD8(SI)
	STAGESB
	MOVO X0, X8
	PUNPCKLBW X1, X8
	PUNPCKHBW X1, X0
	MOVO X2, X9
	PUNPCKLBW X3, X9
	PUNPCKHBW X3, X2
	MOVO X4, X10
	PUNPCKLBW X5, X10
	PUNPCKHBW X5, X4
	MOVO X6, X11
	PUNPCKLBW X7, X11
	PUNPCKHBW X7, X6
	ROWS1(X8, X9, X10, X11, X1, X3, X5, X7, 0)
	ROWS1(X0, X2, X4, X6, X1, X3, X5, X7, 64)

	ADDQ $16, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  loop1

done1:
	RET
