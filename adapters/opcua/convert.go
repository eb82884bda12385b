package opcua

import (
	"fmt"
	"math"
	"strings"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"tioga/properties"
)

// dataTypeOf maps a property's element type to the OPC UA built-in DataType
// node. The property model was chosen so that this mapping is one-to-one.
func dataTypeOf(e properties.Elem) uint32 {
	switch e {
	case properties.Bool:
		return id.Boolean
	case properties.Int32:
		return id.Int32
	case properties.Float32:
		return id.Float
	case properties.Float64:
		return id.Double
	case properties.Text:
		return id.String
	}
	return id.BaseDataType
}

// valueRankOf is OPC UA's ValueRank: -1 scalar, 1 one-dimensional, 2 for
// records (rows x columns).
func valueRankOf(s properties.Spec) int32 {
	switch s.Shape {
	case properties.Array:
		return 1
	case properties.Records:
		return 2
	}
	return -1
}

// arrayDimensionsOf is the ArrayDimensions attribute: the maximum length of
// each dimension (OPC UA Part 3, 5.6.2), nil for scalars.
func arrayDimensionsOf(s properties.Spec) []uint32 {
	switch s.Shape {
	case properties.Array:
		return []uint32{uint32(s.MaxLen)}
	case properties.Records:
		return []uint32{uint32(s.MaxLen), uint32(s.Width)}
	}
	return nil
}

// variantOf converts a property value into an OPC UA Variant. Records become
// two-dimensional arrays (rows x Width), except when there are no rows: the
// binary encoding cannot carry a zero dimension that gopcua's decoder
// accepts, so an empty records value travels as an empty one-dimensional
// array. The element slices of v are shared, not copied (a Value's slices
// are read-only by contract).
func variantOf(spec properties.Spec, v properties.Value) (*ua.Variant, error) {
	if v.Elem != spec.Elem {
		cv, err := v.Convert(spec.Elem)
		if err != nil {
			return nil, err
		}
		v = cv
	}
	if spec.Shape == properties.Scalar {
		switch spec.Elem {
		case properties.Text:
			return ua.NewVariant(v.Text)
		case properties.Bool:
			return ua.NewVariant(len(v.Bools) > 0 && v.Bools[0])
		case properties.Int32:
			var x int32
			if len(v.Int32s) > 0 {
				x = v.Int32s[0]
			}
			return ua.NewVariant(x)
		case properties.Float32:
			var x float32
			if len(v.Float32s) > 0 {
				x = v.Float32s[0]
			}
			return ua.NewVariant(x)
		case properties.Float64:
			var x float64
			if len(v.Float64s) > 0 {
				x = v.Float64s[0]
			}
			return ua.NewVariant(x)
		}
		return nil, fmt.Errorf("unsupported element type %v", spec.Elem)
	}
	width := 0
	if spec.Shape == properties.Records {
		width = spec.Width
		if v.Width > 0 {
			width = v.Width // a column range narrows the records
		}
	}
	switch spec.Elem {
	case properties.Bool:
		return ua.NewVariant(rows(nonNil(v.Bools), width))
	case properties.Int32:
		return ua.NewVariant(rows(nonNil(v.Int32s), width))
	case properties.Float32:
		return ua.NewVariant(rows(nonNil(v.Float32s), width))
	case properties.Float64:
		return ua.NewVariant(rows(nonNil(v.Float64s), width))
	}
	return nil, fmt.Errorf("unsupported array element type %v", spec.Elem)
}

// nonNil turns a nil slice into an empty one: a nil array encodes as "null"
// (length -1), which clients read as "no value" rather than "no elements".
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// rows returns flat as a 1-D slice (width 0) or as a slice of row slices
// sharing flat's backing array. The result is an any so that the Variant
// sees []T or [][]T.
func rows[T any](flat []T, width int) any {
	if width <= 0 || len(flat) == 0 {
		return flat
	}
	n := len(flat) / width
	out := make([][]T, n)
	for i := range out {
		out[i] = flat[i*width : (i+1)*width : (i+1)*width]
	}
	return out
}

// variantBytes estimates the encoded size of a Variant holding v, to refuse
// values larger than a message can carry before encoding them.
func valueBytes(spec properties.Spec, v properties.Value) int {
	switch spec.Elem {
	case properties.Text:
		return len(v.Text) + 8
	case properties.Bool:
		return v.Len() + 16
	case properties.Int32, properties.Float32:
		return 4*v.Len() + 16
	case properties.Float64:
		return 8*v.Len() + 16
	}
	return 16
}

// errTypeMismatch and errOutOfRange classify why a client's Variant cannot
// become a property value; statusOf maps them to status codes.
var (
	errTypeMismatch = fmt.Errorf("%w: OPC UA value does not match the variable's DataType/ValueRank", properties.ErrType)
	errIntRange     = fmt.Errorf("%w: integer does not fit Int32", properties.ErrOutOfRange)
)

