//go:build !gc || purego || !amd64

package analysis

const haveFillSteps16 = false

func fillSteps16(bins *histCopy, px *uint16, steps *uint16, n, i int) (k, at int) {
	panic("analysis: fillSteps16 without assembly")
}
