// Package metrics is the Prometheus face of the property registry: the
// facility's monitoring scrapes /metrics and sees what TINE and OPC UA
// clients see, under Prometheus names (tioga_frames_received_total, ...).
//
// Like the other adapters it reads properties and nothing else. Most of
// the streaming device's counters start again at zero with every series
// (frames-received, hits, count-dropped, ...), while a Prometheus counter
// only ever grows while the process lives. The adapter therefore follows
// each counter property through a registry subscription and adds the last
// value of a series to a running total when the value drops: the _total
// metrics count since the server started, summed over series. Gauges (queue
// depth, free disk, rate, stage timing) are read at scrape time.
//
// Stage timing comes from the streaming device's timing-* properties,
// [last, mean, max] in ms over the series; it is exported as gauges
// (tioga_stage_duration_seconds{stage, stat}), not histograms: a histogram
// needs every frame's time, and the registry holds only these three
// figures, so buckets made from them would be invented.
package metrics

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tioga/device"
	"tioga/properties"
)

// Config says which devices to read.
type Config struct {
	// Stream and Scan are the streaming and raster devices
	// (/P14/rideau/tioga, /P14/rideau/scan); Scan may be nil.
	Stream, Scan *device.Device
	// Extra collectors (the command adds the TINE and OPC UA servers'
	// request and client counts, and the web page's open pages).
	Extra []prometheus.Collector
}

// Metrics owns the Prometheus registry.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	mu     sync.Mutex
	totals map[*properties.Property]*total
}

// total accumulates a per-series counter over series.
type total struct {
	base, last float64
}

func (t *total) observe(v float64) {
	if v < t.last {
		t.base += t.last // a new series started from zero
	}
	t.last = v
}

func (t *total) value() float64 { return t.base + t.last }

// counterDef maps a counter property to a metric.
type counterDef struct {
	prop   string
	name   string
	help   string
	labels prometheus.Labels
}

// counters are the stream device's counters exported as _total metrics.
var counters = []counterDef{
	{"frames-received", "tioga_frames_received_total", "Frames received from the detector since the server started.", nil},
	{"frame-count", "tioga_frames_analysed_total", "Frames analysed since the server started.", nil},
	{"frames-written", "tioga_frames_written_total", "Frames written to disk since the server started.", nil},
	{"files-failed", "tioga_frames_failed_total", "Frames that failed, by stage, since the server started.", prometheus.Labels{"stage": "write"}},
	{"count-bad-frames", "tioga_frames_failed_total", "Frames that failed, by stage, since the server started.", prometheus.Labels{"stage": "analyse"}},
	{"count-dropped", "tioga_frames_dropped_total", "Frames lost between detector and server since the server started.", nil},
	{"hits", "tioga_hits_total", "Hits since the server started.", nil},
	{"bytes-written", "tioga_written_bytes_total", "Bytes of image files written since the server started.", nil},
	{"count-back-pressure", "tioga_back_pressure_total", "Frames the receiver had to hold because the worker queue was full.", nil},
}

// gaugeDef maps a scalar property to a gauge, with a scale factor.
type gaugeDef struct {
	dev, prop, name, help string
	scale                 float64
}

var gauges = []gaugeDef{
	{"stream", "queue-depth", "tioga_queue_depth_frames", "Frames received and waiting for a worker.", 1},
	{"stream", "queue-capacity", "tioga_queue_capacity_frames", "Bound of the frame queue.", 1},
	{"stream", "free-disk", "tioga_free_disk_bytes", "Free space of the output file system.", 1},
	{"stream", "average-speed", "tioga_analysis_rate_frames_per_second", "Frames analysed per second over the last second.", 1},
	{"stream", "workers", "tioga_workers", "Analysis workers.", 1},
	{"stream", "series-id", "tioga_series_id", "Id of the current (or last) series.", 1},
	{"stream", "nimages", "tioga_series_frames_announced", "Frames the current series announced.", 1},
	{"stream", "frame-count", "tioga_series_frames_analysed", "Frames analysed in the current series.", 1},
	{"stream", "hit-rate", "tioga_series_hit_ratio", "Hits per analysed frame in the current series.", 0.01},
	{"stream", "files-pending", "tioga_files_pending", "Frames analysed and not yet on disk.", 1},
	{"scan", "progress", "tioga_scan_progress_ratio", "Share of the raster's frames processed.", 0.01},
	{"scan", "best-score", "tioga_scan_best_score", "Highest score of the raster so far.", 1},
}

var stages = []struct{ prop, stage string }{
	{"timing-decode", "decode"}, {"timing-analyse", "analyse"}, {"timing-write", "write"}, {"timing-latency", "receive_to_committed"},
}