// valueOf converts a client's Variant into a property value of spec's type.
//
// OPC UA requires the written value to match the variable's DataType. This
// server is strict about the kind of value (a String never becomes a
// number, a Boolean is only a Boolean) and about the shape (scalar,
// one-dimensional, rows x Width), but accepts any numeric built-in type
// where a number is expected, as long as it fits: Int32 variables take any
// integer type in the Int32 range, Float and Double variables take any
// number. Clients differ in what they send for a literal (Python's asyncua
// sends Int64 for 3, many scripting clients send Double for 0.5), and
// refusing those would only make the server hard to script.
func valueOf(spec properties.Spec, shape properties.Shape, width int, va *ua.Variant) (properties.Value, error) {
	if va == nil || va.Type() == ua.TypeIDNull {
		return properties.Value{}, errTypeMismatch
	}
	raw := va.Value()
	dims := va.ArrayDimensions()
	switch shape {
	case properties.Scalar:
		if va.ArrayLength() != 0 || len(dims) > 0 || isSlice(raw) {
			return properties.Value{}, errTypeMismatch
		}
		return scalarValue(spec.Elem, raw)
	case properties.Array:
		if len(dims) > 1 {
			return properties.Value{}, errTypeMismatch
		}
		return arrayValue(spec.Elem, raw, 0)
	case properties.Records:
		switch {
		case len(dims) == 2:
			if int(dims[1]) != width {
				return properties.Value{}, errTypeMismatch
			}
			return arrayValue(spec.Elem, flatten(raw), width)
		case len(dims) == 0 && va.ArrayLength() == 0 && isSlice(raw):
			// An empty one-dimensional array is how "no rows" travels.
			return arrayValue(spec.Elem, raw, width)
		}
		return properties.Value{}, errTypeMismatch
	}
	return properties.Value{}, errTypeMismatch
}

func isSlice(x any) bool {
	switch x.(type) {
	case []bool, []int8, []uint8, ua.ByteArray, []int16, []uint16, []int32, []uint32, []int64, []uint64,
		[]float32, []float64, []string, [][]bool, [][]int8, [][]uint8, [][]int16, [][]uint16, [][]int32,
		[][]uint32, [][]int64, [][]uint64, [][]float32, [][]float64, [][]string:
		return true
	}
	return false
}

// flatten joins the rows of a decoded two-dimensional array.
func flatten(x any) any {
	switch r := x.(type) {
	case [][]bool:
		return joinRows(r)
	case [][]int8:
		return joinRows(r)
	case [][]uint8:
		return joinRows(r)
	case [][]int16:
		return joinRows(r)
	case [][]uint16:
		return joinRows(r)
	case [][]int32:
		return joinRows(r)
	case [][]uint32:
		return joinRows(r)
	case [][]int64:
		return joinRows(r)
	case [][]uint64:
		return joinRows(r)
	case [][]float32:
		return joinRows(r)
	case [][]float64:
		return joinRows(r)
	}
	return x
}

func joinRows[T any](r [][]T) []T {
	n := 0
	for _, row := range r {
		n += len(row)
	}
	out := make([]T, 0, n)
	for _, row := range r {
		out = append(out, row...)
	}
	return out
}

// number reports x as a float64 and whether it is an integer type.
func number(x any) (f float64, isInt bool, ok bool) {
	switch n := x.(type) {
	case int8:
		return float64(n), true, true
	case uint8:
		return float64(n), true, true
	case int16:
		return float64(n), true, true
	case uint16:
		return float64(n), true, true
	case int32:
		return float64(n), true, true
	case uint32:
		return float64(n), true, true
	case int64:
		return float64(n), true, true
	case uint64:
		return float64(n), true, true
	case float32:
		return float64(n), false, true
	case float64:
		return n, false, true
	}
	return 0, false, false
}

func scalarValue(e properties.Elem, x any) (properties.Value, error) {
	switch e {
	case properties.Bool:
		b, ok := x.(bool)
		if !ok {
			return properties.Value{}, errTypeMismatch
		}
		return properties.BoolValue(b), nil
	case properties.Text:
		s, ok := x.(string)
		if !ok {
			return properties.Value{}, errTypeMismatch
		}
		return properties.TextValue(s), nil
	case properties.Int32:
		n, err := int32Of(x)
		if err != nil {
			return properties.Value{}, err
		}
		return properties.Int32Value(n), nil
	case properties.Float32:
		f, _, ok := number(x)
		if !ok {
			return properties.Value{}, errTypeMismatch
		}
		return properties.Float32Value(float32(f)), nil
	case properties.Float64:
		f, _, ok := number(x)
		if !ok {
			return properties.Value{}, errTypeMismatch
		}
		return properties.Float64Value(f), nil
	}
	return properties.Value{}, errTypeMismatch
}

