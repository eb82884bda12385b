package tracker

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"tioga/device/contract"
	"tioga/driver/adxv"
	"tioga/properties"
	fake "tioga/sim/adxv"
)

// loadLines is what one tracking delivery without overlay looks like.
func loadLines(paths ...string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, "load_image "+p)
	}
	return out
}

func checkLines(t *testing.T, l *fake.Listener, want []string) {
	t.Helper()
	if got := l.Lines(); !slices.Equal(got, want) {
		t.Fatalf("ADXV received\n  %q\nwant\n  %q", got, want)
	}
	if errs := l.Errors(); len(errs) != 0 {
		t.Fatalf("ADXV protocol errors: %q", errs)
	}
}

// TestShowsBestWrittenFrame: over a series of random scores (a third of
// them blank), every image ADXV is told to load is a frame reported
// written, each scores higher than the one before, and once the tracker
// has caught up ADXV shows the best frame written so far. Only the first
// image of the series comes with raise_window.
func TestShowsBestWrittenFrame(t *testing.T) {
	r := newRig(t, true)
	r.waitStatus(contract.TrackerReady)
	r.tr.SeriesStarted(7)
	if r.status() != contract.TrackerTracking {
		t.Fatalf("status %q after SeriesStarted", r.status())
	}
	rng := rand.New(rand.NewPCG(7, 9))
	written := map[string]float32{}
	best := Frame{Score: float32(math.Inf(-1))}
	n := 0
	for step := 0; step < 8; step++ {
		for k := 0; k < 250; k++ {
			s := float32(rng.IntN(10000)) / 100
			if rng.IntN(3) == 0 {
				s = 0
			}
			f := frame(7, n, s)
			n++
			written[f.Path] = s
			r.tr.FrameWritten(f)
			if s > best.Score {
				best = f
			}
		}
		r.waitImage(r.adxv, best.Path)
		r.waitShown(best.Path)
	}
	imgs := r.adxv.Images()
	prev := float32(math.Inf(-1))
	for _, p := range imgs {
		s, ok := written[p]
		if !ok {
			t.Fatalf("ADXV was told to load %s, which was never reported written", p)
		}
		if !(s > prev) {
			t.Fatalf("shown images %q: %s (score %g) after a frame of score %g", imgs, p, s, prev)
		}
		prev = s
	}
	want := append([]string{"load_image " + imgs[0], "raise_window Image"}, loadLines(imgs[1:]...)...)
	checkLines(t, r.adxv, want)

	r.tr.SeriesEnded(7)
	r.waitStatus(contract.TrackerReady)
	s := r.tr.Stats()
	if s.Frames != uint64(n) || s.Rejected != 0 || s.Shown != uint64(len(imgs)) || s.ADXV.Failures != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestQueueProperties: queue and queue-paths hold the best frames, best
// first, and follow queue-size and filter.
func TestQueueProperties(t *testing.T) {
	r := newRig(t, true)
	r.tr.SeriesStarted(2)
	scores := []float32{0, 3, 1, 0, 7, 3, 2, 0, 5, 6, 4, 9, 0, 8, 0, 0.5}
	write := func(i int) {
		f := frame(2, i, scores[i])
		f.Resolution = float32(i) / 2
		f.Spots = 10 * i
		r.tr.FrameWritten(f)
	}
	for i := 0; i < 14; i++ {
		write(i)
	}
	// Best ten, best first; ties go to the earlier frame (1 before 5).
	order := []int{11, 13, 4, 9, 8, 10, 1, 5, 6, 2}
	expect := func(order []int) {
		t.Helper()
		var rec []float32
		var paths []string
		for _, i := range order {
			rec = append(rec, float32(i), scores[i], float32(10*i), float32(i)/2)
			paths = append(paths, path(2, i))
		}
		r.until(fmt.Sprintf("queue %v", order), func() bool {
			return slices.Equal(r.dev.Queue.Value().Float32s, rec) && r.dev.QueuePaths.Value().Text == strings.Join(paths, "\n")
		})
		if w := r.dev.Queue.Value().Width; w != 4 {
			t.Fatalf("queue record width %d", w)
		}
	}
	expect(order)
	if err := r.dev.QueueSize.Write(t.Context(), properties.Int32Value(3)); err != nil {
		t.Fatal(err)
	}
	expect(order[:3])
	if err := r.dev.QueueSize.Write(t.Context(), properties.Int32Value(0)); !errors.Is(err, properties.ErrOutOfRange) {
		t.Fatalf("queue-size 0: %v", err)
	}
	if err := r.dev.QueueSize.Write(t.Context(), properties.Int32Value(20)); err != nil {
		t.Fatal(err)
	}
	write(14)
	write(15)
	expect([]int{11, 13, 4, 15, 14})
	// filter: only hits are candidates, and only they are published.
	if err := r.dev.Filter.Write(t.Context(), properties.BoolValue(true)); err != nil {
		t.Fatal(err)
	}
	expect([]int{11, 13, 4, 15})
}

// TestFilterShowsNoBlankFrame: with filter on, blank frames are never
// shown, however long they are the only frames.
func TestFilterShowsNoBlankFrame(t *testing.T) {
	r := newRig(t, true)
	if err := r.dev.Filter.Write(t.Context(), properties.BoolValue(true)); err != nil {
		t.Fatal(err)
	}
	r.tr.SeriesStarted(1)
	for i := 0; i < 50; i++ {
		r.tr.FrameWritten(frame(1, i, 0))
	}
	r.periods(3)
	if s := r.tr.Stats(); s.Sent != 0 {
		t.Fatalf("blank frames sent to ADXV with filter on: %+v, images %q", s, r.adxv.Images())
	}
	r.tr.FrameWritten(frame(1, 50, 3.5))
	for i := 51; i < 100; i++ {
		r.tr.FrameWritten(frame(1, i, float32(i%2))) // blanks and weaker hits
	}
	r.waitShown(path(1, 50))
	r.periods(3)
	checkLines(t, r.adxv, []string{"load_image " + path(1, 50), "raise_window Image"})

	// Filter off: blank frames become candidates but none beats the hit.
	if err := r.dev.Filter.Write(t.Context(), properties.BoolValue(false)); err != nil {
		t.Fatal(err)
	}
	r.periods(3)
	if got := r.adxv.Images(); !slices.Equal(got, []string{path(1, 50)}) {
		t.Fatalf("images %q", got)
	}
	// Without filter a series of blank frames shows its first frame.
	r.tr.SeriesStarted(2)
	r.tr.FrameWritten(frame(2, 0, 0))
	r.tr.FrameWritten(frame(2, 1, 0))
	r.waitShown(path(2, 0))
}

// TestSpotOverlay: with spot-list on, the frame's spots go with it (two
// decimals), an empty list clears the overlay, switching spot-list off
// clears it once, and the tracker keeps its own copy of the spots.
func TestSpotOverlay(t *testing.T) {
	r := newRig(t, true, func(c *Config) { c.Raise = RaiseNever })
	if err := r.dev.SpotList.Write(t.Context(), properties.BoolValue(true)); err != nil {
		t.Fatal(err)
	}
	r.tr.SeriesStarted(3)
	xy := []float32{12.3449, 20, 1033.5, 2000.126, 0.994, 4370.996}
	r.tr.FrameWritten(frame(3, 0, 5, xy...))
	for i := range xy {
		xy[i] = -1 // the pipeline reuses its buffer: the tracker must have copied
	}
	r.waitShown(path(3, 0))
	want := []string{"load_image " + path(3, 0), adxv.SpotStyle, "load_spots 3",
		"12.34 20.00 1", "1033.50 2000.13 1", "0.99 4371.00 1", "end_of_pack"}
	checkLines(t, r.adxv, want)
	packs := r.adxv.SpotPacks()
	if len(packs) != 1 || !slices.Equal(packs[0].Spots, []fake.Spot{{X: 12.34, Y: 20, Type: 1}, {X: 1033.5, Y: 2000.13, Type: 1}, {X: 0.99, Y: 4371, Type: 1}}) {
		t.Fatalf("spot packs %+v", packs)
	}
	if ty := r.adxv.Types()[1]; ty.Color != "red" || ty.Radius != 10 {
		t.Fatalf("spot type %+v", ty)
	}

	// A better frame without spots: its empty overlay replaces the old one.
	r.tr.FrameWritten(frame(3, 1, 6))
	r.waitShown(path(3, 1))
	want = append(want, "load_image "+path(3, 1), adxv.SpotStyle, "load_spots 0", "end_of_pack")
	checkLines(t, r.adxv, want)

	// A better frame with spots, then spot-list off: the frame is sent
	// again with one empty overlay; later frames come bare.
	r.tr.FrameWritten(frame(3, 2, 7, 100, 200))
	r.waitShown(path(3, 2))
	want = append(want, "load_image "+path(3, 2), adxv.SpotStyle, "load_spots 1", "100.00 200.00 1", "end_of_pack")
	if err := r.dev.SpotList.Write(t.Context(), properties.BoolValue(false)); err != nil {
		t.Fatal(err)
	}
	want = append(want, "load_image "+path(3, 2), adxv.SpotStyle, "load_spots 0", "end_of_pack")
	r.until("overlay cleared", func() bool { return len(r.adxv.Lines()) == len(want) })
	r.tr.FrameWritten(frame(3, 3, 8, 1, 2))
	want = append(want, "load_image "+path(3, 3))
	r.until("bare frame", func() bool { return len(r.adxv.Lines()) == len(want) })
	checkLines(t, r.adxv, want)

	// load of a queued frame with spot-list on draws that frame's spots.
	if err := r.dev.SpotList.Write(t.Context(), properties.BoolValue(true)); err != nil {
		t.Fatal(err)
	}
	r.until("frame 3 with spots", func() bool { return len(r.adxv.Lines()) == len(want)+5 })
	want = append(want, "load_image "+path(3, 3), adxv.SpotStyle, "load_spots 1", "1.00 2.00 1", "end_of_pack")
	if err := r.dev.Load.Write(t.Context(), properties.TextValue(path(3, 2))); err != nil {
		t.Fatal(err)
	}
	want = append(want, "load_image "+path(3, 2), adxv.SpotStyle, "load_spots 1", "100.00 200.00 1", "end_of_pack")
	r.until("load with spots", func() bool { return len(r.adxv.Lines()) == len(want) })
	checkLines(t, r.adxv, want)
}

// TestLoadCommand: load shows the path at once and switches tracking off;
// nothing more is sent until load-state is true again, which re-sends the
// best frame.
func TestLoadCommand(t *testing.T) {
	r := newRig(t, true)
	r.tr.SeriesStarted(4)
	r.tr.FrameWritten(frame(4, 0, 2))
	r.waitShown(path(4, 0))
	manual := "/data/other/manual_00001.cbf"
	if err := r.dev.Load.Write(t.Context(), properties.TextValue(" "+manual+"\n")); err != nil {
		t.Fatal(err)
	}
	if r.dev.LoadState.Value().Bool() {
		t.Fatal("load left load-state true")
	}
	r.waitShown(manual)
	r.waitStatus(contract.TrackerDisabled)
	want := []string{"load_image " + path(4, 0), "raise_window Image", "load_image " + manual, "raise_window Image"}
	checkLines(t, r.adxv, want)

	r.tr.FrameWritten(frame(4, 1, 50))
	sent := r.tr.Stats().Sent
	r.periods(3)
	if s := r.tr.Stats(); s.Sent != sent {
		t.Fatalf("tracker sent while load-state was false: %q", r.adxv.Images())
	}

	if err := r.dev.LoadState.Write(t.Context(), properties.BoolValue(true)); err != nil {
		t.Fatal(err)
	}
	r.waitShown(path(4, 1))
	r.waitStatus(contract.TrackerTracking)
	want = append(want, "load_image "+path(4, 1), "raise_window Image")
	checkLines(t, r.adxv, want)
	// Clients write true at every collection start: the best is re-sent.
	if err := r.dev.LoadState.Write(t.Context(), properties.BoolValue(true)); err != nil {
		t.Fatal(err)
	}
	want = append(want, "load_image "+path(4, 1), "raise_window Image")
	r.until("re-sent best", func() bool { return len(r.adxv.Lines()) == len(want) })
	checkLines(t, r.adxv, want)

	for _, bad := range []string{"relative.cbf", "/data/a b.cbf", "/data/x.cbf\nexit", ""} {
		if err := r.dev.Load.Write(t.Context(), properties.TextValue(bad)); !errors.Is(err, properties.ErrRejected) {
			t.Errorf("load %q: %v", bad, err)
		}
	}
	if !r.dev.LoadState.Value().Bool() || r.tr.Stats().Loads != 1 {
		t.Errorf("refused loads changed state: load-state %v, stats %+v", r.dev.LoadState.Value(), r.tr.Stats())
	}
}

// TestADXVAbsentAtStart: the status says error while nobody listens, the
// client retries with back-off, and when ADXV appears it gets the best
// frame (only the newest batch: stale ones were dropped).
func TestADXVAbsentAtStart(t *testing.T) {
	r := newRig(t, false)
	r.waitStatus(contract.TrackerError)
	r.tr.SeriesStarted(5)
	for i := 0; i < 100; i++ {
		r.tr.FrameWritten(frame(5, i, float32(i%17)))
	}
	r.periods(3)
	if r.status() != contract.TrackerError {
		t.Fatalf("status %q while ADXV is absent", r.status())
	}
	before := r.tr.Stats().ADXV
	if before.Failures < 2 || before.Delivered != 0 {
		t.Fatalf("client stats while absent %+v", before)
	}
	l := r.listen(fmt.Sprintf("127.0.0.1:%d", r.port))
	r.waitShown(path(5, 16))
	r.waitStatus(contract.TrackerTracking)
	checkLines(t, l, []string{"load_image " + path(5, 16), "raise_window Image"})
	if s := r.tr.Stats().ADXV; s.Reconnects != 1 || s.Delivered != 1 {
		t.Errorf("client stats after recovery %+v", s)
	}
}

// TestADXVDiesMidScan: ADXV exits during a series and comes back; the
// tracker reports error meanwhile and shows the best frame once ADXV is
// back, in both connection modes.
func TestADXVDiesMidScan(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []rigOption
	}{{"connect-send-close", nil}, {"keep-open", []rigOption{keepOpen}}} {
		t.Run(mode.name, func(t *testing.T) {
			r := newRig(t, true, mode.opts...)
			r.tr.SeriesStarted(6)
			for i := 0; i < 100; i++ {
				r.tr.FrameWritten(frame(6, i, float32(i%10)))
			}
			r.waitShown(path(6, 9))
			if err := r.adxv.Stop(); err != nil {
				t.Fatal(err)
			}
			for i := 100; i < 200; i++ {
				s := float32(i % 10)
				if i == 150 {
					s = 20
				}
				r.tr.FrameWritten(frame(6, i, s))
			}
			r.waitStatus(contract.TrackerError)
			if err := r.adxv.Restart(); err != nil {
				t.Fatal(err)
			}
			r.waitShown(path(6, 150))
			r.waitStatus(contract.TrackerTracking)
			// A kept-open delivery is done when the kernel has the bytes:
			// wait for the fake to have read them.
			imgs := r.waitImage(r.adxv, path(6, 150))
			if imgs[len(imgs)-1] != path(6, 150) {
				t.Fatalf("images %q", imgs)
			}
			for _, p := range imgs {
				if p != path(6, 150) && p != path(6, 9) && !strings.HasPrefix(p, "/data/p14/sample/s6_1_000") {
					t.Fatalf("unexpected image %s", p)
				}
			}
			if s := r.tr.Stats().ADXV; s.Failures == 0 || s.Reconnects == 0 {
				t.Errorf("client stats %+v", s)
			}
		})
	}
}

