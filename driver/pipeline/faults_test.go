package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"
	zmq "github.com/pebbe/zmq4"

	"tioga/device/contract"
	"tioga/device/detectormodel"
	"tioga/driver/codec"
	"tioga/driver/stream"
	"tioga/driver/writer"
	"tioga/properties"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// scriptedDetector is a detector that does exactly what a test tells it,
// including things a real one should not: silence mid-series, a new series
// before the end, garbage between frames. Stream V1 over a real PUSH socket.
type scriptedDetector struct {
	t     *testing.T
	push  *zmq.Socket
	b     stream.V1Builder
	gen   *diffraction.Generator
	prof  detectormodel.Profile
	raw   []byte
	coder *codec.Encoder
	truth truth.Frame
}

func newScriptedDetector(t *testing.T) *scriptedDetector {
	t.Helper()
	push, err := zmq.NewSocket(zmq.PUSH)
	if err != nil {
		t.Fatal(err)
	}
	if err := push.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	push.SetLinger(time.Second)
	t.Cleanup(func() { push.Close() })
	prof, _ := detectormodel.ByName("eiger500k")
	c := diffraction.DefaultConfig(prof)
	c.HitFraction = 0.5
	c.Seed = 5
	gen, err := diffraction.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return &scriptedDetector{t: t, push: push, gen: gen, prof: prof, coder: codec.NewEncoder(),
		raw: make([]byte, prof.Pixels()*2)}
}

func (d *scriptedDetector) endpoint() string {
	ep, err := d.push.GetLastEndpoint()
	if err != nil {
		d.t.Fatal(err)
	}
	return ep
}

func (d *scriptedDetector) send(parts [][]byte) {
	d.t.Helper()
	if _, err := d.push.SendMessage(parts); err != nil {
		d.t.Fatal(err)
	}
}

func (d *scriptedDetector) header(id uint64, n int) {
	d.t.Helper()
	g := d.gen.Config()
	parts, err := d.b.Header(&stream.Series{Version: 1, ID: id, HeaderDetail: "basic",
		Description: "Dectris EIGER X 500K", SerialNumber: "E-01-0001",
		Width: d.prof.Width(), Height: d.prof.Height(), PixelSizeX: 75e-6, PixelSizeY: 75e-6,
		BeamCenterX: g.BeamX + stream.PixelCentre, BeamCenterY: g.BeamY + stream.PixelCentre, DetectorDistance: g.Distance, Wavelength: g.Wavelength,
		CountTime: 0.001, FrameTime: 0.001, NumberOfImages: uint64(n), BitDepth: 16, ElemSize: 2})
	if err != nil {
		d.t.Fatal(err)
	}
	d.send(parts)
}

func (d *scriptedDetector) image(id uint64, i int) {
	d.t.Helper()
	d.send(d.imageParts(id, i))
}

// imageParts builds image i's message without sending it. Tests that need
// the frames to arrive in a burst (back-pressure, a detector that falls
// silent) build them first: generating and encoding a frame takes long
// enough under the race detector on a loaded machine to look like silence.
func (d *scriptedDetector) imageParts(id uint64, i int) [][]byte {
	d.t.Helper()
	if err := d.gen.Frame(i, d.raw, &d.truth); err != nil {
		d.t.Fatal(err)
	}
	enc, err := d.coder.Encode(nil, d.raw, codec.BSLZ4, 2)
	if err != nil {
		d.t.Fatal(err)
	}
	parts, err := d.b.Image(&stream.Image{Version: 1, SeriesID: id, Number: uint64(i),
		Pixels: stream.Pixels{Width: d.prof.Width(), Height: d.prof.Height(), ElemSize: 2, Encoding: codec.BSLZ4, Data: enc}})
	if err != nil {
		d.t.Fatal(err)
	}
	out := make([][]byte, len(parts))
	for k, p := range parts {
		out[k] = bytes.Clone(p)
	}
	return out
}

// images builds frames from..to-1 of series id, to be sent in a burst.
func (d *scriptedDetector) images(id uint64, from, to int) [][][]byte {
	d.t.Helper()
	var msgs [][][]byte
	for i := from; i < to; i++ {
		msgs = append(msgs, d.imageParts(id, i))
	}
	return msgs
}

// burst sends prebuilt messages back to back.
func (d *scriptedDetector) burst(msgs [][][]byte) {
	d.t.Helper()
	for _, m := range msgs {
		d.send(m)
	}
}

func (d *scriptedDetector) end(id uint64) { d.send(d.b.End(&stream.End{Version: 1, SeriesID: id})) }

// server is the server side of a fault test.
type server struct {
	dev  *contract.Devices
	pipe *Pipeline
	recv *stream.Receiver
	dir  string
}

