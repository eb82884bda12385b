// Package cbitshuffle calls the bitshuffle C library (Debian package
// "bitshuffle", the HDF5 filter plugin libh5bshuf.so) so that the tests and
// benchmarks of package codec can compare the pure-Go codec with the
// reference implementation, byte for byte.
//
// The shared object is loaded with dlopen at run time, on first use, so that
// nothing that merely imports this package (and nothing outside tests, as
// the package is internal) needs the library to build or start. The path is
// DefaultPath unless the environment variable TIOGA_BITSHUFFLE_LIB names
// another. When the library is missing every function returns the load
// error: tests must treat that as a failure (the Makefile installs it).
//
// The C library's bshuf_compress_lz4 writes the blocks and the raw tail but
// not the 12-byte header (the HDF5 filter adds that); Compress prepends it
// and Decompress strips it, so both speak the container EIGER sends.
//
// LZ4Compress and LZ4Decompress expose the reference LZ4 library (liblz4,
// which the bitshuffle library links) for checking the plain-LZ4 encodings.
//
// The C decoder does not bound its reads by the input length, so Decompress
// first walks the block lengths in Go and refuses input that would make it
// read past the end.
package cbitshuffle

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

typedef int64_t (*bshuf_fn)(const void*, void*, size_t, size_t, size_t);
typedef size_t (*bshuf_bound_fn)(size_t, size_t, size_t);

static int64_t call_bshuf(void *f, const void *in, void *out, size_t size, size_t elem, size_t block) {
	return ((bshuf_fn)f)(in, out, size, elem, block);
}

static size_t call_bound(void *f, size_t size, size_t elem, size_t block) {
	return ((bshuf_bound_fn)f)(size, elem, block);
}

typedef int (*lz4_fn)(const char*, char*, int, int);

static int call_lz4(void *f, const void *src, void *dst, int srcLen, int dstCap) {
	return ((lz4_fn)f)((const char*)src, (char*)dst, srcLen, dstCap);
}

