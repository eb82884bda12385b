package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"tioga/driver/raster"
	"tioga/driver/stream"
	"tioga/sim/truth"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestArmAndTriggerRaster runs the command as the demo does: a small
// serpentine raster, Stream V2, truth file, into a real receiver.
func TestArmAndTriggerRaster(t *testing.T) {
	v2 := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	r, err := stream.New(stream.Config{Endpoint: v2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	truthPath := filepath.Join(t.TempDir(), "truth_%d.jsonl")
	var stderr bytes.Buffer
	code := run([]string{"--profile", "eiger500k", "--raster", "5x7", "--format", "cbor", "--rate", "-1",
		"--rest", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--v1", "tcp://127.0.0.1:*", "--v2", v2,
		"--truth", truthPath, "--arm-and-trigger", "--quiet"}, &stderr)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	images := 0
	timeout := time.After(20 * time.Second)
loop:
	for {
		select {
		case m := <-r.Events():
			if m.Image != nil {
				if m.Image.Number != uint64(images) {
					t.Fatalf("image %d numbered %d", images, m.Image.Number)
				}
				images++
			}
			if m.End != nil {
				break loop
			}
		case <-timeout:
			t.Fatalf("%d images, no end", images)
		}
	}
	if images != 35 {
		t.Fatalf("%d images, want 35", images)
	}
	f, err := os.Open(strings.Replace(truthPath, "%d", "1", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frames, err := truth.ReadAll(f)
	if err != nil || len(frames) != 35 {
		t.Fatalf("truth: %d frames, %v", len(frames), err)
	}
	hits := 0
	for i, fr := range frames {
		line, col := i/7, i%7
		if line%2 == 1 {
			col = 6 - col
		}
		if fr.Line != line || fr.Column != col {
			t.Fatalf("truth frame %d at (%d,%d), want (%d,%d)", i, fr.Line, fr.Column, line, col)
		}
		if fr.Hit {
			hits++
		}
	}
	if hits == 0 || hits == 35 {
		t.Fatalf("%d hits in the raster", hits)
	}
	if !strings.Contains(stderr.String(), "series done") || !strings.Contains(stderr.String(), "frames=35") {
		t.Fatalf("no summary in the log:\n%s", stderr.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--profile", "eiger7m"},
		{"--raster", "37by213"},
		{"--roi", "2M"},
		{"--bit-depth", "12", "--rest", "127.0.0.1:0", "--v1", "tcp://127.0.0.1:*", "--v2", "tcp://127.0.0.1:*"},
		{"stray"},
	} {
		var stderr bytes.Buffer
		if code := run(args, &stderr); code == 0 {
			t.Errorf("%q: exit 0\n%s", args, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, &stderr); code != 0 || !strings.Contains(stderr.String(), "--arm-and-trigger") {
		t.Fatalf("-h: exit %d\n%s", code, stderr.String())
	}
}

// TestMain runs this test binary as eiger-sim itself when
// TIOGA_EIGER_SIM_MAIN=1: a real process a test can signal.
func TestMain(m *testing.M) {
	if os.Getenv("TIOGA_EIGER_SIM_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// syncBuffer is a log sink the simulator writes from several goroutines
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog polls the log until it contains s.
func waitLog(t *testing.T, b *syncBuffer, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within %v:\n%s", s, within, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLaggingReceiverGetsTheWholeSeries: a receiver that reads slowly (one
// message every 40 ms, nothing buffered on its side) gets every frame and
// the end message. The simulator hands the whole series to ZeroMQ long
// before the receiver has it; closing then with a short linger discarded
// what ZeroMQ still queued (1374 of 1500 frames, no end).
func TestLaggingReceiverGetsTheWholeSeries(t *testing.T) {
	const n = 50
	ep := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pull, err := zmq.NewSocket(zmq.PULL)
	if err != nil {
		t.Fatal(err)
	}
	defer pull.Close()
	// Nothing queued on the receiver's side: the series waits in the
	// simulator's send queue (raw 1 MB frames, so the kernel holds few).
	pull.SetRcvhwm(1)
	pull.SetRcvbuf(64 << 10)
	pull.SetRcvtimeo(100 * time.Millisecond)
	pull.SetLinger(0)
	if err := pull.Connect(ep); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"--profile", "eiger500k", "--compression", "none", "--nimages", fmt.Sprint(n),
			"--reuse", "2", "--rate", "-1", "--rest", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"--v1", ep, "--v2", "tcp://127.0.0.1:*", "--arm-and-trigger", "--quiet"}, &stderr)
	}()
	// The simulator has queued everything, the end included, before the
	// receiver reads a single frame.
	waitLog(t, &stderr, "series ended", 30*time.Second)
	frames, end := 0, false
	deadline := time.Now().Add(30 * time.Second)
	for !end && time.Now().Before(deadline) {
		parts, err := pull.RecvMessageBytes(0)
		if err != nil {
			continue // receive timeout: look at the deadline
		}
		var htype struct {
			Htype  string `json:"htype"`
			Frame  int    `json:"frame"`
			Series int    `json:"series"`
		}
		if err := json.Unmarshal(parts[0], &htype); err != nil {
			t.Fatalf("part 0 %q: %v", parts[0], err)
		}
		switch htype.Htype {
		case "dimage-1.0":
			if htype.Frame != frames {
				t.Fatalf("frame %d arrived as number %d", frames, htype.Frame)
			}
			frames++
		case "dseries_end-1.0":
			end = true
		}
		time.Sleep(40 * time.Millisecond) // the lagging receiver
	}
	if frames != n || !end {
		t.Fatalf("%d of %d frames, end %v:\n%s", frames, n, end, stderr.String())
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d:\n%s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("eiger-sim did not exit:\n%s", stderr.String())
	}
	log := stderr.String()
	if !strings.Contains(log, "draining") || !strings.Contains(log, "series done") {
		t.Fatalf("log:\n%s", log)
	}
}

// TestRasterGeometryInHeader: --raster puts the grid into the V1 header
// appendix and the V2 start message's user_data where the server's raster
// code finds it, beside a client's own JSON appendix.
func TestRasterGeometryInHeader(t *testing.T) {
	for _, tc := range []struct {
		format, appendix string
		want             map[string]any // other appendix keys that must survive
	}{
		{"legacy", "", nil},
		{"cbor", "", nil},
		{"legacy", `{"acqID": "scan_7"}`, map[string]any{"acqID": "scan_7"}},
		{"cbor", `{"acqID": "scan_7"}`, map[string]any{"acqID": "scan_7"}},
	} {
		t.Run(tc.format+"/"+tc.appendix, func(t *testing.T) {
			ep := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
			r, err := stream.New(stream.Config{Endpoint: ep})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go r.Run(ctx)
			v1, v2 := ep, "tcp://127.0.0.1:*"
			if tc.format == "cbor" {
				v1, v2 = v2, v1
			}
			args := []string{"--profile", "eiger500k", "--raster", "3x4", "--format", tc.format, "--rate", "-1",
				"--rest", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--v1", v1, "--v2", v2, "--arm-and-trigger", "--quiet"}
			if tc.appendix != "" {
				args = append(args, "--header-appendix", tc.appendix)
			}
			var stderr bytes.Buffer
			if code := run(args, &stderr); code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr.String())
			}
			timeout := time.After(20 * time.Second)
			for {
				select {
				case m := <-r.Events():
					if m.Series == nil {
						continue
					}
					g, found, err := raster.GeometryFrom(m.Series.Appendix.Value)
					if !found || err != nil || g != (raster.Grid{Lines: 3, FramesPerLine: 4, Serpentine: true}) {
						t.Fatalf("geometry %v found %v err %v in appendix %q", g, found, err, m.Series.Appendix.Raw)
					}
					for k, v := range tc.want {
						if got := appendixKey(m.Series.Appendix.Value, k); got != v {
							t.Fatalf("appendix %s = %v, want %v", k, got, v)
						}
					}
					return
				case <-timeout:
					t.Fatal("no series header")
				}
			}
		})
	}
}

func appendixKey(v any, k string) any {
	switch m := v.(type) {
	case map[string]any:
		return m[k]
	case map[any]any:
		return m[k]
	}
	return nil
}

// TestSIGTERMWhileBlockedOnSend: a real eiger-sim process armed with no
// receiver is blocked on the series header; SIGTERM stops it at once, and
// the log says what it was waiting for.
func TestSIGTERMWhileBlockedOnSend(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--profile", "eiger500k", "--nimages", "5",
		"--rest", "127.0.0.1:0", "--v1", "tcp://127.0.0.1:*", "--v2", "tcp://127.0.0.1:*", "--arm-and-trigger", "--quiet")
	cmd.Env = append(os.Environ(), "TIOGA_EIGER_SIM_MAIN=1")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()
	waitLog(t, &stderr, "waiting for a receiver to connect and take the series header", 30*time.Second)
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit %v, want status 1:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("eiger-sim still running 10 s after SIGTERM:\n%s", stderr.String())
	}
	took := time.Since(t0)
	log := stderr.String()
	for _, want := range []string{"signal received", "interrupted by a signal", "series header not taken by any receiver"} {
		if !strings.Contains(log, want) {
			t.Fatalf("no %q in the log:\n%s", want, log)
		}
	}
	t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Fatalf("took %v to stop", took)
	}
}

// TestDrainTimeoutSaysWhatWasLost: a receiver that connects and reads
// nothing: the drain gives up after --drain-timeout, the exit status is 1,
// and the log says which frames were discarded, counted from the kernel's
// counters for the connection. The receiver then reads what did reach it:
// that and the count add up to the series.
func TestDrainTimeoutSaysWhatWasLost(t *testing.T) {
	const n = 40
	ep := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pull, err := zmq.NewSocket(zmq.PULL)
	if err != nil {
		t.Fatal(err)
	}
	defer pull.Close()
	pull.SetRcvhwm(1)
	pull.SetRcvbuf(64 << 10)
	pull.SetLinger(0)
	if err := pull.Connect(ep); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	t0 := time.Now()
	// 40 raw frames (42 MB): more than the kernel's socket buffers hold.
	code := run([]string{"--profile", "eiger500k", "--compression", "none", "--nimages", fmt.Sprint(n),
		"--reuse", "2", "--rate", "-1", "--rest", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--v1", ep, "--v2", "tcp://127.0.0.1:*", "--drain-timeout", "300ms", "--arm-and-trigger", "--quiet"}, &stderr)
	log := stderr.String()
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Fatalf("took %v", took)
	}
	var discarded, first int
	if _, err := fmt.Sscanf(log[strings.Index(log, "end message and ")+len("end message and "):], "%d frames (%d..", &discarded, &first); err != nil {
		t.Fatalf("no count of discarded frames in the log (%v):\n%s", err, log)
	}
	for _, want := range []string{fmt.Sprintf("the end message and %d frames (%d..%d) still queued, discarded", discarded, first, n-1),
		fmt.Sprintf("frames_discarded=%d", discarded), "exact=true", "end_discarded=true", "series 1 not fully delivered"} {
		if !strings.Contains(log, want) {
			t.Fatalf("no %q in the log:\n%s", want, log)
		}
	}
	// What the kernel had taken still arrives; the rest never does.
	pull.SetRcvtimeo(2 * time.Second)
	frames := 0
	for {
		parts, err := pull.RecvMessageBytes(0)
		if err != nil {
			break // nothing more within 2 s: the connection is closed
		}
		if bytes.Contains(parts[0], []byte(`"htype":"dimage-1.0"`)) {
			frames++
		}
	}
	t.Logf("%d frames arrived, %d discarded", frames, discarded)
	if discarded == 0 || frames != first || frames+discarded != n {
		t.Fatalf("%d frames arrived and %d (from %d) discarded: want %d in all", frames, discarded, first, n)
	}
}

// TestSIGTERMWhileDraining: a real eiger-sim process waits at the end of a
// series for a receiver that stopped reading; SIGTERM stops the wait at
// once and the log says exactly which frames were discarded.
func TestSIGTERMWhileDraining(t *testing.T) {
	ep := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	pull, err := zmq.NewSocket(zmq.PULL)
	if err != nil {
		t.Fatal(err)
	}
	defer pull.Close()
	pull.SetRcvhwm(1)
	pull.SetRcvbuf(64 << 10)
	pull.SetLinger(0)
	if err := pull.Connect(ep); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "--profile", "eiger500k", "--compression", "none", "--nimages", "40", "--reuse", "2",
		"--rate", "-1", "--rest", "127.0.0.1:0", "--v1", ep, "--v2", "tcp://127.0.0.1:*", "--arm-and-trigger", "--quiet")
	cmd.Env = append(os.Environ(), "TIOGA_EIGER_SIM_MAIN=1")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()
	waitLog(t, &stderr, "draining", 30*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit %v, want status 1:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("eiger-sim still draining 10 s after SIGTERM:\n%s", stderr.String())
	}
	log := stderr.String()
	for _, want := range []string{"signal received", "stopped before the receiver took the end of the series: the end message and ",
		"still queued, discarded", "exact=true", "series 1 not fully delivered"} {
		if !strings.Contains(log, want) {
			t.Fatalf("no %q in the log:\n%s", want, log)
		}
	}
}
