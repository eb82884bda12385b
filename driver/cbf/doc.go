// Package cbf writes and reads the "miniCBF" image files of macromolecular
// crystallography: a PILATUS_1.2 text header followed by one binary section
// of signed 32-bit pixels compressed with CBF byte-offset, optionally
// gzip-compressed as a whole (.cbf.gz), the form in which XDS, DIALS/dxtbx,
// CrystFEL, ADXV and Albula read EIGER data written frame by frame.
//
// The layout follows the files written by DECTRIS and CBFlib to the byte
// where readers are strict (see the project's docs/cbf.md): CR LF line ends,
// the exact MIME header spellings, the 0C 1A 04 D5 marker at the start of a
// line, an MD5 of the compressed data, 4095 bytes of padding.
//
// Writing is split so that the hot path allocates nothing: an Encoder per
// worker goroutine holds all scratch buffers and returns the finished file
// bytes; the caller (driver/writer) puts them on disk. Decode and ReadFile
// read the files back, validating everything, for tests, tools and
// end-to-end checks.
//
// Deflate is pure Go: klauspost/compress's for the numbered levels and
// GzipAuto's sparse blocks, our own Huffman-only encoder (huffEncoder) for
// GzipAuto's dense blocks, about 25 % less write-stage CPU than klauspost's
// Huffman-only at no larger files (figures at GzipAuto). The C libraries
// Debian offers (Intel ISA-L, libdeflate) were measured against the
// klauspost path and neither is both faster and as compact on detector data.
// Byte-offset encoding of 16-bit frames has an SSE2 kernel on amd64
// (byteoffset_amd64.s).
package cbf
