// Tests of the decoding limits patched into this copy (see PATCHES.md).

package ua

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"testing"
)

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// le builds little-endian wire bytes from bytes and int32s.
func le(parts ...interface{}) []byte {
	var b []byte
	for _, p := range parts {
		switch x := p.(type) {
		case byte:
			b = append(b, x)
		case int32:
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
		case []byte:
			b = append(b, x...)
		default:
			panic(x)
		}
	}
	return b
}

const (
	arrayOf  = VariantArrayValues
	arrayDim = VariantArrayValues | VariantArrayDimensions
)

// TestVariantDecodeRefusesHostileArrays: the inputs that panicked or
// allocated gigabytes in v0.9.1 are refused with an error, allocating
// (almost) nothing.
func TestVariantDecodeRefusesHostileArrays(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		// Found by Tioga's FuzzWriteValue (adapters/opcua/testdata/fuzz):
		// Int32 array of length -2043203536: MakeSlice panicked.
		{"length below -1", []byte("\x86000\x86"), StatusBadEncodingLimitsExceeded},
		// Float array of length 0 with 805306431 and 1073741887 dimensions:
		// make([]int32, n) took 3 and 4 GiB.
		{"huge dimension count", []byte("\xca\x00\x00\x00\x00?\x00\x000\x00\x00\x00@@\x00\x00\x80y\x02\x00\x00"), StatusBadEncodingLimitsExceeded},
		{"huge dimension count 2", []byte("\xca\x00\x00\x00\x00?\x00\x00@\x00\x00\x00@@\x00\x00\x80l\x02\x00\x00"), StatusBadEncodingLimitsExceeded},
		{"length -2", le(byte(arrayOf|byte(TypeIDByte)), int32(-2)), StatusBadEncodingLimitsExceeded},
		{"length min int32", le(byte(arrayOf|byte(TypeIDInt32)), int32(-1<<31)), StatusBadEncodingLimitsExceeded},
		{"length above MaxVariantArrayLength", le(byte(arrayOf|byte(TypeIDByte)), int32(0x10000)), StatusBadEncodingLimitsExceeded},
		// 0xffff is allowed, but not when the message holds fewer bytes.
		{"length beyond the bytes", le(byte(arrayOf|byte(TypeIDDouble)), int32(0xffff), int32(0)), StatusBadDecodingError},
		{"negative dimension count", le(byte(arrayDim|byte(TypeIDByte)), int32(1), byte(7), int32(-5)), StatusBadEncodingLimitsExceeded},
		{"33 dimensions", le(byte(arrayDim|byte(TypeIDByte)), int32(1), byte(7), int32(33), bytes.Repeat(le(int32(1)), 33)), StatusBadEncodingLimitsExceeded},
		{"dimensions beyond the bytes", le(byte(arrayDim|byte(TypeIDByte)), int32(1), byte(7), int32(3), int32(1), int32(1)), StatusBadDecodingError},
		{"zero dimension", le(byte(arrayDim|byte(TypeIDByte)), int32(0), int32(2), int32(0), int32(4)), StatusBadEncodingLimitsExceeded},
		// Dimensions whose int32 product wraps around to the array length
		// passed the check, and split() then built a 65536 x 65536 shape
		// (out of memory).
		{"product wraps to 0", le(byte(arrayDim|byte(TypeIDInt32)), int32(0), int32(3), int32(65536), int32(65536), int32(1)), errUnbalancedSlice},
		{"product wraps to -1", le(byte(arrayDim|byte(TypeIDInt32)), int32(-1), int32(2), int32(65537), int32(65535)), errUnbalancedSlice},
		// 83 x 51746594 = 2^32 + 6: split() looped forever with a step of 0.
		{"product wraps to 6", le(byte(arrayDim|byte(TypeIDByte)), int32(6), []byte{1, 2, 3, 4, 5, 6}, int32(2), int32(83), int32(51746594)), errUnbalancedSlice},
		{"product overflows int64", le(byte(arrayDim|byte(TypeIDByte)), int32(1), byte(1), int32(3), int32(1<<31-1), int32(1<<31-1), int32(1<<31-1)), errUnbalancedSlice},
		{"product too small", le(byte(arrayDim|byte(TypeIDByte)), int32(6), []byte{1, 2, 3, 4, 5, 6}, int32(2), int32(2), int32(2)), errUnbalancedSlice},
		{"null array with dimensions", le(byte(arrayDim|byte(TypeIDByte)), int32(-1), int32(1), int32(1)), errUnbalancedSlice},
		{"truncated length", []byte{arrayOf | byte(TypeIDInt32), 1, 0}, io.ErrUnexpectedEOF},
		{"truncated dimension count", le(byte(arrayDim|byte(TypeIDByte)), int32(1), byte(7), []byte{1}), io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() {
				_, err = new(Variant).Decode(tc.in)
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if n > 64<<10 {
				t.Fatalf("allocated %d bytes for %d input bytes", n, len(tc.in))
			}
		})
	}
}

