package opcua

import (
	"errors"
	"strconv"
	"strings"

	"tioga/properties"
)

// numericRange is a parsed OPC UA IndexRange (Part 4, 7.27): up to two
// dimensions, each "i" or "lo:hi" (inclusive, lo < hi). For records the
// first dimension selects rows and the second columns; it is how a client
// reads a long dozor-pass in parts.
type numericRange struct {
	dims [][2]int
}

var errRange = errors.New("invalid index range")

// maxRangeIndex keeps indices far below overflow.
const maxRangeIndex = 1 << 30

func parseNumericRange(s string) (numericRange, error) {
	var nr numericRange
	if s == "" {
		return nr, errRange
	}
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nr, errRange
	}
	for _, p := range parts {
		lo, hi, found := strings.Cut(p, ":")
		a, err := rangeIndex(lo)
		if err != nil {
			return nr, err
		}
		b := a
		if found {
			if b, err = rangeIndex(hi); err != nil {
				return nr, err
			}
			if b <= a {
				return nr, errRange
			}
		}
		nr.dims = append(nr.dims, [2]int{a, b})
	}
	return nr, nil
}

func rangeIndex(s string) (int, error) {
	if s == "" || len(s) > 10 {
		return 0, errRange
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errRange
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxRangeIndex {
		return 0, errRange
	}
	return n, nil
}

// apply returns the part of v the range selects. A range past the end is
// clipped; a range that selects nothing is an error (BadIndexRangeNoData).
func (nr numericRange) apply(spec properties.Spec, v properties.Value) (properties.Value, error) {
	switch spec.Shape {
	case properties.Array:
		if len(nr.dims) != 1 {
			return v, errRange
		}
		n := v.Len()
		lo, hi := nr.dims[0][0], min(nr.dims[0][1], n-1)
		if lo >= n {
			return v, errRange
		}
		return v.Slice(lo, hi+1), nil
	case properties.Records:
		w := spec.Width
		if v.Width > 0 {
			w = v.Width
		}
		rows := v.Rows()
		lo, hi := nr.dims[0][0], min(nr.dims[0][1], rows-1)
		if lo >= rows {
			return v, errRange
		}
		out := v.Slice(lo, hi+1)
		if len(nr.dims) == 1 {
			return out, nil
		}
		c0, c1 := nr.dims[1][0], min(nr.dims[1][1], w-1)
		if c0 >= w {
			return v, errRange
		}
		return columns(out, w, c0, c1), nil
	}
	return v, errRange
}

// columns copies columns [c0, c1] of each record.
func columns(v properties.Value, w, c0, c1 int) properties.Value {
	nw := c1 - c0 + 1
	rows := v.Rows()
	out := properties.Value{Elem: v.Elem, Width: nw, Time: v.Time}
	pick := func(i int) (int, int) { return i*w + c0, i*w + c1 + 1 }
	switch v.Elem {
	case properties.Bool:
		for i := 0; i < rows; i++ {
			a, b := pick(i)
			out.Bools = append(out.Bools, v.Bools[a:b]...)
		}
	case properties.Int32:
		for i := 0; i < rows; i++ {
			a, b := pick(i)
			out.Int32s = append(out.Int32s, v.Int32s[a:b]...)
		}
	case properties.Float32:
		for i := 0; i < rows; i++ {
			a, b := pick(i)
			out.Float32s = append(out.Float32s, v.Float32s[a:b]...)
		}
	case properties.Float64:
		for i := 0; i < rows; i++ {
			a, b := pick(i)
			out.Float64s = append(out.Float64s, v.Float64s[a:b]...)
		}
	}
	return out
}
