package properties

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Elem is the element type of a property's value. The set is small on
// purpose: it is what both TINE (CF_BOOLEAN, CF_INT32, CF_FLOAT, CF_DOUBLE,
// CF_TEXT) and OPC UA (Boolean, Int32, Float, Double, String) carry natively,
// so no adapter has to invent a mapping.
type Elem uint8

// Element types.
const (
	Bool Elem = iota + 1
	Int32
	Float32
	Float64
	Text
)

func (e Elem) String() string {
	switch e {
	case Bool:
		return "bool"
	case Int32:
		return "int32"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case Text:
		return "text"
	}
	return fmt.Sprintf("elem(%d)", uint8(e))
}

// Numeric reports whether values of this type convert to numbers.
func (e Elem) Numeric() bool { return e == Bool || e == Int32 || e == Float32 || e == Float64 }

func (e Elem) valid() bool { return e >= Bool && e <= Text }

// Value is one timestamped property value: a scalar, a 1-D array, or rows of
// fixed width (records) of a single element type. Exactly one of the slices
// (or Text) is used, chosen by Elem.
//
// A Value handed out by a property is shared: treat its slices as read-only.
// That is what lets a read of a 1,000,000-record array cost nothing.
type Value struct {
	Elem     Elem
	Width    int // record width (columns) for records; 0 otherwise
	Bools    []bool
	Int32s   []int32
	Float32s []float32
	Float64s []float64
	Text     string
	Time     time.Time // when the value was produced (source timestamp)
	// Quality says whether the value can be trusted (zero: good); a
	// change of quality alone is a change for subscribers.
	Quality Quality
}

// BoolValue returns a scalar bool value.
func BoolValue(b bool) Value { return Value{Elem: Bool, Bools: []bool{b}} }

// Int32Value returns a scalar int32 value.
func Int32Value(v int32) Value { return Value{Elem: Int32, Int32s: []int32{v}} }

// Float32Value returns a scalar float32 value.
func Float32Value(v float32) Value { return Value{Elem: Float32, Float32s: []float32{v}} }

// Float64Value returns a scalar float64 value.
func Float64Value(v float64) Value { return Value{Elem: Float64, Float64s: []float64{v}} }

// TextValue returns a text value.
func TextValue(s string) Value { return Value{Elem: Text, Text: s} }

// Int32s returns an int32 array value (the slice is not copied).
func Int32s(v []int32) Value { return Value{Elem: Int32, Int32s: v} }

// Float32s returns a float32 array value (the slice is not copied).
func Float32s(v []float32) Value { return Value{Elem: Float32, Float32s: v} }

// Float64s returns a float64 array value (the slice is not copied).
func Float64s(v []float64) Value { return Value{Elem: Float64, Float64s: v} }

// Float32Records returns rows of width float32 columns laid out row after
// row in data (the slice is not copied; len(data) must be a multiple of
// width).
func Float32Records(width int, data []float32) Value {
	return Value{Elem: Float32, Width: width, Float32s: data}
}

// At returns a copy of v stamped with t.
func (v Value) At(t time.Time) Value { v.Time = t; return v }

// Len is the number of elements (for text: bytes).
func (v Value) Len() int {
	switch v.Elem {
	case Bool:
		return len(v.Bools)
	case Int32:
		return len(v.Int32s)
	case Float32:
		return len(v.Float32s)
	case Float64:
		return len(v.Float64s)
	case Text:
		return len(v.Text)
	}
	return 0
}

// Rows is the number of records (Len/Width), or Len for plain values.
func (v Value) Rows() int {
	if v.Width > 0 {
		return v.Len() / v.Width
	}
	return v.Len()
}

// Float64At returns element i as a float64 (bools as 0/1; text parsed, NaN
// when it is not a number).
func (v Value) Float64At(i int) float64 {
	switch v.Elem {
	case Bool:
		if v.Bools[i] {
			return 1
		}
		return 0
	case Int32:
		return float64(v.Int32s[i])
	case Float32:
		return float64(v.Float32s[i])
	case Float64:
		return v.Float64s[i]
	case Text:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.Text), 64)
		if err != nil {
			return math.NaN()
		}
		return f
	}
	return math.NaN()
}

// Int returns the first element as an int (0 for an empty value).
func (v Value) Int() int {
	if v.Len() == 0 {
		return 0
	}
	if v.Elem == Text {
		n, _ := strconv.Atoi(strings.TrimSpace(v.Text))
		return n
	}
	return int(v.Float64At(0))
}

// Float returns the first element as a float64 (0 for an empty value).
func (v Value) Float() float64 {
	if v.Len() == 0 {
		return 0
	}
	return v.Float64At(0)
}

// Bool returns the first element as a bool (non-zero is true).
func (v Value) Bool() bool {
	if v.Len() == 0 {
		return false
	}
	if v.Elem == Bool {
		return v.Bools[0]
	}
	if v.Elem == Text {
		b, err := strconv.ParseBool(strings.TrimSpace(v.Text))
		return err == nil && b
	}
	return v.Float64At(0) != 0
}

// String formats the value for logs and command-line output.
func (v Value) String() string {
	if v.Elem == Text {
		return v.Text
	}
	n := v.Len()
	if n == 1 && v.Width == 0 {
		return v.elemString(0)
	}
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			if v.Width > 0 && i%v.Width == 0 {
				b.WriteString("; ")
			} else {
				b.WriteByte(' ')
			}
		}
		if i >= 64 {
			fmt.Fprintf(&b, "... %d more", n-i)
			break
		}
		b.WriteString(v.elemString(i))
	}
	b.WriteByte(']')
	return b.String()
}

