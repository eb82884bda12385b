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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"tioga/device/detectormodel"
	"tioga/sim"
	"tioga/sim/adxv"
	"tioga/sim/diffraction"
)

// TestMain lets a test run the command itself (main, with its signal
// handling and exit status) in a child process: TIOGA_TEST_MAIN=1 runs
// main with the arguments after "--".
func TestMain(m *testing.M) {
	if os.Getenv("TIOGA_TEST_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"tioga"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// quietConfig is a server with every face on loopback and no detector
// answering (its stream and SIMPLON addresses lead nowhere), its OPC UA
// server on opcuaPort (a taken port makes it fail when it starts, after
// the others have).
func quietConfig(t *testing.T, opcuaPort int) Config {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Stream.Endpoint = fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	cfg.Detector.SimplonURL = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cfg.Writer.Directory = filepath.Join(dir, "data")
	cfg.Writer.MinFreeBytes = -1
	cfg.TINE.PortOffset = freeTINEOffset(t)
	cfg.TINE.Listen = "127.0.0.1"
	cfg.OPCUA.Listen, cfg.OPCUA.AdvertiseHost = "127.0.0.1", "127.0.0.1"
	cfg.OPCUA.Port = opcuaPort
	cfg.OPCUA.PKIDir = filepath.Join(dir, "pki")
	cfg.HTTP.Listen, cfg.HTTP.Port = "127.0.0.1", freePort(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestComponentFailureStopsTheOthers: a component failing at run time
// (the OPC UA server, its port taken) stops every other component, run
// returns the failure naming it, and no goroutine is left behind.
func TestComponentFailureStopsTheOthers(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := quietConfig(t, taken.Addr().(*net.TCPAddr).Port)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	stopped := make(chan error, 1)
	go func() { stopped <- run(context.Background(), cfg, zerolog.Nop()) }()
	select {
	case err = <-stopped:
	case <-time.After(60 * time.Second):
		t.Fatal("run did not stop after the OPC UA server failed")
	}
	ce, ok := errors.AsType[*componentError](err)
	if !ok || ce.Component != "opcua" {
		t.Fatalf("run: %v, want the failure of component opcua", err)
	}
}

// TestFailingComponentExitsNonZero runs the command as a process: the
// failing component makes it exit with status 1 and a last log line that
// names it.
func TestFailingComponentExitsNonZero(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := quietConfig(t, taken.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd, stderr := command(ctx, t, cfg)
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1\n%s", err, stderr.String())
	}
	checkLastLine(t, stderr.String(), "error", "opcua")
}

// TestSIGTERMStopsTheProcess sends the running command SIGTERM: it stops
// every component and exits 0, its last log line saying a signal ended it.
func TestSIGTERMStopsTheProcess(t *testing.T) {
	cfg := quietConfig(t, freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd, stderr := command(ctx, t, cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the command running", func() bool { return strings.Contains(stderr.String(), `"message":"tioga running"`) })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	checkLastLine(t, stderr.String(), "info", "signal")
}

// command is the server as a child process with cfg (logging JSON to the
// returned buffer).
func command(ctx context.Context, t *testing.T, cfg Config) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cfg.Log.Format = "json"
	text, err := cfg.TOML()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tioga.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$", "--", "-config", path)
	cmd.Env = append(os.Environ(), "TIOGA_TEST_MAIN=1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	return cmd, stderr
}

// checkLastLine checks the command's last log line: "tioga stopped" at
// level, naming what ended the process.
func checkLastLine(t *testing.T, log, level, endedBy string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	last := lines[len(lines)-1]
	var raw map[string]any
	if err := json.Unmarshal([]byte(last), &raw); err != nil {
		t.Fatalf("last log line %q: %v", last, err)
	}
	if raw["level"] != level || raw["message"] != "tioga stopped" || raw["ended_by"] != endedBy {
		t.Fatalf("last log line %q: want %s \"tioga stopped\" ended_by %s", last, level, endedBy)
	}
}

// syncBuffer is a bytes.Buffer the child's output can be written to while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestStopMidSeriesFinishesTheSeries stops the server (as SIGTERM does:
// main's context ends) while a series is streaming, with every component
// running: run returns nil after the pipeline has finished the series, so
// its end-of-series heat map is on disk next to every frame written, and
// no goroutine of any component is left.
func TestStopMidSeriesFinishesTheSeries(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	prof, _ := detectormodel.ByName("eiger500k")
	sample := diffraction.DefaultConfig(prof)
	r := diffraction.DefaultRaster()
	r.Lines, r.FramesPerLine = 10, 20
	sample.Raster = &r
	const n = 200
	det, err := sim.Start(sim.Config{Profile: prof, Format: "cbor", NImages: n, Sample: &sample, FrameTime: 0.02,
		HeaderAppendix: `{"raster": {"lines": 10, "frames_per_line": 20, "serpentine": true}}`})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	dir := t.TempDir()
	cfg := loopbackConfig(t, det, dir)
	cfg.Names.Detectors = append(cfg.Names.Detectors, "eiger500k")
	viewer, err := adxv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	cfg.Tracker.ADXVPort = viewer.Port()
	cfg.Tracker.DisplayPeriod = Duration(50 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- run(ctx, cfg, zerolog.Nop()) }()

	tctx, tcancel := context.WithTimeout(context.Background(), time.Minute)
	defer tcancel()
	series := make(chan error, 1)
	go func() { _, err := det.RunSeries(tctx); series <- err }()
	images := func() []string {
		var out []string
		_ = filepath.WalkDir(cfg.Writer.Directory, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".cbf") {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	waitUntil(t, "the first frames on disk", func() bool { return len(images()) >= 5 })
	cancel()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	written := len(images())
	if written >= n {
		t.Fatalf("%d frames written: the series was not stopped midway", written)
	}
	var heat []string
	_ = filepath.WalkDir(cfg.Writer.Directory, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(d.Name(), "heatmap.png") {
			heat = append(heat, p)
		}
		return nil
	})
	if len(heat) != 1 {
		t.Fatalf("heat maps %v after stopping mid-series with %d frames written: the series was not finished", heat, written)
	}
	// The detector still streams the rest of the series, to nobody.
	det.Interrupt()
	tcancel()
	<-series
	t.Logf("stopped after %s frames of %d; series finished", strconv.Itoa(written), n)
	viewer.Close()
	det.Close()
	goleak.VerifyNone(t, leaks)
}
