package tine

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"

	"tioga/adapters/tine/wire"
	"tioga/properties"
)

// Element type mapping between the property registry and TINE:
//
//	Int32   -> CF_INT32 (3)
//	Float32 -> CF_FLOAT (5)
//	Float64 -> CF_DOUBLE (0)
//	Text    -> CF_TEXT (4)
//	Bool    -> CF_INT32 (0 or 1)
//
// Bools are published as INT32 because tine.jar clients and the C library's
// scripting bindings commonly read flags as INT32 or INT16, and CF_BOOLEAN's
// element size was never seen on the wire. A bool may still be read and
// written in any number format, CF_BOOLEAN included (4 bytes per element,
// as tine.jar's conversion code has it).
func nativeFormat(e properties.Elem) wire.Format {
	switch e {
	case properties.Float32:
		return wire.Float
	case properties.Float64:
		return wire.Double
	case properties.Text:
		return wire.Text
	}
	return wire.Int32
}

var errFormat = errors.New("illegal format")

// payload is reply data, encoded block by block straight into the outgoing
// datagram: a read of a 16 MB array never builds a 16 MB buffer.
type payload struct {
	format  wire.Format
	size    int // bytes in total
	raw     []byte
	text    string
	val     properties.Value // numeric value encoded lazily
	numeric bool
	// quality of the value the payload carries: not good, the reply
	// carries a completion code and the reason beside the data.
	quality properties.Quality
}

// appendRange appends the payload bytes [from, to); from and to are
// multiples of the element size (block boundaries are).
func (p *payload) appendRange(dst []byte, from, to int) []byte {
	switch {
	case p.raw != nil:
		return append(dst, p.raw[from:to]...)
	case !p.numeric:
		return append(dst, p.text[from:to]...)
	}
	es := p.format.Size()
	return appendElems(dst, p.val, p.format, from/es, to/es)
}

// appendElems converts elements [i, j) of the numeric value v to format f.
// The common same-type cases run as plain loops.
func appendElems(dst []byte, v properties.Value, f wire.Format, i, j int) []byte {
	switch v.Elem {
	case properties.Float32:
		xs := v.Float32s[i:j]
		if f == wire.Float {
			for _, x := range xs {
				dst = le32(dst, math.Float32bits(x))
			}
			return dst
		}
		for _, x := range xs {
			dst = wire.AppendFloat(dst, f, float64(x))
		}
	case properties.Float64:
		xs := v.Float64s[i:j]
		if f == wire.Double {
			for _, x := range xs {
				dst = le64(dst, math.Float64bits(x))
			}
			return dst
		}
		for _, x := range xs {
			dst = wire.AppendFloat(dst, f, x)
		}
	case properties.Int32:
		xs := v.Int32s[i:j]
		if f == wire.Int32 {
			for _, x := range xs {
				dst = le32(dst, uint32(x))
			}
			return dst
		}
		for _, x := range xs {
			dst = wire.AppendInt(dst, f, int64(x))
		}
	case properties.Bool:
		for _, x := range v.Bools[i:j] {
			var n int64
			if x {
				n = 1
			}
			dst = wire.AppendInt(dst, f, n)
		}
	}
	return dst
}

func le32(dst []byte, x uint32) []byte {
	return append(dst, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
}

func le64(dst []byte, x uint64) []byte {
	return append(dst, byte(x), byte(x>>8), byte(x>>16), byte(x>>24), byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56))
}

// valuePayload converts v to the contract's output format, keeping at most
// sizeOut elements (§8.1): numbers convert element-wise, text is cut to
// sizeOut bytes and sent without padding, a text read as NAMEn is one
// name. Only what exists is sent: a shorter value is not padded.
func valuePayload(v properties.Value, f wire.Format, sizeOut int) (payload, error) {
	if sizeOut < 0 {
		sizeOut = 0
	}
	switch {
	case f == wire.Null:
		return payload{format: f}, nil
	case f.IsNumeric():
		if v.Elem == properties.Text {
			cv, err := v.Convert(properties.Float64)
			if err != nil {
				return payload{}, fmt.Errorf("%w: %v", errFormat, err)
			}
			v = cv
		}
		n := min(v.Len(), sizeOut)
		return payload{format: f, size: n * f.Size(), val: v, numeric: true}, nil
	case f == wire.Text:
		s := v.Text
		if v.Elem != properties.Text {
			tv, err := v.Convert(properties.Text)
			if err != nil {
				return payload{}, fmt.Errorf("%w: %v", errFormat, err)
			}
			s = tv.Text
		}
		s = cutText(s, sizeOut)
		return payload{format: f, size: len(s), text: s}, nil
	case f.IsName():
		if v.Elem != properties.Text {
			return payload{}, fmt.Errorf("%w: %s value as %s", errFormat, v.Elem, f)
		}
		if sizeOut < 1 {
			return payload{format: f}, nil
		}
		return rawPayload(f, wire.AppendName(nil, v.Text, f.Size())), nil
	}
	return payload{}, fmt.Errorf("%w: %s value as %s", errFormat, v.Elem, f)
}

