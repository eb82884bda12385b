// Package tiff writes detector frames as 32-bit signed grayscale TIFF
// files, the form small-angle scattering (SAXS) programs expect from a
// PILATUS/EIGER (pyFAI via fabio, BioXTAS RAW, SAXSutilities), and reads
// them back for tests and tools.
//
// No Go TIFF library writes signed 32-bit grayscale, so the format is
// written by hand: a little-endian baseline TIFF with one image per file,
// BitsPerSample 32 and SampleFormat 2 (signed), Adobe Deflate compression
// (zlib, Compression 8) in strips of about 256 KiB, the PILATUS-style
// header text ("# Pixel_size ...") in ImageDescription, where PILATUS
// cameras put it and fabio parses it, plus Software, DateTime and the
// resolution (pixels per centimetre from the pixel size).
//
// Pixel values follow the rule of cbf.Pixels: the all-ones masked value is
// written as -1, counts as counts. No differencing predictor is used: it
// would shrink the files but not every SAXS reader implements it.
package tiff

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/klauspost/compress/zlib"

	"tioga/driver/cbf"
)

// DefaultLevel is the zlib level of the strips unless configured.
//
// BenchmarkTIFF on the synthetic 16-bit EIGER 4M frame (one core, Mpx per
// CPU-second on the shared development machine; exact sizes; raw int32 is
// 17.9 MB):
//
//	level             Mpx/cpu-s   bytes
//	-2 Huffman-only      102      3 437 628
//	1 BestSpeed           86      2 772 192
//	6                     49      2 446 004
//
// Signed 32-bit pixels put three mostly-zero bytes beside each count, which
// LZ77 matches compress and Huffman coding alone does not (unlike the CBF
// byte-offset stream), so BestSpeed is the default: 20 % smaller than
// Huffman-only for 20 % more CPU; level 6 saves 12 % more for 1.8x the CPU.
const DefaultLevel = zlib.BestSpeed

// Software is written into the Software tag.
const Software = "Tioga TIFF writer"

// stripBytes is the target uncompressed size of a strip: large enough that
// per-strip overhead vanishes, small enough that readers decoding a region
// do not inflate the whole image (libtiff recommends strips of ~8 KiB and
// more; tifffile and fabio do not care).
const stripBytes = 256 << 10

// Tags, types and values used (TIFF 6.0).
const (
	tagImageWidth          = 256
	tagImageLength         = 257
	tagBitsPerSample       = 258
	tagCompression         = 259
	tagPhotometric         = 262
	tagImageDescription    = 270
	tagStripOffsets        = 273
	tagSamplesPerPixel     = 277
	tagRowsPerStrip        = 278
	tagStripByteCounts     = 279
	tagXResolution         = 282
	tagYResolution         = 283
	tagPlanarConfiguration = 284
	tagResolutionUnit      = 296
	tagSoftware            = 305
	tagDateTime            = 306
	tagSampleFormat        = 339

	typeASCII    = 2
	typeShort    = 3
	typeLong     = 4
	typeRational = 5

	compressionNone    = 1
	compressionDeflate = 8 // Adobe Deflate
	compressionZlibOld = 32946
	sampleFormatInt    = 2 // signed integer
	resolutionCM       = 3
)

// Options configures an Encoder.
type Options struct {
	// Level is the zlib level (-2 Huffman only, 1 BestSpeed ... 9); 0 means
	// DefaultLevel.
	Level int
}

// An Encoder writes frames as TIFF files. Each worker goroutine owns one;
// it reuses its buffers and zlib state, so that encoding allocates nothing
// after the first frame of the largest size. Not safe for concurrent use.
type Encoder struct {
	zw      *zlib.Writer
	file    bytes.Buffer
	raw     []byte
	text    []byte
	offsets []uint32
	counts  []uint32
}

// NewEncoder returns an Encoder with the given options.
func NewEncoder(o Options) (*Encoder, error) {
	level := o.Level
	if level == 0 {
		level = DefaultLevel
	}
	zw, err := zlib.NewWriterLevel(nil, level)
	if err != nil {
		return nil, fmt.Errorf("tiff: zlib level %d: %w", level, err)
	}
	return &Encoder{zw: zw}, nil
}

