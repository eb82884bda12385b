//go:build gc && !purego

package analysis

import "golang.org/x/sys/cpu"

// scanBlocks16 lists at cand, in descending order, the blocks b < nb of
// strongBlock 16-bit pixels starting at px that hold a pixel above the
// block's bound and not excluded (bit j of excl[b] excludes pixel j):
// each as b | mask<<32, bit j of mask set for pixel j above the bound and
// not excluded. The bound is min(span[shells[b]&0xFFFF],
// span[shells[b]>>16]) (blockTables.shells, strongScratch.span: every
// index is in the table by construction). It returns how many blocks
// there are; cand has room for nb.
//
//go:noescape
func scanBlocks16(px *uint16, shells *uint32, span *uint16, excl *uint32, nb int, cand *uint64) int

// haveBlockScan says scanBlocks16 may run: it needs AVX2.
var haveBlockScan = cpu.X86.HasAVX2