static void *open_lib(const char *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// DefaultPath is where Debian 12's "bitshuffle" package installs the library.
const DefaultPath = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins/libh5bshuf.so"

// EnvPath names the environment variable that overrides DefaultPath.
const EnvPath = "TIOGA_BITSHUFFLE_LIB"

// DefaultBlockSize is the block size in bytes the library (and EIGER) uses
// when asked for its default: 8192 bytes, i.e. 8192/elemSize elements.
const DefaultBlockSize = 8192

const headerSize = 12

var lib struct {
	once                                     sync.Once
	err                                      error
	path                                     string
	compress, decompress, shuffle, unshuffle unsafe.Pointer
	bound                                    unsafe.Pointer
	lz4Compress, lz4Decompress               unsafe.Pointer
}

// Path returns the path the library is (or would be) loaded from.
func Path() string {
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	return DefaultPath
}

// Load opens the library and resolves its functions, once. It returns the
// error of that first attempt on every call, so a test can fail early with
// a clear message.
func Load() error {
	lib.once.Do(func() {
		lib.path = Path()
		cpath := C.CString(lib.path)
		defer C.free(unsafe.Pointer(cpath))
		h := C.open_lib(cpath)
		if h == nil {
			lib.err = fmt.Errorf("cbitshuffle: dlopen %s: %s (install the Debian package bitshuffle, or set %s)", lib.path, C.GoString(C.dlerror()), EnvPath)
			return
		}
		sym := func(name string) unsafe.Pointer {
			cname := C.CString(name)
			defer C.free(unsafe.Pointer(cname))
			p := C.dlsym(h, cname)
			if p == nil && lib.err == nil {
				lib.err = fmt.Errorf("cbitshuffle: %s has no symbol %s", lib.path, name)
			}
			return p
		}
		lib.compress = sym("bshuf_compress_lz4")
		lib.decompress = sym("bshuf_decompress_lz4")
		lib.shuffle = sym("bshuf_bitshuffle")
		lib.unshuffle = sym("bshuf_bitunshuffle")
		lib.bound = sym("bshuf_compress_lz4_bound")
		// liblz4 is a dependency of the bitshuffle library; dlsym on its
		// handle searches the dependencies too, so the LZ4 used here is
		// the very one bitshuffle compresses with.
		lib.lz4Compress = sym("LZ4_compress_default")
		lib.lz4Decompress = sym("LZ4_decompress_safe")
	})
	return lib.err
}

func checkArgs(n, elemSize, blockElems int) error {
	if elemSize != 1 && elemSize != 2 && elemSize != 4 && elemSize != 8 {
		return fmt.Errorf("cbitshuffle: element size %d", elemSize)
	}
	if n%elemSize != 0 {
		return fmt.Errorf("cbitshuffle: %d bytes is not a whole number of %d-byte elements", n, elemSize)
	}
	if blockElems < 0 || blockElems%8 != 0 {
		return fmt.Errorf("cbitshuffle: block of %d elements is not a multiple of 8", blockElems)
	}
	return nil
}

// ptr returns the address of b's first byte, or nil for an empty slice.
func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// Compress appends the bitshuffle+LZ4 container of src (the 12-byte header,
// then the library's blocks and raw tail) to dst. blockElems is the block
// length in elements, a multiple of 8, or 0 for the library default.
func Compress(dst, src []byte, elemSize, blockElems int) ([]byte, error) {
	if err := Load(); err != nil {
		return dst, err
	}
	if err := checkArgs(len(src), elemSize, blockElems); err != nil {
		return dst, err
	}
	if blockElems == 0 {
		blockElems = max((DefaultBlockSize/elemSize)&^7, 128)
	}
	n := len(src) / elemSize
	bound := int(C.call_bound(lib.bound, C.size_t(n), C.size_t(elemSize), C.size_t(blockElems)))
	start := len(dst)
	if cap(dst)-start < headerSize+bound {
		grown := make([]byte, start, start+headerSize+bound)
		copy(grown, dst)
		dst = grown
	}
	out := dst[start : start+headerSize+bound]
	binary.BigEndian.PutUint64(out, uint64(len(src)))
	binary.BigEndian.PutUint32(out[8:], uint32(blockElems*elemSize))
	body := out[headerSize:]
	if len(body) == 0 {
		return dst[:start+headerSize], nil
	}
	r := int64(C.call_bshuf(lib.compress, ptr(src), ptr(body), C.size_t(n), C.size_t(elemSize), C.size_t(blockElems)))
	if r < 0 {
		return dst[:start], fmt.Errorf("cbitshuffle: bshuf_compress_lz4 returned error %d", r)
	}
	return dst[:start+headerSize+int(r)], nil
}

// Decompress decodes a bitshuffle+LZ4 container with its 12-byte header
// into dst, whose length must equal the size the header announces, and
// returns the number of bytes of src the library consumed.
func Decompress(dst, src []byte, elemSize int) (int, error) {
	if err := Load(); err != nil {
		return 0, err
	}
	if len(src) < headerSize {
		return 0, errors.New("cbitshuffle: input shorter than the header")
	}
	total := binary.BigEndian.Uint64(src)
	bs := binary.BigEndian.Uint32(src[8:])
	if total != uint64(len(dst)) {
		return 0, fmt.Errorf("cbitshuffle: header announces %d bytes, destination holds %d", total, len(dst))
	}
	if bs == 0 || int(bs)%elemSize != 0 {
		return 0, fmt.Errorf("cbitshuffle: block size %d bytes", bs)
	}
	blockElems := int(bs) / elemSize
	if err := checkArgs(len(dst), elemSize, blockElems); err != nil {
		return 0, err
	}
	body := src[headerSize:]
	n := len(dst) / elemSize
	if err := walkBlocks(body, n, elemSize, blockElems); err != nil {
		return 0, err
	}
	if len(dst) == 0 {
		return headerSize, nil
	}
	r := int64(C.call_bshuf(lib.decompress, ptr(body), ptr(dst), C.size_t(n), C.size_t(elemSize), C.size_t(blockElems)))
	if r < 0 {
		return 0, fmt.Errorf("cbitshuffle: bshuf_decompress_lz4 returned error %d", r)
	}
	return headerSize + int(r), nil
}

// walkBlocks checks that every block length and the raw tail lie inside
// body, so that the C decoder, which trusts them, cannot read past its end.
func walkBlocks(body []byte, n, elemSize, blockElems int) error {
	blocks := n / blockElems
	if (n%blockElems)&^7 > 0 {
		blocks++
	}
	pos := 0
	for i := 0; i < blocks; i++ {
		if len(body)-pos < 4 {
			return fmt.Errorf("cbitshuffle: block %d: truncated length", i)
		}
		l := int(binary.BigEndian.Uint32(body[pos:]))
		if l > len(body)-pos-4 {
			return fmt.Errorf("cbitshuffle: block %d: %d bytes announced, %d left", i, l, len(body)-pos-4)
		}
		pos += 4 + l
	}
	if len(body)-pos < (n%8)*elemSize {
		return errors.New("cbitshuffle: raw tail truncated")
	}
	return nil
}

// BitShuffle bit-shuffles src into dst as one block (len(src) a multiple of
// 8*elemSize, len(dst) == len(src)).
func BitShuffle(dst, src []byte, elemSize int) error {
	return transpose(true, dst, src, elemSize)
}

// BitUnshuffle undoes BitShuffle for one block.
func BitUnshuffle(dst, src []byte, elemSize int) error {
	return transpose(false, dst, src, elemSize)
}

func transpose(shuffle bool, dst, src []byte, elemSize int) error {
	if err := Load(); err != nil {
		return err
	}
	fn, name := lib.unshuffle, "bshuf_bitunshuffle"
	if shuffle {
		fn, name = lib.shuffle, "bshuf_bitshuffle"
	}
	if err := checkArgs(len(src), elemSize, 0); err != nil {
		return err
	}
	if len(dst) != len(src) || len(src)%(8*elemSize) != 0 {
		return fmt.Errorf("cbitshuffle: %s: len(dst)=%d len(src)=%d, want equal and a multiple of %d", name, len(dst), len(src), 8*elemSize)
	}
	if len(src) == 0 {
		return nil
	}
	n := len(src) / elemSize
	r := int64(C.call_bshuf(fn, ptr(src), ptr(dst), C.size_t(n), C.size_t(elemSize), C.size_t(n)))
	if r < 0 {
		return fmt.Errorf("cbitshuffle: %s returned error %d", name, r)
	}
	return nil
}

// LZ4Compress appends one raw LZ4 block of src, as the reference
// LZ4_compress_default makes it, to dst.
func LZ4Compress(dst, src []byte) ([]byte, error) {
	if err := Load(); err != nil {
		return dst, err
	}
	if len(src) > 0x7E000000 {
		return dst, fmt.Errorf("cbitshuffle: LZ4 input of %d bytes is too large", len(src))
	}
	bound := len(src) + len(src)/255 + 16
	start := len(dst)
	if cap(dst)-start < bound {
		grown := make([]byte, start, start+bound)
		copy(grown, dst)
		dst = grown
	}
	out := dst[start : start+bound]
	var empty [1]byte
	in := src
	if len(in) == 0 {
		in = empty[:] // LZ4 wants a valid pointer even for no input
	}
	n := int(C.call_lz4(lib.lz4Compress, unsafe.Pointer(&in[0]), unsafe.Pointer(&out[0]), C.int(len(src)), C.int(bound)))
	if n <= 0 {
		return dst[:start], fmt.Errorf("cbitshuffle: LZ4_compress_default returned %d", n)
	}
	return dst[:start+n], nil
}

// LZ4Decompress decodes one raw LZ4 block into dst with the reference
// LZ4_decompress_safe (which bounds its reads and writes) and returns the
// decoded length.
func LZ4Decompress(dst, src []byte) (int, error) {
	if err := Load(); err != nil {
		return 0, err
	}
	if len(src) == 0 || len(src) > 0x7E000000 || len(dst) > 0x7FFFFFFF {
		return 0, fmt.Errorf("cbitshuffle: LZ4 block of %d bytes into %d", len(src), len(dst))
	}
	var empty [1]byte
	out := dst
	if len(out) == 0 {
		out = empty[:0:1]
	}
	n := int(C.call_lz4(lib.lz4Decompress, unsafe.Pointer(&src[0]), unsafe.Pointer(unsafe.SliceData(out)), C.int(len(src)), C.int(len(dst))))
	if n < 0 {
		return 0, fmt.Errorf("cbitshuffle: LZ4_decompress_safe returned %d", n)
	}
	return n, nil
}
