package stream

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"tioga/driver/codec"
	"tioga/sim/fixtures"
)

// Every test here runs the real libzmq: a PUSH socket on 127.0.0.1 sends,
// the Receiver's PULL socket receives.

// patience bounds every wait so that a broken receiver fails the test
// instead of hanging it; it is not a performance assertion.
const patience = 20 * time.Second

// pusher is the detector side: a PUSH socket bound to a free port.
type pusher struct {
	t        *testing.T
	ctx      *zmq.Context
	sock     *zmq.Socket
	endpoint string
}

func newPusher(t *testing.T) *pusher {
	t.Helper()
	ctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	sock, err := ctx.NewSocket(zmq.PUSH)
	if err != nil {
		t.Fatal(err)
	}
	if err := sock.SetLinger(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := sock.SetSndtimeo(patience); err != nil {
		t.Fatal(err)
	}
	if err := sock.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	ep, err := sock.GetLastEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	p := &pusher{t: t, ctx: ctx, sock: sock, endpoint: ep}
	t.Cleanup(func() {
		sock.Close()
		ctx.Term()
	})
	return p
}

// send sends one (multipart) message.
func (p *pusher) send(parts ...[]byte) {
	p.t.Helper()
	for i, part := range parts {
		flags := zmq.Flag(0)
		if i < len(parts)-1 {
			flags = zmq.SNDMORE
		}
		if _, err := p.sock.SendBytes(part, flags); err != nil {
			p.t.Fatalf("send part %d: %v", i+1, err)
		}
	}
}

// running is a Receiver with Run in a goroutine.
type running struct {
	*Receiver
	t        *testing.T
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	rest     []Message
}

func startReceiver(t *testing.T, cfg Config) *running {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{Receiver: r, t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() { rr.stop() })
	return rr
}

// stop cancels Run and waits for it; it returns the events still queued.
func (rr *running) stop() []Message {
	rr.stopOnce.Do(func() { rr.rest = rr.doStop() })
	return rr.rest
}

func (rr *running) doStop() []Message {
	rr.cancel()
	var rest []Message
	timeout := time.After(patience)
	for {
		select {
		case m, ok := <-rr.Events():
			if !ok {
				select {
				case err := <-rr.done:
					if err != nil {
						rr.t.Errorf("Run: %v", err)
					}
				case <-timeout:
					rr.t.Fatal("Run did not return")
				}
				return rest
			}
			rest = append(rest, m)
		case <-timeout:
			rr.t.Fatal("Events not closed after cancel")
		}
	}
}

// next waits for the next event.
func (rr *running) next() Message {
	rr.t.Helper()
	select {
	case m, ok := <-rr.Events():
		if !ok {
			rr.t.Fatal("Events closed")
		}
		return m
	case <-time.After(patience):
		rr.t.Fatalf("no event within %v; stats %+v", patience, rr.Stats())
	}
	return Message{}
}

// expect reads events and checks their kinds, series and image numbers:
// "S5" series 5 starts, "I5/3" image 3 of series 5, "E5" series 5 ends
// (received), "E5:superseded" synthesized.
func (rr *running) expect(want ...string) []Message {
	rr.t.Helper()
	got := make([]Message, 0, len(want))
	for _, w := range want {
		m := rr.next()
		got = append(got, m)
		if d := describe(m); d != w {
			rr.t.Fatalf("event %d: got %s, want %s (stats %+v)", len(got), d, w, rr.Stats())
		}
	}
	return got
}

func describe(m Message) string {
	switch {
	case m.Series != nil:
		return "S" + itoa(m.Series.ID)
	case m.Image != nil:
		return "I" + itoa(m.Image.SeriesID) + "/" + itoa(m.Image.Number)
	case m.End != nil:
		s := "E" + itoa(m.End.SeriesID)
		if m.End.Synthesized {
			s += ":" + string(m.End.Reason)
		}
		return s
	}
	return "?"
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// waitFor polls a condition on the stats (the receiver counts asynchronously).
func (rr *running) waitFor(what string, cond func(Stats) bool) Stats {
	rr.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		s := rr.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			rr.t.Fatalf("waiting for %s: stats %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Independent decodes of the real frames: md5 of the decoded pixels as
// produced by Debian's bitshuffle C library (python3-bitshuffle:
// bitshuffle.decompress_lz4(payload[12:], shape, dtype, blocksize/elemsize))
// and, for the HDF5-framed "lz4", python3-lz4's lz4.block.decompress per
// block, on the same payload bytes. The 4M frames also have the README's
// 251 297 all-ones pixels.
var goldenPixelMD5 = map[string]string{
	"v1/0":                           "466dfee95c00e7ec8060c7bca25bbeac",
	"v1/1":                           "ce6c03a6abb32c4873006804c3ca1620",
	"v1/2":                           "79cb1532cac76ba7a7baf24aa747b519",
	"eiger2-16m/0":                   "2e9f38756cff141a6dcb0943c5988f0b",
	"dectris-r500k_bm_bslz4_8bit/0":  "c208b2faa0bd0e73f18501d11729b87e",
	"dectris-r500k_bm_bslz4_16bit/0": "9689e246969f1a1343c704ee970e6fc2",
	"dectris-r500k_bm_bslz4_32bit/0": "c250dfcc5f28cfb3b21142cbc662bf98",
	"dectris-r500k_bm_lz4_16bit/0":   "0a39936bec0131217806f2d8576b3424",
	"dectris-r500k_bm_lz4_16bit/9":   "68f1ed9c86983503ebe02ea9a2591bc5",
}

func pixelMD5(t *testing.T, p *Pixels) string {
	t.Helper()
	sum := md5.Sum(decodePixels(t, p))
	return hex.EncodeToString(sum[:])
}

func TestReceiverV1Capture(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint, ReceiveBuffer: 4 << 20, MaxMessageSize: 64 << 20})
	capture := v1Capture(t)
	var total uint64
	for _, msg := range capture {
		push.send(msg...)
		for _, p := range msg {
			total += uint64(len(p))
		}
	}
	ev := rr.expect("S6", "I6/0", "I6/1", "I6/2", "E6")

	s := ev[0].Series
	if s.Width != 2070 || s.Height != 2167 || s.Wavelength != 1.5406012535095215 || s.PhotonEnergy != 8047.77978515625 ||
		len(s.Config) != 50 || s.Arrival.IsZero() {
		t.Errorf("series %s", summary(s))
	}
	if len(s.Flatfield) != 1 || len(s.Flatfield[0].Float32) != 2070*2167 || len(s.PixelMask) != 1 || len(s.PixelMask[0].Uint32) != 2070*2167 ||
		s.CountRateTable == nil || s.CountRateTable.Height != 4000 || string(s.Appendix.Raw) != `{"acqID": "test_1"}` {
		t.Errorf("header tables/appendix not intact: %s", summary(s))
	}
	for frame := 0; frame < 3; frame++ {
		img := ev[1+frame].Image
		fromFile := mustParseV1(t, v1ImageParts(t, frame)).Image
		if !bytes.Equal(img.Data, fromFile.Data) || img.Encoding != codec.BSLZ4 || img.Arrival.IsZero() ||
			img.StartTime != fromFile.StartTime || img.Hash != fromFile.Hash {
			t.Errorf("frame %d not received intact", frame)
		}
		// Identical pixels over the socket and from the file, and equal to
		// an independent decoder's.
		sock, file := pixelMD5(t, &img.Pixels), pixelMD5(t, &fromFile.Pixels)
		if sock != file || sock != goldenPixelMD5["v1/"+itoa(uint64(frame))] {
			t.Errorf("frame %d: pixels md5 %s over the socket, %s from file, want %s", frame, sock, file, goldenPixelMD5["v1/"+itoa(uint64(frame))])
		}
	}
	if frame := decodePixels(t, &ev[1].Image.Pixels); countAllOnes16(frame) != 251297 {
		t.Errorf("frame 0: %d masked pixels, want 251297", countAllOnes16(frame))
	}
	end := ev[4].End
	if end.Synthesized || end.Reason != EndReceived || end.Images != 3 || end.Expected != 10 {
		t.Errorf("end %+v", end)
	}
	st := rr.Stats()
	if st.Messages != 5 || st.Bytes != total || st.Series != 1 || st.Images != 3 || st.Ends != 1 || st.Malformed != 0 || st.InSeries {
		t.Errorf("stats %+v (sent %d bytes)", st, total)
	}
}

func countAllOnes16(b []byte) int {
	n := 0
	for i := 0; i+1 < len(b); i += 2 {
		if b[i] == 0xff && b[i+1] == 0xff {
			n++
		}
	}
	return n
}

func TestReceiverV2Captures(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint, Version: 2})

	// The 16M series: real start, image and end.
	for _, f := range []string{"start.cbor", "image.cbor", "end.cbor"} {
		push.send(v2File(t, v2Dir16M, f))
	}
	ev := rr.expect("S15614", "I15614/0", "E15614")
	if ev[0].Series.UniqueID != "01HBV3JPF9T4ZDPADX6EMK6XMZ" || ev[0].Series.SerialNumber != "E-32-0117" {
		t.Errorf("16M start %s", summary(ev[0].Series))
	}
	if got := pixelMD5(t, &ev[1].Image.Pixels); got != goldenPixelMD5["eiger2-16m/0"] {
		t.Errorf("16M pixels md5 %s, want %s", got, goldenPixelMD5["eiger2-16m/0"])
	}

	// The 500K series have no captured start message: announce each with a
	// built one, then replay the real images and end.
	var b V2Builder
	for i, d := range v2500K {
		start, err := b.AppendStart(nil, &Series{ID: 1, UniqueID: d.uid, Width: 1030, Height: 514,
			Channels: []string{"threshold_1"}, NumberOfImages: 10, ElemSize: d.elemSize})
		if err != nil {
			t.Fatal(err)
		}
		push.send(start)
		for n := 1; n <= 11; n++ {
			push.send(v2ImageFile(t, d.dir, n))
		}
		want := []string{"S1"}
		for n := 0; n < 10; n++ {
			want = append(want, "I1/"+itoa(uint64(n)))
		}
		ev := rr.expect(append(want, "E1")...)
		for n := 1; n <= 10; n++ {
			img := ev[n].Image
			fromFile := mustParseV2(t, v2ImageFile(t, d.dir, n)).Image
			if img.UniqueID != d.uid || !bytes.Equal(img.Data, fromFile.Data) || !bytes.Equal(img.Appendix, fromFile.Appendix) {
				t.Errorf("%s image %d not received intact", d.dir, n)
			}
			if n == 1 || n == 10 {
				sock, file := pixelMD5(t, &img.Pixels), pixelMD5(t, &fromFile.Pixels)
				if sock != file {
					t.Errorf("%s image %d: pixels differ over the socket", d.dir, n)
				}
				if want, ok := goldenPixelMD5[d.dir+"/"+itoa(uint64(n-1))]; ok && sock != want {
					t.Errorf("%s image %d: pixels md5 %s, independent decoder %s", d.dir, n, sock, want)
				}
			}
		}
		if e := ev[11].End; e.Images != 10 || e.Expected != 10 || e.Synthesized {
			t.Errorf("%s end %+v", d.dir, e)
		}
		if st := rr.Stats(); st.Series != uint64(2+i) || st.Malformed != 0 || st.Stragglers != 0 {
			t.Errorf("stats %+v", st)
		}
	}
}