func rawPayload(f wire.Format, b []byte) payload {
	if b == nil {
		b = []byte{}
	}
	return payload{format: f, size: len(b), raw: b}
}

// inputValue decodes a request's input data (formatIn, sizeIn) into a
// value for Property.Write or Query, which converts it to the property's
// type. Integer formats become Int32 (INT64 beyond the int32 range becomes
// Float64, so that the property's own range check reports it), names and
// text become Text.
func inputValue(f wire.Format, b []byte, sizeIn int) (properties.Value, wire.CompCode, error) {
	switch {
	case f == wire.Null:
		return properties.Value{}, wire.OK, nil
	case f == wire.Text:
		// Lenient: clients differ in whether sizeIn counts the characters
		// or the buffer; the bytes present, up to sizeIn, are the text.
		if sizeIn >= 0 && len(b) > sizeIn {
			b = b[:sizeIn]
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return properties.TextValue(string(b)), wire.OK, nil
	case f.IsName():
		if len(b) != sizeIn*f.Size() {
			return properties.Value{}, wire.DataSizeMismatch, fmt.Errorf("%d names announced, %d bytes sent", sizeIn, len(b))
		}
		names := wire.Names(b, f.Size())
		if len(names) != 1 {
			return properties.Value{}, wire.InvalidParameter, fmt.Errorf("%d names given, want one", len(names))
		}
		return properties.TextValue(names[0]), wire.OK, nil
	case f.IsNumeric():
		es := f.Size()
		if sizeIn < 0 || len(b) != sizeIn*es {
			return properties.Value{}, wire.DataSizeMismatch, fmt.Errorf("%d %s elements announced, %d bytes sent", sizeIn, f, len(b))
		}
		n := len(b) / es
		switch f {
		case wire.Double:
			xs := make([]float64, n)
			for i := range xs {
				xs[i] = wire.FloatAt(b, f, i)
			}
			return properties.Float64s(xs), wire.OK, nil
		case wire.Float:
			xs := make([]float32, n)
			for i := range xs {
				xs[i] = float32(wire.FloatAt(b, f, i))
			}
			return properties.Float32s(xs), wire.OK, nil
		case wire.Boolean:
			xs := make([]bool, n)
			for i := range xs {
				xs[i] = wire.IntAt(b, f, i) != 0
			}
			return properties.Value{Elem: properties.Bool, Bools: xs}, wire.OK, nil
		}
		xs := make([]int32, n)
		for i := range xs {
			x := wire.IntAt(b, f, i)
			if x < math.MinInt32 || x > math.MaxInt32 {
				fs := make([]float64, n)
				for k := range fs {
					fs[k] = float64(wire.IntAt(b, f, k))
				}
				return properties.Float64s(fs), wire.OK, nil
			}
			xs[i] = int32(x)
		}
		return properties.Int32s(xs), wire.OK, nil
	}
	return properties.Value{}, wire.IllegalFormat, fmt.Errorf("input format %s not supported", f)
}

// scalarPayload is a one-element number in format f (stock properties).
func scalarPayload(x float64, f wire.Format, sizeOut int) (payload, error) {
	switch {
	case f.IsNumeric():
		if sizeOut < 1 {
			return payload{format: f}, nil
		}
		return rawPayload(f, wire.AppendFloat(nil, f, x)), nil
	case f == wire.Text:
		return valuePayload(properties.Float64Value(x), f, sizeOut)
	}
	return payload{}, fmt.Errorf("%w: number as %s", errFormat, f)
}

// namesPayload is a list of names in a NAMEn format (or TEXT, one name per
// line), at most sizeOut of them.
func namesPayload(names []string, f wire.Format, sizeOut int) (payload, error) {
	n := min(len(names), max(sizeOut, 0))
	switch {
	case f.IsName():
		b := make([]byte, 0, n*f.Size())
		for _, s := range names[:n] {
			b = wire.AppendName(b, s, f.Size())
		}
		return rawPayload(f, b), nil
	case f == wire.Text:
		s := strings.Join(names, "\n")
		if len(s) > sizeOut {
			s = s[:max(sizeOut, 0)]
		}
		return payload{format: f, size: len(s), text: s}, nil
	}
	return payload{}, fmt.Errorf("%w: name list as %s", errFormat, f)
}
