//go:build browser

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"tioga/device/detectormodel"
	"tioga/driver/raster"
	"tioga/sim"
	"tioga/sim/diffraction"
)

// chromium is Debian's headless shell, started directly (the /usr/bin
// wrapper does not exec, so the test would not own the process).
const chromium = "/usr/lib/chromium/chromium-headless-shell"

// TestBrowserPage (make check-browser) loads the live page in Debian's
// headless Chromium while the simulator streams a raster through the
// assembled server, keeps screenshots of the start, middle and end of the
// scan under out/browser/, and checks in the page that the counters, the hit
// rate and every heat-map cell match the series' results.jsonl.
func TestBrowserPage(t *testing.T) {
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s missing: make check-browser installs chromium-headless-shell", chromium)
	}
	const lines, perLine = 12, 20
	const n = lines * perLine
	prof, _ := detectormodel.ByName("eiger500k")
	sample := diffraction.DefaultConfig(prof)
	r := diffraction.DefaultRaster()
	r.Lines, r.FramesPerLine = lines, perLine
	r.CenterColumn, r.CenterLine, r.RadiusColumns, r.RadiusLines = 11, 6, 5, 3
	sample.Raster = &r
	det, err := sim.Start(sim.Config{Profile: prof, Format: "cbor", NImages: n, Sample: &sample, FrameTime: 0.05,
		HeaderAppendix: fmt.Sprintf(`{"raster": {"lines": %d, "frames_per_line": %d, "serpentine": true}}`, lines, perLine)})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()

	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Stream.Endpoint = det.StreamEndpoint()
	cfg.Detector.SimplonURL = det.RESTURL()
	cfg.Names.Detectors = append(cfg.Names.Detectors, "eiger500k")
	cfg.Writer.Directory = filepath.Join(dir, "data")
	cfg.Writer.Prefix = "scan"
	cfg.Writer.MinFreeBytes = -1
	cfg.Tracker.Enabled = false
	cfg.TINE.PortOffset = freeTINEOffset(t)
	cfg.TINE.Listen = "127.0.0.1"
	cfg.OPCUA.Enabled = false
	cfg.HTTP.Listen, cfg.HTTP.Port = "127.0.0.1", freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- run(ctx, cfg, zerolog.Nop()) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d/", cfg.HTTP.Port)

	out, _ := filepath.Abs(filepath.Join("..", "..", "out", "browser"))
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1400, 2400))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 3*time.Minute)
	defer tcancel()

	// The server may take a moment to listen.
	waitUntil(t, "the web server", func() bool {
		resp, err := http.Get(base)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	if _, err := chromedp.Run(bctx, chromedp.Navigate(base)); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	waitJS := func(what, expr string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			if ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("page: timed out waiting for %s", what)
			}
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		// The window (1400 x 2400): what a person sees without scrolling to the devices table.
		if err := os.WriteFile(filepath.Join(out, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitJS("the event stream", `document.getElementById("conn").textContent === "live"`)

	go func() { _, _ = det.RunSeries(ctx) }()
	waitJS("the first frames", fmt.Sprintf(`window.tioga.n >= %d`, n/10))
	shot("start")
	waitJS("half the scan", fmt.Sprintf(`window.tioga.n >= %d`, n/2))
	shot("middle")
	waitJS("the end of the series", fmt.Sprintf(`window.tioga.n === %d && document.getElementById("now-status").textContent === "done" && document.getElementById("now-written").textContent === "%d"`, n, n))
	// Let one more batch arrive (the final counters follow the records).
	time.Sleep(time.Second)
	shot("end")

	// The truth: results.jsonl.
	type rec struct {
		Frame int
		Score float32
		Spots int
		Hit   bool
	}
	f, err := os.Open(filepath.Join(cfg.Writer.Directory, "scan_1_results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []rec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r rec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	f.Close()
	if len(recs) != n {
		t.Fatalf("results.jsonl holds %d records, want %d", len(recs), n)
	}
	hits, best := 0, float32(0)
	for _, r := range recs {
		if r.Hit {
			hits++
		}
		best = max(best, r.Score)
	}
	if hits == 0 {
		t.Fatal("no hits in the raster: the test needs some")
	}

	text := func(id string) string {
		s, err := chromedp.Run(bctx, chromedp.Text("#"+id))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(s)
	}
	for id, want := range map[string]string{
		"now-received": fmt.Sprint(n), "now-analysed": fmt.Sprint(n), "now-written": fmt.Sprint(n), "now-lost": "0",
		"hits-count": fmt.Sprint(hits), "hits-rate": fmt.Sprintf("%.2f %%", 100*float64(hits)/float64(n)),
	} {
		if got := text(id); got != want {
			t.Errorf("#%s shows %q, want %q", id, got, want)
		}
	}

	// Every heat-map cell: the colour on the canvas at the cell's centre.
	js := fmt.Sprintf(`(() => {
		const c = document.getElementById("raster-plot"), g = c.getContext("2d"), R = window.tioga_raster();
		const dpr = c.width / c.clientWidth, out = [];
		for (let f = 0; f < %d; f++) {
			const line = Math.floor(f / R.fpl); let col = f %% R.fpl; if (R.serp && line %% 2 === 1) col = R.fpl - 1 - col;
			const x = Math.round((R.L + (col + 0.5) * R.cell) * dpr), y = Math.round((R.T + (line + 0.5) * R.cell) * dpr);
			const d = g.getImageData(x, y, 1, 1).data; out.push([d[0], d[1], d[2]]);
		}
		return out; })()`, n)
	cells, err := chromedp.Run(bctx, chromedp.Evaluate[[][]int](js))
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, r := range recs {
		want := raster.ScoreColour(r.Score, best)
		got := cells[r.Frame]
		if math.Abs(float64(got[0])-float64(want.R)) > 3 || math.Abs(float64(got[1])-float64(want.G)) > 3 || math.Abs(float64(got[2])-float64(want.B)) > 3 {
			if bad < 5 {
				t.Errorf("frame %d (score %g): cell drawn %v, want %v", r.Frame, r.Score, got, want)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d heat-map cells wrong", bad, n)
	}

	// Hovering the best cell names it.
	bestFrame := 0
	for _, r := range recs {
		if r.Score == best {
			bestFrame = r.Frame
			break
		}
	}
	hover := fmt.Sprintf(`(() => {
		const c = document.getElementById("raster-plot"), R = window.tioga_raster(), b = c.getBoundingClientRect();
		const f = %d, line = Math.floor(f / R.fpl); let col = f %% R.fpl; if (R.serp && line %% 2 === 1) col = R.fpl - 1 - col;
		c.dispatchEvent(new MouseEvent("mousemove", {clientX: b.left + R.L + (col + 0.5) * R.cell, clientY: b.top + R.T + (line + 0.5) * R.cell, bubbles: true}));
		return document.getElementById("raster-tip").textContent; })()`, bestFrame)
	tip, err := chromedp.Run(bctx, chromedp.Evaluate[string](hover))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tip, fmt.Sprintf("frame %d\n", bestFrame)) || !strings.Contains(tip, "score ") {
		t.Errorf("hover on the best cell shows %q", tip)
	}
	t.Logf("screenshots in %s", out)
}