// TestVariantDecodeArrays: well-formed arrays still decode to the values
// encoded, at the limits too.
func TestVariantDecodeArrays(t *testing.T) {
	big := make([]byte, 0xffff)
	for i := range big {
		big[i] = byte(i)
	}
	for _, v := range []interface{}{
		[]int32{},
		[]int32{1, -2, 3},
		[][]int32{{1, 2, 3}, {4, 5, 6}},
		[][][]float32{{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}},
		[][]string{{"a"}, {"b"}},
		big,
		[]float64(nil),
	} {
		enc, err := MustVariant(v).Encode()
		if err != nil {
			t.Fatal(err)
		}
		got := new(Variant)
		n, err := got.Decode(enc)
		if err != nil || n != len(enc) {
			t.Fatalf("%T: %d of %d bytes, %v", v, n, len(enc), err)
		}
		if !reflect.DeepEqual(got.Value(), v) {
			t.Fatalf("%T: decoded %v", v, got.Value())
		}
	}
	// 32 dimensions of 1 are allowed; the value is a 32-deep [][]...[]byte.
	in := le(byte(arrayDim|byte(TypeIDBoolean)), int32(1), byte(1), int32(32), bytes.Repeat(le(int32(1)), 32))
	got := new(Variant)
	if _, err := got.Decode(in); err != nil {
		t.Fatal(err)
	}
	if d := len(got.ArrayDimensions()); d != 32 {
		t.Fatalf("%d dimensions", d)
	}
	val := reflect.ValueOf(got.Value())
	for i := 0; i < 31; i++ {
		val = val.Index(0)
	}
	if val.Len() != 1 || val.Index(0).Interface() != true {
		t.Fatalf("innermost %v", val.Interface())
	}
}

// nested returns n values each enclosing the next, ending in a null
// Variant. wrap is the encoding of one level before its content.
func nested(n int, wrap []byte) []byte {
	return append(bytes.Repeat(wrap, n), 0)
}

// literalChain is a Variant holding an ExtensionObject (a LiteralOperand)
// whose Value is the next Variant, levels deep.
func literalChain(levels int) []byte {
	inner := []byte{0}
	for i := 0; i < levels; i++ {
		hdr := le(byte(TypeIDExtensionObject), []byte{0x01, 0x00, 0x55, 0x02}, byte(ExtensionObjectBinary), int32(len(inner)))
		inner = append(hdr, inner...)
	}
	return inner
}

