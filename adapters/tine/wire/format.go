package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// Format is a TINE data format code (CF_*), as carried in the contract's
// formatIn/formatOut bytes and the reply header's format field. On the wire
// the plain codes are used (3 = INT32), not the C API's codes offset by 512.
type Format uint8

// Format codes (docs/tine-protocol.md §8). Only Double, Int16, Int32, Text,
// Float, Struct, Name64 and Null were seen in the captures.
const (
	Double       Format = 0
	Int16        Format = 1
	Byte         Format = 2
	Int32        Format = 3
	Text         Format = 4
	Float        Format = 5
	Int64        Format = 6
	Struct       Format = 7
	Name8        Format = 8
	Name16       Format = 9
	Name16FI     Format = 10
	Bit          Format = 11
	Name32       Format = 13
	FltInt       Format = 14
	IntInt       Format = 15
	DblInt       Format = 16
	ShtInt       Format = 17
	IntFltInt    Format = 18
	Name48       Format = 19
	Name8I       Format = 20
	Name16I      Format = 21
	Name32I      Format = 22
	Name48I      Format = 23
	UString      Format = 24
	FltFltInt    Format = 25
	FltIntInt    Format = 26
	IntFltFltFlt Format = 27
	Spectrum     Format = 28
	IntIntIntInt Format = 29
	Window       Format = 30
	FltFlt       Format = 31
	IntFltShtSht Format = 32
	Boolean      Format = 33
	IntIntFltFlt Format = 34
	FltIntFltInt Format = 35
	Name64       Format = 36
	Name64I      Format = 37
	IntDbl       Format = 38
	FltDbl       Format = 39
	DblDbl       Format = 40
	Name16DblDbl Format = 41
	Name16II     Format = 42
	IntIntInt    Format = 43
	Name32DblDbl Format = 44
	Name64DblDbl Format = 45
	UName        Format = 46
	XML          Format = 47
	DblDblDbl    Format = 48
	Name64DDD    Format = 49
	BitField8    Format = 50
	Default      Format = 254
	Null         Format = 255
)

type formatInfo struct {
	name string
	size int // element bytes; 0 = unknown or variable
}

var formats = map[Format]formatInfo{
	Double: {"DOUBLE", 8}, Int16: {"INT16", 2}, Byte: {"BYTE", 1}, Int32: {"INT32", 4},
	Text: {"TEXT", 1}, Float: {"FLOAT", 4}, Int64: {"INT64", 8}, Struct: {"STRUCT", 1},
	Name8: {"NAME8", 8}, Name16: {"NAME16", 16}, Name16FI: {"NAME16FI", 24}, Bit: {"BIT", 0},
	Name32: {"NAME32", 32}, FltInt: {"FLTINT", 8}, IntInt: {"INTINT", 8}, DblInt: {"DBLINT", 12},
	ShtInt: {"SHTINT", 6}, IntFltInt: {"INTFLTINT", 12}, Name48: {"NAME48", 48},
	Name8I: {"NAME8I", 12}, Name16I: {"NAME16I", 20}, Name32I: {"NAME32I", 36}, Name48I: {"NAME48I", 52},
	UString: {"USTRING", 0}, FltFltInt: {"FLTFLTINT", 12}, FltIntInt: {"FLTINTINT", 12},
	IntFltFltFlt: {"INTFLTFLTFLT", 16}, Spectrum: {"SPECTRUM", 0}, IntIntIntInt: {"INTINTINTINT", 16},
	Window: {"WINDOW", 0}, FltFlt: {"FLTFLT", 8}, IntFltShtSht: {"INTFLTSHTSHT", 12},
	Boolean: {"BOOLEAN", 4}, IntIntFltFlt: {"INTINTFLTFLT", 16}, FltIntFltInt: {"FLTINTFLTINT", 16},
	Name64: {"NAME64", 64}, Name64I: {"NAME64I", 68}, IntDbl: {"INTDBL", 12}, FltDbl: {"FLTDBL", 12},
	DblDbl: {"DBLDBL", 16}, Name16DblDbl: {"NAME16DBLDBL", 32}, Name16II: {"NAME16II", 24},
	IntIntInt: {"INTINTINT", 12}, Name32DblDbl: {"NAME32DBLDBL", 48}, Name64DblDbl: {"NAME64DBLDBL", 80},
	UName: {"UNAME", 0}, XML: {"XML", 1}, DblDblDbl: {"DBLDBLDBL", 24}, Name64DDD: {"NAME64DBLDBLDBL", 88},
	BitField8: {"BITFIELD8", 1}, Default: {"DEFAULT", 0}, Null: {"NULL", 0},
}

// String returns the format's TINE name without the CF_ prefix ("INT32").
func (f Format) String() string {
	if i, ok := formats[f]; ok {
		return i.name
	}
	return "CF_" + strconv.Itoa(int(f))
}

// Size is the size of one element in bytes: 1 for TEXT and STRUCT (whose
// sizes count bytes), 0 for NULL and for formats of unknown or variable size.
// The sizes of the compound formats follow their field lists and were not
// all checked on the wire.
func (f Format) Size() int { return formats[f].size }

// Known reports whether f is a format code TINE defines.
func (f Format) Known() bool { _, ok := formats[f]; return ok }

// IsName reports whether f is one of the fixed-length name formats
// (NAME8/16/32/48/64): NUL-padded strings of Size bytes each.
func (f Format) IsName() bool {
	switch f {
	case Name8, Name16, Name32, Name48, Name64:
		return true
	}
	return false
}

// IsNumeric reports whether f is a plain number format the coercion rules
// of docs/tine-protocol.md §8.1 convert between.
func (f Format) IsNumeric() bool {
	switch f {
	case Double, Int16, Byte, Int32, Float, Int64, Boolean:
		return true
	}
	return false
}

// BlockMTU is the number of data bytes one reply block carries for this
// format: MaxBlockData rounded down to a whole number of elements (1424 for
// INT32, FLOAT and DOUBLE; 1426 for TEXT, INT16, STRUCT and NULL; 1408 for
// NAME64), as tine.jar does [verified].
func (f Format) BlockMTU() int { return roundDown(MaxBlockData, f.Size()) }

// InputMTU is the number of input bytes one request block carries for this
// input format (1246 rounded down to the element size: 1240 for DOUBLE)
// [verified: write-threshold.req001.bin].
func (f Format) InputMTU() int { return roundDown(MaxInputData, f.Size()) }

func roundDown(n, size int) int {
	if size <= 1 {
		return n
	}
	return n - n%size
}

// ParseFormat parses a format name ("INT32", "CF_INT32", "float", "3").
func ParseFormat(s string) (Format, error) {
	u := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "CF_")
	switch u {
	case "SHORT":
		return Int16, nil
	case "LONG", "INT":
		return Int32, nil
	case "CHAR", "STRING":
		return Text, nil
	case "FLOAT32":
		return Float, nil
	case "FLOAT64":
		return Double, nil
	case "BOOL":
		return Boolean, nil
	}
	for f, i := range formats {
		if i.name == u {
			return f, nil
		}
	}
	if n, err := strconv.Atoi(u); err == nil && n >= 0 && n <= 255 && Format(n).Known() {
		return Format(n), nil
	}
	return 0, fmt.Errorf("unknown TINE format %q", s)
}
