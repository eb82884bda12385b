package wire

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Element codecs of the plain number formats. Conversions follow §8.1:
// floats to integers truncate toward zero, and every integer conversion
// saturates at the target's range (a huge count does not wrap into a
// negative one). BYTE is written as its low byte after saturating to
// [-128, 255], so a Java peer (signed bytes) and a C peer (unsigned) both
// read back what they wrote; it is read as signed (Java's view).
// BOOLEAN uses 4 bytes per element, as tine.jar's conversion code does
// (unverified on the wire).

// AppendFloat appends x as one element of the numeric format f. It panics
// only on a non-numeric format, which is a programming error.
func AppendFloat(dst []byte, f Format, x float64) []byte {
	switch f {
	case Double:
		return le.AppendUint64(dst, math.Float64bits(x))
	case Float:
		return le.AppendUint32(dst, math.Float32bits(float32(x)))
	}
	return AppendInt(dst, f, truncInt64(x))
}

// AppendInt appends the integer x as one element of the numeric format f.
func AppendInt(dst []byte, f Format, x int64) []byte {
	switch f {
	case Double:
		return le.AppendUint64(dst, math.Float64bits(float64(x)))
	case Float:
		return le.AppendUint32(dst, math.Float32bits(float32(x)))
	case Int32:
		return le.AppendUint32(dst, uint32(int32(clamp(x, math.MinInt32, math.MaxInt32))))
	case Int16:
		return le.AppendUint16(dst, uint16(int16(clamp(x, math.MinInt16, math.MaxInt16))))
	case Byte:
		return append(dst, byte(clamp(x, -128, 255)))
	case Int64:
		return le.AppendUint64(dst, uint64(x))
	case Boolean:
		if x != 0 {
			x = 1
		}
		return le.AppendUint32(dst, uint32(x))
	}
	panic("wire.AppendInt: non-numeric format " + f.String())
}

func clamp(x, lo, hi int64) int64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}

// truncInt64 truncates toward zero and saturates; NaN is 0.
func truncInt64(x float64) int64 {
	switch {
	case math.IsNaN(x):
		return 0
	case x >= math.MaxInt64:
		return math.MaxInt64
	case x <= math.MinInt64:
		return math.MinInt64
	}
	return int64(x)
}

// FloatAt returns element i of numeric data b in format f. The caller
// guarantees (i+1)*f.Size() <= len(b).
func FloatAt(b []byte, f Format, i int) float64 {
	switch f {
	case Double:
		return math.Float64frombits(le.Uint64(b[8*i:]))
	case Float:
		return float64(math.Float32frombits(le.Uint32(b[4*i:])))
	}
	return float64(IntAt(b, f, i))
}

// IntAt returns element i of numeric data b in format f as an integer
// (floats truncated toward zero, saturating).
func IntAt(b []byte, f Format, i int) int64 {
	switch f {
	case Double:
		return truncInt64(math.Float64frombits(le.Uint64(b[8*i:])))
	case Float:
		return truncInt64(float64(math.Float32frombits(le.Uint32(b[4*i:]))))
	case Int32:
		return int64(int32(le.Uint32(b[4*i:])))
	case Int16:
		return int64(int16(le.Uint16(b[2*i:])))
	case Byte:
		return int64(int8(b[i]))
	case Int64:
		return int64(le.Uint64(b[8*i:]))
	case Boolean:
		if le.Uint32(b[4*i:]) != 0 {
			return 1
		}
		return 0
	}
	return 0
}

// Data is a payload in one TINE format: what a reply delivers or a request
// carries as input.
type Data struct {
	Format Format
	Bytes  []byte
}

// Len is the number of whole elements (bytes for TEXT, STRUCT and formats
// of unknown size).
func (d Data) Len() int {
	if s := d.Format.Size(); s > 1 {
		return len(d.Bytes) / s
	}
	return len(d.Bytes)
}

// Floats decodes numeric data.
func (d Data) Floats() ([]float64, error) {
	if !d.Format.IsNumeric() {
		if d.Format == Text {
			f, err := strconv.ParseFloat(strings.TrimSpace(d.Text()), 64)
			if err != nil {
				return nil, fmt.Errorf("text %q is not a number", d.Text())
			}
			return []float64{f}, nil
		}
		return nil, fmt.Errorf("%s data is not numeric", d.Format)
	}
	out := make([]float64, d.Len())
	for i := range out {
		out[i] = FloatAt(d.Bytes, d.Format, i)
	}
	return out, nil
}

// Ints decodes numeric data as integers.
func (d Data) Ints() ([]int64, error) {
	if !d.Format.IsNumeric() {
		return nil, fmt.Errorf("%s data is not numeric", d.Format)
	}
	out := make([]int64, d.Len())
	for i := range out {
		out[i] = IntAt(d.Bytes, d.Format, i)
	}
	return out, nil
}

// Text returns TEXT data up to its first NUL, or the first name of NAMEn
// data.
func (d Data) Text() string {
	if d.Format.IsName() {
		if n := d.Names(); len(n) > 0 {
			return n[0]
		}
		return ""
	}
	b := d.Bytes
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Names returns the names of NAMEn data.
func (d Data) Names() []string { return Names(d.Bytes, d.Format.Size()) }

// String formats the data for people: numbers separated by spaces, text as
// is, names comma-separated.
func (d Data) String() string {
	switch {
	case d.Format == Text:
		return d.Text()
	case d.Format.IsName():
		return strings.Join(d.Names(), ",")
	case d.Format.IsNumeric():
		var sb strings.Builder
		for i, n := 0, d.Len(); i < n; i++ {
			if i > 0 {
				sb.WriteByte(' ')
			}
			switch d.Format {
			case Double:
				sb.WriteString(strconv.FormatFloat(FloatAt(d.Bytes, d.Format, i), 'g', -1, 64))
			case Float:
				sb.WriteString(strconv.FormatFloat(FloatAt(d.Bytes, d.Format, i), 'g', -1, 32))
			default:
				sb.WriteString(strconv.FormatInt(IntAt(d.Bytes, d.Format, i), 10))
			}
		}
		return sb.String()
	}
	return fmt.Sprintf("%d bytes of %s", len(d.Bytes), d.Format)
}

// NumberData encodes numbers in the numeric format f.
func NumberData(f Format, xs ...float64) (Data, error) {
	if !f.IsNumeric() {
		return Data{}, fmt.Errorf("%s is not a number format", f)
	}
	b := make([]byte, 0, len(xs)*f.Size())
	for _, x := range xs {
		b = AppendFloat(b, f, x)
	}
	return Data{Format: f, Bytes: b}, nil
}

// TextData is s as TEXT.
func TextData(s string) Data { return Data{Format: Text, Bytes: []byte(s)} }
