package stream

import (
	"encoding/json"
	"fmt"
	"math"
)

// fields reads typed values out of a configuration map (JSON values in V1,
// CBOR values in V2). A missing key gives the zero value: detectors and
// firmware versions differ in what they send. A key that is present with the
// wrong type is an error, because a wavelength that is silently 0 is worse
// than a rejected header. The first error is kept; later reads are no-ops.
type fields struct {
	m    map[string]any
	what string // "V1 header config", for error messages
	err  error
}

func (f *fields) fail(key string, v any, want string) {
	if f.err == nil {
		f.err = fmt.Errorf("%s: %s is %s, want %s", f.what, key, describeValue(v), want)
	}
}

func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the text %q", v)
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%v (%T)", v, v)
	}
}

// number converts any numeric value of either decoder to float64.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case json.Number:
		x, err := n.Float64()
		return x, err == nil
	}
	return 0, false
}

// unsigned converts a numeric value that must be a non-negative integer.
func unsigned(v any) (uint64, bool) {
	switch n := v.(type) {
	case uint64:
		return n, true
	case int64:
		return uint64(n), n >= 0
	case int:
		return uint64(n), n >= 0
	}
	x, ok := number(v)
	if !ok || x < 0 || x != math.Trunc(x) || x >= 1<<64 {
		return 0, false
	}
	return uint64(x), true
}

func (f *fields) float(key string) float64 {
	v, ok := f.m[key]
	if !ok || f.err != nil {
		return 0
	}
	x, ok := number(v)
	if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
		f.fail(key, v, "a finite number")
		return 0
	}
	return x
}

func (f *fields) uint(key string) uint64 {
	v, ok := f.m[key]
	if !ok || f.err != nil {
		return 0
	}
	x, ok := unsigned(v)
	if !ok {
		f.fail(key, v, "a non-negative integer")
	}
	return x
}

// dim reads an image dimension and bounds it.
func (f *fields) dim(key string) int {
	x := f.uint(key)
	if x > maxDim {
		f.fail(key, f.m[key], fmt.Sprintf("at most %d pixels", maxDim))
		return 0
	}
	return int(x)
}

func (f *fields) str(key string) string {
	v, ok := f.m[key]
	if !ok || f.err != nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.fail(key, v, "a text string")
	}
	return s
}

// elemSizeOf maps a pixel type name to its size in bytes.
func elemSizeOf(typ string) int {
	switch typ {
	case "uint8":
		return 1
	case "uint16":
		return 2
	case "uint32":
		return 4
	}
	return 0
}

// elemSizeOfBits maps an image bit depth to the element size that holds it.
func elemSizeOfBits(bits uint64) int {
	switch {
	case bits == 0:
		return 0
	case bits <= 8:
		return 1
	case bits <= 16:
		return 2
	case bits <= 32:
		return 4
	}
	return 0
}

// typeName is the inverse of elemSizeOf.
func typeName(elemSize int) string {
	switch elemSize {
	case 1:
		return "uint8"
	case 2:
		return "uint16"
	case 4:
		return "uint32"
	}
	return ""
}

// goniometerAxes are the axes V1 sends as <axis>_start / <axis>_increment.
var goniometerAxes = []string{"omega", "phi", "chi", "kappa", "two_theta"}
