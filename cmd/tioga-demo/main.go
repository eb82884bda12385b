// Command tioga-demo runs the whole system on this machine, the way a
// beamline does, and prints what came out: it starts the detector simulator
// (eiger-sim) and the server (tioga) as separate processes on loopback, sets
// the raster geometry over TINE as the beamline control system would,
// configures, arms and triggers the detector over SIMPLON REST, follows the
// scan over TINE, and prints the frames received, analysed and written, the
// hits and hit rate (beside the simulator's ground truth), the ten best
// frames, the processing rate, and where the files are.
//
// `make demo` builds the binaries and runs it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/device/detectormodel"
	"tioga/driver/raster"
	"tioga/driver/simplon"
	"tioga/sim/truth"
)

type options struct {
	bin, out, profile, format string
	lines, perLine            int
	keep                      bool
	httpPort                  int
	timeout                   time.Duration
}

func main() {
	var o options
	exe, _ := os.Executable()
	flag.StringVar(&o.bin, "bin", filepath.Dir(exe), "directory holding the eiger-sim and tioga binaries")
	flag.StringVar(&o.out, "out", "out/demo", "working directory (emptied first): configuration, logs, images, results")
	flag.StringVar(&o.profile, "profile", "eiger1m", "simulated detector: eiger500k, eiger1m, eiger4m, eiger9m, eiger16m")
	flag.StringVar(&o.format, "format", "legacy", "stream format: legacy (Stream V1) or cbor (Stream V2)")
	raster := flag.String("raster", "37x213", "raster LINESxFRAMES")
	flag.BoolVar(&o.keep, "keep", false, "keep the image files and the server with its web page up until Ctrl-C (by default the files are deleted after the summary, to spare the disk)")
	flag.IntVar(&o.httpPort, "http-port", 8080, "port of the live web page (another free port when it is taken)")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long")
	flag.Parse()
	if _, err := fmt.Sscanf(*raster, "%dx%d", &o.lines, &o.perLine); err != nil || o.lines <= 0 || o.perLine <= 0 {
		fail(fmt.Errorf("-raster %q: want LINESxFRAMES", *raster))
	}
	if err := run(o); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tioga-demo:", err)
	os.Exit(1)
}

// freeTCPPort asks the kernel for a free loopback port.
func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freeTINEOffset finds a port offset whose UDP port (9003+offset) is free.
func freeTINEOffset() (int, error) {
	for off := 40; off < 400; off++ {
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", 9003+off))
		if err == nil {
			c.Close()
			return off, nil
		}
	}
	return 0, errors.New("no free TINE port between 9043 and 9402")
}

type proc struct {
	cmd  *exec.Cmd
	name string
	log  string
}

func start(name, bin string, logPath string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); f.Close() }()
	return &proc{cmd: cmd, name: name, log: logPath}, nil
}

