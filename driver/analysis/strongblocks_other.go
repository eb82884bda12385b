//go:build !amd64 || !gc || purego

package analysis

// scanBlocks16 has no kernel here: strongPixels does the work (see
// strongblocks_amd64.go).
func scanBlocks16(px *uint16, shells *uint32, span *uint16, excl *uint32, nb int, cand *uint64) int {
	panic("analysis: scanBlocks16 without a kernel")
}

const haveBlockScan = false
