package cbf

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/flate"
)

// The .cbf.gz path works through a frame in blocks of gzipBlockPixels
// pixels: each block is byte-offset encoded into a small scratch buffer
// that stays in the CPU cache, and from there checksummed (CRC-32 for
// gzip, MD5 when Content-MD5 is on) and compressed, so that the 4.5 MB of
// byte-offset data of an EIGER 4M frame is never written to and read back
// from main memory several times.
//
// The CBF header carries the size (and the MD5) of the data, known only
// once the data is encoded, yet it comes first in the file. The data is
// therefore compressed first, as a deflate stream of its own that starts
// on a byte boundary; the header is compressed afterwards and ended with a
// sync flush (an empty stored block), which also ends on a byte boundary,
// so that the two streams concatenate into one valid deflate stream. The
// gzip CRC-32 of header + data is combined from the two parts
// (crc32Combine) without reading the data again.
const gzipBlockPixels = 1 << 15

// gzipHeader is the fixed 10-byte gzip member header: deflate, no flags,
// no modification time, no extra flags, OS unknown (as Go's gzip writes).
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// maxGzipHeader bounds the gzip header plus the compressed CBF header: the
// text is at most maxHeaderBytes and compresses (or is stored) within a
// few hundred bytes of framing.
const maxGzipHeader = len(gzipHeader) + maxHeaderBytes + 1024

// sink appends what a flate.Writer writes to a reusable buffer.
type sink struct{ buf []byte }

func (s *sink) Write(b []byte) (int, error) {
	s.buf = append(s.buf, b...)
	return len(b), nil
}

// gzipState is the Encoder's .cbf.gz scratch.
type gzipState struct {
	level int           // GzipAuto or a klauspost level
	main  *flate.Writer // the level; for GzipAuto fast, which writes the header
	huff  *huffEncoder  // GzipAuto's Huffman-only blocks
	fast  *flate.Writer // BestSpeed, for the sparse blocks of GzipAuto
	cur   *flate.Writer // the writer of the block before, nil at a frame start
	inHuf bool          // the block before went through huff
	block []byte        // one block of byte-offset data (cache-resident)
	data  sink          // maxGzipHeader bytes of room, then the data's deflate stream
	head  sink          // the compressed CBF header
}

func newGzipState(level int) (*gzipState, error) {
	if level != GzipAuto && (level < flate.HuffmanOnly || level == 0 || level > flate.BestCompression) {
		return nil, fmt.Errorf("cbf: gzip level %d (want auto, -2 for Huffman-only, -1 or 1-9)", level)
	}
	g := &gzipState{level: level}
	if level == GzipAuto {
		g.fast, _ = flate.NewWriter(nil, flate.BestSpeed)
		g.main = g.fast
		g.huff = &huffEncoder{}
		return g, nil
	}
	w, err := flate.NewWriter(nil, level)
	if err != nil {
		return nil, fmt.Errorf("cbf: gzip level %d: %w", level, err)
	}
	g.main = w
	return g, nil
}

// deflate compresses one block of the data stream. With GzipAuto each
// block gets the level that suits it (see GzipAuto): Huffman-only (our
// huffEncoder) for noise, BestSpeed for mostly zero bytes, decided from
// the block's byte histogram. A change of level ends the previous
// writer's output with a sync flush (byte-aligned) and starts the other
// afresh, so that no match refers to data it did not see.
func (g *gzipState) deflate(b []byte) error {
	if g.huff == nil {
		return g.deflateWith(g.main, b)
	}
	g.huff.histogram(b)
	if int(g.huff.freq[0]) >= int(autoZeroFraction*float64(len(b))) {
		if g.inHuf {
			g.huff.buf = g.data.buf
			g.huff.syncFlush()
			g.data.buf = g.huff.buf
			g.inHuf = false
		}
		return g.deflateWith(g.fast, b)
	}
	if g.cur != nil {
		if err := g.cur.Flush(); err != nil {
			return err
		}
		g.cur = nil
	}
	g.inHuf = true
	g.huff.buf = g.data.buf
	g.huff.writeBlock(b)
	g.data.buf = g.huff.buf
	return nil
}

