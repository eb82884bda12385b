package web

import (
	"math"
	"strconv"
	"unicode/utf8"

	"tioga/properties"
)

// Values larger than these are summarised ({"len": n}) in the state and in
// updates: the devices table shows a 1,000,000-record array as its size,
// and the page takes the per-frame results from dozor-pass batches instead.
const (
	maxInlineElems = 256
	maxInlineText  = 4096
)

// appendValue writes v as JSON: a number, bool or string for scalars, an
// array for arrays, an array of arrays for records, and {"len": n,
// "rows": r} for values too large to inline. Floats are written with the
// shortest text that reads back as the same float32 or float64; NaN and
// infinities (which JSON cannot carry) as null.
func appendValue(b []byte, v properties.Value, spec properties.Spec) []byte {
	n := v.Len()
	if v.Elem == properties.Text {
		s := v.Text
		if len(s) > maxInlineText {
			cut := maxInlineText
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			s = s[:cut] + "…"
		}
		return appendString(b, s)
	}
	if spec.Shape == properties.Scalar && n == 1 && v.Width == 0 {
		return appendElem(b, v, 0)
	}
	if n > maxInlineElems {
		b = append(b, `{"len":`...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, `,"rows":`...)
		b = strconv.AppendInt(b, int64(v.Rows()), 10)
		return append(b, '}')
	}
	w := v.Width
	b = append(b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		if w > 0 && i%w == 0 {
			b = append(b, '[')
		}
		b = appendElem(b, v, i)
		if w > 0 && i%w == w-1 {
			b = append(b, ']')
		}
	}
	return append(b, ']')
}

func appendElem(b []byte, v properties.Value, i int) []byte {
	switch v.Elem {
	case properties.Bool:
		return strconv.AppendBool(b, v.Bools[i])
	case properties.Int32:
		return strconv.AppendInt(b, int64(v.Int32s[i]), 10)
	case properties.Float32:
		return appendFloat(b, float64(v.Float32s[i]), 32)
	case properties.Float64:
		return appendFloat(b, v.Float64s[i], 64)
	}
	return append(b, "null"...)
}

func appendFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendFloat32s writes a flat array of float32 (dozor-pass records).
func appendFloat32s(b []byte, fs []float32) []byte {
	b = append(b, '[')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, float64(f), 32)
	}
	return append(b, ']')
}

// appendString writes s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendQuality writes the quality of a value that is not good
// (,"quality":"bad","cause":"no communication","reason":"..."); nothing
// for a good one, which the page shows as good.
func appendQuality(b []byte, q properties.Quality) []byte {
	if q.IsGood() {
		return b
	}
	b = append(b, `,"quality":`...)
	b = appendString(b, q.Level.String())
	if q.Cause != properties.CauseOther {
		b = append(b, `,"cause":`...)
		b = appendString(b, q.Cause.String())
	}
	if q.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, q.Reason)
	}
	return b
}

// readValue is the value a client reads (properties.Property.Read: never
// part of a batch); the zero Value for a property clients cannot read.
func readValue(p *properties.Property) properties.Value {
	v, _ := p.Read()
	return v
}