func newServer(t *testing.T, endpoint string, mutate func(*Config, *stream.Config)) *server {
	t.Helper()
	dir := t.TempDir()
	dev, err := contract.Build(contract.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	rc := stream.Config{Endpoint: endpoint, SeriesTimeout: 20 * time.Second}
	cfg := Config{Workers: 2, ExportPeriod: 30 * time.Millisecond,
		Writer:        writer.Config{Directory: filepath.Join(dir, "img"), Prefix: "f", Run: 1, MinFreeBytes: -1, Format: writer.FormatCBF},
		WriterEnabled: true}
	if mutate != nil {
		mutate(&cfg, &rc)
	}
	recv, err := stream.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := gocron.NewScheduler()
	if err != nil {
		t.Fatal(err)
	}
	sched.Start()
	t.Cleanup(func() { sched.Shutdown() })
	pipe, err := New(cfg, dev, sched, recv, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = recv.Run(ctx) }()
	go func() { _ = pipe.Run(ctx, recv.Events()); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("pipeline did not stop")
		}
	})
	return &server{dev: dev, pipe: pipe, recv: recv, dir: dir}
}

// waitSummary waits for the summary of series id.
func (s *server) waitSummary(t *testing.T, id uint64) Summary {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if sum, ok := s.pipe.LastSummary(); ok && sum.SeriesID == id {
			time.Sleep(60 * time.Millisecond) // one more export period
			return sum
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("series %d never finished; status %q", id, s.dev.Stream.Status.Value().Text)
	return Summary{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestStreamStopsMidSeries(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), func(c *Config, rc *stream.Config) { rc.SeriesTimeout = 700 * time.Millisecond })
	frames := det.images(1, 0, 8)
	det.header(1, 20)
	det.burst(frames)
	// ... and the detector falls silent.
	sum := srv.waitSummary(t, 1)
	if sum.Complete || sum.EndReason != stream.EndTimeout || sum.Processed != 8 || sum.Written != 8 {
		t.Fatalf("summary %+v", sum)
	}
	st := srv.dev.Stream
	status := st.Status.Value().Text
	if !strings.HasPrefix(status, "error: ") || !strings.Contains(status, "timeout") || !strings.Contains(status, "8 of 20") {
		t.Fatalf("status %q", status)
	}
	waitFor(t, "timeout counters", func() bool {
		return st.SeriesTimeouts.Value().Int() == 1 && st.SeriesIncomplete.Value().Int() == 1
	})
	if v, _ := st.DozorPass.Read(); v.Rows() != 8 {
		t.Fatalf("%d records", v.Rows())
	}
	for i := 1; i <= 8; i++ {
		if _, err := os.Stat(filepath.Join(srv.dir, "img", fmt.Sprintf("f_1_%05d.cbf", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The server keeps serving: the next series is fine.
	if err := st.WriterRun.Write(t.Context(), properties.Int32Value(2)); err != nil {
		t.Fatal(err)
	}
	next := det.images(2, 0, 3)
	det.header(2, 3)
	det.burst(next)
	det.end(2)
	sum = srv.waitSummary(t, 2)
	if !sum.Complete || sum.Processed != 3 || st.Status.Value().Text != contract.StatusDone {
		t.Fatalf("next series: %+v, status %q", sum, st.Status.Value().Text)
	}
}

func TestNewSeriesBeforeEndAndStragglers(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	det.header(1, 10)
	for i := 0; i < 5; i++ {
		det.image(1, i)
	}
	det.header(2, 4) // the old series never ended
	det.image(1, 5)  // a straggler of the old series
	for i := 0; i < 4; i++ {
		det.image(2, i)
	}
	det.end(2)
	sum := srv.waitSummary(t, 2)
	if !sum.Complete || sum.Processed != 4 {
		t.Fatalf("series 2: %+v", sum)
	}
	st := srv.dev.Stream
	waitFor(t, "straggler counted", func() bool { return st.Stragglers.Value().Int() == 1 })
	if st.SeriesIncomplete.Value().Int() != 1 {
		t.Fatalf("incomplete series %d", st.SeriesIncomplete.Value().Int())
	}
	// Series 1's five accepted frames were processed and written.
	for i := 1; i <= 5; i++ {
		if _, err := os.Stat(filepath.Join(srv.dir, "img", fmt.Sprintf("f_1_%05d.cbf", i))); err != nil {
			t.Fatalf("series 1 frame %d: %v", i, err)
		}
	}
	if st.SeriesID.Value().Int() != 2 || st.FrameCount.Value().Int() != 4 {
		t.Fatalf("series-id %v frame-count %v", st.SeriesID.Value(), st.FrameCount.Value())
	}
}

func TestMalformedMessagesBetweenGoodOnes(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	det.header(1, 4)
	det.image(1, 0)
	det.send([][]byte{[]byte(`{"htype":"dimage-1.0","series":1,"frame":`)}) // truncated JSON
	det.image(1, 1)
	det.send([][]byte{{0xff, 0x00, 0x13, 0x37}}) // binary garbage
	det.image(1, 2)
	det.send([][]byte{[]byte(`{"htype":"dimage-1.0","series":1,"frame":3}`), []byte(`{"htype":"dimage_d-1.0","shape":[1030,514],"type":"uint16","encoding":"bs16-lz4<","size":99}`), []byte("short")})
	det.image(1, 3)
	det.end(1)
	sum := srv.waitSummary(t, 1)
	if !sum.Complete || sum.Processed != 4 || sum.Written != 4 || sum.BadFrames != 0 {
		t.Fatalf("summary %+v", sum)
	}
	st := srv.dev.Stream
	waitFor(t, "malformed counted", func() bool { return st.Malformed.Value().Int() == 3 })
	if st.Status.Value().Text != contract.StatusDone {
		t.Fatalf("status %q", st.Status.Value().Text)
	}
	if !strings.Contains(st.LastError.Value().Text, "") {
		t.Fatal("last error")
	}
}

// flakyFS is the real file system until Break, then refuses to create files
// as a directory whose permissions were taken away would.
type flakyFS struct {
	writer.FS
	broken atomic.Bool
}

func (f *flakyFS) OpenFile(name string, flag int, perm fs.FileMode) (writer.File, error) {
	if f.broken.Load() && flag&os.O_CREATE != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
	}
	return f.FS.OpenFile(name, flag, perm)
}

func TestOutputDirectoryBecomesUnwritable(t *testing.T) {
	det := newScriptedDetector(t)
	ffs := &flakyFS{FS: writer.OS}
	srv := newServer(t, det.endpoint(), func(c *Config, _ *stream.Config) { c.Writer.FS = ffs })
	st := srv.dev.Stream
	det.header(1, 10)
	for i := 0; i < 4; i++ {
		det.image(1, i)
	}
	waitFor(t, "four frames written", func() bool { return st.FramesWritten.Value().Int() == 4 })
	ffs.broken.Store(true)
	for i := 4; i < 10; i++ {
		det.image(1, i)
	}
	waitFor(t, "failures reported while the series runs", func() bool {
		return st.FilesFailed.Value().Int() == 6 && strings.HasPrefix(st.Status.Value().Text, "error: writer")
	})
	if !strings.Contains(st.WriterError.Value().Text, "permission denied") || !strings.Contains(st.WriterError.Value().Text, filepath.Join(srv.dir, "img", "f_1_")) {
		t.Fatalf("writer-error %q", st.WriterError.Value().Text)
	}
	det.end(1)
	sum := srv.waitSummary(t, 1)
	// Every accepted frame was analysed and recorded; only the files failed.
	if sum.Processed != 10 || sum.Written != 4 {
		t.Fatalf("summary %+v", sum)
	}
	if v, _ := st.DozorPass.Read(); v.Rows() != 10 {
		t.Fatalf("%d records", v.Rows())
	}
	if got := st.Status.Value().Text; !strings.HasPrefix(got, "error: ") || !strings.Contains(got, "6 frames not written") {
		t.Fatalf("status %q", got)
	}
	// The frames written before the failure are intact.
	for i := 1; i <= 4; i++ {
		if _, err := os.Stat(filepath.Join(srv.dir, "img", fmt.Sprintf("f_1_%05d.cbf", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The directory comes back: the next series writes again.
	ffs.broken.Store(false)
	if err := st.WriterRun.Write(t.Context(), properties.Int32Value(2)); err != nil {
		t.Fatal(err)
	}
	det.header(2, 2)
	det.image(2, 0)
	det.image(2, 1)
	det.end(2)
	sum = srv.waitSummary(t, 2)
	if sum.Written != 2 || st.Status.Value().Text != contract.StatusDone {
		t.Fatalf("after recovery: %+v %q", sum, st.Status.Value().Text)
	}
}

func TestBackPressureLosesNothing(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), func(c *Config, rc *stream.Config) {
		c.Workers, c.QueueDepth = 1, 1
		rc.QueueLength = 1
	})
	st := srv.dev.Stream
	var sawFull sync.Once
	full := make(chan struct{})
	sub := st.QueueState.Subscribe(properties.SubscribeOptions{})
	defer sub.Close()
	go func() {
		for u := range sub.C {
			if strings.HasPrefix(u.Value.Text, "full") {
				sawFull.Do(func() { close(full) })
			}
		}
	}()
	const n = 30
	frames := det.images(1, 0, n)
	det.header(1, n)
	det.burst(frames)
	det.end(1)
	sum := srv.waitSummary(t, 1)
	if !sum.Complete || sum.Processed != n || sum.Written != n {
		t.Fatalf("summary %+v", sum)
	}
	if st.BackPressure.Value().Int() == 0 {
		t.Fatal("no back-pressure counted with one worker and a queue of one")
	}
	select {
	case <-full:
	default:
		t.Fatal("queue-state never said full")
	}
	waitFor(t, "queue-state back to ok", func() bool { return st.QueueState.Value().Text == "ok" })
}

// TestFreeDiskPublishedBetweenSeries: the housekeeping job reports the free
// space where the next series will write, before any series arrives.
func TestFreeDiskPublishedBetweenSeries(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	waitFor(t, "free-disk", func() bool { return srv.dev.Stream.FreeDisk.Value().Float() > 0 })
	free, err := writer.OS.FreeBytes(srv.dir)
	if err != nil {
		t.Fatal(err)
	}
	got := srv.dev.Stream.FreeDisk.Value().Float()
	if d := got - float64(free); d > 1<<30 || d < -(1<<30) {
		t.Fatalf("free-disk %.0f, statfs says %d", got, free)
	}
}