func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for p.cmd.ProcessState == nil {
			time.Sleep(50 * time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

func run(o options) error {
	prof, ok := detectormodel.ByName(o.profile)
	if !ok {
		return fmt.Errorf("-profile %q: no such detector", o.profile)
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	data := filepath.Join(out, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	restPort, err := freeTCPPort()
	if err != nil {
		return err
	}
	v1Port, _ := freeTCPPort()
	v2Port, _ := freeTCPPort()
	uaPort, _ := freeTCPPort()
	httpPort := o.httpPort
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort)); err == nil {
		l.Close()
	} else {
		httpPort, _ = freeTCPPort()
	}
	offset, err := freeTINEOffset()
	if err != nil {
		return err
	}
	streamPort := v1Port
	if o.format == "cbor" {
		streamPort = v2Port
	}
	n := o.lines * o.perLine
	config := fmt.Sprintf(`# written by tioga-demo
[log]
level = "info"
[names]
detectors = ["eiger16m", "eiger4m", "eiger9m", "eiger1m", "eiger500k", "eiger16m-cdte", "eiger4m-cdte"]
[stream]
endpoint = "tcp://127.0.0.1:%d"
series_timeout = "30s"
[detector]
simplon_url = "http://127.0.0.1:%d"
[writer]
directory = %q
prefix = "raster"
run = 1
min_free_bytes = 536870912
[tine]
port_offset = %d
listen = "127.0.0.1"
[opcua]
listen = "127.0.0.1"
port = %d
pki_dir = %q
[tracker]
adxv_port = 1
[http]
listen = "127.0.0.1"
port = %d
`, streamPort, restPort, data, offset, uaPort, filepath.Join(out, "opcua-pki"), httpPort)
	cfgPath := filepath.Join(out, "tioga.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		return err
	}
	truthPath := filepath.Join(out, "truth.jsonl")

	fmt.Printf("Tioga demo: simulated %s, %d x %d serpentine raster = %d frames, Stream %s\n",
		prof.Model, o.lines, o.perLine, n, map[string]string{"legacy": "V1 (bslz4)", "cbor": "V2 (bslz4)"}[o.format])
	simProc, err := start("eiger-sim", filepath.Join(o.bin, "eiger-sim"), filepath.Join(out, "eiger-sim.log"),
		"--profile", o.profile, "--raster", fmt.Sprintf("%dx%d", o.lines, o.perLine), "--format", o.format,
		"--rest", fmt.Sprintf("127.0.0.1:%d", restPort),
		"--v1", fmt.Sprintf("tcp://127.0.0.1:%d", v1Port), "--v2", fmt.Sprintf("tcp://127.0.0.1:%d", v2Port),
		"--rate", "-1", "--pool", "16", "--truth", truthPath, "--quiet")
	if err != nil {
		return err
	}
	defer simProc.stop()
	srvProc, err := start("tioga", filepath.Join(o.bin, "tioga"), filepath.Join(out, "tioga.log"), "-config", cfgPath)
	if err != nil {
		return err
	}
	defer srvProc.stop()
	fmt.Printf("  simulator: SIMPLON http://127.0.0.1:%d, stream tcp://127.0.0.1:%d\n", restPort, streamPort)
	fmt.Printf("  server:    TINE udp/127.0.0.1:%d (port offset %d), OPC UA opc.tcp://127.0.0.1:%d\n", 9003+offset, offset, uaPort)
	pageURL := fmt.Sprintf("http://127.0.0.1:%d/", httpPort)
	fmt.Printf("  web page:  %s (metrics at %smetrics)\n", pageURL, pageURL)

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	tc, err := client.DialServer("127.0.0.1", offset, client.Options{User: "DEMO", Timeout: time.Second})
	if err != nil {
		return err
	}
	defer tc.Close()
	stream := func(prop string) client.Address {
		return client.Address{Module: "TIOGA", Device: "tioga", Property: prop}
	}
	scan := func(prop string) client.Address {
		return client.Address{Module: "TIOGA", Device: "scan", Property: prop}
	}
	if err := waitFor(ctx, 30*time.Second, "the server", func() error {
		_, err := tc.Get(ctx, stream("status"), wire.Text, 64)
		return err
	}); err != nil {
		return fmt.Errorf("%w (see %s)", err, srvProc.log)
	}

	// What the beamline control system does before a raster: tell the
	// server the grid, switch image tracking on.
	for _, w := range []struct {
		a client.Address
		v float64
	}{{scan("lines"), float64(o.lines)}, {scan("frames-per-line"), float64(o.perLine)}, {scan("serpentine"), 1}} {
		d, _ := wire.NumberData(wire.Int32, w.v)
		if err := tc.Set(ctx, w.a, d); err != nil {
			return fmt.Errorf("set %s: %w", w.a, err)
		}
	}
	d, _ := wire.NumberData(wire.Int32, 1)
	if err := tc.Set(ctx, client.Address{Module: "IMGTRK", Device: "img-tracker", Property: "load-state"}, d); err != nil {
		return fmt.Errorf("set load-state: %w", err)
	}

	dcu, err := simplon.New(fmt.Sprintf("http://127.0.0.1:%d", restPort), "", 10*time.Second)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, "the simulator", func() error { _, err := dcu.Status(ctx); return err }); err != nil {
		return fmt.Errorf("%w (see %s)", err, simProc.log)
	}
	if st, _ := dcu.Status(ctx); st.State == "na" {
		if _, err := dcu.Command(ctx, "initialize"); err != nil {
			return err
		}
	}
	id, err := dcu.Arm(ctx)
	if err != nil {
		return err
	}
	// trigger returns when the detector has sent its frames, as on a real
	// DCU: it gets a client whose timeout is the whole scan's.
	trigger, err := simplon.New(fmt.Sprintf("http://127.0.0.1:%d", restPort), "", o.timeout)
	if err != nil {
		return err
	}
	started := time.Now()
	trig := make(chan error, 1)
	go func() { _, err := trigger.Command(ctx, "trigger"); trig <- err }()

	bar := progressbar.NewOptions(n, progressbar.OptionSetDescription("  frames"), progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("frames"),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
	var status string
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("scan not finished in %s (see %s)", o.timeout, srvProc.log)
		}
		count, err := tc.Get(ctx, stream("frame-count"), wire.Int32, 1)
		if err == nil {
			if v, err := count.Ints(); err == nil && len(v) == 1 {
				_ = bar.Set(int(v[0]))
			}
		}
		if s, err := tc.Get(ctx, stream("status"), wire.Text, 256); err == nil {
			status = s.Text()
		}
		sid, _ := tc.Get(ctx, stream("series-id"), wire.Int32, 1)
		ids, _ := sid.Ints()
		if len(ids) == 1 && int(ids[0]) == id && (status == "done" || strings.HasPrefix(status, "error")) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	elapsed := time.Since(started)
	_ = bar.Finish()
	if err := <-trig; err != nil {
		return fmt.Errorf("trigger: %w", err)
	}

	get := func(a client.Address, f wire.Format, size int) wire.Data {
		d, err := tc.Get(ctx, a, f, size)
		if err != nil {
			fmt.Fprintf(os.Stderr, "  (read %s: %v)\n", a, err)
		}
		return d
	}
	num := func(prop string) float64 {
		v, _ := get(stream(prop), wire.Double, 1).Floats()
		if len(v) == 0 {
			return 0
		}
		return v[0]
	}
	text := func(a client.Address) string { return get(a, wire.Text, 4096).Text() }

	received, processed, written := num("frames-received"), num("frame-count"), num("frames-written")
	hits, hitRate, dropped := num("hits"), num("hit-rate"), num("count-dropped")
	workers := num("workers")
	fmt.Printf("\nStatus     %s\n", status)
	fmt.Printf("Frames     received %.0f, analysed %.0f, written %.0f, lost on the way %.0f\n", received, processed, written, dropped)
	tr, _ := readTruth(truthPath)
	trueHits := 0
	for _, f := range tr {
		if f.Hit {
			trueHits++
		}
	}
	fmt.Printf("Hits       %.0f (%.2f %%); the simulator's ground truth: %d (%.2f %%)\n", hits, hitRate, trueHits, 100*float64(trueHits)/float64(max(len(tr), 1)))
	mpx := float64(prof.Pixels()) / 1e6
	fps := processed / elapsed.Seconds()
	fmt.Printf("Rate       %.1f frames/s = %.0f Mpx/s of %s frames (%.1f Mpx) with %.0f workers on %d cores, simulator included\n",
		fps, fps*mpx, prof.Model, mpx, workers, runtime.NumCPU())

	// The ten best frames, from dozor-pass (read whole over TINE, as a
	// client does) and the file template.
	pass, _ := get(stream("dozor-pass"), wire.Float, 4*n).Floats()
	template := text(stream("writer-template"))
	type rec struct{ frame, spots, score, res float64 }
	var recs []rec
	for i := 0; i+4 <= len(pass); i += 4 {
		recs = append(recs, rec{pass[i], pass[i+1], pass[i+2], pass[i+3]})
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].score > recs[j].score })
	grid := rasterGrid(o)
	fmt.Printf("\nTop 10 frames (of %d records):\n   frame  line column    score  spots  res (Å)  file\n", len(pass)/4)
	for i := 0; i < 10 && i < len(recs); i++ {
		r := recs[i]
		line, col, _ := grid.Cell(int(r.frame))
		file := ""
		if template != "" {
			file = fmt.Sprintf(template, int(r.frame)+1)
		}
		fmt.Printf("  %6.0f  %4d %6d  %7.1f  %5.0f  %7.2f  %s\n", r.frame, line, col, r.score, r.spots, r.res, file)
	}
	if len(recs) > 0 && len(tr) > int(recs[0].frame) {
		best := tr[int(recs[0].frame)]
		where := "outside"
		if best.Hit {
			where = "inside"
		}
		fmt.Printf("Best frame %.0f (line %d, column %d) lies %s the crystal of the ground truth.\n", recs[0].frame, best.Line, best.Column, where)
	}

	fmt.Printf("\nFiles\n")
	fmt.Printf("  images     %s\n", template)
	fmt.Printf("  results    %s\n", text(stream("results-file")))
	fmt.Printf("  hit list   %s\n", text(stream("hit-list-file")))
	fmt.Printf("  spots      %s\n", text(stream("spots-file")))
	fmt.Printf("  heat map   %s\n", text(scan("heat-map")))
	fmt.Printf("  truth      %s\n", truthPath)
	fmt.Printf("  logs       %s, %s\n", srvProc.log, simProc.log)
	fmt.Printf("  config     %s\n", cfgPath)
	if !o.keep && template != "" {
		removed := 0
		for i := 1; i <= n; i++ {
			if os.Remove(fmt.Sprintf(template, i)) == nil {
				removed++
			}
		}
		fmt.Printf("  (%d image files deleted to spare the disk; run with -keep to keep them)\n", removed)
	}
	if status != "done" {
		return fmt.Errorf("the series ended with status %q", status)
	}
	if o.keep {
		fmt.Printf("\nThe server stays up: open %s (Ctrl-C to stop).\n", pageURL)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		signal.Stop(sig)
	}
	return nil
}

func rasterGrid(o options) raster.Grid {
	return raster.Grid{Lines: o.lines, FramesPerLine: o.perLine, Serpentine: true}
}

func waitFor(ctx context.Context, limit time.Duration, what string, try func() error) error {
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err = try(); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within %s: %v", what, limit, err)
}

func readTruth(path string) ([]truth.Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return truth.ReadAll(bufio.NewReader(f))
}
