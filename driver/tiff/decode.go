package tiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zlib"
)

// ErrFormat is wrapped by every error about a file that is not a TIFF of
// the kind this package writes.
var ErrFormat = errors.New("tiff: not a supported TIFF file")

// maxPixels bounds the image a reader will allocate for (2^28 pixels).
const maxPixels = 1 << 28

// Image is a decoded TIFF file.
type Image struct {
	Width, Height int
	Pixels        []int32 // row-major
	Description   string  // ImageDescription without the final NUL
	Software      string
	DateTime      string
	Compression   int // 1 none, 8 or 32946 Deflate
	Strips        int
}

// ReadFile reads and decodes a TIFF file.
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

type field struct {
	typ   uint16
	count uint32
	value uint32 // the value itself when it fits in 4 bytes, else an offset
}

// Decode parses a little-endian TIFF holding one signed 32-bit grayscale
// image in strips, uncompressed or Deflate-compressed: what Encoder writes
// (and PILATUS cameras, uncompressed). Everything is checked against the
// file size before use, so damaged input gives an error, never a panic or
// an unbounded allocation.
func Decode(b []byte) (*Image, error) {
	if len(b) < 8 || string(b[:4]) != "II*\x00" {
		return nil, fmt.Errorf("%w: not a little-endian TIFF", ErrFormat)
	}
	le := binary.LittleEndian
	ifd := uint64(le.Uint32(b[4:]))
	if ifd+2 > uint64(len(b)) {
		return nil, fmt.Errorf("%w: IFD offset %d beyond the file", ErrFormat, ifd)
	}
	n := uint64(le.Uint16(b[ifd:]))
	if ifd+2+12*n+4 > uint64(len(b)) {
		return nil, fmt.Errorf("%w: IFD of %d entries beyond the file", ErrFormat, n)
	}
	fields := make(map[uint16]field, n)
	for i := uint64(0); i < n; i++ {
		e := b[ifd+2+12*i:]
		f := field{typ: le.Uint16(e[2:]), count: le.Uint32(e[4:]), value: le.Uint32(e[8:])}
		// Every value stored outside the entry must lie inside the file:
		// a file cut short anywhere is damaged, even where we would not look.
		if size := typeSize(f.typ) * uint64(f.count); size > 4 && uint64(f.value)+size > uint64(len(b)) {
			return nil, fmt.Errorf("%w: values of tag %d beyond the file (truncated?)", ErrFormat, le.Uint16(e))
		}
		fields[le.Uint16(e)] = f
	}
	scalar := func(tag uint16, def uint32) (uint32, error) {
		f, ok := fields[tag]
		if !ok {
			return def, nil
		}
		if f.count != 1 || (f.typ != typeShort && f.typ != typeLong) {
			return 0, fmt.Errorf("%w: tag %d is not a single SHORT or LONG", ErrFormat, tag)
		}
		if f.typ == typeShort {
			return f.value & 0xffff, nil
		}
		return f.value, nil
	}
	img := &Image{}
	var vals [8]uint32
	var err error
	for i, t := range []struct {
		tag uint16
		def uint32
	}{
		{tagImageWidth, 0}, {tagImageLength, 0}, {tagBitsPerSample, 1}, {tagCompression, 1},
		{tagSamplesPerPixel, 1}, {tagRowsPerStrip, 1<<32 - 1}, {tagPlanarConfiguration, 1}, {tagSampleFormat, 1},
	} {
		if vals[i], err = scalar(t.tag, t.def); err != nil {
			return nil, err
		}
	}
	w, h, bps, comp, spp, rps, planar, format := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7]
	if w == 0 || h == 0 || uint64(w)*uint64(h) > maxPixels {
		return nil, fmt.Errorf("%w: image size %d x %d", ErrFormat, w, h)
	}
	if bps != 32 || spp != 1 || format != sampleFormatInt || planar != 1 {
		return nil, fmt.Errorf("%w: want 1 sample of 32-bit signed integers, got %d x %d bits, format %d, planar %d",
			ErrFormat, spp, bps, format, planar)
	}
	if comp != compressionNone && comp != compressionDeflate && comp != compressionZlibOld {
		return nil, fmt.Errorf("%w: compression %d not supported", ErrFormat, comp)
	}
	if rps == 0 {
		return nil, fmt.Errorf("%w: RowsPerStrip 0", ErrFormat)
	}
	rps = min(rps, h)
	nstrips := (h + rps - 1) / rps
	offs, err := longs(b, fields, tagStripOffsets, nstrips)
	if err != nil {
		return nil, err
	}
	counts, err := longs(b, fields, tagStripByteCounts, nstrips)
	if err != nil {
		return nil, err
	}
	img.Width, img.Height, img.Compression, img.Strips = int(w), int(h), int(comp), int(nstrips)
	if img.Description, err = ascii(b, fields, tagImageDescription); err != nil {
		return nil, err
	}
	if img.Software, err = ascii(b, fields, tagSoftware); err != nil {
		return nil, err
	}
	if img.DateTime, err = ascii(b, fields, tagDateTime); err != nil {
		return nil, err
	}

	img.Pixels = make([]int32, int(w)*int(h))
	raw := make([]byte, 4*int(w)*int(rps))
	var zr io.ReadCloser
	for s := uint32(0); s < nstrips; s++ {
		off, cnt := uint64(offs[s]), uint64(counts[s])
		if off+cnt > uint64(len(b)) {
			return nil, fmt.Errorf("%w: strip %d (%d bytes at %d) beyond the file", ErrFormat, s, cnt, off)
		}
		rows := min(rps, h-s*rps)
		want := raw[:4*int(w)*int(rows)]
		data := b[off : off+cnt]
		if comp == compressionNone {
			if uint64(len(data)) != uint64(len(want)) {
				return nil, fmt.Errorf("%w: strip %d has %d bytes, want %d", ErrFormat, s, len(data), len(want))
			}
			copy(want, data)
		} else {
			if zr == nil {
				zr, err = zlib.NewReader(bytes.NewReader(data))
			} else {
				err = zr.(zlib.Resetter).Reset(bytes.NewReader(data), nil)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: strip %d: %v", ErrFormat, s, err)
			}
			if _, err := io.ReadFull(zr, want); err != nil {
				return nil, fmt.Errorf("%w: strip %d: %v", ErrFormat, s, err)
			}
			// The strip must end exactly here, checksum included.
			var one [1]byte
			if k, err := zr.Read(one[:]); k != 0 || err != io.EOF {
				return nil, fmt.Errorf("%w: strip %d inflates to more than %d bytes or is damaged (%v)", ErrFormat, s, len(want), err)
			}
		}
		dst := img.Pixels[int(s*rps)*int(w):]
		for i := range int(w) * int(rows) {
			dst[i] = int32(le.Uint32(want[4*i:]))
		}
	}
	return img, nil
}

