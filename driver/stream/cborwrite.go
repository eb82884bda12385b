package stream

import (
	"encoding/binary"
	"math"
)

// Minimal CBOR writers for the V2 builders. They write the canonical
// shortest head for every length and value, as the detector does.

func appendHead(dst []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(dst, m|byte(arg))
	case arg <= math.MaxUint8:
		return append(dst, m|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(arg))
	}
	return binary.BigEndian.AppendUint64(append(dst, m|27), arg)
}

func appendText(dst []byte, s string) []byte {
	return append(appendHead(dst, majorText, uint64(len(s))), s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	return append(appendHead(dst, majorBytes, uint64(len(b))), b...)
}

func appendUint(dst []byte, v uint64) []byte { return appendHead(dst, majorUint, v) }

func appendFloat64(dst []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 0xfb), math.Float64bits(f))
}

// appendRational writes the V2 Rational [num, den].
func appendRational(dst []byte, t Ticks) []byte {
	dst = appendHead(dst, majorArray, 2)
	return appendUint(appendUint(dst, t.Count), t.Rate)
}

// appendKeyText and friends write one map entry.
func appendKeyText(dst []byte, key, val string) []byte {
	return appendText(appendText(dst, key), val)
}

func appendKeyUint(dst []byte, key string, v uint64) []byte {
	return appendUint(appendText(dst, key), v)
}

func appendKeyFloat(dst []byte, key string, v float64) []byte {
	return appendFloat64(appendText(dst, key), v)
}
