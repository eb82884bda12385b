package stream

/*
#cgo !windows pkg-config: libzmq
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

// tioga_recv receives one message part into msg and returns its size, or
// -errno. EINTR (a signal, e.g. the Go runtime's preemption) is retried,
// as pebbe/zmq4 does with its default context.
static long long tioga_recv(void *sock, zmq_msg_t *msg) {
	zmq_msg_init(msg);
	for (;;) {
		if (zmq_msg_recv(msg, sock, 0) >= 0) {
			return (long long)zmq_msg_size(msg);
		}
		int e = zmq_errno();
		if (e != EINTR) {
			zmq_msg_close(msg);
			return -(long long)e;
		}
	}
}

// tioga_take copies the first n bytes of the part received by tioga_recv
// into dst (n is 0 to discard it), releases the part and reports whether
// more parts of the message follow.
static int tioga_take(zmq_msg_t *msg, void *dst, size_t n) {
	if (n > 0) {
		memcpy(dst, zmq_msg_data(msg), n);
	}
	int more = zmq_msg_more(msg);
	zmq_msg_close(msg);
	return more;
}

// tioga_socket_type is ZMQ_TYPE of sock, or -errno.
static int tioga_socket_type(void *sock) {
	int t = 0;
	size_t len = sizeof t;
	if (zmq_getsockopt(sock, ZMQ_TYPE, &t, &len) != 0) {
		return -zmq_errno();
	}
	return t;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"syscall"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// Receiving into pooled buffers.
//
// pebbe/zmq4's RecvBytes returns a fresh Go slice per message part: 1.2 MB
// of garbage per EIGER 4M frame, which at 500 frames/s kept the garbage
// collector busy (BenchmarkReceive4M: 0.05 ms of GC CPU and 1.17 MB per
// frame). The receiver instead receives each part with libzmq's message API
// (zmq_msg_recv) and copies it straight into a buffer of its own, reused
// from frame to frame: the consumer hands the buffers back with
// Image.Release when it no longer needs the encoded pixels.
//
// pebbe/zmq4 v1.4.0 has no receive-into-buffer call and does not export
// its libzmq socket handle, so partReader reads the handle from the
// Socket's unexported field by reflection (socketHandle) and checks, through
// libzmq, that it is the PULL socket it should be. That is some twenty lines
// against a pinned module, where the alternative, a patched copy of
// pebbe/zmq4 kept beside gopcua's, would be some five thousand lines to
// carry and re-check on every upgrade; TestSocketHandle fails at once should
// an upgrade of pebbe/zmq4 change its Socket.

// msgBuf holds one received message: its parts, in buffers reused from
// message to message, and the Image parsed from it. The Image's Data,
// Appendix and Other alias the parts, so the whole msgBuf stays with the
// consumer until Image.Release returns it to its pool.
type msgBuf struct {
	parts [][]byte // the message's parts, views of store
	store [][]byte // one buffer per part index, kept at their capacity
	img   Image
	other []Pixels // storage for img.Other, kept from message to message
	pool  *sync.Pool
}

// slot returns part i's buffer, size bytes long. A buffer that is too
// small is replaced by one with room for a quarter more: compressed frames
// vary in size, and the next, slightly larger one then fits.
func (m *msgBuf) slot(i, size int) []byte {
	for len(m.store) <= i {
		m.store = append(m.store, nil)
	}
	if cap(m.store[i]) < size {
		m.store[i] = make([]byte, size, size+size/4)
	}
	return m.store[i][:size]
}

// Release hands the message buffers the Image was received into back to
// the Receiver, which reuses them for later frames. Call it once the
// encoded pixels (Data, Other, Appendix) are no longer needed; afterwards
// neither the Image nor anything taken from it may be used, as the
// receiver overwrites them. An Image that is never released is simply
// garbage collected (the receiver then allocates a new buffer), so Release
// only saves work. It does nothing for Images the Receiver did not make
// (parsed with ParseV1 or ParseV2, or built by hand), or when called again.
func (img *Image) Release() {
	if img == nil || img.buf == nil {
		return
	}
	b := img.buf
	img.buf = nil
	b.pool.Put(b)
}

// partReader receives message parts from a libzmq socket into Go buffers.
type partReader struct {
	sock unsafe.Pointer // the libzmq socket (owned by the pebbe Socket)
	msg  *C.zmq_msg_t   // C memory: receiving into it allocates nothing in Go
}

// newPartReader reads from s, which must be a PULL socket.
func newPartReader(s *zmq.Socket) (*partReader, error) {
	h, err := socketHandle(s)
	if err != nil {
		return nil, err
	}
	if t := socketType(h); t != C.ZMQ_PULL {
		return nil, fmt.Errorf("stream: the socket handle read from pebbe/zmq4 is not the PULL socket (ZMQ_TYPE %d)", t)
	}
	return &partReader{sock: h, msg: (*C.zmq_msg_t)(C.malloc(C.sizeof_zmq_msg_t))}, nil
}

// socketHandle returns the libzmq socket of a pebbe/zmq4 Socket: the
// unexported field soc of v1.4.0 (see the comment at the top).
func socketHandle(s *zmq.Socket) (unsafe.Pointer, error) {
	f := reflect.ValueOf(s).Elem().FieldByName("soc")
	if !f.IsValid() || f.Kind() != reflect.UnsafePointer {
		return nil, errors.New("stream: pebbe/zmq4's Socket has no field soc holding the libzmq socket (the module changed: see recvbuf.go)")
	}
	h := f.UnsafePointer()
	if h == nil {
		return nil, errors.New("stream: pebbe/zmq4's Socket is closed")
	}
	return h, nil
}

// socketType is libzmq's ZMQ_TYPE of a socket handle, or -errno.
func socketType(h unsafe.Pointer) int { return int(C.tioga_socket_type(h)) }

// close frees the C memory; the socket itself belongs to its pebbe Socket.
func (p *partReader) close() {
	if p.msg != nil {
		C.free(unsafe.Pointer(p.msg))
		p.msg = nil
	}
}

// receive reads one whole message into m, waiting at most the socket's
// receive timeout for its first part (then the error is EAGAIN, as from
// pebbe/zmq4). Parts beyond maxParts+1 are read and discarded (the message
// is then malformed), so a flood of parts cannot grow memory.
func (p *partReader) receive(m *msgBuf) error {
	m.parts = m.parts[:0]
	for i := 0; ; i++ {
		n := C.tioga_recv(p.sock, p.msg)
		if n < 0 {
			return zmq.Errno(syscall.Errno(-n))
		}
		size := int(n)
		var dst unsafe.Pointer
		if i <= maxParts {
			b := m.slot(i, size)
			m.parts = append(m.parts, b)
			if size > 0 {
				dst = unsafe.Pointer(&b[0])
			}
		} else {
			size = 0
		}
		if C.tioga_take(p.msg, dst, C.size_t(size)) == 0 {
			return nil
		}
	}
}
