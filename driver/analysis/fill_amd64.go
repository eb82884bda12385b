//go:build gc && !purego

package analysis

import "unsafe"

// fillSteps16 is fill's loop for 16-bit frames in assembly: the Go loop
// spilled registers and checked the bounds of every pixel, about 70
// instructions per four samples against 44 here. It counts steps[0:n]
// from pixel index i, four at a time, into the four histogram copies
// bins[0..3], and stops before the first group of four that holds a value
// of 256 or more, or when fewer than four steps are left. It returns the
// first step it did not count and the pixel index before it.
//
//go:noescape
func fillSteps16(bins *histCopy, px *uint16, steps *uint16, n, i int) (k, at int)

// fillSteps32 is fillSteps16 for 32-bit frames.
//
//go:noescape
func fillSteps32(bins *histCopy, px *uint32, steps *uint16, n, i int) (k, at int)

// The assembly addresses the copies at fixed offsets and computes bins as
// shell*272 + value.
const _ = -uint(unsafe.Sizeof(histCopy{}) ^ 279552)
const _ = -uint(shellBins ^ 272)

// haveFillSteps: fill runs fillSteps16 and fillSteps32.
const haveFillSteps = true
