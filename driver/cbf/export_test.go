package cbf

// ByteOffset returns the byte-offset stream of p, for tests of the stages
// that follow it.
func ByteOffset(p Pixels) []byte { return appendPixelRange(nil, p, 0, p.Len()) }

// HuffDeflate returns the raw deflate stream huffEncoder writes for data
// in blocks of blockSize bytes (one block if blockSize <= 0), ended by
// syncFlush when sync is set (then by finish).
func HuffDeflate(dst, data []byte, blockSize int, sync bool) []byte {
	var h huffEncoder
	h.buf = dst
	if blockSize <= 0 {
		blockSize = max(1, len(data))
	}
	for from := 0; from < len(data); from += blockSize {
		b := data[from:min(len(data), from+blockSize)]
		h.histogram(b)
		h.writeBlock(b)
	}
	if sync {
		h.syncFlush()
	}
	h.finish()
	return h.buf
}

// HuffLengths returns the literal/length code lengths huffEncoder gives
// the symbols of data (256 bytes and end-of-block).
func HuffLengths(data []byte) []uint8 {
	var h huffEncoder
	h.histogram(data)
	h.fastLengths(h.freq[:], h.lens[:], huffMaxBits)
	return append([]uint8(nil), h.lens[:]...)
}

// ByteOffsetBlocks returns a frame's byte-offset data in the blocks the
// .cbf.gz path compresses one by one.
func ByteOffsetBlocks(p Pixels) [][]byte {
	var bl [][]byte
	for from := 0; from < p.Len(); from += gzipBlockPixels {
		bl = append(bl, appendPixelRange(nil, p, from, min(p.Len(), from+gzipBlockPixels)))
	}
	return bl
}

// AutoDeflate compresses the blocks as one raw deflate stream as GzipAuto
// does.
func AutoDeflate(bl [][]byte) ([]byte, error) {
	g, err := newGzipState(GzipAuto)
	if err != nil {
		return nil, err
	}
	for _, b := range bl {
		if err := g.deflate(b); err != nil {
			return nil, err
		}
	}
	err = g.close()
	return g.data.buf, err
}