// deflateWith compresses b with the klauspost writer w, which continues
// the stream if it wrote the block before.
func (g *gzipState) deflateWith(w *flate.Writer, b []byte) error {
	if w != g.cur {
		if g.cur != nil {
			if err := g.cur.Flush(); err != nil {
				return err
			}
		}
		w.Reset(&g.data)
		g.cur = w
	}
	_, err := w.Write(b)
	return err
}

// close ends the data stream with a final block on a byte boundary.
func (g *gzipState) close() error {
	if g.inHuf {
		g.huff.buf = g.data.buf
		g.huff.finish()
		g.data.buf = g.huff.buf
		g.inHuf = false
		return nil
	}
	return g.cur.Close()
}

// encodeGzip writes the .cbf.gz file of a validated frame; hd is the header
// text up to and excluding the binary-section lines that depend on the
// data (see appendMIME).
func (e *Encoder) encodeGzip(h *Header, name string, p Pixels) ([]byte, error) {
	g := e.gz
	g.cur, g.inHuf = nil, false
	if g.huff != nil {
		g.huff.reset()
	}
	g.data.buf = grow(g.data.buf[:0], maxGzipHeader)
	if e.opts.ContentMD5 {
		e.md5.Reset()
	}
	var crc uint32
	size := 0
	n := p.Len()
	for from := 0; from < n; from += gzipBlockPixels {
		to := min(n, from+gzipBlockPixels)
		g.block = appendPixelRange(g.block[:0], p, from, to)
		size += len(g.block)
		crc = crc32.Update(crc, crc32.IEEETable, g.block)
		if e.opts.ContentMD5 {
			e.md5.Write(g.block)
		}
		if err := g.deflate(g.block); err != nil {
			return nil, fmt.Errorf("cbf: gzip: %w", err)
		}
	}
	// The padding and the end of the binary section.
	g.block = grow(g.block[:0], padding)
	clear(g.block)
	g.block = append(g.block, binaryEnd...)
	crc = crc32.Update(crc, crc32.IEEETable, g.block)
	if err := g.deflate(g.block); err != nil {
		return nil, fmt.Errorf("cbf: gzip: %w", err)
	}
	if err := g.close(); err != nil {
		return nil, fmt.Errorf("cbf: gzip: %w", err)
	}
	dataLen := size + len(g.block)

	hd, err := e.header(h, name, p, size)
	if err != nil {
		return nil, err
	}
	// Text compresses better with LZ77 than with Huffman codes alone.
	hw := g.main
	g.head.buf = g.head.buf[:0]
	hw.Reset(&g.head)
	if _, err := hw.Write(hd); err != nil {
		return nil, fmt.Errorf("cbf: gzip: %w", err)
	}
	if err := hw.Flush(); err != nil {
		return nil, fmt.Errorf("cbf: gzip: %w", err)
	}
	start := maxGzipHeader - len(g.head.buf) - len(gzipHeader)
	if start < 0 {
		// Cannot happen with the header limits; never write a bad file.
		return nil, fmt.Errorf("cbf: compressed header of %d bytes exceeds %d", len(g.head.buf), maxGzipHeader)
	}
	out := g.data.buf
	copy(out[start:], gzipHeader[:])
	copy(out[start+len(gzipHeader):], g.head.buf)
	crc = crc32Combine(crc32.ChecksumIEEE(hd), crc, int64(dataLen))
	out = binary.LittleEndian.AppendUint32(out, crc)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(hd)+dataLen))
	g.data.buf = out
	return out[start:], nil
}

// crc32Combine returns the CRC-32 (IEEE) of A followed by B from crcA, crcB
// and len(B), as zlib's crc32_combine: crc(A‖B) = crcA·x^(8·lenB) + crcB
// modulo the CRC polynomial (reflected bit order).
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	return multModP(x2nModP(lenB, 3), crcA) ^ crcB
}

const crcPoly = 0xedb88320 // the IEEE polynomial, reflected, x^32 implied

// multModP multiplies a and b modulo the CRC polynomial.
func multModP(a, b uint32) uint32 {
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// x2nTable[k] is x^(2^k) modulo the CRC polynomial.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < 32; k++ {
		p = multModP(p, p)
		t[k] = p
	}
	return t
}()

// x2nModP returns x^(n·2^k) modulo the CRC polynomial.
func x2nModP(n int64, k uint) uint32 {
	p := uint32(1) << 31 // x^0
	for n != 0 {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		n >>= 1
		k++
	}
	return p
}
