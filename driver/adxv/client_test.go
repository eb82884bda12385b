package adxv

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	fake "tioga/sim/adxv"
)

// reports collects a client's Reports for the test to wait on.
type reports chan Report

func (r reports) on(rep Report) {
	select {
	case r <- rep:
	default: // the test reads them all; a full buffer is a test bug
		panic("report buffer full")
	}
}

// next returns the next report, failing after a generous deadline (the
// deadline only guards against a hang; nothing here is timed).
func (r reports) next(t *testing.T) Report {
	t.Helper()
	select {
	case rep := <-r:
		return rep
	case <-time.After(10 * time.Second):
		t.Fatal("no report from the client")
	}
	return Report{}
}

// until reads reports until one satisfies ok.
func (r reports) until(t *testing.T, ok func(Report) bool) Report {
	t.Helper()
	for {
		if rep := r.next(t); ok(rep) {
			return rep
		}
	}
}

func listen(t *testing.T) *fake.Listener {
	t.Helper()
	l, err := fake.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func newClient(t *testing.T, port int, keepOpen bool, r reports) *Client {
	t.Helper()
	c, err := New(Config{Host: "127.0.0.1", Port: port, KeepOpen: keepOpen,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		DialTimeout: time.Second, WriteTimeout: time.Second, OnReport: r.on})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitLines(t *testing.T, l *fake.Listener, n int) []fake.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.WaitFor(ctx, func(c []fake.Command) bool { return len(c) >= n }); err != nil {
		t.Fatalf("waiting for %d lines, have %q: %v", n, l.Lines(), err)
	}
	return l.Commands()
}

func lines(cs []fake.Command) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Line
	}
	return out
}

// freePort returns a port nobody listens on (briefly bound, then freed).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestConnectSendClose(t *testing.T) {
	l := listen(t)
	r := make(reports, 64)
	c := newClient(t, l.Port(), false, r)
	if rep := r.next(t); rep.Ticket != 0 || rep.Err != nil || rep.Reach != ReachUp {
		t.Fatalf("first report should be a successful probe: %+v", rep)
	}
	t1, err := c.Submit(NewBatch(0).LoadImage("/data/a_00001.cbf").Spots([]float32{1.5, 2.25}))
	if err != nil {
		t.Fatal(err)
	}
	if rep := r.next(t); rep.Ticket != t1 || rep.Err != nil || rep.Image != "/data/a_00001.cbf" {
		t.Fatalf("delivery report %+v", rep)
	}
	t2, _ := c.Submit(NewBatch(0).LoadImage("/data/a_00002.cbf"))
	r.until(t, func(rep Report) bool { return rep.Ticket == t2 })
	cs := waitLines(t, l, 6)
	want := []string{"load_image /data/a_00001.cbf", SpotStyle, "load_spots 1", "1.50 2.25 1", "end_of_pack", "load_image /data/a_00002.cbf"}
	if got := lines(cs); !slices.Equal(got, want) {
		t.Fatalf("ADXV received %q, want %q", got, want)
	}
	// Each batch on its own connection (the probe was connection 1).
	if cs[0].Conn != 2 || cs[4].Conn != 2 || cs[5].Conn != 3 || l.Connections() != 3 {
		t.Errorf("connections: %d, batch conns %d %d", l.Connections(), cs[0].Conn, cs[5].Conn)
	}
	if errs := l.Errors(); len(errs) != 0 {
		t.Errorf("protocol errors: %q", errs)
	}
	s := c.Stats()
	if s.Delivered != 2 || s.Lines != 6 || s.Failures != 0 || s.Probes != 1 || s.Connections != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestKeepOpenSurvivesRestart(t *testing.T) {
	l := listen(t)
	r := make(reports, 64)
	c := newClient(t, l.Port(), true, r)
	r.next(t) // probe: opens the kept connection
	for i := 1; i <= 3; i++ {
		tk, _ := c.Submit(NewBatch(0).LoadImage(fmt.Sprintf("/d/x_%05d.cbf", i)))
		r.until(t, func(rep Report) bool { return rep.Ticket == tk })
	}
	cs := waitLines(t, l, 3)
	if cs[0].Conn != 1 || cs[2].Conn != 1 || l.Connections() != 1 {
		t.Fatalf("kept-open client used %d connections", l.Connections())
	}
	// ADXV exits and comes back: the next batch must arrive, on a new
	// connection, not vanish into the dead one.
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(); err != nil {
		t.Fatal(err)
	}
	tk, _ := c.Submit(NewBatch(0).LoadImage("/d/x_00004.cbf"))
	rep := r.until(t, func(rep Report) bool { return rep.Ticket == tk && (rep.Err == nil || rep.Dropped) })
	if rep.Err != nil {
		t.Fatalf("batch after restart: %+v", rep)
	}
	cs = waitLines(t, l, 4)
	if cs[3].Line != "load_image /d/x_00004.cbf" || cs[3].Conn != 2 {
		t.Fatalf("after restart: %+v", cs[3])
	}
}

