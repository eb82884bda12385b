//go:build comparedeflate

package cbf

// The comparedeflate measurement (compare_deflate_test.go) reaches the
// Encoder's deflate path through these.

// CompareBlocks returns a frame's byte-offset data in the blocks the
// .cbf.gz path compresses one by one.
func CompareBlocks(p Pixels) [][]byte {
	var bl [][]byte
	for from := 0; from < p.Len(); from += gzipBlockPixels {
		bl = append(bl, appendPixelRange(nil, p, from, min(p.Len(), from+gzipBlockPixels)))
	}
	return bl
}

// CompareKlauspost is the Encoder's deflate path at one level.
type CompareKlauspost struct{ g *gzipState }

// NewCompareKlauspost returns the Encoder's deflate path at level.
func NewCompareKlauspost(level int) (*CompareKlauspost, error) {
	g, err := newGzipState(level)
	return &CompareKlauspost{g}, err
}

// Compress compresses the blocks as one raw deflate stream exactly as the
// Encoder does (block-wise level choice for GzipAuto).
func (k *CompareKlauspost) Compress(bl [][]byte) ([]byte, error) {
	g := k.g
	g.cur, g.inHuf = nil, false
	if g.huff != nil {
		g.huff.reset()
	}
	g.data.buf = g.data.buf[:0]
	for _, b := range bl {
		if err := g.deflate(b); err != nil {
			return nil, err
		}
	}
	err := g.close()
	return g.data.buf, err
}