// TestDecodeNestingDepth: values nested deeper than MaxDecodeNestingDepth
// are refused; before, a 1.5 MB message of nested Variants (1 byte a
// level) overflowed the goroutine stack, a fatal error.
func TestDecodeNestingDepth(t *testing.T) {
	max := MaxDecodeNestingDepth
	variantIn := func(b []byte) error { _, err := new(Variant).Decode(b); return err }
	diagIn := func(b []byte) error { _, err := new(DiagnosticInfo).Decode(b); return err }
	for _, tc := range []struct {
		name      string
		decode    func([]byte) error
		ok, tooBy []byte
	}{
		// a Variant of Variants: max Variants nest, one more does not
		{"variant", variantIn, nested(max-1, []byte{byte(TypeIDVariant)}), nested(max, []byte{byte(TypeIDVariant)})},
		// Variant -> DataValue -> Variant: two levels a pair; the deepest
		// allowed ends in a DataValue without a value
		{"datavalue", variantIn, append(bytes.Repeat([]byte{byte(TypeIDDataValue), DataValueValue}, max/2-1), byte(TypeIDDataValue), 0), nested(max/2, []byte{byte(TypeIDDataValue), DataValueValue})},
		{"diagnosticinfo", diagIn, nested(max-1, []byte{DiagnosticInfoInnerDiagnosticInfo}), nested(max, []byte{DiagnosticInfoInnerDiagnosticInfo})},
		// Variant -> ExtensionObject -> (reflection) LiteralOperand -> Variant
		{"extensionobject", variantIn, literalChain(max/2 - 1), literalChain(max / 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decode(tc.ok); err != nil {
				t.Fatalf("%d bytes at the limit: %v", len(tc.ok), err)
			}
			if err := tc.decode(tc.tooBy); !errors.Is(err, StatusBadEncodingLimitsExceeded) {
				t.Fatalf("one level too deep: %v", err)
			}
		})
	}
	// The attack: a million levels. It must fail fast, not crash.
	if err := variantIn(nested(1_000_000, []byte{byte(TypeIDVariant)})); !errors.Is(err, StatusBadEncodingLimitsExceeded) {
		t.Fatalf("a million nested Variants: %v", err)
	}
	if err := diagIn(nested(1_000_000, []byte{DiagnosticInfoInnerDiagnosticInfo})); !errors.Is(err, StatusBadEncodingLimitsExceeded) {
		t.Fatalf("a million nested DiagnosticInfos: %v", err)
	}
	// Nesting inside a service request counts from the request's fields.
	req := &WriteRequest{RequestHeader: &RequestHeader{AuthenticationToken: NewTwoByteNodeID(0), AdditionalHeader: NewExtensionObject(nil)}}
	enc, err := Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	enc = append(enc[:len(enc)-4], le(int32(1), NewTwoByteNodeID(1).mustEncode(), int32(AttributeIDValue), int32(-1), byte(DataValueValue), nested(1000, []byte{byte(TypeIDVariant)}))...)
	if _, err := Decode(enc, new(WriteRequest)); !errors.Is(err, StatusBadEncodingLimitsExceeded) {
		t.Fatalf("write of deeply nested Variants: %v", err)
	}
}

func (n *NodeID) mustEncode() []byte {
	b, err := n.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

// TestReadNNegative: a length that became negative (a uint32 above
// MaxInt32 converted to int on 32-bit platforms) is an error, not a panic.
func TestReadNNegative(t *testing.T) {
	buf := NewBuffer([]byte{1, 2, 3})
	if d := buf.ReadN(-1); d != nil || buf.Error() != io.ErrUnexpectedEOF {
		t.Fatalf("ReadN(-1) = %v, %v", d, buf.Error())
	}
}

// FuzzVariantDecode: decoding any bytes as a Variant returns a value or an
// error, never panics, and allocates in proportion to its input.
func FuzzVariantDecode(f *testing.F) {
	for _, v := range []interface{}{int32(5), "text", []float64{1, 2}, [][]float32{{1, 2}, {3, 4}}, []*Variant{MustVariant(int8(1))}, &DataValue{EncodingMask: DataValueValue, Value: MustVariant(uint16(3))}} {
		b, err := MustVariant(v).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x86000\x86"))
	f.Add([]byte("\xca\x00\x00\x00\x00?\x00\x000\x00\x00\x00@@\x00\x00\x80y\x02\x00\x00"))
	f.Add(le(byte(arrayDim|byte(TypeIDInt32)), int32(0), int32(3), int32(65536), int32(65536), int32(1)))
	f.Add(literalChain(3))
	f.Fuzz(func(t *testing.T, b []byte) {
		var n int
		var err error
		a := allocated(func() { n, err = new(Variant).Decode(b) })
		if err == nil && (n < 1 || n > len(b)) {
			t.Fatalf("decoded %d of %d bytes", n, len(b))
		}
		if limit := uint64(1<<20 + 512*len(b)); a > limit {
			t.Fatalf("allocated %d bytes for %d input bytes", a, len(b))
		}
	})
}
