package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"tioga/device"
	"tioga/properties"
)

func testDevices(t *testing.T) (stream, scan *device.Device) {
	t.Helper()
	R := properties.Read
	stream = device.New("tioga", "stream")
	for _, name := range []string{"frames-received", "frame-count", "frames-written", "files-failed", "count-bad-frames", "count-dropped",
		"hits", "count-back-pressure", "count-malformed", "count-series-timeouts", "queue-depth", "queue-capacity", "workers", "series-id", "nimages", "files-pending"} {
		stream.Add(properties.Spec{Name: name, Elem: properties.Int32, Access: R})
	}
	for _, name := range []string{"bytes-written", "free-disk"} {
		stream.Add(properties.Spec{Name: name, Elem: properties.Float64, Access: R})
	}
	for _, name := range []string{"average-speed", "hit-rate"} {
		stream.Add(properties.Spec{Name: name, Elem: properties.Float32, Access: R})
	}
	for _, name := range []string{"queue-state", "status"} {
		stream.Add(properties.Spec{Name: name, Elem: properties.Text, Access: R, MaxLen: 256})
	}
	for _, name := range []string{"timing-decode", "timing-analyse", "timing-write", "timing-latency"} {
		stream.Add(properties.Spec{Name: name, Elem: properties.Float64, Shape: properties.Array, MaxLen: 3, Access: R})
	}
	scan = device.New("scan", "scan")
	scan.Add(properties.Spec{Name: "progress", Elem: properties.Float32, Access: R})
	scan.Add(properties.Spec{Name: "best-score", Elem: properties.Float32, Access: R})
	return stream, scan
}

func set(d *device.Device, name string, v float64) {
	p, _ := d.Property(name)
	p.SetFloat(v)
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	return string(b)
}

// waitTotal waits until the follower has seen a value (the subscription
// delivers asynchronously).
func waitTotal(t *testing.T, m *Metrics, d *device.Device, name string, want float64) {
	t.Helper()
	p, _ := d.Property(name)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		m.mu.Lock()
		v := m.totals[p].value()
		m.mu.Unlock()
		if v == want {
			return
		}
	}
	t.Fatalf("%s total never reached %g", name, want)
}

func TestMetricsFollowTheRegistry(t *testing.T) {
	stream, scan := testDevices(t)
	pages := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tioga_web_pages_open", Help: "Open pages."}, func() float64 { return 2 })
	m, err := New(Config{Stream: stream, Scan: scan, Extra: []prometheus.Collector{pages}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Series 1: 100 frames, 7 hits, 2 lost, 1 write failure.
	set(stream, "frames-received", 100)
	set(stream, "frame-count", 100)
	set(stream, "frames-written", 99)
	set(stream, "files-failed", 1)
	set(stream, "hits", 7)
	set(stream, "count-dropped", 2)
	set(stream, "bytes-written", 5e8)
	set(stream, "count-malformed", 3)
	waitTotal(t, m, stream, "bytes-written", 5e8)
	waitTotal(t, m, stream, "count-malformed", 3)
	// Series 2 starts from zero and reaches 50 frames, 3 hits.
	for _, n := range []string{"frames-received", "frame-count", "frames-written", "files-failed", "hits", "count-dropped", "bytes-written"} {
		set(stream, n, 0)
	}
	set(stream, "frames-received", 50)
	set(stream, "frame-count", 50)
	set(stream, "frames-written", 50)
	set(stream, "hits", 3)
	set(stream, "bytes-written", 2.5e8)
	waitTotal(t, m, stream, "bytes-written", 7.5e8)
	waitTotal(t, m, stream, "hits", 10)
	waitTotal(t, m, stream, "frames-written", 149)
	waitTotal(t, m, stream, "frames-received", 150)
	waitTotal(t, m, stream, "frame-count", 150)

	set(stream, "queue-depth", 5)
	set(stream, "queue-capacity", 8)
	set(stream, "free-disk", 1.5e12)
	set(stream, "average-speed", 58)
	set(stream, "hit-rate", 6)
	set(scan, "progress", 40)
	p, _ := stream.Property("queue-state")
	p.SetText("full: 8 frames queued")
	p, _ = stream.Property("status")
	p.SetText("error: disk full")
	p, _ = stream.Property("timing-latency")
	_ = p.Set(properties.Float64s([]float64{12, 10, 40}))

	text := scrape(t, m)
	for _, want := range []string{
		"tioga_frames_received_total 150",
		"tioga_frames_analysed_total 150",
		"tioga_frames_written_total 149",
		`tioga_frames_failed_total{stage="write"} 1`,
		`tioga_frames_failed_total{stage="analyse"} 0`,
		"tioga_frames_dropped_total 2",
		"tioga_hits_total 10",
		"tioga_written_bytes_total 7.5e+08",
		`tioga_errors_total{kind="malformed"} 3`,
		`tioga_errors_total{kind="dropped"} 2`,
		`tioga_errors_total{kind="write_failed"} 1`,
		"tioga_queue_depth_frames 5",
		"tioga_queue_full 1",
		"tioga_free_disk_bytes 1.5e+12",
		"tioga_analysis_rate_frames_per_second 58",
		"tioga_series_hit_ratio 0.06",
		"tioga_scan_progress_ratio 0.4",
		`tioga_status{status="error"} 1`,
		`tioga_stage_duration_seconds{stage="receive_to_committed",stat="max"} 0.04`,
		`tioga_stage_duration_seconds{stage="receive_to_committed",stat="last"} 0.012`,
		"tioga_web_pages_open 2",
		"go_goroutines ",
		"process_resident_memory_bytes ",
		"# TYPE tioga_hits_total counter",
		"# TYPE tioga_queue_depth_frames gauge",
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want) {
			t.Errorf("missing %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
	// Names, units and help by Prometheus' own linter.
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		if strings.HasPrefix(pr.Metric, "tioga_") {
			t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
		}
	}
}
