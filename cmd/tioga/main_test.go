package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/device/detectormodel"
	"tioga/driver/cbf"
	"tioga/sim"
	"tioga/sim/adxv"
	"tioga/sim/diffraction"
)

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeTINEOffset(t testing.TB) int {
	t.Helper()
	for off := 500; off < 2000; off++ {
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", 9003+off))
		if err == nil {
			c.Close()
			return off
		}
	}
	t.Fatal("no free TINE port")
	return 0
}

// loopbackConfig is the server's configuration for a test against the
// simulated detector det: stream and SIMPLON from det, TINE, OPC UA and
// the web page on loopback at free ports, files under dir/data, the OPC UA
// certificate under dir/pki, no free-space minimum.
func loopbackConfig(t testing.TB, det *sim.Detector, dir string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Stream.Endpoint = det.StreamEndpoint()
	cfg.Detector.SimplonURL = det.RESTURL()
	cfg.Writer.Directory = filepath.Join(dir, "data")
	cfg.Writer.MinFreeBytes = -1
	cfg.TINE.PortOffset = freeTINEOffset(t)
	cfg.TINE.Listen = "127.0.0.1"
	cfg.OPCUA.Listen, cfg.OPCUA.AdvertiseHost, cfg.OPCUA.Port = "127.0.0.1", "127.0.0.1", freePort(t)
	cfg.OPCUA.PKIDir = filepath.Join(dir, "pki")
	cfg.HTTP.Listen, cfg.HTTP.Port = "127.0.0.1", freePort(t)
	return cfg
}

// startServer validates cfg and runs the server as main does. stop ends
// it (ctx is cancelled, as by SIGTERM) and waits for run to return, 30 s
// at most, reporting its error; defer it right away.
func startServer(t testing.TB, cfg Config) (ctx context.Context, stop func()) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- run(ctx, cfg, zerolog.Nop()) }()
	return ctx, func() {
		cancel()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	}
}