// New builds the registry: the registry-backed collector, the Go runtime
// and process collectors, and the extra collectors.
func New(cfg Config) (*Metrics, error) {
	m := &Metrics{cfg: cfg, reg: prometheus.NewRegistry(), totals: map[*properties.Property]*total{}}
	if err := m.reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := m.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	if err := m.reg.Register(registryCollector{m}); err != nil {
		return nil, err
	}
	for _, c := range cfg.Extra {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, p := range m.counterProps() {
		m.totals[p] = &total{}
	}
	return m, nil
}

// Registry is the Prometheus registry (for tests and for more collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// counterProps lists the properties whose totals are kept: the counters
// above and every count-* property of the streaming device.
func (m *Metrics) counterProps() []*properties.Property {
	var out []*properties.Property
	seen := map[*properties.Property]bool{}
	add := func(p *properties.Property) {
		if p != nil && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if m.cfg.Stream == nil {
		return nil
	}
	for _, c := range counters {
		p, _ := m.cfg.Stream.Property(c.prop)
		add(p)
	}
	for _, p := range m.cfg.Stream.Properties() {
		if strings.HasPrefix(p.Name(), "count-") && p.Spec().Shape == properties.Scalar {
			add(p)
		}
	}
	return out
}

// Run follows the counter properties until ctx ends. Start it before the
// first series so that no series' last value is missed.
func (m *Metrics) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for p, t := range m.totals {
		sub := p.Subscribe(properties.SubscribeOptions{Mode: properties.OnChange, Tolerance: 0, Buffer: 256})
		wg.Add(1)
		go func(p *properties.Property, t *total) {
			defer wg.Done()
			defer sub.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case u, ok := <-sub.C:
					if !ok {
						return
					}
					m.mu.Lock()
					t.observe(u.Value.Float())
					m.mu.Unlock()
				}
			}
		}(p, t)
	}
	wg.Wait()
	return nil
}

// registryCollector reads the properties at scrape time.
type registryCollector struct{ m *Metrics }

// Describe sends nothing: the metrics follow the devices' properties, so
// the collector is unchecked.
func (registryCollector) Describe(chan<- *prometheus.Desc) {}

func (c registryCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	if m.cfg.Stream == nil {
		return
	}
	m.mu.Lock()
	snapshot := make(map[*properties.Property]float64, len(m.totals))
	for p, t := range m.totals {
		snapshot[p] = t.value()
	}
	m.mu.Unlock()
	// A property never seen by the subscription (Run not started) counts
	// its current value.
	get := func(p *properties.Property) float64 {
		if v, ok := snapshot[p]; ok && v >= p.Value().Float() {
			return v
		}
		return p.Value().Float()
	}
	descs := map[string]*prometheus.Desc{}
	desc := func(name, help string, labels prometheus.Labels) *prometheus.Desc {
		keys := sortedKeys(labels)
		k := name + "|" + strings.Join(keys, ",")
		if d, ok := descs[k]; ok {
			return d
		}
		d := prometheus.NewDesc(name, help, keys, nil)
		descs[k] = d
		return d
	}
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels prometheus.Labels) {
		vals := make([]string, 0, len(labels))
		for _, k := range sortedKeys(labels) {
			vals = append(vals, labels[k])
		}
		ch <- prometheus.MustNewConstMetric(d, t, v, vals...)
	}
	for _, cd := range counters {
		p, ok := m.cfg.Stream.Property(cd.prop)
		if !ok {
			continue
		}
		emit(desc(cd.name, cd.help, cd.labels), prometheus.CounterValue, get(p), cd.labels)
	}
	errDesc := desc("tioga_errors_total", "Errors since the server started, by kind (the streaming device's count-* properties, and failed writes).", prometheus.Labels{"kind": ""})
	for _, p := range m.cfg.Stream.Properties() {
		name := p.Name()
		if !strings.HasPrefix(name, "count-") || p.Spec().Shape != properties.Scalar || name == "count-back-pressure" {
			continue
		}
		kind := strings.ReplaceAll(strings.TrimPrefix(name, "count-"), "-", "_")
		emit(errDesc, prometheus.CounterValue, get(p), prometheus.Labels{"kind": kind})
	}
	if p, ok := m.cfg.Stream.Property("files-failed"); ok {
		emit(errDesc, prometheus.CounterValue, get(p), prometheus.Labels{"kind": "write_failed"})
	}
	for _, g := range gauges {
		d := m.cfg.Stream
		if g.dev == "scan" {
			d = m.cfg.Scan
		}
		if d == nil {
			continue
		}
		p, ok := d.Property(g.prop)
		if !ok {
			continue
		}
		emit(desc(g.name, g.help, nil), prometheus.GaugeValue, p.Value().Float()*g.scale, nil)
	}
	if p, ok := m.cfg.Stream.Property("queue-state"); ok {
		full := 0.0
		if strings.HasPrefix(p.Value().Text, "full") {
			full = 1
		}
		emit(desc("tioga_queue_full", "1 while the worker queue is full and the receiver waits (back-pressure).", nil), prometheus.GaugeValue, full, nil)
	}
	if p, ok := m.cfg.Stream.Property("status"); ok {
		st := p.Value().Text
		if i := strings.IndexByte(st, ':'); i >= 0 {
			st = st[:i] // "error: <reason>": the reason is in the status property
		}
		emit(desc("tioga_status", "The streaming device's status (idle, receiving, processing, writing, done, error); 1 for the current one.", prometheus.Labels{"status": ""}),
			prometheus.GaugeValue, 1, prometheus.Labels{"status": st})
	}
	stageDesc := desc("tioga_stage_duration_seconds", "Time per frame of a pipeline stage over the current series: last, mean and max (from the timing-* properties).", prometheus.Labels{"stage": "", "stat": ""})
	for _, s := range stages {
		p, ok := m.cfg.Stream.Property(s.prop)
		if !ok {
			continue
		}
		v := p.Value()
		if v.Len() < 3 {
			continue
		}
		for i, stat := range []string{"last", "mean", "max"} {
			emit(stageDesc, prometheus.GaugeValue, v.Float64At(i)/1000, prometheus.Labels{"stage": s.stage, "stat": stat})
		}
	}
}

func sortedKeys(l prometheus.Labels) []string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
