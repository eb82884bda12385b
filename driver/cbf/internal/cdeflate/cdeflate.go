//go:build comparedeflate

package cdeflate

/*
#cgo LDFLAGS: -lisal -ldeflate
#include <stdlib.h>
#include <string.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>

typedef struct {
	struct isal_zstream st;
	unsigned char lbuf[ISAL_DEF_LVL3_DEFAULT];
	struct libdeflate_compressor *ld[13];
} cmp_state;

static cmp_state *cmp_new(void) { return calloc(1, sizeof(cmp_state)); }

static void cmp_free(cmp_state *s) {
	for (int i = 0; i < 13; i++) if (s->ld[i]) libdeflate_free_compressor(s->ld[i]);
	free(s);
}

static int isal_buf_size(int level) {
	switch (level) {
	case 1: return ISAL_DEF_LVL1_DEFAULT;
	case 2: return ISAL_DEF_LVL2_DEFAULT;
	case 3: return ISAL_DEF_LVL3_DEFAULT;
	}
	return 0;
}

// isal_stateless compresses in[0:n] as one raw deflate stream in one call.
static long cmp_isal_stateless(cmp_state *s, int level, unsigned char *in, long n, unsigned char *out, long cap) {
	struct isal_zstream *st = &s->st;
	isal_deflate_stateless_init(st);
	st->level = level;
	st->level_buf = s->lbuf;
	st->level_buf_size = isal_buf_size(level);
	st->next_in = in; st->avail_in = n; st->end_of_stream = 1;
	st->next_out = out; st->avail_out = cap;
	if (isal_deflate_stateless(st) != COMP_OK) return -1;
	return cap - st->avail_out;
}

// isal_stream feeds in[0:n] in chunks, as the block-by-block Encoder would.
static long cmp_isal_stream(cmp_state *s, int level, unsigned char *in, long n, long chunk, unsigned char *out, long cap) {
	struct isal_zstream *st = &s->st;
	isal_deflate_init(st);
	st->level = level;
	st->level_buf = s->lbuf;
	st->level_buf_size = isal_buf_size(level);
	st->next_out = out; st->avail_out = cap;
	for (long off = 0; off < n;) {
		long m = n - off < chunk ? n - off : chunk;
		st->next_in = in + off; st->avail_in = m;
		st->end_of_stream = off + m == n;
		if (isal_deflate(st) != COMP_OK || st->avail_in != 0) return -1;
		off += m;
	}
	return cap - st->avail_out;
}

static long cmp_libdeflate(cmp_state *s, int level, unsigned char *in, long n, unsigned char *out, long cap) {
	if (!s->ld[level]) s->ld[level] = libdeflate_alloc_compressor(level);
	if (!s->ld[level]) return -1;
	long r = libdeflate_deflate_compress(s->ld[level], in, n, out, cap);
	return r == 0 ? -1 : r;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Compressors holds the C compressors' state of the comparison.
type Compressors struct{ s *C.cmp_state }

// New allocates the C state; Close frees it.
func New() *Compressors { return &Compressors{C.cmp_new()} }

// Close frees the C state.
func (c *Compressors) Close() { C.cmp_free(c.s) }

var errCompare = errors.New("cdeflate: compressor failed")

func cptr(b []byte) *C.uchar { return (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b))) }

// ISAL compresses in into out as raw deflate with ISA-L at level (0-3):
// in one stateless call when chunk is 0, else streamed in chunks.
func (c *Compressors) ISAL(level int, in []byte, chunk int, out []byte) ([]byte, error) {
	var n C.long
	if chunk == 0 {
		n = C.cmp_isal_stateless(c.s, C.int(level), cptr(in), C.long(len(in)), cptr(out), C.long(len(out)))
	} else {
		n = C.cmp_isal_stream(c.s, C.int(level), cptr(in), C.long(len(in)), C.long(chunk), cptr(out), C.long(len(out)))
	}
	if n < 0 {
		return nil, errCompare
	}
	return out[:n], nil
}

// Libdeflate compresses in into out as raw deflate with libdeflate.
func (c *Compressors) Libdeflate(level int, in, out []byte) ([]byte, error) {
	n := C.cmp_libdeflate(c.s, C.int(level), cptr(in), C.long(len(in)), cptr(out), C.long(len(out)))
	if n < 0 {
		return nil, errCompare
	}
	return out[:n], nil
}
