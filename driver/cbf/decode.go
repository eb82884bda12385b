package cbf

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// ErrFormat is wrapped by every error about a file that is not a valid
// miniCBF of the kind this package writes.
var ErrFormat = errors.New("cbf: not a valid miniCBF file")

// maxFileBytes bounds what Decode will inflate from a .cbf.gz: the largest
// image (maxElements) at the worst byte-offset size of 16-bit data.
const maxFileBytes = 7*maxElements + 1<<20

// Image is a decoded miniCBF file.
type Image struct {
	Name    string  // CIF data block name ("lyso_1_00001")
	Header  Header  // parsed PILATUS_1.2 header
	Width   int     // X-Binary-Size-Fastest-Dimension
	Height  int     // X-Binary-Size-Second-Dimension
	Pixels  []int32 // Width*Height values, row-major
	HasMD5  bool    // the file carried a Content-MD5, and it matched
	Gzipped bool    // the file was gzip-compressed
}

// ReadFile reads and decodes a .cbf or .cbf.gz file (gzip is recognised by
// its magic number, not the name).
func ReadFile(path string) (*Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	img, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// Decode parses a miniCBF file (plain or gzip-compressed) with a single
// byte-offset binary section of signed 32-bit little-endian integers. It
// validates the layout, the MIME header (conversion, element type, byte
// order, X-Binary-Size, element count against the dimensions), the MD5
// when present, the byte-offset data and the closing boundary, so that a
// truncated or altered file is an error, never a silently short image.
func Decode(file []byte) (*Image, error) {
	img := &Image{}
	if len(file) >= 2 && file[0] == 0x1f && file[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(file))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrFormat, err)
		}
		zr.Multistream(false)
		plain, err := io.ReadAll(io.LimitReader(zr, maxFileBytes+1))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrFormat, err)
		}
		if len(plain) > maxFileBytes {
			return nil, fmt.Errorf("%w: inflates to more than %d bytes", ErrFormat, maxFileBytes)
		}
		file = plain
		img.Gzipped = true
	}
	if !bytes.HasPrefix(file, []byte("###CBF: VERSION")) {
		return nil, fmt.Errorf("%w: does not start with ###CBF: VERSION", ErrFormat)
	}
	mark := bytes.Index(file, []byte("\x0c\x1a\x04\xd5"))
	if mark < 0 {
		return nil, fmt.Errorf("%w: binary marker 0C 1A 04 D5 not found", ErrFormat)
	}
	if mark < 2 || file[mark-1] != '\n' {
		return nil, fmt.Errorf("%w: binary marker does not begin a line", ErrFormat)
	}
	text := string(file[:mark])

	// Data block name.
	if i := strings.Index(text, "\ndata_"); i >= 0 {
		name := text[i+len("\ndata_"):]
		if j := strings.IndexByte(name, '\n'); j >= 0 {
			name = name[:j]
		}
		img.Name = strings.TrimRight(name, "\r")
	} else {
		return nil, fmt.Errorf("%w: no data_ block", ErrFormat)
	}

	// PILATUS header: the text field after _array_data.header_contents.
	if i := strings.Index(text, "_array_data.header_contents"); i >= 0 {
		field := text[i+len("_array_data.header_contents"):]
		field = strings.TrimLeft(field, "\r\n")
		if !strings.HasPrefix(field, ";") {
			return nil, fmt.Errorf("%w: header_contents is not a text field", ErrFormat)
		}
		field = field[1:]
		end := strings.Index(field, "\n;")
		if end < 0 {
			return nil, fmt.Errorf("%w: header_contents text field not closed", ErrFormat)
		}
		h, err := ParseText(field[:end])
		if err != nil {
			return nil, err
		}
		img.Header = h
	}

	// MIME header of the binary section.
	i := strings.Index(text, "--CIF-BINARY-FORMAT-SECTION--")
	if i < 0 {
		return nil, fmt.Errorf("%w: no binary section", ErrFormat)
	}
	mime, err := parseMIME(text[i+len("--CIF-BINARY-FORMAT-SECTION--"):])
	if err != nil {
		return nil, err
	}
	if !strings.Contains(mime["content-type"], `conversions="x-CBF_BYTE_OFFSET"`) {
		return nil, fmt.Errorf("%w: conversion %q is not x-CBF_BYTE_OFFSET", ErrFormat, mime["content-type"])
	}
	for key, want := range map[string]string{
		"content-transfer-encoding":   "BINARY",
		"x-binary-element-type":       `"signed 32-bit integer"`,
		"x-binary-element-byte-order": "LITTLE_ENDIAN",
	} {
		if got := mime[key]; got != want {
			return nil, fmt.Errorf("%w: %s is %q, want %q", ErrFormat, key, got, want)
		}
	}
	size, err := mimeInt(mime, "x-binary-size")
	if err != nil {
		return nil, err
	}
	nel, err := mimeInt(mime, "x-binary-number-of-elements")
	if err != nil {
		return nil, err
	}
	if img.Width, err = mimeInt(mime, "x-binary-size-fastest-dimension"); err != nil {
		return nil, err
	}
	if img.Height, err = mimeInt(mime, "x-binary-size-second-dimension"); err != nil {
		return nil, err
	}
	if img.Width == 0 || img.Height == 0 || int64(img.Width)*int64(img.Height) != int64(nel) {
		return nil, fmt.Errorf("%w: %d elements for %d x %d pixels", ErrFormat, nel, img.Width, img.Height)
	}
	data := file[mark+4:]
	if size > len(data) {
		return nil, fmt.Errorf("%w: X-Binary-Size %d but only %d bytes follow (truncated file)", ErrFormat, size, len(data))
	}
	if nel > size || nel > maxElements {
		// Every value takes at least one byte: this also bounds the
		// allocation below by the size of the file.
		return nil, fmt.Errorf("%w: %d elements cannot fit in %d bytes", ErrFormat, nel, size)
	}
	rest := data[size:]
	data = data[:size]
	if sum, ok := mime["content-md5"]; ok {
		digest := md5.Sum(data)
		if sum != base64.StdEncoding.EncodeToString(digest[:]) {
			return nil, fmt.Errorf("%w: Content-MD5 %s does not match the data", ErrFormat, sum)
		}
		img.HasMD5 = true
	}
	img.Pixels = make([]int32, nel)
	used, err := DecodeByteOffset(img.Pixels, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if used != size {
		return nil, fmt.Errorf("%w: %d values end after %d of X-Binary-Size %d bytes", ErrFormat, nel, used, size)
	}
	// The section must be closed: a file cut short inside the padding is
	// as truncated as one cut inside the data.
	if !bytes.Contains(rest, []byte("--CIF-BINARY-FORMAT-SECTION----")) {
		return nil, fmt.Errorf("%w: binary section not closed (truncated file)", ErrFormat)
	}
	return img, nil
}

// parseMIME reads "Key: value" lines up to the first blank line; a line
// starting with blanks continues the previous value. Keys are lower-cased.
func parseMIME(s string) (map[string]string, error) {
	m := make(map[string]string)
	last := ""
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			if len(m) > 0 {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("%w: MIME continuation line without a header", ErrFormat)
			}
			m[last] += " " + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: MIME header line %q has no colon", ErrFormat, line)
		}
		last = strings.ToLower(strings.TrimSpace(k))
		m[last] = strings.TrimSpace(v)
	}
	return m, nil
}

func mimeInt(m map[string]string, key string) (int, error) {
	s, ok := m[key]
	if !ok {
		return 0, fmt.Errorf("%w: missing %s", ErrFormat, key)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > maxFileBytes {
		return 0, fmt.Errorf("%w: %s %q is not a size", ErrFormat, key, s)
	}
	return int(v), nil
}
