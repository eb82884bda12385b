package cbf

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
)

// DefaultGzipLevel is the gzip level of .cbf.gz files unless configured.
//
// GzipAuto is the gzip "level" that picks, block by block (gzipBlockPixels),
// between Huffman-only coding and BestSpeed (klauspost level 1), from the
// fraction of zero bytes in the block's byte-offset data (autoZeroFraction).
// Its Huffman-only blocks are our own (huffEncoder: the format of
// klauspost level -2; its blocks chain into one deflate block while the
// block's code suits the next data). What makes it cheaper than klauspost's
// is the code-length construction: a two-queue Huffman code over the sorted
// histogram, limited to 15 bits zlib's way where needed (fastLengths),
// instead of a package-merge. Measured alternating test binaries against
// the klauspost-only GzipAuto (issue 17, shared 2-core EPYC, Mpx/cpu-s):
// BenchmarkStage4MWriteCBFGzip 244-250 -> 295-312 (+18-25 %, 3 rounds of
// 30 frames), BenchmarkCBFGzip/default 284-287 -> 320-327 (+11-15 %, 3
// rounds of 80 frames), 0 allocs/op; on a busier machine earlier 180-245 ->
// 276-308 and 223-277 -> 293-316. Data streams, relative to the klauspost-only GzipAuto
// (TestAutoSizeAgainstKlauspost, which fails on any growth): real 4M fixture
// frame 0.99997 (1 097 420 vs 1 097 456 bytes), cbftest 4M 0.99985, sparse
// (bg 0.05) 1.00000, pipeline sim 4M 1.00000: no file is larger.
//
// Sampled histograms (one 8-byte word in 64 bytes, every literal given a
// floor count so every byte has a code) were measured as well and not
// adopted: the floor codes all 256 literals in every header and the sample
// misjudges the rare ones, so the real frame grew to 1.0042 and the
// pipeline sim frame to 1.0052 of the klauspost size (1.0091 and 1.0092
// with codes cut to 14 bits for the four-code store), beyond the 0.05 %
// issue 17 allows, for CPU within the machine's noise of the exact
// histogram's (write stage 230-357 against 236-305 Mpx/cpu-s).
//
// Neither level wins on all frames. The byte-offset stream of a frame with
// a background of about one count per pixel or more is mostly noise: LZ77
// matches barely exist, Huffman coding captures what there is, and the
// match search only costs time (level 1 makes files ~10 % larger than
// Huffman-only and is slower). On sparse frames (serial crystallography,
// background << 1 count) the stream is long runs of zero bytes, which LZ77
// compresses and Huffman coding cannot (it spends at least one bit per
// byte): level 1 makes files up to 3x smaller there, and is fast. The
// crossover measured on synthetic 1M frames lies at 74-76 % zero bytes:
//
//	background   zero bytes   level 1 / Huffman-only size
//	0.02         96 %         0.37
//	0.1          86 %         0.77
//	0.2          76 %         0.97
//	0.3          68 %         1.05
//	0.5-2        27-56 %      1.10-1.11
//	real 4M      56 %         1.10   (fixture frame of eiger-stream-v1)
//
// Whole-file throughput and size per level, measured with the earlier
// whole-frame writer (BenchmarkCBFGzip: byte-offset, header, MD5 and gzip
// of the synthetic 16-bit EIGER 4M frame of cbftest,
// background ~1-3 counts; one core, megapixels per CPU-second of the
// process on the shared 2-core 2.6 GHz EPYC development machine; sizes are
// exact):
//
//	level               Mpx/cpu-s   .cbf.gz bytes
//	none (.cbf)           436        4 495 577
//	GzipAuto (default)    252        1 732 408   (chose Huffman-only)
//	-2 Huffman-only       257        1 732 408
//	1 BestSpeed           120        1 875 518
//	2                     120        1 847 938
//	3                     108        1 831 310
//	5                      77        1 898 410
//	6                      75        1 896 174
//	9                       9.3      1 763 566
//
// On the real EIGER 4M frame of the eiger-stream-v1 fixture (mean 1.1
// counts): Huffman-only 1 123 156 bytes, level 1 1 237 535, level 6
// 1 071 935. On a sparse synthetic frame (background 0.05): Huffman-only
// 640 172 bytes, level 1 335 897 (and ~260 Mpx/s), level 6 275 794.
//
// Why not a C library (issue 17; measured before huffEncoder, against the
// klauspost-only GzipAuto): Intel ISA-L's
// igzip (Debian libisal-dev 2.30, levels 0-2) and libdeflate
// (libdeflate-dev 1.14, levels 1-3), called through cgo, were measured
// against this path on the byte-offset data of the real EIGER 4M fixture
// frame and of simulated frames (make compare-deflate: CPU ms per frame,
// then the size relative to GzipAuto's; candidates alternated, best of 4
// rounds, on the shared 2-core EPYC; ISA-L in one stateless call, 64 KiB
// chunks measure the same or slower):
//
//	                 real 4M       cbftest 4M     pipeline sim   sparse (bg 0.05)
//	GzipAuto         17.1  1.000   13.9  1.000    15.4  1.000    12.3  1.000
//	ISA-L 0          14.0  1.311   20.8  1.297    14.4  1.316     5.2  1.427
//	ISA-L 1          16.4  1.121   24.8  1.114    15.7  1.116     5.2  1.071
//	ISA-L 2          15.9  1.108   22.5  1.099    15.9  1.114     5.4  1.071
//	libdeflate 1     28.6  1.055   31.3  1.082    29.0  1.045    20.3  0.945
//	libdeflate 2     54.1  1.018   78.6  1.048    53.2  1.010    36.3  0.936
//	libdeflate 3     66.6  0.993   97.2  1.039    64.4  0.980    36.8  0.914
//
// None both costs clearly less CPU and compresses at least as well as
// GzipAuto on the dense frames that are the common case: ISA-L has no
// Huffman-only mode, and its LZ77 levels spend 10-31 % more bytes on noise
// for at most 7 % less CPU (18 % at level 0, 31 % larger); libdeflate
// reaches GzipAuto's size only at level 3, four times slower. Only on
// sparse frames is ISA-L much faster (2.4x), at 7 % larger files. So the
// writer keeps a pure-Go deflate for every level and no cgo dependency;
// the numbered levels stay klauspost's.
const GzipAuto = -100