func (v Value) elemString(i int) string {
	switch v.Elem {
	case Bool:
		return strconv.FormatBool(v.Bools[i])
	case Int32:
		return strconv.FormatInt(int64(v.Int32s[i]), 10)
	case Float32:
		return strconv.FormatFloat(float64(v.Float32s[i]), 'g', -1, 32)
	case Float64:
		return strconv.FormatFloat(v.Float64s[i], 'g', -1, 64)
	}
	return ""
}

// Convert returns v as element type to, following the coercion rules the
// control system's clients expect (TINE's, see docs/tine-protocol.md §8.1):
// numbers convert to numbers element-wise, floats to int32 truncate toward
// zero (saturating at the int32 range), numbers to bool are "non-zero",
// text parses as a number or bool, numbers format as text. The record width
// is kept. Converting to the same type returns v unchanged (no copy).
func (v Value) Convert(to Elem) (Value, error) {
	if !to.valid() {
		return Value{}, fmt.Errorf("%w: unknown element type %d", ErrType, to)
	}
	if v.Elem == to {
		return v, nil
	}
	out := Value{Elem: to, Width: v.Width, Time: v.Time, Quality: v.Quality}
	n := v.Len()
	if to == Text {
		if v.Width == 0 && n == 1 {
			out.Text = v.elemString(0)
		} else {
			out.Text = v.String()
		}
		return out, nil
	}
	if v.Elem == Text {
		s := strings.TrimSpace(v.Text)
		out.Width = 0
		switch to {
		case Bool:
			b, err := strconv.ParseBool(s)
			if err != nil {
				f, ferr := strconv.ParseFloat(s, 64)
				if ferr != nil {
					return Value{}, fmt.Errorf("%w: text %q is not a bool", ErrType, v.Text)
				}
				b = f != 0
			}
			out.Bools = []bool{b}
			return out, nil
		default:
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return Value{}, fmt.Errorf("%w: text %q is not a number", ErrType, v.Text)
			}
			cv, err := Float64Value(f).Convert(to)
			cv.Time, cv.Quality = v.Time, v.Quality
			return cv, err
		}
	}
	switch to {
	case Bool:
		out.Bools = make([]bool, n)
		for i := range out.Bools {
			out.Bools[i] = v.Float64At(i) != 0
		}
	case Int32:
		out.Int32s = make([]int32, n)
		for i := range out.Int32s {
			out.Int32s[i] = truncInt32(v.Float64At(i))
		}
	case Float32:
		out.Float32s = make([]float32, n)
		for i := range out.Float32s {
			out.Float32s[i] = float32(v.Float64At(i))
		}
	case Float64:
		out.Float64s = make([]float64, n)
		for i := range out.Float64s {
			out.Float64s[i] = v.Float64At(i)
		}
	}
	return out, nil
}

// truncInt32 truncates toward zero and saturates, so that 12.5 reads as 12
// and a huge float does not wrap around into a negative count.
func truncInt32(f float64) int32 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt32:
		return math.MaxInt32
	case f <= math.MinInt32:
		return math.MinInt32
	}
	return int32(f)
}

// Equal reports whether two values hold the same elements (timestamps are
// ignored).
func (v Value) Equal(w Value) bool { return !v.differs(w, 0) }

// differs reports whether w differs from v by more than tolerance in any
// element (absolute tolerance; for non-numeric values any difference).
func (v Value) differs(w Value, tolerance float64) bool {
	if v.Quality != w.Quality {
		return true
	}
	if v.Elem != w.Elem || v.Width != w.Width || v.Len() != w.Len() {
		return true
	}
	switch v.Elem {
	case Text:
		return v.Text != w.Text
	case Bool:
		for i := range v.Bools {
			if v.Bools[i] != w.Bools[i] {
				return true
			}
		}
		return false
	}
	for i, n := 0, v.Len(); i < n; i++ {
		a, b := v.Float64At(i), w.Float64At(i)
		if math.IsNaN(a) != math.IsNaN(b) {
			return true
		}
		if math.Abs(a-b) > tolerance {
			return true
		}
	}
	return false
}

// Clone returns a deep copy (for callers that must keep a value while its
// producer reuses the slices).
func (v Value) Clone() Value {
	c := v
	c.Bools = append([]bool(nil), v.Bools...)
	c.Int32s = append([]int32(nil), v.Int32s...)
	c.Float32s = append([]float32(nil), v.Float32s...)
	c.Float64s = append([]float64(nil), v.Float64s...)
	return c
}

// Slice returns rows [from, to) of a records value (or elements of a plain
// array), sharing the backing array.
func (v Value) Slice(from, to int) Value {
	w := v.Width
	if w == 0 {
		w = 1
	}
	s := v
	switch v.Elem {
	case Bool:
		s.Bools = v.Bools[from*w : to*w]
	case Int32:
		s.Int32s = v.Int32s[from*w : to*w]
	case Float32:
		s.Float32s = v.Float32s[from*w : to*w]
	case Float64:
		s.Float64s = v.Float64s[from*w : to*w]
	case Text:
		s.Text = v.Text[from:to]
	}
	return s
}