// TestRuntimeSettings: adxv-host/port move the tracker to another viewer,
// which gets the best frame; display-period reschedules the job.
func TestRuntimeSettings(t *testing.T) {
	r := newRig(t, true)
	r.tr.SeriesStarted(8)
	r.tr.FrameWritten(frame(8, 0, 1))
	r.waitShown(path(8, 0))
	other := r.listen("127.0.0.1:0")
	if err := r.dev.ADXVPort.Write(t.Context(), properties.Int32Value(int32(other.Port()))); err != nil {
		t.Fatal(err)
	}
	r.waitImage(other, path(8, 0))
	checkLines(t, other, []string{"load_image " + path(8, 0), "raise_window Image"})
	if err := r.dev.ADXVHost.Write(t.Context(), properties.TextValue("bad host")); !errors.Is(err, properties.ErrRejected) {
		t.Errorf("bad host: %v", err)
	}
	if err := r.dev.ADXVPort.Write(t.Context(), properties.Int32Value(0)); !errors.Is(err, properties.ErrOutOfRange) {
		t.Errorf("port 0: %v", err)
	}
	if err := r.dev.DisplayPeriod.Write(t.Context(), properties.Float64Value(0.05)); err != nil {
		t.Fatal(err)
	}
	r.periods(2)
	r.tr.FrameWritten(frame(8, 1, 2))
	r.waitImage(other, path(8, 1))
	if got := r.dev.DisplayPeriod.Value().Float(); got != 0.05 {
		t.Errorf("display-period %v", got)
	}
	if err := r.dev.DisplayPeriod.Write(t.Context(), properties.Float64Value(0.001)); !errors.Is(err, properties.ErrOutOfRange) {
		t.Errorf("display-period 1 ms: %v", err)
	}
}