func int32Of(x any) (int32, error) {
	switch n := x.(type) {
	case int64:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return 0, errIntRange
		}
		return int32(n), nil
	case uint64:
		if n > math.MaxInt32 {
			return 0, errIntRange
		}
		return int32(n), nil
	case uint32:
		if n > math.MaxInt32 {
			return 0, errIntRange
		}
		return int32(n), nil
	}
	f, isInt, ok := number(x)
	if !ok || !isInt {
		return 0, errTypeMismatch
	}
	return int32(f), nil
}

// arrayValue converts a decoded one-dimensional array (after flattening)
// into a property value; width > 0 marks records.
func arrayValue(e properties.Elem, x any, width int) (properties.Value, error) {
	n := sliceLen(x)
	if n < 0 {
		return properties.Value{}, errTypeMismatch
	}
	v := properties.Value{Elem: e, Width: width}
	switch e {
	case properties.Bool:
		b, ok := x.([]bool)
		if !ok {
			return properties.Value{}, errTypeMismatch
		}
		v.Bools = b
		return v, nil
	case properties.Text:
		return properties.Value{}, errTypeMismatch
	case properties.Int32:
		if d, ok := x.([]int32); ok {
			v.Int32s = d
			return v, nil
		}
		v.Int32s = make([]int32, n)
		for i := range v.Int32s {
			k, err := int32Of(sliceAt(x, i))
			if err != nil {
				return properties.Value{}, err
			}
			v.Int32s[i] = k
		}
		return v, nil
	case properties.Float32:
		if d, ok := x.([]float32); ok {
			v.Float32s = d
			return v, nil
		}
		v.Float32s = make([]float32, n)
		for i := range v.Float32s {
			f, _, ok := number(sliceAt(x, i))
			if !ok {
				return properties.Value{}, errTypeMismatch
			}
			v.Float32s[i] = float32(f)
		}
		return v, nil
	case properties.Float64:
		if d, ok := x.([]float64); ok {
			v.Float64s = d
			return v, nil
		}
		v.Float64s = make([]float64, n)
		for i := range v.Float64s {
			f, _, ok := number(sliceAt(x, i))
			if !ok {
				return properties.Value{}, errTypeMismatch
			}
			v.Float64s[i] = f
		}
		return v, nil
	}
	return properties.Value{}, errTypeMismatch
}

// sliceLen is the length of a numeric or bool slice, -1 for anything else.
func sliceLen(x any) int {
	switch s := x.(type) {
	case []bool:
		return len(s)
	case []int8:
		return len(s)
	case ua.ByteArray:
		return len(s)
	case []uint8:
		return len(s)
	case []int16:
		return len(s)
	case []uint16:
		return len(s)
	case []int32:
		return len(s)
	case []uint32:
		return len(s)
	case []int64:
		return len(s)
	case []uint64:
		return len(s)
	case []float32:
		return len(s)
	case []float64:
		return len(s)
	}
	return -1
}

func sliceAt(x any, i int) any {
	switch s := x.(type) {
	case []bool:
		return s[i]
	case []int8:
		return s[i]
	case ua.ByteArray:
		return s[i]
	case []uint8:
		return s[i]
	case []int16:
		return s[i]
	case []uint16:
		return s[i]
	case []int32:
		return s[i]
	case []uint32:
		return s[i]
	case []int64:
		return s[i]
	case []uint64:
		return s[i]
	case []float32:
		return s[i]
	case []float64:
		return s[i]
	}
	return nil
}

// euInformation describes a unit string as OPC UA EngineeringUnits: the
// UNECE code where one is known (so that clients can convert units), the
// unit string itself as display name either way.
func euInformation(units string) *ua.EUInformation {
	code, ok := uneceCodes[units]
	if !ok {
		code, ok = uneceCodes[strings.ToLower(units)]
	}
	unitID := int32(-1)
	if ok {
		unitID = 0
		for i := 0; i < len(code); i++ {
			unitID = unitID<<8 | int32(code[i])
		}
	}
	return &ua.EUInformation{
		NamespaceURI: "http://www.opcfoundation.org/UA/units/un/cefact",
		UnitID:       unitID,
		DisplayName:  &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: units},
		Description:  &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: units},
	}
}

// uneceCodes are the UNECE Recommendation 20 common codes of the units the
// device tables use (OPC UA Part 8, 5.6.3).
var uneceCodes = map[string]string{
	"Å": "A11", "angstrom": "A11", "nm": "C45", "µm": "4H", "um": "4H", "mm": "MMT", "m": "MTR",
	"s": "SEC", "ms": "C26", "µs": "B98", "us": "B98", "ns": "C47", "min": "MIN", "h": "HUR",
	"hz": "HTZ", "khz": "KHZ", "/s": "HTZ", "1/s": "HTZ",
	"°c": "CEL", "degc": "CEL", "k": "KEL", "%": "P1",
	"ev": "A53", "kev": "B29", "deg": "DD", "°": "DD", "rad": "C81", "mrad": "C25",
	"b": "AD", "byte": "AD", "bytes": "AD", "kb": "2P", "mb": "4L", "gb": "E34",
	"b/s": "P93", "mb/s": "E20", "v": "VLT", "a": "AMP",
}