// autoZeroFraction is the share of zero bytes in the byte-offset stream at
// and above which GzipAuto uses BestSpeed rather than Huffman-only. It sits
// a little above the size crossover (~0.75): in between, the sizes differ by
// a few per cent and Huffman-only is the faster of the two.
const autoZeroFraction = 0.80

// DefaultGzipLevel is the gzip level of .cbf.gz files unless configured:
// GzipAuto, the fastest choice that also gives the smaller file on both
// kinds of data (see the table above).
const DefaultGzipLevel = GzipAuto

// Software is the writer name on the "###CBF: VERSION 1.5" line.
const Software = "Tioga miniCBF writer"

// maxHeaderBytes bounds the text before the binary data. It holds the
// PILATUS header (strings are limited by Validate to maxTextLen each) and
// the MIME header with room to spare.
const (
	maxTextLen     = 256
	maxHeaderBytes = 8192
	padding        = 4095
)

// Options configures an Encoder.
type Options struct {
	// Gzip compresses the whole file (.cbf.gz), as beamlines store them.
	Gzip bool
	// GzipLevel is GzipAuto or a klauspost/compress gzip level (-2 Huffman
	// only, 1 BestSpeed ... 9 BestCompression); 0 means DefaultGzipLevel.
	GzipLevel int
	// ContentMD5 adds the Content-MD5 line (the base64 MD5 of the binary
	// data) to the MIME header. It is optional in CBF: readers check it
	// when present (CBFlib does) and read files without it alike. It costs
	// as much CPU time as byte-offset encoding itself, and in a .cbf.gz the
	// gzip CRC-32, which every gzip reader checks, already covers every
	// byte; driver/writer decides (see its ContentMD5 policy).
	ContentMD5 bool
}

// An Encoder writes frames as miniCBF files. Each worker goroutine owns one:
// it keeps every buffer (the byte-offset data, the MD5 state, the gzip
// state, the output) from one frame to the next, so that encoding allocates
// nothing once it has seen a frame of the largest size. An Encoder is not
// safe for concurrent use.
type Encoder struct {
	opts Options
	// file is the uncompressed file (.cbf): the header is written
	// right-aligned into its first maxHeaderBytes so that the byte-offset
	// data, encoded first, never has to be copied behind it.
	file   []byte
	head   []byte
	md5    hash.Hash
	digest [md5.Size]byte
	b64    [24]byte
	gz     *gzipState // nil for .cbf
}

// NewEncoder returns an Encoder with the given options.
func NewEncoder(o Options) (*Encoder, error) {
	e := &Encoder{opts: o, md5: md5.New(), head: make([]byte, 0, maxHeaderBytes)}
	if o.Gzip {
		level := o.GzipLevel
		if level == 0 {
			level = DefaultGzipLevel
		}
		g, err := newGzipState(level)
		if err != nil {
			return nil, err
		}
		e.gz = g
	}
	return e, nil
}

// Gzip reports whether the encoder writes .cbf.gz files.
func (e *Encoder) Gzip() bool { return e.opts.Gzip }