// TestAbsentThenAppears: ADXV is not there at start. The client reports
// down with growing delays, keeps only the newest batch, and delivers it
// once when ADXV appears.
func TestAbsentThenAppears(t *testing.T) {
	port := freePort(t)
	r := make(reports, 256)
	c := newClient(t, port, false, r)
	var delays []time.Duration
	for len(delays) < 5 {
		rep := r.next(t)
		if rep.Err == nil || rep.Reach != ReachDown {
			t.Fatalf("report with nobody listening: %+v", rep)
		}
		delays = append(delays, rep.RetryIn)
	}
	if fmt.Sprint(delays) != "[5ms 10ms 20ms 40ms 40ms]" {
		t.Errorf("back-off delays %v", delays)
	}
	if c.Reach() != ReachDown {
		t.Errorf("reach %v", c.Reach())
	}
	var last uint64
	for i := 1; i <= 3; i++ {
		last, _ = c.Submit(NewBatch(0).LoadImage(fmt.Sprintf("/d/y_%05d.cbf", i)))
	}
	l, err := fake.Listen(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep := r.until(t, func(rep Report) bool { return rep.Err == nil })
	if rep.Ticket != last || rep.Reach != ReachUp {
		t.Fatalf("recovery report %+v, want ticket %d", rep, last)
	}
	cs := waitLines(t, l, 1)
	if got := lines(cs); !slices.Equal(got, []string{"load_image /d/y_00003.cbf"}) {
		t.Fatalf("ADXV received %q", got)
	}
	s := c.Stats()
	if s.Delivered != 1 || s.Reconnects != 1 || s.Failures < 5 || s.Superseded < 2 {
		t.Errorf("stats %+v", s)
	}
	if c.Reach() != ReachUp {
		t.Errorf("reach %v", c.Reach())
	}
}

func TestWithdrawAndSetAddr(t *testing.T) {
	a, b := listen(t), listen(t)
	r := make(reports, 256)
	port := freePort(t)
	c := newClient(t, port, false, r)
	r.until(t, func(rep Report) bool { return rep.Reach == ReachDown })
	tk, _ := c.Submit(NewBatch(0).LoadImage("/d/withdrawn.cbf"))
	if !c.Withdraw(tk) {
		// The batch may be in flight at this instant; then it is not retried.
		r.until(t, func(rep Report) bool { return rep.Ticket == tk })
	}
	if err := c.SetAddr("127.0.0.1", a.Port()); err != nil {
		t.Fatal(err)
	}
	r.until(t, func(rep Report) bool { return rep.Reach == ReachUp && rep.Addr == a.Addr() })
	t2, _ := c.Submit(NewBatch(0).LoadImage("/d/to_a.cbf"))
	r.until(t, func(rep Report) bool { return rep.Ticket == t2 })
	if err := c.SetAddr("127.0.0.1", b.Port()); err != nil {
		t.Fatal(err)
	}
	t3, _ := c.Submit(NewBatch(0).LoadImage("/d/to_b.cbf"))
	r.until(t, func(rep Report) bool { return rep.Ticket == t3 && rep.Err == nil })
	if got := lines(waitLines(t, a, 1)); !slices.Equal(got, []string{"load_image /d/to_a.cbf"}) {
		t.Errorf("first ADXV got %q", got)
	}
	if got := lines(waitLines(t, b, 1)); !slices.Equal(got, []string{"load_image /d/to_b.cbf"}) {
		t.Errorf("second ADXV got %q", got)
	}
	if c.Addr() != b.Addr() {
		t.Errorf("Addr %q, want %q", c.Addr(), b.Addr())
	}
	if err := c.SetAddr("no host", 8100); err == nil {
		t.Error("bad host accepted")
	}
	c.Close()
	if _, err := c.Submit(NewBatch(0).Exit()); err != ErrClosed {
		t.Errorf("Submit after Close: %v", err)
	}
}

func TestSendOnce(t *testing.T) {
	l := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Send(ctx, l.Addr(), NewBatch(0).Slab(3).ContrastMin(1).ContrastMax(200).SaveImage("/tmp/s.png")); err != nil {
		t.Fatal(err)
	}
	want := []string{"slab 3", "contrast_min 1", "contrast_max 200", "save_image /tmp/s.png"}
	if got := lines(waitLines(t, l, 4)); !slices.Equal(got, want) {
		t.Fatalf("got %q", got)
	}
	if err := Send(ctx, fmt.Sprintf("127.0.0.1:%d", freePort(t)), NewBatch(0).Exit()); err == nil {
		t.Error("Send to nobody succeeded")
	}
}

// TestPeerThatKeepsConnectionsOpen: an ADXV that does not close its end
// after a batch costs one CloseWait, then the client stops waiting; every
// batch still arrives.
func TestPeerThatKeepsConnectionsOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				var buf [4096]byte
				n, _ := io.ReadAtLeast(conn, buf[:], 1)
				got <- string(buf[:n])
				<-make(chan struct{}) // never close, never read on
			}()
		}
	}()
	r := make(reports, 64)
	c, err := New(Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, CloseWait: 20 * time.Millisecond, OnReport: r.on})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rep := r.next(t); rep.Ticket != 0 || rep.Err != nil {
		t.Fatalf("probe %+v", rep)
	}
	for i := 1; i <= 3; i++ {
		tk, _ := c.Submit(NewBatch(0).LoadImage(fmt.Sprintf("/d/k_%d.cbf", i)))
		if rep := r.until(t, func(rep Report) bool { return rep.Ticket == tk }); rep.Err != nil {
			t.Fatal(rep.Err)
		}
	}
	var all []string
	for len(all) < 4 { // the probe's empty read, then three batches
		select {
		case s := <-got:
			all = append(all, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("server got %q", all)
		}
	}
	slices.Sort(all)
	want := []string{"", "load_image /d/k_1.cbf\n", "load_image /d/k_2.cbf\n", "load_image /d/k_3.cbf\n"}
	if !slices.Equal(all, want) {
		t.Fatalf("server got %q", all)
	}
	if s := c.Stats(); s.Delivered != 3 {
		t.Errorf("stats %+v", s)
	}
}
