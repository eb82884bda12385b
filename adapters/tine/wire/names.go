package wire

import "bytes"

// getName returns the NUL-padded ASCII name in b: the bytes up to the first
// NUL (fields that use their whole length have none).
func getName(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// putName writes s into the fixed field b, truncated to len(b) and padded
// with NULs.
func putName(b []byte, s string) {
	n := copy(b, s)
	clear(b[n:])
}

// appendName appends s as a size-byte NUL-padded field.
func appendName(dst []byte, s string, size int) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, size)...)
	putName(dst[n:], s)
	return dst
}

// AppendName appends s as one element of a NAMEn format (size bytes,
// truncated and NUL-padded).
func AppendName(dst []byte, s string, size int) []byte { return appendName(dst, s, size) }

// Names splits a NAMEn payload into its names (trailing NULs removed).
func Names(b []byte, size int) []string {
	if size <= 0 {
		return nil
	}
	out := make([]string, 0, len(b)/size)
	for len(b) >= size {
		out = append(out, getName(b[:size]))
		b = b[size:]
	}
	return out
}
