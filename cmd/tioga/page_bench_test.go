package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tioga/device/detectormodel"
	"tioga/sim"
	"tioga/sim/diffraction"
	"tioga/sim/streamer"
)

// BenchmarkServerPage4M is the cost of the web page (issue 16): the whole
// server (run, as cmd/tioga starts it: receiver, pipeline, writer, tracker,
// TINE, OPC UA, web) takes a series of EIGER 4M bslz4 frames from the
// in-process simulator over a real ZMQ socket, with no page open and with
// one open. The open page is what app.js does: the Server-Sent Events
// stream read continuously and, whenever the best frame changes, the frame
// info and the frame drawn as PNG (api/frame, api/frame.png).
//
// The figure is Mpx per CPU-second of the whole process, which includes
// the simulator's sending and the page client (a browser would spend the
// latter in another process): both variants pay the same simulator cost,
// so the ratio between them is the page's cost, and an upper bound.
// Run with a fixed count: -benchtime=100x.
func BenchmarkServerPage4M(b *testing.B) {
	for _, open := range []bool{false, true} {
		name := "page=closed"
		if open {
			name = "page=open"
		}
		b.Run(name, func(b *testing.B) { benchServerPage(b, open) })
	}
}

func benchServerPage(b *testing.B, pageOpen bool) {
	prof, _ := detectormodel.ByName("eiger4m")
	sample := diffraction.DefaultConfig(prof)
	sample.Seed = 7
	det, err := sim.Start(sim.Config{Profile: prof, Format: "legacy", NImages: b.N, Sample: &sample,
		Stream: streamer.Options{Reuse: 8, FPS: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer det.Close()

	dir, err := os.MkdirTemp("/dev/shm", "tioga-page-bench-")
	if err != nil {
		b.Fatalf("need /dev/shm (tmpfs): %v", err)
	}
	defer os.RemoveAll(dir)
	cfg := loopbackConfig(b, det, dir)
	ctx, stop := startServer(b, cfg)
	defer stop()
	base := fmt.Sprintf("http://127.0.0.1:%d/", cfg.HTTP.Port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get(base + "api/state"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("web page not served")
		}
	}
	var page *pageClient
	if pageOpen {
		page = openPage(b, ctx, base)
	}

	b.SetBytes(int64(prof.Pixels() * 2))
	b.ResetTimer()
	cpu0 := processCPU()
	id, err := det.RunSeries(ctx)
	if err != nil {
		b.Fatal(err)
	}
	waitSeriesDone(b, base, id)
	b.StopTimer()
	cpu := processCPU() - cpu0
	mpx := float64(b.N) * float64(prof.Pixels()) / 1e6
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(mpx/cpu.Seconds(), "Mpx/cpu-s")
	if page != nil {
		events, pngs := page.events.Load(), page.pngs.Load()
		if events == 0 {
			b.Fatal("the page received no event")
		}
		b.ReportMetric(float64(events), "page-events")
		b.ReportMetric(float64(pngs), "page-frames-drawn")
	}
}

// pageClient does what app.js does with an open page during a scan.
type pageClient struct {
	events, pngs atomic.Int64
}

func openPage(b *testing.B, ctx context.Context, base string) *pageClient {
	p := &pageClient{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("api/events: %s", resp.Status)
	}
	wake := make(chan struct{}, 1)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") {
				p.events.Add(1)
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
	}()
	go func() {
		shown := ""
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			var fi struct {
				Frame  int    `json:"frame"`
				Path   string `json:"path"`
				Render bool   `json:"render"`
			}
			if !getJSON(ctx, base+"api/frame?frame=best", &fi) || !fi.Render || fi.Path == shown {
				continue
			}
			shown = fi.Path
			if getBody(ctx, fmt.Sprintf("%sapi/frame.png?frame=%d&scale=log", base, fi.Frame)) {
				p.pngs.Add(1)
			}
		}
	}()
	return p
}

func getJSON(ctx context.Context, url string, v any) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer r.Body.Close()
	return r.StatusCode == http.StatusOK && json.NewDecoder(r.Body).Decode(v) == nil
}

func getBody(ctx context.Context, url string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer r.Body.Close()
	n, _ := io.Copy(io.Discard, r.Body)
	return r.StatusCode == http.StatusOK && n > 0
}

// waitSeriesDone waits until the server reports series id done (status
// and series-id read from the web API, as the page does).
func waitSeriesDone(b *testing.B, base string, id int) {
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var v struct {
			Value any `json:"value"`
		}
		if !getJSON(context.Background(), base+"api/value?address=/P14/rideau/tioga/series-id", &v) {
			continue
		}
		if fmt.Sprint(v.Value) != fmt.Sprint(id) {
			continue
		}
		if !getJSON(context.Background(), base+"api/value?address=/P14/rideau/tioga/status", &v) {
			continue
		}
		switch s := fmt.Sprint(v.Value); {
		case s == "done":
			return
		case strings.HasPrefix(s, "error"):
			b.Fatalf("series %d: %s", id, s)
		}
	}
	b.Fatalf("series %d not done", id)
}

// processCPU is the CPU time (user + system) of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