// longs returns the n SHORT or LONG values of a tag.
func longs(b []byte, fields map[uint16]field, tag uint16, n uint32) ([]uint32, error) {
	f, ok := fields[tag]
	if !ok {
		return nil, fmt.Errorf("%w: tag %d missing", ErrFormat, tag)
	}
	if f.count != n {
		return nil, fmt.Errorf("%w: tag %d has %d values, want %d", ErrFormat, tag, f.count, n)
	}
	size := uint64(4)
	if f.typ == typeShort {
		size = 2
	} else if f.typ != typeLong {
		return nil, fmt.Errorf("%w: tag %d has type %d", ErrFormat, tag, f.typ)
	}
	out := make([]uint32, n)
	if uint64(n)*size <= 4 {
		var inline [4]byte
		binary.LittleEndian.PutUint32(inline[:], f.value)
		for i := range out {
			if size == 2 {
				out[i] = uint32(binary.LittleEndian.Uint16(inline[2*i:]))
			} else {
				out[i] = binary.LittleEndian.Uint32(inline[:])
			}
		}
		return out, nil
	}
	off := uint64(f.value)
	if off+uint64(n)*size > uint64(len(b)) {
		return nil, fmt.Errorf("%w: tag %d values beyond the file", ErrFormat, tag)
	}
	for i := range out {
		if size == 2 {
			out[i] = uint32(binary.LittleEndian.Uint16(b[off+2*uint64(i):]))
		} else {
			out[i] = binary.LittleEndian.Uint32(b[off+4*uint64(i):])
		}
	}
	return out, nil
}

// ascii returns an ASCII tag's text without its terminating NUL, "" when
// the tag is absent.
func ascii(b []byte, fields map[uint16]field, tag uint16) (string, error) {
	f, ok := fields[tag]
	if !ok {
		return "", nil
	}
	if f.typ != typeASCII {
		return "", fmt.Errorf("%w: tag %d is not ASCII", ErrFormat, tag)
	}
	var s []byte
	if f.count <= 4 {
		var inline [4]byte
		binary.LittleEndian.PutUint32(inline[:], f.value)
		s = inline[:f.count]
	} else {
		off := uint64(f.value)
		if off+uint64(f.count) > uint64(len(b)) {
			return "", fmt.Errorf("%w: tag %d text beyond the file", ErrFormat, tag)
		}
		s = b[off : off+uint64(f.count)]
	}
	return string(bytes.TrimRight(s, "\x00")), nil
}

// typeSize is the size in bytes of one value of a TIFF field type (1 for
// types this reader does not know, which only matters for bounds checks).
func typeSize(typ uint16) uint64 {
	switch typ {
	case typeShort, 8: // SSHORT
		return 2
	case typeLong, 9, 11: // SLONG, FLOAT
		return 4
	case typeRational, 10, 12: // SRATIONAL, DOUBLE
		return 8
	}
	return 1
}
