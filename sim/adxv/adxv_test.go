package adxv

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func send(t *testing.T, addr, text string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func waitLines(t *testing.T, l *Listener, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.WaitFor(ctx, func(c []Command) bool { return len(c) >= n }); err != nil {
		t.Fatalf("%v (have %q)", err, l.Lines())
	}
}

func TestRecordsTheTrackerConversation(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// What the image tracker sends for one frame with spots, as one
	// connection, with a blank line and a CRLF thrown in.
	send(t, l.Addr(), "load_image /data/p14/scan_1_00042.cbf.gz\nraise_window Image\n\n"+
		"define_type 1 color red radius 10\r\nload_spots 3\n1012.25 977.50 1\n20.00 30.00 1\n4149.99 4370.01 1\nend_of_pack\n")
	waitLines(t, l, 8)
	want := []string{
		"load_image /data/p14/scan_1_00042.cbf.gz", "raise_window Image",
		"define_type 1 color red radius 10", "load_spots 3",
		"1012.25 977.50 1", "20.00 30.00 1", "4149.99 4370.01 1", "end_of_pack",
	}
	if got := l.Lines(); !reflect.DeepEqual(got, want) {
		t.Fatalf("lines %q\nwant %q", got, want)
	}
	if got := l.Images(); !reflect.DeepEqual(got, []string{"/data/p14/scan_1_00042.cbf.gz"}) {
		t.Fatalf("images %q", got)
	}
	packs := l.SpotPacks()
	if len(packs) != 1 || !reflect.DeepEqual(packs[0].Spots, []Spot{{1012.25, 977.5, 1}, {20, 30, 1}, {4149.99, 4370.01, 1}}) {
		t.Fatalf("spot packs %+v", packs)
	}
	if got := l.Types(); !reflect.DeepEqual(got, map[int]SpotType{1: {Color: "red", Radius: 10}}) {
		t.Fatalf("types %+v", got)
	}
	if errs := l.Errors(); len(errs) != 0 {
		t.Fatalf("errors %q", errs)
	}
	for _, c := range l.Commands() {
		if c.Conn != 1 || c.Time.IsZero() {
			t.Fatalf("command %+v", c)
		}
	}
}

func TestProtocolErrorsAreReported(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	send(t, l.Addr(), "load_spots 2\n1 2 1\nload_image /x.cbf\nend_of_pack\nload_spots many\ndefine_type 2 colour blue\nload_image\n")
	waitLines(t, l, 7)
	errs := l.Errors()
	wantSub := []string{"spot 2 of 2", "end_of_pack without load_spots", "want load_spots <n>", `unknown keyword "colour"`, "load_image without a path"}
	if len(errs) != len(wantSub) {
		t.Fatalf("errors %q", errs)
	}
	for i, w := range wantSub {
		if !strings.Contains(errs[i], w) {
			t.Errorf("error %d = %q, want %q", i, errs[i], w)
		}
	}
	if len(l.SpotPacks()) != 0 {
		t.Fatal("a broken pack was recorded")
	}
}

func TestStopAndRestartOnTheSamePort(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr()
	// A client holding a connection open when ADXV dies sees it closed.
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	send(t, addr, "load_image /a.cbf\n")
	waitLines(t, l, 1)
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if l.Running() {
		t.Fatal("running after Stop")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("connect succeeded while ADXV is down")
	}
	held.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Fatal("held connection still open after Stop")
	}
	if err := l.Restart(); err != nil {
		t.Fatal(err)
	}
	if l.Addr() != addr {
		t.Fatalf("restarted on %s, was %s", l.Addr(), addr)
	}
	send(t, addr, "load_image /b.cbf\n")
	waitLines(t, l, 2)
	if got := l.Images(); !reflect.DeepEqual(got, []string{"/a.cbf", "/b.cbf"}) {
		t.Fatalf("images %q", got)
	}
	cmds := l.Commands()
	if cmds[0].Conn == cmds[1].Conn {
		t.Fatalf("connection numbers %d %d", cmds[0].Conn, cmds[1].Conn)
	}
	if err := l.Restart(); err == nil {
		t.Fatal("restart of a running listener accepted")
	}
	l.Reset()
	if len(l.Lines()) != 0 || len(l.Images()) != 0 {
		t.Fatal("Reset kept records")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.WaitForImages(ctx, 1); err == nil {
		t.Fatal("WaitForImages returned without images")
	}
}

// FuzzHandle feeds arbitrary lines to the parser: it must never panic, and
// every non-blank line must be recorded verbatim.
func FuzzHandle(f *testing.F) {
	f.Add("load_image /data/x_00001.cbf\nraise_window Image\ndefine_type 1 color red radius 10\nload_spots 2\n1.00 2.00 1\n3 4 1\nend_of_pack\n")
	f.Add("load_spots 1\nend_of_pack\nload_spots -1\n\r\n\n")
	f.Add("define_type x\ndefine_type 1 radius\nload_spots 99999999999999999999\n")
	f.Fuzz(func(t *testing.T, text string) {
		l := &Listener{types: map[int]SpotType{}, changed: make(chan struct{})}
		var st connState
		n := 0
		for _, line := range strings.Split(text, "\n") {
			l.handle(&st, 1, line, time.Time{})
			if strings.TrimSpace(strings.TrimRight(line, "\r")) != "" {
				n++
				if got := l.commands[len(l.commands)-1].Line; got != strings.TrimRight(line, "\r") {
					t.Fatalf("recorded %q for %q", got, line)
				}
			}
		}
		if len(l.commands) != n {
			t.Fatalf("%d lines recorded, %d sent", len(l.commands), n)
		}
	})
}