// TestServerSystem runs the assembled server (run, as main does) against
// the simulated detector and talks to it the way the beamline does: a TINE
// EVENT subscriber accumulates dozor-pass batches, an OPC UA client reads
// frame-count, and the (fake) ADXV viewer is told to show the best frame.
func TestServerSystem(t *testing.T) {
	prof, _ := detectormodel.ByName("eiger500k")
	sample := diffraction.DefaultConfig(prof)
	r := diffraction.DefaultRaster()
	r.Lines, r.FramesPerLine = 6, 10
	r.CenterColumn, r.CenterLine, r.RadiusColumns, r.RadiusLines = 6, 3, 3, 2
	sample.Raster = &r
	const n = 60
	det, err := sim.Start(sim.Config{Profile: prof, Format: "cbor", NImages: n, Sample: &sample,
		HeaderAppendix: `{"raster": {"lines": 6, "frames_per_line": 10, "serpentine": true}}`})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	viewer, err := adxv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()

	dir := t.TempDir()
	cfg := loopbackConfig(t, det, dir)
	cfg.Names.Detectors = append(cfg.Names.Detectors, "eiger500k")
	cfg.Pipeline.ExportPeriod = Duration(100 * time.Millisecond)
	cfg.Tracker.ADXVPort = viewer.Port()
	cfg.Tracker.DisplayPeriod = Duration(50 * time.Millisecond)
	_, stop := startServer(t, cfg)
	defer stop()

	tc, err := client.DialServer("127.0.0.1", cfg.TINE.PortOffset, client.Options{User: "TEST"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	addr := func(dev, prop string) client.Address {
		return client.Address{Module: "TIOGA", Device: dev, Property: prop}
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer tcancel()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := tc.Get(tctx, addr("tioga", "status"), wire.Text, 64); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("server not answering over TINE: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The client switches image tracking on, and subscribes to the records.
	on, _ := wire.NumberData(wire.Int32, 1)
	if err := tc.Set(tctx, client.Address{Module: "IMGTRK", Device: "img-tracker", Property: "load-state"}, on); err != nil {
		t.Fatal(err)
	}
	link, err := tc.Attach(tctx, client.Request{Address: addr("tioga", "dozor-pass"), Format: wire.Float, Size: 4 * n}, wire.Event, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	var mu sync.Mutex
	var batches [][]float64
	go func() {
		for u := range link.C {
			if u.Err != nil {
				continue
			}
			v, err := u.Data.Floats()
			if err == nil && len(v) > 0 {
				mu.Lock()
				batches = append(batches, v)
				mu.Unlock()
			}
		}
	}()

	id, err := det.RunSeries(tctx)
	if err != nil {
		t.Fatal(err)
	}
	var status string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		d, err := tc.Get(tctx, addr("tioga", "status"), wire.Text, 256)
		if err != nil {
			continue
		}
		ids, _ := tc.Get(tctx, addr("tioga", "series-id"), wire.Int32, 1)
		v, _ := ids.Ints()
		if status = d.Text(); len(v) == 1 && int(v[0]) == id && (status == "done" || strings.HasPrefix(status, "error")) {
			break
		}
	}
	if status != "done" {
		t.Fatalf("status %q", status)
	}

	// TINE: the event batches carry every record once, in frame order, and
	// the complete array follows once at the end.
	waitUntil(t, "the final full array", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(batches) > 0 && len(batches[len(batches)-1]) == 4*n
	})
	mu.Lock()
	var all []float64
	for _, b := range batches[:len(batches)-1] {
		all = append(all, b...)
	}
	mu.Unlock()
	if len(all) != 4*n {
		t.Fatalf("event batches carried %d records, want %d", len(all)/4, n)
	}
	for i := 0; i < n; i++ {
		if all[4*i] != float64(i) {
			t.Fatalf("record %d is frame %g", i, all[4*i])
		}
	}
	best, bestScore := -1, 0.0
	for i := 0; i < n; i++ {
		if s := all[4*i+2]; s > bestScore {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		t.Fatal("no frame with a score: the crystal was missed")
	}

	// OPC UA: the same frame-count.
	octx, ocancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ocancel()
	endpoint := fmt.Sprintf("opc.tcp://127.0.0.1:%d", cfg.OPCUA.Port)
	uc, err := opcua.NewClient(endpoint, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := uc.Connect(octx); err != nil {
		t.Fatal(err)
	}
	defer uc.Close(context.Background())
	ns, err := uc.FindNamespace(octx, "urn:tioga:devices")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := uc.Read(octx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{
		NodeID: ua.NewStringNodeID(ns, "/P14/rideau/tioga/frame-count"), AttributeID: ua.AttributeIDValue}}})
	if err != nil || resp.Results[0].Status != ua.StatusOK {
		t.Fatalf("OPC UA read: %v %v", err, resp)
	}
	if got := resp.Results[0].Value.Value(); got != int32(n) {
		t.Fatalf("OPC UA frame-count %v", got)
	}

	// The viewer was told to show the best frame, a file that is on disk.
	wantPath := filepath.Join(cfg.Writer.Directory, fmt.Sprintf("tioga_1_%05d.cbf.gz", best+1))
	vctx, vcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer vcancel()
	if err := viewer.WaitFor(vctx, func(cmds []adxv.Command) bool {
		// WaitFor holds the listener's lock: look only at cmds.
		for i := len(cmds) - 1; i >= 0; i-- {
			if path, ok := strings.CutPrefix(cmds[i].Line, "load_image "); ok {
				return path == wantPath
			}
		}
		return false
	}); err != nil {
		t.Fatalf("ADXV shown %v, want the best frame %s", viewer.Images(), wantPath)
	}
	img, err := cbf.ReadFile(wantPath)
	if err != nil || img.Width != prof.Width() {
		t.Fatalf("best frame file: %v", err)
	}
	// The detector device followed the stream and the DCU.
	st, err := tc.Get(tctx, client.Address{Module: "EIGER", Device: "eiger500k", Property: "active"}, wire.Int32, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Ints(); len(v) != 1 || v[0] != 1 {
		t.Fatalf("eiger500k active = %v", v)
	}
	if _, err := os.Stat(filepath.Join(cfg.Writer.Directory, "tioga_1_heatmap.png")); err != nil {
		t.Fatalf("heat map: %v", err)
	}
	checkWebPage(t, fmt.Sprintf("http://127.0.0.1:%d", cfg.HTTP.Port), n, best)
}

// checkWebPage reads the page's state and the best frame's view from the
// assembled server: the same values as TINE, and a PNG of the file.
func checkWebPage(t *testing.T, base string, frames, best int) {
	t.Helper()
	resp, err := http.Get(base + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Devices []struct {
			Props []struct {
				Address string
				Value   json.RawMessage
			}
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range state.Devices {
		for _, p := range d.Props {
			got[p.Address] = string(p.Value)
		}
	}
	if got["/P14/rideau/tioga/frame-count"] != strconv.Itoa(frames) || got["/P14/rideau/scan/best-frame"] != strconv.Itoa(best) ||
		got["/P14/rideau/tioga/status"] != `"done"` {
		t.Errorf("page state: frame-count %s, best-frame %s, status %s", got["/P14/rideau/tioga/frame-count"],
			got["/P14/rideau/scan/best-frame"], got["/P14/rideau/tioga/status"])
	}
	// The frame view draws the best frame's file (EIGER 500K, 1030 x 514,
	// halved to fit 1024 pixels).
	resp, err = http.Get(base + "/api/frame.png?frame=best")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("frame view: %d %v", resp.StatusCode, err)
	}
	if b := img.Bounds(); b.Dx() != 515 || b.Dy() != 257 {
		t.Errorf("frame view %v", b)
	}
	// The heat-map figure, live.
	resp, err = http.Get(base + "/api/heatmap.png")
	if err != nil {
		t.Fatal(err)
	}
	hm, err := png.Decode(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || hm.Bounds().Dx() < 500 {
		t.Fatalf("heat-map figure: %d %v", resp.StatusCode, err)
	}
	// Prometheus sees the same series, and the protocol servers' traffic.
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{fmt.Sprintf("tioga_frames_analysed_total %d\n", frames), fmt.Sprintf("tioga_frames_written_total %d\n", frames),
		"tioga_frames_dropped_total 0\n", `tioga_status{status="done"} 1`, "tioga_tine_requests_total ", "tioga_opcua_requests_total ", "go_goroutines "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestConfigRejectsUnknownKeysAndBadValues(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct{ text, want string }{
		{"[writer]\nbogus = 1\n", "unknown keys: writer.bogus"},
		{"[analysis]\nspot-levle = 3\n", "no such parameter"},
		{"[analysis]\nspot-level = 1000\n", "spot-level"},
		{"[analysis]\nmethod = \"magic\"\n", "not one of"},
		{"[stream]\nseries_timeout = \"soon\"\n", "duration"},
		{"[log]\nformat = \"xml\"\n", "log.format"},
		{"[writer]\nformat = \"jpeg\"\n", "writer: format \"jpeg\" (want cbf, cbf.gz or tiff)"},
		{"[writer]\noverwrite = \"always\"\n", "writer: overwrite policy"},
		{"[writer]\nprefix = \"a/b\"\n", "writer: prefix"},
		{"[downstream]\nenabled = true\nexecutor = \"pbs\"\n", "downstream.executor"},
		{"[downstream]\nenabled = true\ncell = \"79 79 38 90 90\"\n", "downstream.cell"},
		{"[downstream]\nenabled = true\ntemplate = \"/nonexistent.tmpl\"\n", "downstream.template"},
		{"[downstream.slurm]\nqueue = \"x\"\n", "unknown keys: downstream.slurm.queue"},
	} {
		if _, err := LoadConfig(write(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.text, err, c.want)
		}
	}
	cfg, err := LoadConfig(write("[analysis]\nspot-level = 4.5\nmethod = \"dispersion\"\n[writer]\ndirectory = \"/data/p14\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cfg.AnalysisParams()
	if err != nil || p.SpotLevel != 4.5 || p.Method.String() != "dispersion" || p.SpotSize != 3 {
		t.Fatalf("params %+v %v", p, err)
	}
	if cfg.Writer.Directory != "/data/p14" || cfg.Writer.Prefix != "tioga" {
		t.Fatalf("writer %+v", cfg.Writer)
	}
	// One line each, naming the key.
	if _, err := LoadConfig(write("[writer]\nformat = \"jpeg\"\nfsync = \"sometimes\"\n")); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("bad writer configuration: %v", err)
	}
	// A directory that cannot be created refuses the start, in one line.
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.Writer.Directory = filepath.Join(blocker, "images")
	if err := bad.CheckStartup(); err == nil || !strings.Contains(err.Error(), "writer.directory") || !strings.Contains(err.Error(), blocker) || strings.Contains(err.Error(), "\n") {
		t.Errorf("uncreatable directory: %v", err)
	}
	good := DefaultConfig()
	good.Writer.Directory = filepath.Join(dir, "new", "images")
	if err := good.CheckStartup(); err != nil {
		t.Errorf("creatable directory refused: %v", err)
	}
	if entries, _ := os.ReadDir(good.Writer.Directory); len(entries) != 0 {
		t.Errorf("probe left behind: %v", entries)
	}
	if err := checkArgs([]string{"tioga.toml"}); err == nil || !strings.Contains(err.Error(), `"tioga.toml"`) {
		t.Errorf("stray argument: %v", err)
	}
	if err := checkArgs(nil); err != nil {
		t.Error(err)
	}
	cfg, err = LoadConfig(write("[downstream]\nenabled = true\nexecutor = \"slurm\"\ncell = \"79.1 79.1 38.0 90 90 90\"\n" +
		"space_group = \"P43212\"\n[downstream.slurm]\npartition = \"cryst\"\naccount = \"p14\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cell, err := cfg.Downstream.DownstreamCell(); err != nil || cell[2] != 38 || cfg.Downstream.Slurm.Partition != "cryst" || cfg.Downstream.ChunkHits != 20 {
		t.Fatalf("downstream %+v %v %v", cfg.Downstream, cell, err)
	}
	// The printed defaults load back to the same configuration.
	text, err := DefaultConfig().TOML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadConfig(write(text))
	if err != nil {
		t.Fatalf("printed defaults do not load: %v\n%s", err, text)
	}
	if fmt.Sprint(back) != fmt.Sprint(DefaultConfig()) {
		t.Fatalf("round trip changed the configuration:\n%v\n%v", back, DefaultConfig())
	}
}