// TestRefusedFrames: bad numbers and paths are counted, never queued; an
// odd spot list costs the spots, not the frame; an older series is stale;
// a newer series starts by itself.
func TestRefusedFrames(t *testing.T) {
	r := newRig(t, true, func(c *Config) { c.MaxSpots = 2 })
	if err := r.dev.SpotList.Write(t.Context(), properties.BoolValue(true)); err != nil {
		t.Fatal(err)
	}
	r.tr.SeriesStarted(10)
	nan := float32(math.NaN())
	for _, f := range []Frame{
		{Series: 10, Index: 0, Path: path(10, 0), Score: nan},
		{Series: 10, Index: 1, Path: path(10, 1), Score: float32(math.Inf(1))},
		{Series: 10, Index: 2, Path: path(10, 2), Score: 1, Resolution: -1},
		{Series: 10, Index: -3, Path: path(10, 3), Score: 1},
		{Series: 10, Index: 4, Path: "relative/x.cbf", Score: 1},
		{Series: 10, Index: 5, Path: "/data/x\nexit", Score: 1},
		{Series: 10, Index: 6, Path: path(10, 6), Score: 1, Spots: -1},
	} {
		r.tr.FrameWritten(f)
	}
	r.tr.FrameWritten(frame(10, 7, 1, 1, 2, 3))          // odd spot list: kept without spots
	r.tr.FrameWritten(frame(10, 8, 2, 1, 2, 3, 4, 5, 6)) // three spots, two kept
	r.tr.FrameWritten(frame(9, 0, 100))                  // older series
	s := r.tr.Stats()
	if s.Frames != 10 || s.Rejected != 7 || s.BadSpots != 1 || s.Truncated != 1 || s.Stale != 1 || s.Queued != 2 {
		t.Fatalf("stats %+v", s)
	}
	r.waitShown(path(10, 8))
	lines := r.adxv.Lines()
	if !slices.Contains(lines, "load_spots 2") || slices.Contains(lines, "5.00 6.00 1") {
		t.Fatalf("spots not cut to MaxSpots: %q", lines)
	}
	r.tr.SeriesEnded(10)
	r.waitStatus(contract.TrackerReady)
	r.tr.FrameWritten(frame(11, 0, 0.5)) // no SeriesStarted: the frame starts it
	r.waitStatus(contract.TrackerTracking)
	r.waitShown(path(11, 0))
}

