//go:build gc && !purego

package analysis

import "golang.org/x/sys/cpu"

// scanBlocks16 lists at cand, in ascending order, the blocks b < nb of
// strongBlock 16-bit pixels starting at px that hold a pixel above
// bound[b] and not excluded (bit j of excl[b] excludes pixel j): each as
// b | mask<<32, bit j of mask set for pixel j above the bound and not
// excluded. It returns how many there are; cand has room for nb.
//
//go:noescape
func scanBlocks16(px *uint16, bound *uint16, excl *uint32, nb int, cand *uint64) int

// haveBlockScan says scanBlocks16 may run: it needs AVX2.
var haveBlockScan = cpu.X86.HasAVX2