// seriesV1 builds the V1 messages of a small synthetic series.
type v1Stream struct {
	t *testing.T
	b V1Builder
}

func (s *v1Stream) header(id uint64) [][]byte {
	parts, err := s.b.Header(&Series{ID: id, HeaderDetail: "basic", Width: 8, Height: 4, NumberOfImages: 4, Description: "test"})
	if err != nil {
		s.t.Fatal(err)
	}
	return parts
}

func (s *v1Stream) image(id, n uint64) [][]byte {
	data := make([]byte, 8*4*2)
	data[0] = byte(n)
	parts, err := s.b.Image(&Image{SeriesID: id, Number: n, Pixels: Pixels{Width: 8, Height: 4, ElemSize: 2, Encoding: codec.Raw, Data: data}})
	if err != nil {
		s.t.Fatal(err)
	}
	return cloneParts(parts) // the builder reuses its buffers
}

func (s *v1Stream) end(id uint64) [][]byte { return cloneParts(s.b.End(&End{SeriesID: id})) }

func cloneParts(parts [][]byte) [][]byte {
	out := make([][]byte, len(parts))
	for i, p := range parts {
		out[i] = bytes.Clone(p)
	}
	return out
}

func TestReceiverStragglers(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	v := v1Stream{t: t}
	for _, msg := range [][][]byte{
		v.header(5), v.image(5, 0), v.image(5, 1), v.end(5),
		v.image(5, 2), // late image of an ended series
		v.header(6), v.image(6, 0),
		v.image(5, 3), v.end(5), // stragglers while series 6 is open
		v.image(6, 1), v.end(6),
	} {
		push.send(msg...)
	}
	rr.expect("S5", "I5/0", "I5/1", "E5", "S6", "I6/0", "I6/1", "E6")
	st := rr.waitFor("stragglers", func(s Stats) bool { return s.Stragglers == 3 })
	if st.MissedHeader != 0 || st.Images != 4 || st.Malformed != 0 || !strings.Contains(st.LastError, "series 5: end of an ended series") {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverMissedHeader(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	v := v1Stream{t: t}
	push.send(v.image(9, 0)...)
	push.send(v.image(9, 1)...)
	push.send(v.end(9)...)
	push.send(v.header(10)...)
	push.send(v.image(10, 0)...)
	rr.expect("S10", "I10/0")
	st := rr.Stats()
	if st.MissedHeader != 3 || st.Stragglers != 0 || !strings.Contains(st.LastError, "header missed: connect the receiver before arming") {
		t.Errorf("stats %+v", st)
	}
}

// garbage is a collection of bad messages of every kind the receiver must
// survive. Each is followed by a good one in the test.
func garbage(t *testing.T) [][][]byte {
	img := v1ImageParts(t, 0)
	bad := [][][]byte{
		{[]byte("hello")},
		{{}},
		{[]byte("{")},
		{[]byte(`{"htype":"dimage-1.0","series":1,"frame":0}`)},                          // image with one part
		{[]byte(`{"htype":"dunknown-1.0","series":1}`)},                                  // unknown htype
		{img[0], img[1], img[2][:1000], img[3]},                                          // size mismatch
		{img[0], []byte(`{"htype":"dimage_d-1.0","shape":"[x,y,(z)]"}`), img[2], img[3]}, // simulator-style shape
		{[]byte{0xd9, 0xd9, 0xf7, 0xa1, 0x64, 't', 'y', 'p', 'e'}},                       // truncated CBOR
		{[]byte{0xbf, 0x64, 't', 'y', 'p', 'e', 0x65, 'i', 'm', 'a', 'g', 'e', 0xff}},    // image without series
		{[]byte{0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},                   // huge byte string
		{[]byte{0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f}},       // deep nesting
	}
	// An image message whose pixel array lies about its dimensions.
	var b V2Builder
	msg, err := b.AppendImage(nil, &Image{SeriesID: 1, Number: 0, Pixels: Pixels{Width: 4, Height: 4, ElemSize: 2, Encoding: codec.Raw, Data: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(msg, []byte{0x82, 0x04, 0x04}) // dims [4, 4]
	msg[i+1] = 0x05
	bad = append(bad, [][]byte{msg})
	return bad
}

func TestReceiverSkipsGarbage(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	v := v1Stream{t: t}
	bad := garbage(t)
	push.send(v.header(1)...)
	want := []string{"S1"}
	for i, g := range bad {
		push.send(g...)
		push.send(v.image(1, uint64(i))...)
		want = append(want, "I1/"+itoa(uint64(i)))
	}
	push.send(v.end(1)...)
	rr.expect(append(want, "E1")...)
	st := rr.Stats()
	if st.Malformed != uint64(len(bad)) || st.Images != uint64(len(bad)) || st.Messages != uint64(2*len(bad)+2) || st.LastError == "" {
		t.Errorf("stats %+v, want %d malformed", st, len(bad))
	}
	t.Logf("last error: %s", st.LastError)
}

func TestReceiverNewSeriesBeforeEnd(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	v := v1Stream{t: t}
	for _, msg := range [][][]byte{v.header(1), v.image(1, 0), v.header(2), v.image(2, 0), v.end(1), v.end(2)} {
		push.send(msg...)
	}
	ev := rr.expect("S1", "I1/0", "E1:superseded", "S2", "I2/0", "E2")
	if e := ev[2].End; e.Images != 1 || e.Expected != 4 || e.Reason != EndSuperseded {
		t.Errorf("superseded end %+v", e)
	}
	if st := rr.waitFor("late end", func(s Stats) bool { return s.Stragglers == 1 }); st.Superseded != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverAbortDrains(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	v := v1Stream{t: t}
	push.send(v.header(3)...)
	push.send(v.image(3, 0)...)
	rr.expect("S3", "I3/0")
	rr.Abort()
	ev := rr.expect("E3:aborted")
	if e := ev[0].End; e.Images != 1 || !e.Synthesized {
		t.Errorf("aborted end %+v", e)
	}
	// The rest of series 3 is drained and dropped, its end included; the
	// next series arrives whole.
	for _, msg := range [][][]byte{v.image(3, 1), v.image(3, 2), v.end(3), v.header(4), v.image(4, 0), v.end(4)} {
		push.send(msg...)
	}
	rr.expect("S4", "I4/0", "E4")
	st := rr.Stats()
	if st.Aborts != 1 || st.AbortDropped != 3 || st.Stragglers != 0 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
	// Abort with no series open does nothing.
	rr.Abort()
	push.send(v.header(5)...)
	rr.expect("S5")
	if st := rr.Stats(); st.Aborts != 1 {
		t.Errorf("abort with no series counted: %+v", st)
	}
}

func TestReceiverAbortThenNewSeriesWithoutEnd(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	v := v1Stream{t: t}
	push.send(v.header(3)...)
	rr.expect("S3")
	rr.Abort()
	rr.expect("E3:aborted")
	for _, msg := range [][][]byte{v.image(3, 0), v.header(4), v.image(4, 0), v.image(3, 1)} {
		push.send(msg...)
	}
	rr.expect("S4", "I4/0")
	st := rr.waitFor("straggler", func(s Stats) bool { return s.Stragglers == 1 })
	if st.AbortDropped != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverTimeout(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint, SeriesTimeout: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	v := v1Stream{t: t}
	push.send(v.header(7)...)
	push.send(v.image(7, 0)...)
	ev := rr.expect("S7", "I7/0", "E7:timeout")
	if e := ev[2].End; e.Images != 1 || e.Expected != 4 {
		t.Errorf("timeout end %+v", e)
	}
	push.send(v.image(7, 1)...) // too late: a straggler
	st := rr.waitFor("straggler", func(s Stats) bool { return s.Stragglers == 1 })
	if st.Timeouts != 1 || st.InSeries || !strings.Contains(st.LastError, "series 7") {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverDuplicatesAndOrder(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	v := v1Stream{t: t}
	for _, msg := range [][][]byte{v.header(2), v.header(2), v.image(2, 0), v.image(2, 2), v.image(2, 1), v.image(2, 1), v.end(2)} {
		push.send(msg...)
	}
	ev := rr.expect("S2", "I2/0", "I2/2", "I2/1", "E2")
	if ev[4].End.Images != 3 {
		t.Errorf("end %+v", ev[4].End)
	}
	if st := rr.Stats(); st.Duplicates != 2 || st.OutOfOrder != 1 || st.Images != 3 {
		t.Errorf("stats %+v", st)
	}
}

// A consumer that does not read pushes back: the receiver waits (and counts
// it), nothing is lost, and order is kept.
func TestReceiverBackPressure(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint, QueueLength: 1, ReceiveHWM: 4})
	v := v1Stream{t: t}
	const n = 200
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		push.send(v.header(1)...)
		for i := uint64(0); i < n; i++ {
			push.send(v.image(1, i)...)
		}
		push.send(v.end(1)...)
	}()
	rr.waitFor("a full queue", func(s Stats) bool { return s.QueueFull > 0 })
	want := []string{"S1"}
	for i := uint64(0); i < n; i++ {
		want = append(want, "I1/"+itoa(i))
	}
	ev := rr.expect(append(want, "E1")...)
	<-sent
	for i := uint64(0); i < n; i++ {
		if ev[1+i].Image.Data[0] != byte(i) {
			t.Fatalf("image %d carries the pixels of another", i)
		}
	}
	if st := rr.Stats(); st.Images != n || st.QueueFull == 0 || st.Stalled <= 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverForwards(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint, Forward: "tcp://127.0.0.1:*", ForwardBind: true})

	// A second consumer on the forward socket.
	ctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Term()
	pull, err := ctx.NewSocket(zmq.PULL)
	if err != nil {
		t.Fatal(err)
	}
	defer pull.Close()
	pull.SetLinger(0)
	pull.SetRcvtimeo(patience)
	if err := pull.Connect(rr.ForwardEndpoint()); err != nil {
		t.Fatal(err)
	}
	// Until the forward peer is connected, messages are dropped by design:
	// send probes (ends of an unknown series) until one comes through.
	v := v1Stream{t: t}
	probe := v.end(99)[0]
	pull.SetRcvtimeo(50 * time.Millisecond)
	deadline := time.Now().Add(patience)
	for {
		if time.Now().After(deadline) {
			t.Fatal("forward peer never connected")
		}
		push.send(probe)
		if _, err := pull.RecvMessageBytes(0); err == nil {
			break
		}
	}
	pull.SetRcvtimeo(patience)

	capture := v1Capture(t)
	for _, msg := range capture {
		push.send(msg...)
	}
	rr.expect("S6", "I6/0", "I6/1", "I6/2", "E6")
	for i, want := range capture {
		got, err := pull.RecvMessageBytes(0)
		for err == nil && len(got) == 1 && bytes.Equal(got[0], probe) {
			got, err = pull.RecvMessageBytes(0) // a late probe
		}
		if err != nil {
			t.Fatalf("forwarded message %d: %v", i, err)
		}
		if len(got) != len(want) {
			t.Fatalf("forwarded message %d: %d parts, want %d", i, len(got), len(want))
		}
		for j := range want {
			if !bytes.Equal(got[j], want[j]) {
				t.Errorf("forwarded message %d part %d differs", i, j+1)
			}
		}
	}
}

func TestReceiverVersionFixed(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint, Version: 2})
	v := v1Stream{t: t}
	push.send(v.header(1)...) // V1 on a V2 receiver: malformed
	push.send(v2File(t, v2Dir16M, "start.cbor"))
	rr.expect("S15614")
	if st := rr.Stats(); st.Malformed != 1 || !strings.Contains(st.LastError, "V2") {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverShutdownEndsOpenSeries(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	v := v1Stream{t: t}
	push.send(v.header(8)...)
	push.send(v.image(8, 0)...)
	rr.expect("S8", "I8/0")
	rest := rr.stop()
	if len(rest) != 1 || describe(rest[0]) != "E8:shutdown" {
		t.Errorf("after cancel: %v", rest)
	}
}

func TestReceiverConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {Endpoint: "tcp://127.0.0.1:1", Version: 3}, {Endpoint: "nonsense://x"}, {Endpoint: "tcp://127.0.0.1:1", Forward: "bad endpoint"}} {
		if r, err := New(cfg); err == nil {
			r.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	r, err := New(Config{Endpoint: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err == nil {
		t.Error("Run after Close succeeded")
	}
	if _, ok := <-r.Events(); ok {
		t.Error("Events open after Close")
	}
}

// The receiver binds and the detector (simulator) connects: the other
// topology the configuration allows.
func TestReceiverBinds(t *testing.T) {
	rr := startReceiver(t, Config{Endpoint: "tcp://127.0.0.1:*", Bind: true})
	if !strings.HasPrefix(rr.Endpoint(), "tcp://127.0.0.1:") || strings.HasSuffix(rr.Endpoint(), "*") {
		t.Fatalf("endpoint %q", rr.Endpoint())
	}
	ctx, _ := zmq.NewContext()
	defer ctx.Term()
	push, _ := ctx.NewSocket(zmq.PUSH)
	defer push.Close()
	push.SetLinger(time.Second)
	if err := push.Connect(rr.Endpoint()); err != nil {
		t.Fatal(err)
	}
	var b V2Builder
	if _, err := push.SendBytes(b.AppendEnd(nil, &End{SeriesID: 1}), 0); err != nil { // header missed
		t.Fatal(err)
	}
	msg, err := b.AppendStart(nil, &Series{ID: 2, UniqueID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := push.SendBytes(msg, 0); err != nil {
		t.Fatal(err)
	}
	rr.expect("S2")
	if st := rr.waitFor("missed header", func(s Stats) bool { return s.MissedHeader == 1 }); st.Series != 1 {
		t.Errorf("stats %+v", st)
	}
}

// The channel delivered in Image.Pixels: the configured one, else the first
// of the start message's channels, whatever order the image lists them in.
func TestReceiverSelectsChannel(t *testing.T) {
	var b V2Builder
	start, err := b.AppendStart(nil, &Series{ID: 4, UniqueID: "u4", Channels: []string{"threshold_1", "threshold_2"}})
	if err != nil {
		t.Fatal(err)
	}
	_, d1 := encodeFrame(t, 6, 5, 2, codec.BSLZ4, 1)
	_, d2 := encodeFrame(t, 6, 5, 2, codec.BSLZ4, 2)
	img, err := b.AppendImage(nil, &Image{SeriesID: 4, UniqueID: "u4", Number: 0,
		Pixels: Pixels{Channel: "threshold_2", Width: 6, Height: 5, ElemSize: 2, Encoding: codec.BSLZ4, Data: d2},
		Other:  []Pixels{{Channel: "threshold_1", Width: 6, Height: 5, ElemSize: 2, Encoding: codec.BSLZ4, Data: d1}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ configured, want string }{{"", "threshold_1"}, {"threshold_2", "threshold_2"}} {
		push := newPusher(t)
		rr := startReceiver(t, Config{Endpoint: push.endpoint, Channel: c.configured})
		push.send(start)
		push.send(img)
		ev := rr.expect("S4", "I4/0")
		got := ev[1].Image
		if got.Channel != c.want || len(got.Other) != 1 || !bytes.Equal(got.Data, map[string][]byte{"threshold_1": d1, "threshold_2": d2}[c.want]) {
			t.Errorf("configured %q: delivered %q (other %d)", c.configured, got.Channel, len(got.Other))
		}
	}
}

// headerDated is series id's header as armed at date: a re-arm or a
// detector restart sends the same id with another date.
func (s *v1Stream) headerDated(id uint64, date string) [][]byte {
	parts, err := s.b.Header(&Series{ID: id, HeaderDetail: "basic", Width: 8, Height: 4, NumberOfImages: 4, Description: "test",
		Config: map[string]any{"data_collection_date": date}})
	if err != nil {
		s.t.Fatal(err)
	}
	return cloneParts(parts)
}

// A detector restart numbers series from 1 again: a header with the open
// series' id but other content is a new acquisition. The open series ends
// (superseded, its frames kept), the new one starts and gets its own
// frames 0..3; nothing is merged and nothing is dropped as a duplicate.
func TestReceiverRestartWithSameSeriesID(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	v := v1Stream{t: t}
	first := v.headerDated(1, "2026-12-02T10:00:00.000+01:00")
	for _, msg := range [][][]byte{
		first, v.image(1, 0), v.image(1, 1),
		first, // the same header again (sent twice): a repeat, ignored
		v.headerDated(1, "2026-12-02T10:05:00.000+01:00"),
		v.image(1, 0), v.image(1, 1), v.image(1, 2), v.image(1, 3), v.end(1),
	} {
		push.send(msg...)
	}
	ev := rr.expect("S1", "I1/0", "I1/1", "E1:superseded", "S1", "I1/0", "I1/1", "I1/2", "I1/3", "E1")
	if e := ev[3].End; e.Images != 2 || e.Expected != 4 {
		t.Errorf("first acquisition's end %+v", e)
	}
	if e := ev[9].End; e.Images != 4 || e.Synthesized {
		t.Errorf("second acquisition's end %+v", e)
	}
	st := rr.Stats()
	if st.Series != 2 || st.Superseded != 1 || st.Restarts != 1 || st.Duplicates != 1 || st.Images != 6 ||
		!strings.Contains(st.LastError, "same series id") {
		t.Errorf("stats %+v", st)
	}

	// The same while an aborted series drains: another header with its id
	// is a new series, not part of the drain.
	push.send(v.headerDated(2, "a")...)
	rr.expect("S2")
	rr.Abort()
	rr.expect("E2:aborted")
	push.send(v.image(2, 0)...) // drained
	push.send(v.headerDated(2, "b")...)
	push.send(v.image(2, 0)...)
	push.send(v.end(2)...)
	rr.expect("S2", "I2/0", "E2")
	if st := rr.Stats(); st.AbortDropped != 1 {
		t.Errorf("stats %+v", st)
	}
}

// The real EIGER2 V1 dump (dials/data-files): a header_detail "all" header
// whose flatfield, mask and count-rate parts have empty bodies. The series
// is kept with what the header carries (the config part), the three
// unusable parts are counted and said, and the frame is delivered.
func TestReceiverEIGER2HeaderWithEmptyTables(t *testing.T) {
	push := newPusher(t)
	rr := startReceiver(t, Config{Endpoint: push.endpoint})
	dir := []string{"real-frames", "eiger2-16m-roi4m-thaumatin-v1dump"}
	push.send(fixtures.MessageParts(t, append(dir, "header")...)...)
	push.send(fixtures.MessageParts(t, append(dir, "image000044")...)...)
	push.send([]byte(`{"htype":"dseries_end-1.0","series":2619}`))
	ev := rr.expect("S2619", "I2619/43", "E2619")
	s := ev[0].Series
	if s.Width != 2068 || s.Height != 2162 || s.NumberOfImages != 80 || s.Wavelength < 0.976 || s.Wavelength > 0.977 ||
		s.DetectorDistance != 0.337 || s.Flatfield != nil || s.PixelMask != nil || s.CountRateTable != nil || len(s.Unusable) != 3 {
		t.Errorf("series %+v", s)
	}
	if img := ev[1].Image; img.Width != 2068 || img.ElemSize != 2 || img.Encoding != codec.BSLZ4 || len(img.Data) != 673061 {
		t.Errorf("image %dx%d x%d %v %d bytes", img.Width, img.Height, img.ElemSize, img.Encoding, len(img.Data))
	}
	st := rr.Stats()
	if st.HeaderUnusable != 3 || st.Malformed != 0 || st.MissedHeader != 0 ||
		!strings.Contains(st.LastError, "dflatfield (part 4): empty data part") {
		t.Errorf("stats %+v", st)
	}
}
