package properties

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"testing"
)

// FuzzConvert: Convert never panics on any value a client can send (text of
// any bytes, numbers of any bit pattern, including NaN and infinities, in
// arrays and records), and what it returns keeps the coercion rules: same
// length and width for numbers, int32 truncated toward zero and saturated,
// bool as "non-zero", text parsed as a number or bool.
func FuzzConvert(f *testing.F) {
	f.Add(uint8(Text), uint8(Int32), 0, []byte("12.5"))
	f.Add(uint8(Text), uint8(Bool), 0, []byte(" true "))
	f.Add(uint8(Text), uint8(Float32), 0, []byte("1e400"))
	f.Add(uint8(Float64), uint8(Int32), 2, binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.NaN())), math.Float64bits(-3e10)))
	f.Add(uint8(Float32), uint8(Text), 0, binary.LittleEndian.AppendUint32(nil, math.Float32bits(0.1)))
	f.Add(uint8(Int32), uint8(Bool), 4, []byte{1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 128})
	f.Fuzz(func(t *testing.T, from, to uint8, width int, data []byte) {
		v := fuzzValue(Elem(from%5+1), width, data)
		out, err := v.Convert(Elem(to%6 + 1)) // 6 is not a type: refused
		target := Elem(to%6 + 1)
		if !target.valid() {
			if err == nil {
				t.Fatalf("conversion to %v accepted", target)
			}
			return
		}
		if err != nil {
			if v.Elem != Text {
				t.Fatalf("%v -> %v: %v", v.Elem, target, err)
			}
			return
		}
		if out.Elem != target {
			t.Fatalf("%v -> %v gave %v", v.Elem, target, out.Elem)
		}
		if target == Text || v.Elem == Text {
			if v.Elem == Text && target != Text && out.Len() != 1 {
				t.Fatalf("text -> %v: %d elements", target, out.Len())
			}
			return
		}
		if out.Len() != v.Len() || out.Width != v.Width {
			t.Fatalf("%v -> %v: %d elements width %d, from %d width %d", v.Elem, target, out.Len(), out.Width, v.Len(), v.Width)
		}
		for i := 0; i < v.Len(); i++ {
			x := v.Float64At(i)
			switch target {
			case Int32:
				got := out.Int32s[i]
				switch {
				case math.IsNaN(x):
					if got != 0 {
						t.Fatalf("NaN -> %d", got)
					}
				case x >= math.MaxInt32 && got != math.MaxInt32, x <= math.MinInt32 && got != math.MinInt32:
					t.Fatalf("%g not saturated: %d", x, got)
				case x > math.MinInt32 && x < math.MaxInt32 && got != int32(math.Trunc(x)):
					t.Fatalf("%g -> %d, want truncation toward zero", x, got)
				}
			case Bool:
				if out.Bools[i] != (x != 0) {
					t.Fatalf("%g -> %v", x, out.Bools[i])
				}
			}
		}
	})
}

// fuzzValue makes a well-formed value of type e from the fuzzer's bytes: an
// array, or records of width w when w divides the element count.
func fuzzValue(e Elem, w int, data []byte) Value {
	v := Value{Elem: e}
	switch e {
	case Bool:
		for _, b := range data {
			v.Bools = append(v.Bools, b&1 == 1)
		}
	case Int32:
		for len(data) >= 4 {
			v.Int32s = append(v.Int32s, int32(binary.LittleEndian.Uint32(data)))
			data = data[4:]
		}
	case Float32:
		for len(data) >= 4 {
			v.Float32s = append(v.Float32s, math.Float32frombits(binary.LittleEndian.Uint32(data)))
			data = data[4:]
		}
	case Float64:
		for len(data) >= 8 {
			v.Float64s = append(v.Float64s, math.Float64frombits(binary.LittleEndian.Uint64(data)))
			data = data[8:]
		}
	case Text:
		v.Text = string(data)
		return v
	}
	if n := v.Len(); w > 0 && w <= 16 && n > 0 && n%w == 0 {
		v.Width = w
	}
	return v
}

// TestConvertTextParsesNumbers pins the text rules the fuzz target leaves
// open (what a parsed number becomes).
func TestConvertTextParsesNumbers(t *testing.T) {
	for _, c := range []struct {
		in   string
		to   Elem
		want string
	}{
		{" 12.9 ", Int32, "12"}, {"-12.9", Int32, "-12"}, {"1e12", Int32, strconv.Itoa(math.MaxInt32)},
		{"0", Bool, "false"}, {"2.5", Bool, "true"}, {"TRUE", Bool, "true"}, {"0.25", Float32, "0.25"},
	} {
		out, err := TextValue(c.in).Convert(c.to)
		if err != nil {
			t.Fatalf("%q -> %v: %v", c.in, c.to, err)
		}
		if got := strings.TrimSpace(out.String()); got != c.want {
			t.Errorf("%q -> %v: %s, want %s", c.in, c.to, got, c.want)
		}
	}
	if _, err := TextValue("twelve").Convert(Int32); err == nil {
		t.Error(`"twelve" converted to int32`)
	}
}