// Encode returns the complete file for one frame: name is the CIF data
// block name (the file name without extension, e.g. "lyso_1_00001"), h the
// header with this frame's StartAngle and Timestamp. The returned slice is
// owned by the Encoder and valid until the next call.
func (e *Encoder) Encode(h *Header, name string, p Pixels) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if err := checkText(name); err != nil || name == "" || len(name) > maxTextLen || containsBlank(name) {
		return nil, fmt.Errorf("%w: data block name %q must be 1-%d printable ASCII characters without blanks", ErrHeader, name, maxTextLen)
	}
	for _, s := range [...]string{h.Detector, h.Serial, h.Sensor, h.OscillationAxis} {
		if len(s) > maxTextLen {
			return nil, fmt.Errorf("%w: header text longer than %d bytes", ErrHeader, maxTextLen)
		}
	}
	if e.gz != nil {
		return e.encodeGzip(h, name, p)
	}

	// Binary data first, behind room for the header.
	e.file = appendPixels(grow(e.file[:0], maxHeaderBytes), p)
	data := e.file[maxHeaderBytes:]
	if e.opts.ContentMD5 {
		e.md5.Reset()
		e.md5.Write(data)
	}
	hd, err := e.header(h, name, p, len(data))
	if err != nil {
		return nil, err
	}
	start := maxHeaderBytes - len(hd)
	copy(e.file[start:], hd)

	n := len(e.file)
	e.file = grow(e.file, padding)
	clear(e.file[n:])
	e.file = append(e.file, binaryEnd...)
	return e.file[start:], nil
}

// binaryEnd follows the padding: the end of the MIME section and of the
// CIF text field.
const binaryEnd = "\r\n--CIF-BINARY-FORMAT-SECTION----\r\n;\r\n\r\n"

// header returns the file's text up to and including the binary-section
// marker, for dataLen bytes of byte-offset data whose MD5 (when
// ContentMD5 is on) e.md5 holds. The slice is owned by the Encoder.
func (e *Encoder) header(h *Header, name string, p Pixels, dataLen int) ([]byte, error) {
	hd := e.head[:0]
	hd = append(hd, "###CBF: VERSION 1.5, "...)
	hd = append(hd, Software...)
	hd = append(hd, "\r\n\r\ndata_"...)
	hd = append(hd, name...)
	hd = append(hd, "\r\n\r\n_array_data.header_convention \""...)
	hd = append(hd, HeaderConvention(p.Width, p.Height)...)
	hd = append(hd, "\"\r\n_array_data.header_contents\r\n;\r\n"...)
	hd = h.AppendText(hd, p.Width, p.Height)
	hd = append(hd, ";\r\n\r\n_array_data.data\r\n;\r\n--CIF-BINARY-FORMAT-SECTION--\r\n"...)
	hd = append(hd, "Content-Type: application/octet-stream;\r\n     conversions=\"x-CBF_BYTE_OFFSET\"\r\n"...)
	hd = append(hd, "Content-Transfer-Encoding: BINARY\r\nX-Binary-Size: "...)
	hd = strconv.AppendInt(hd, int64(dataLen), 10)
	hd = append(hd, "\r\nX-Binary-ID: 1\r\nX-Binary-Element-Type: \"signed 32-bit integer\"\r\n"...)
	hd = append(hd, "X-Binary-Element-Byte-Order: LITTLE_ENDIAN\r\n"...)
	if e.opts.ContentMD5 {
		e.md5.Sum(e.digest[:0])
		base64.StdEncoding.Encode(e.b64[:], e.digest[:])
		hd = append(hd, "Content-MD5: "...)
		hd = append(hd, e.b64[:]...)
		hd = append(hd, "\r\n"...)
	}
	hd = append(hd, "X-Binary-Number-of-Elements: "...)
	hd = strconv.AppendInt(hd, int64(p.Len()), 10)
	hd = append(hd, "\r\nX-Binary-Size-Fastest-Dimension: "...)
	hd = strconv.AppendInt(hd, int64(p.Width), 10)
	hd = append(hd, "\r\nX-Binary-Size-Second-Dimension: "...)
	hd = strconv.AppendInt(hd, int64(p.Height), 10)
	hd = append(hd, "\r\nX-Binary-Size-Padding: 4095\r\n\r\n\x0c\x1a\x04\xd5"...)
	e.head = hd
	if len(hd) > maxHeaderBytes {
		// Cannot happen with the text limits above; never write a bad file.
		return nil, fmt.Errorf("cbf: header of %d bytes exceeds %d", len(hd), maxHeaderBytes)
	}
	return hd, nil
}

func containsBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return true
		}
	}
	return false
}
