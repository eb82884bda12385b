//go:build !amd64 || !gc || purego

package codec

// There are no vector kernels here: the portable delta swaps do all the
// work (see bitshuffle_amd64.go).

const vecNone = 0

var vecLevel = vecNone

func vecLevels() []int { return []int{vecNone} }

func unshuffle2Level(dst, src []byte, rowLen, full, level int) int { return 0 }

func vecLevelName(level int) string { return "portable" }

func unshuffle4Level(dst, src []byte, rowLen, full, level int) int { return 0 }

func unshuffle1Level(dst, src []byte, rowLen, full, level int) int { return 0 }