func TestStatusPrecedence(t *testing.T) {
	up, down, unk := adxv.ReachUp, adxv.ReachDown, adxv.ReachUnknown
	for _, c := range []struct {
		closed             bool
		reach              adxv.Reach
		busy, load, series bool
		want               string
	}{
		{true, down, true, true, true, contract.TrackerUnknown},
		{false, down, true, false, true, contract.TrackerError},
		{false, up, true, false, true, contract.TrackerBusy},
		{false, unk, true, false, false, contract.TrackerBusy},
		{false, up, false, false, true, contract.TrackerDisabled},
		{false, up, false, true, true, contract.TrackerTracking},
		{false, unk, false, true, true, contract.TrackerTracking},
		{false, up, false, true, false, contract.TrackerReady},
		{false, unk, false, true, false, contract.TrackerUnknown},
	} {
		if got := statusOf(c.closed, c.reach, c.busy, c.load, c.series); got != c.want {
			t.Errorf("statusOf(%+v) = %q, want %q", c, got, c.want)
		}
	}
}

func TestCloseRefusesWrites(t *testing.T) {
	r := newRig(t, true)
	r.waitStatus(contract.TrackerReady)
	if err := r.tr.Close(); err != nil {
		t.Fatal(err)
	}
	if r.status() != contract.TrackerUnknown {
		t.Errorf("status after Close %q", r.status())
	}
	if err := r.dev.Load.Write(t.Context(), properties.TextValue("/data/x.cbf")); !errors.Is(err, properties.ErrRejected) {
		t.Errorf("load after Close: %v", err)
	}
	r.tr.FrameWritten(frame(1, 0, 1)) // harmless
	if err := r.tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := New(nil, r.sched, Config{}); err == nil {
		t.Error("New without a device")
	}
	if _, err := New(contract.NewTracker(), r.sched, Config{QueueSize: contract.MaxTrackerQueue + 1}); err == nil {
		t.Error("queue size above the contract's bound accepted")
	}
}

