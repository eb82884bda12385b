package stream

import (
	"bytes"
	"crypto/md5"
	"reflect"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	zmq "github.com/pebbe/zmq4"

	"tioga/driver/codec"
	"tioga/internal/testenv"
)

// TestSocketHandle pins what the pooled receive relies on in pebbe/zmq4:
// the libzmq socket handle read from its Socket is the socket itself (libzmq
// reports the same type for it), and a closed Socket is refused.
func TestSocketHandle(t *testing.T) {
	ctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Term()
	for _, typ := range []zmq.Type{zmq.PULL, zmq.PUSH} {
		s, err := ctx.NewSocket(typ)
		if err != nil {
			t.Fatal(err)
		}
		h, err := socketHandle(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := socketType(h); got != int(typ) {
			t.Errorf("%v: libzmq says the handle is of type %d", typ, got)
		}
		_, err = newPartReader(s)
		if (err == nil) != (typ == zmq.PULL) {
			t.Errorf("%v: newPartReader: %v", typ, err)
		}
		s.Close()
		if _, err := socketHandle(s); err == nil {
			t.Errorf("%v: closed socket accepted", typ)
		}
	}
}

// v2Frames4M gives V2 image messages of the real EIGER 4M frame 0 (as an
// EIGER2 4M would send it), numbered as asked, built into one reused
// buffer, and the start message of their series.
type v2Frames4M struct {
	b     V2Builder
	img   *Image
	buf   []byte
	start []byte
}

func newV2Frames4M(tb testing.TB) *v2Frames4M {
	f := &v2Frames4M{b: V2Builder{SelfDescribe: true}, img: mustParseV1(tb, v1ImageParts(tb, 0)).Image}
	f.img.Version, f.img.SeriesID, f.img.Channel, f.img.UniqueID = 2, 6, "threshold_1", "01HBV3JPF9T4ZDPADX6EMK6XMZ"
	f.img.StartTime, f.img.StopTime, f.img.RealTime = Ticks{0, 50_000_000}, Ticks{99625, 50_000_000}, Ticks{99625, 50_000_000}
	var err error
	f.start, err = f.b.AppendStart(nil, &Series{ID: 6, UniqueID: f.img.UniqueID, Width: v1Width, Height: v1Height,
		Channels: []string{"threshold_1"}, NumberOfImages: 1 << 20, ElemSize: 2, BitDepth: 16})
	if err != nil {
		tb.Fatal(err)
	}
	f.buf = make([]byte, 0, 2<<20)
	return f
}

func (f *v2Frames4M) frame(tb testing.TB, n uint64) []byte {
	f.img.Number = n
	var err error
	if f.buf, err = f.b.AppendImage(f.buf[:0], f.img); err != nil {
		tb.Fatal(err)
	}
	return f.buf
}

// v1Frames4M gives the real EIGER 4M frame 0 as V1 messages numbered as
// asked, the first part built into one reused buffer.
type v1Frames4M struct {
	parts [][]byte
	head  []byte
}

func newV1Frames4M(tb testing.TB) *v1Frames4M {
	return &v1Frames4M{parts: v1ImageParts(tb, 0)}
}

func (f *v1Frames4M) frame(n uint64) [][]byte {
	f.head = append(f.head[:0], `{"frame":`...)
	f.head = strconv.AppendUint(f.head, n, 10)
	f.head = append(f.head, `,"hash":"","htype":"dimage-1.0","series":6}`...)
	f.parts[0] = f.head
	return f.parts
}

// TestReceiveDecodeAllocatesNothingPerFrame pins the receive path's
// promise: once warm, receiving a real 4M frame over a socket, parsing it,
// tracking its series, delivering it, decoding its pixels and releasing it
// allocates nothing, in either stream version (testing.AllocsPerRun counts
// every goroutine's allocations: the receiver's, the consumer's and the
// sender's). Before the pooled receive every V1 frame cost 1.17 MB in 35
// allocations, 18 of them encoding/json's on the small JSON parts.
func TestReceiveDecodeAllocatesNothingPerFrame(t *testing.T) {
	testenv.SkipIfShort(t) // 4M frames; and the race detector's sync.Pool drops items on purpose
	want := md5.Sum(decodeV1Frame0(t))
	for _, version := range []int{1, 2} {
		t.Run("V"+strconv.Itoa(version), func(t *testing.T) {
			push := newPusher(t)
			rr := startReceiver(t, Config{Endpoint: push.endpoint})
			var send func(n uint64)
			if version == 1 {
				push.send(v1HeaderParts(t)...)
				f := newV1Frames4M(t)
				send = func(n uint64) { push.send(f.frame(n)...) }
			} else {
				f := newV2Frames4M(t)
				push.send(f.start)
				send = func(n uint64) { push.send(f.frame(t, n)) }
			}
			rr.expect("S6")

			// The consumer: decode, check (the first frames), release; one
			// signal per frame.
			decoded := make(chan bool)
			go func() {
				dec := codec.NewDecoder()
				buf := make([]byte, v1Width*v1Height*2)
				for m := range rr.Events() {
					if m.Image == nil {
						continue
					}
					_, err := dec.Decode(buf, m.Image.Data, m.Image.Encoding, m.Image.ElemSize)
					check := m.Image.Number < 3
					m.Image.Release()
					decoded <- err == nil && (!check || md5.Sum(buf) == want)
				}
			}()
			deadline := time.NewTimer(patience)
			defer deadline.Stop()
			var n uint64
			frame := func() {
				send(n)
				n++
				select {
				case ok := <-decoded:
					if !ok {
						t.Errorf("frame %d decoded wrong", n-1)
					}
				case <-deadline.C:
					t.Fatalf("frame %d not decoded in time; stats %+v", n-1, rr.Stats())
				}
			}
			for range 10 { // warm up: buffers, pools, the decoder's scratch
				frame()
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heap0 := ms.TotalAlloc
			const runs = 50
			allocs := testing.AllocsPerRun(runs, frame)
			runtime.ReadMemStats(&ms)
			perFrame := float64(ms.TotalAlloc-heap0) / (runs + 1)
			t.Logf("V%d: %.0f allocations, %.0f bytes per frame", version, allocs, perFrame)
			if allocs != 0 || perFrame > 64 {
				t.Errorf("V%d: %.0f allocations (%.0f bytes) per frame once warm, want none", version, allocs, perFrame)
			}
			if st := rr.Stats(); st.Images != n || st.Malformed != 0 || st.Duplicates != 0 {
				t.Errorf("stats %+v after %d frames", st, n)
			}
		})
	}
}

// decodeV1Frame0 is frame 0 of the V1 capture, decoded.
func decodeV1Frame0(t *testing.T) []byte {
	img := mustParseV1(t, v1ImageParts(t, 0)).Image
	buf := make([]byte, img.DecodedSize())
	if _, err := codec.NewDecoder().Decode(buf, img.Data, img.Encoding, img.ElemSize); err != nil {
		t.Fatal(err)
	}
	return buf
}

// TestReleasedBuffersAreReused checks the ownership rules of the pooled
// receive with frames of different content and size: a released Image's
// buffer is reused for a later frame, an Image that is kept (never
// released) is never overwritten, and every delivered frame holds exactly
// the bytes sent.
func TestReleasedBuffersAreReused(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	s := &v1Stream{t: t}
	push.send(s.header(3)...)
	rr.expect("S3")

	// Frames of three sizes, each filled with its number.
	sent := func(n uint64) []byte {
		return bytes.Repeat([]byte{byte(n)}, 8*4*2*(1+int(n%3)))
	}
	var b V1Builder
	var kept []*Image
	bufs := map[*byte]bool{}
	const frames = 60
	for n := uint64(0); n < frames; n++ {
		data := sent(n)
		parts, err := b.Image(&Image{SeriesID: 3, Number: n, Pixels: Pixels{Width: 8, Height: 4 * (1 + int(n%3)), ElemSize: 2, Encoding: codec.Raw, Data: data}})
		if err != nil {
			t.Fatal(err)
		}
		push.send(parts...)
		img := rr.next().Image
		if img == nil || img.Number != n || !bytes.Equal(img.Data, data) {
			t.Fatalf("frame %d not received intact: %+v", n, img)
		}
		bufs[unsafe.SliceData(img.Data)] = true
		if n%10 == 0 {
			kept = append(kept, img) // never released
			continue
		}
		img.Release()
		img.Release() // a second call does nothing
	}
	for _, img := range kept {
		if !bytes.Equal(img.Data, sent(img.Number)) {
			t.Errorf("kept frame %d was overwritten", img.Number)
		}
	}
	// Released buffers come back: far fewer buffers than frames (the kept
	// ones, and a few that a garbage collection took from the pool).
	if !raceEnabled && len(bufs) > len(kept)+10 {
		t.Errorf("%d frames used %d different buffers", frames, len(bufs))
	}
	// The counter says the same: at most one message buffer per pixel
	// buffer seen (a buffer's pixel part is replaced when a larger frame
	// comes), and one more for the header.
	if st := rr.Stats(); st.Buffers < 2 || st.Buffers > uint64(len(bufs))+1 {
		t.Errorf("Stats.Buffers %d, %d pixel buffers seen", st.Buffers, len(bufs))
	}
	// An Image the receiver did not make: Release does nothing.
	mustParseV1(t, v1ImageParts(t, 0)).Image.Release()
}

// checkPooledParse parses a message again the receiver's way, into the
// pooled Image of a message buffer that holds an earlier frame's values, and
// fails unless the result equals the fresh parse (m, err).
func checkPooledParse(t *testing.T, m Message, err error, parse func(*Parser) (Message, error)) {
	t.Helper()
	mb := &msgBuf{other: make([]Pixels, 1, 4)}
	mb.img = Image{Version: 9, Number: 77, UniqueID: "stale", Appendix: []byte{1}, Other: mb.other, HasHash: true,
		Pixels: Pixels{Channel: "stale", Width: 3, Data: []byte{2}}}
	mb.img.buf = mb
	p := Parser{target: &mb.img}
	pm, perr := parse(&p)
	if (perr == nil) != (err == nil) || (err != nil && perr.Error() != err.Error()) || pm.Kind() != m.Kind() {
		t.Fatalf("pooled parse: %v %v, fresh: %v %v", pm.Kind(), perr, m.Kind(), err)
	}
	if m.Image == nil {
		return
	}
	if pm.Image != &mb.img {
		t.Fatal("pooled parse did not fill the pooled Image")
	}
	got := *pm.Image
	if got.buf != mb {
		t.Fatal("pooled parse lost the Image's buffer")
	}
	got.buf = nil
	if !reflect.DeepEqual(&got, m.Image) {
		t.Fatalf("pooled parse differs:\n%+v\n%+v", &got, m.Image)
	}
}