// Encode returns the TIFF file of one frame, with h (this frame's header)
// as the ImageDescription text. The returned slice is owned by the Encoder
// and valid until the next call.
func (e *Encoder) Encode(h *cbf.Header, p cbf.Pixels) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if int64(p.Len())*4 > math.MaxUint32/2 {
		return nil, fmt.Errorf("tiff: %d x %d frame too large for a 32-bit TIFF", p.Width, p.Height)
	}
	w, ht := p.Width, p.Height
	rows := stripBytes / (4 * w)
	if rows < 1 {
		rows = 1
	}
	if rows > ht {
		rows = ht
	}
	nstrips := (ht + rows - 1) / rows

	e.file.Reset()
	e.file.Write([]byte{'I', 'I', 42, 0, 0, 0, 0, 0}) // IFD offset patched below
	e.offsets, e.counts = e.offsets[:0], e.counts[:0]
	for y := 0; y < ht; y += rows {
		y1 := min(y+rows, ht)
		e.raw = p.AppendInt32LE(e.raw[:0], y*w, y1*w)
		start := e.file.Len()
		e.zw.Reset(&e.file)
		if _, err := e.zw.Write(e.raw); err != nil {
			return nil, fmt.Errorf("tiff: deflate: %w", err)
		}
		if err := e.zw.Close(); err != nil {
			return nil, fmt.Errorf("tiff: deflate: %w", err)
		}
		e.offsets = append(e.offsets, uint32(start))
		e.counts = append(e.counts, uint32(e.file.Len()-start))
	}
	if e.file.Len()%2 == 1 {
		e.file.WriteByte(0) // IFDs start on a word boundary
	}

	e.text = h.AppendText(e.text[:0], w, ht)
	e.text = append(e.text, 0)
	var date [20]byte
	h.Timestamp.AppendFormat(date[:0], "2006:01:02 15:04:05")

	const nentries = 17
	ifd := uint32(e.file.Len())
	// Values that do not fit in an entry's 4 bytes follow the IFD.
	extra := ifd + 2 + nentries*12 + 4
	descOff := extra
	extra += uint32(len(e.text))
	extra += extra & 1
	softOff := extra
	extra += uint32(len(Software) + 1)
	extra += extra & 1
	dateOff := extra
	extra += 20
	xresOff := extra
	extra += 8
	yresOff := extra
	extra += 8
	offsOff, countsOff := e.offsets[0], e.counts[0]
	if nstrips > 1 {
		offsOff = extra
		extra += 4 * uint32(nstrips)
		countsOff = extra
		extra += 4 * uint32(nstrips)
	}
	if uint64(extra) > math.MaxUint32 {
		return nil, fmt.Errorf("tiff: file exceeds 4 GiB")
	}

	var ent [12]byte
	entry := func(tag, typ uint16, count, value uint32) {
		binary.LittleEndian.PutUint16(ent[0:], tag)
		binary.LittleEndian.PutUint16(ent[2:], typ)
		binary.LittleEndian.PutUint32(ent[4:], count)
		binary.LittleEndian.PutUint32(ent[8:], value) // SHORTs sit in the low bytes (little-endian)
		e.file.Write(ent[:])
	}
	var two [2]byte
	binary.LittleEndian.PutUint16(two[:], nentries)
	e.file.Write(two[:])
	entry(tagImageWidth, typeLong, 1, uint32(w))
	entry(tagImageLength, typeLong, 1, uint32(ht))
	entry(tagBitsPerSample, typeShort, 1, 32)
	entry(tagCompression, typeShort, 1, compressionDeflate)
	entry(tagPhotometric, typeShort, 1, 1) // BlackIsZero
	entry(tagImageDescription, typeASCII, uint32(len(e.text)), descOff)
	entry(tagStripOffsets, typeLong, uint32(nstrips), offsOff)
	entry(tagSamplesPerPixel, typeShort, 1, 1)
	entry(tagRowsPerStrip, typeLong, 1, uint32(rows))
	entry(tagStripByteCounts, typeLong, uint32(nstrips), countsOff)
	entry(tagXResolution, typeRational, 1, xresOff)
	entry(tagYResolution, typeRational, 1, yresOff)
	entry(tagPlanarConfiguration, typeShort, 1, 1)
	entry(tagResolutionUnit, typeShort, 1, resolutionCM)
	entry(tagSoftware, typeASCII, uint32(len(Software)+1), softOff)
	entry(tagDateTime, typeASCII, 20, dateOff)
	entry(tagSampleFormat, typeShort, 1, sampleFormatInt)
	e.file.Write([]byte{0, 0, 0, 0}) // no next IFD

	e.file.Write(e.text)
	if e.file.Len()%2 == 1 {
		e.file.WriteByte(0)
	}
	e.file.WriteString(Software)
	e.file.WriteByte(0)
	if e.file.Len()%2 == 1 {
		e.file.WriteByte(0)
	}
	e.file.Write(date[:19])
	e.file.WriteByte(0)
	var rat [8]byte
	for _, ps := range []float64{h.PixelSizeX, h.PixelSizeY} {
		// Pixels per centimetre as a rational with three decimals.
		ppcm := min(max(math.Round(0.01/ps*1000), 1), math.MaxUint32)
		binary.LittleEndian.PutUint32(rat[0:], uint32(ppcm))
		binary.LittleEndian.PutUint32(rat[4:], 1000)
		e.file.Write(rat[:])
	}
	if nstrips > 1 {
		var four [4]byte
		for _, v := range e.offsets {
			binary.LittleEndian.PutUint32(four[:], v)
			e.file.Write(four[:])
		}
		for _, v := range e.counts {
			binary.LittleEndian.PutUint32(four[:], v)
			e.file.Write(four[:])
		}
	}
	out := e.file.Bytes()
	if uint32(len(out)) != extra {
		return nil, fmt.Errorf("tiff: internal layout error: %d bytes, expected %d", len(out), extra)
	}
	binary.LittleEndian.PutUint32(out[4:], ifd)
	return out, nil
}