// TestBusyWhileLoadInFlight: the status is busy from a load command until
// ADXV has taken the image. The viewer here reads but is slow to close
// its end, which holds the delivery for the client's CloseWait.
func TestBusyWhileLoadInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 8)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				b, _ := io.ReadAll(io.LimitReader(conn, 1<<10)) // until the client's half-close
				got <- string(b)
				time.Sleep(300 * time.Millisecond) // a slow viewer: closes late
			}()
		}
	}()
	dev := contract.NewTracker()
	tr, err := New(dev, newScheduler(t), Config{DisplayPeriod: 20 * time.Millisecond,
		ADXV: adxv.Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, CloseWait: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r := &rig{t: t, dev: dev, tr: tr}
	r.waitStatus(contract.TrackerReady)
	if err := dev.Load.Write(t.Context(), properties.TextValue("/data/slow_00001.cbf")); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(contract.TrackerBusy)
	r.waitStatus(contract.TrackerDisabled)
	if dev.Shown.Value().Text != "/data/slow_00001.cbf" {
		t.Errorf("shown %q", dev.Shown.Value().Text)
	}
	for s := range got {
		if s != "" { // the probe's connection is empty
			if s != "load_image /data/slow_00001.cbf\nraise_window Image\n" {
				t.Errorf("viewer read %q", s)
			}
			break
		}
	}
}
