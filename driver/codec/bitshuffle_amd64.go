//go:build gc && !purego

package codec

import "golang.org/x/sys/cpu"

// unshuffle2AVX2 is unshuffle2 for n groups of four 64-element chunks
// (row offsets 0 to 32n), in AVX2 registers: stages 1-3 are the same delta
// swaps on four chunks at once, the byte moves of stages 4-6 are unpacks
// (see bitshuffle_amd64.s). The caller guarantees 16 rows of rowLen bytes
// at src with 32n <= rowLen, and 512n writable bytes at dst.
//
//go:noescape
func unshuffle2AVX2(dst, src *byte, rowLen, n int)

// unshuffle2SSE2 is unshuffle2AVX2 in SSE2 registers (every amd64 CPU), for
// n groups of two chunks: 16n <= rowLen, 256n writable bytes at dst.
//
//go:noescape
func unshuffle2SSE2(dst, src *byte, rowLen, n int)

// unshuffle4SSE2 is unshuffle4 for n groups of two chunks in SSE2
// registers: stages 1-3 as in unshuffle2SSE2, then byte and word
// interleaves of the four planes and 4x4 transposes of 32-bit elements
// (see bitshuffle_amd64.s). 32 rows of rowLen bytes at src with
// 16n <= rowLen, 512n writable bytes at dst. There is no AVX2 version: on
// the first Zen cores, where this was measured, AVX2 runs the 2-byte kernel
// no faster than SSE2.
//
//go:noescape
func unshuffle4SSE2(dst, src *byte, rowLen, n int)

// unshuffle1SSE2 is unshuffle1 for n groups of two chunks in SSE2
// registers: stages 1-3 as in unshuffle2SSE2, then an 8x8 transpose of
// bytes by unpacks. 8 rows of rowLen bytes at src with 16n <= rowLen, 128n
// writable bytes at dst.
//
//go:noescape
func unshuffle1SSE2(dst, src *byte, rowLen, n int)

// vecLevel selects the vector kernels: vecAVX2 where the CPU (and the
// operating system, which must save the Y registers) supports AVX2, else
// vecSSE2, which every amd64 CPU has. vecNone, the portable delta swaps, is
// there for the tests and benchmarks that compare.
var vecLevel = vecLevels()[len(vecLevels())-1]

const (
	vecNone = iota
	vecSSE2
	vecAVX2
)

// vecLevels lists the levels this machine can run, best last.
func vecLevels() []int {
	if cpu.X86.HasAVX2 {
		return []int{vecNone, vecSSE2, vecAVX2}
	}
	return []int{vecNone, vecSSE2}
}

// vecLevelName names a level in benchmarks.
func vecLevelName(level int) string {
	return [...]string{vecNone: "portable", vecSSE2: "sse2", vecAVX2: "avx2"}[level]
}

// unshuffle2Level runs the 2-byte kernel of the given level; see
// unshuffle2Vec.
func unshuffle2Level(dst, src []byte, rowLen, full, level int) int {
	switch {
	case level == vecAVX2 && full >= 32:
		n := full / 32
		unshuffle2AVX2(&dst[0], &src[0], rowLen, n)
		return 32 * n
	case level >= vecSSE2 && full >= 16:
		n := full / 16
		unshuffle2SSE2(&dst[0], &src[0], rowLen, n)
		return 16 * n
	}
	return 0
}

// unshuffle4Level runs the 4-byte kernel of the given level; see
// unshuffle4Vec.
func unshuffle4Level(dst, src []byte, rowLen, full, level int) int {
	if level >= vecSSE2 && full >= 16 {
		n := full / 16
		unshuffle4SSE2(&dst[0], &src[0], rowLen, n)
		return 16 * n
	}
	return 0
}

// unshuffle1Level runs the 1-byte kernel of the given level; see
// unshuffle1Vec.
func unshuffle1Level(dst, src []byte, rowLen, full, level int) int {
	if level >= vecSSE2 && full >= 16 {
		n := full / 16
		unshuffle1SSE2(&dst[0], &src[0], rowLen, n)
		return 16 * n
	}
	return 0
}
