//go:build !gc || purego || !amd64

package analysis

// haveFillSteps is false: fill runs its portable loop (fillGo).
const haveFillSteps = false

func fillSteps16(bins *histCopy, px *uint16, steps *uint16, n, i int) (k, at int) {
	panic("analysis: fillSteps16 without assembly")
}

func fillSteps32(bins *histCopy, px *uint32, steps *uint16, n, i int) (k, at int) {
	panic("analysis: fillSteps32 without assembly")
}
