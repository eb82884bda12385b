package pipeline

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"

	"tioga/device/contract"
	"tioga/device/detectormodel"
	"tioga/driver/cbf"
	"tioga/driver/stream"
	"tioga/driver/writer"
	"tioga/internal/testenv"
	"tioga/properties"
	"tioga/sim"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// harness is one server (receiver + pipeline + devices) wired to one
// simulated detector over real ZMQ on loopback.
type harness struct {
	t        *testing.T
	det      *sim.Detector
	dev      *contract.Devices
	pipe     *Pipeline
	recv     *stream.Receiver
	dir      string
	truth    string
	cancel   context.CancelFunc
	done     chan error
	sink     *recordingSink
	batches  *eventLog
	sched    gocron.Scheduler
	detCfg   sim.Config
	pipeConf Config
}

type recordingSink struct {
	mu     sync.Mutex
	frames []WrittenFrame
	starts int
	ends   int
}

func (r *recordingSink) SeriesStarted(uint64) { r.mu.Lock(); r.starts++; r.mu.Unlock() }
func (r *recordingSink) SeriesEnded(uint64)   { r.mu.Lock(); r.ends++; r.mu.Unlock() }
func (r *recordingSink) FrameWritten(f WrittenFrame) {
	f.SpotXY = nil
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

// eventLog collects dozor-pass event batches as a client would.
type eventLog struct {
	mu      sync.Mutex
	batches [][]float32
}

func (e *eventLog) follow(sub *properties.Subscription) {
	for u := range sub.C {
		e.mu.Lock()
		e.batches = append(e.batches, append([]float32(nil), u.Value.Float32s...))
		e.mu.Unlock()
	}
}

func (e *eventLog) snapshot() [][]float32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]float32(nil), e.batches...)
}

func newHarness(t *testing.T, detCfg sim.Config, mutate func(*Config)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, truth: filepath.Join(dir, "truth-%d.jsonl"), sink: &recordingSink{}, batches: &eventLog{}}
	detCfg.TruthPath = h.truth
	if detCfg.Stream.FPS == 0 {
		detCfg.Stream.FPS = -1 // as fast as the server takes them
	}
	det, err := sim.Start(detCfg)
	if err != nil {
		t.Fatal(err)
	}
	h.det, h.detCfg = det, detCfg
	t.Cleanup(func() { det.Close() })

	h.dev, err = contract.Build(contract.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	h.recv, err = stream.New(stream.Config{Endpoint: det.StreamEndpoint(), SeriesTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.sched, err = gocron.NewScheduler()
	if err != nil {
		t.Fatal(err)
	}
	h.sched.Start()
	t.Cleanup(func() { h.sched.Shutdown() })
	cfg := Config{
		Workers: 2, ExportPeriod: 50 * time.Millisecond,
		Writer:        writer.Config{Directory: filepath.Join(dir, "images"), Prefix: "scan", Run: 1, MinFreeBytes: -1},
		WriterEnabled: true,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h.pipeConf = cfg
	h.pipe, err = New(cfg, h.dev, h.sched, h.recv, h.sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub := h.dev.Stream.DozorPass.Subscribe(properties.SubscribeOptions{Mode: properties.OnEvent, Buffer: 100000})
	go h.batches.follow(sub)
	t.Cleanup(sub.Close)

	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { _ = h.recv.Run(ctx) }()
	go func() { h.done <- h.pipe.Run(ctx, h.recv.Events()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(20 * time.Second):
			t.Error("pipeline did not stop")
		}
	})
	return h
}

// runSeries runs one series on the simulator and waits until the server
// has finished it.
func (h *harness) runSeries(ctx context.Context) (int, Summary) {
	h.t.Helper()
	before, _ := h.pipe.LastSummary()
	id, err := h.det.RunSeries(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if s, ok := h.pipe.LastSummary(); ok && s.SeriesID == uint64(id) && s != before {
			return id, s
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("series %d not finished by the server; status %q", id, h.dev.Stream.Status.Value().Text)
	return 0, Summary{}
}

func (h *harness) readTruth(id int) []truth.Frame {
	h.t.Helper()
	f, err := os.Open(strings.Replace(h.truth, "%d", fmt.Sprint(id), 1))
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	frames, err := truth.ReadAll(f)
	if err != nil {
		h.t.Fatal(err)
	}
	return frames
}

func rasterSample(p detectormodel.Profile, lines, frames int) *diffraction.Config {
	c := diffraction.DefaultConfig(p)
	r := diffraction.DefaultRaster()
	r.Lines, r.FramesPerLine = lines, frames
	r.CenterColumn, r.CenterLine = float64(frames)*0.6, float64(lines)*0.4
	r.RadiusColumns, r.RadiusLines = float64(frames)*0.2, float64(lines)*0.25
	c.Raster = &r
	c.Seed = 11
	return &c
}

// TestEndToEndRaster runs a raster through simulator -> ZMQ -> receiver ->
// pipeline -> files + properties, for Stream V1 and V2, and judges it
// against the simulator's ground truth.
func TestEndToEndRaster(t *testing.T) {
	testenv.SkipIfShort(t)
	for _, tc := range []struct {
		name, format, compression string
		appendix                  string // the client's header_appendix
		gridInHeader              bool
	}{
		// The simulator puts a raster's geometry into the header appendix
		// itself: nobody sets it by hand.
		{"V1-bslz4-grid-from-simulator-header", "legacy", "bslz4", "", true},
		// An appendix that is not a JSON object goes out verbatim, without
		// a geometry: the scan device's properties lay out the grid.
		{"V2-lz4-grid-from-property", "cbor", "lz4", "acquisition 17", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prof, _ := detectormodel.ByName("eiger500k")
			const lines, perLine = 12, 25
			cfg := sim.Config{Profile: prof, Format: tc.format, Compression: tc.compression,
				NImages: lines * perLine, Sample: rasterSample(prof, lines, perLine), HeaderDetail: "all",
				HeaderAppendix: tc.appendix}
			h := newHarness(t, cfg, nil)
			if !tc.gridInHeader {
				// A client sets the geometry before the scan.
				for _, w := range []struct {
					p *properties.Property
					v properties.Value
				}{{h.dev.Scan.Lines, properties.Int32Value(lines)}, {h.dev.Scan.FramesPerLine, properties.Int32Value(perLine)},
					{h.dev.Scan.Serpentine, properties.BoolValue(true)}} {
					if err := w.p.Write(t.Context(), w.v); err != nil {
						t.Fatal(err)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			id, sum := h.runSeries(ctx)
			n := lines * perLine
			tr := h.readTruth(id)
			if len(tr) != n {
				t.Fatalf("truth has %d frames", len(tr))
			}

			// Every frame processed and on disk, and the files read back.
			if sum.Processed != n || sum.Written != n || !sum.Complete || sum.Dropped != 0 || sum.BadFrames != 0 {
				t.Fatalf("summary %+v", sum)
			}
			// The workers hand every received message back (Image.Release):
			// the receiver reuses a few buffers instead of one per frame
			// (a few more after garbage collections, which empty its pool).
			if b := h.recv.Stats().Buffers; b > uint64(n)/3 {
				t.Errorf("the receiver allocated %d message buffers for %d frames", b, n)
			} else {
				t.Logf("%d frames received into %d message buffers", n, b)
			}
			st := h.dev.Stream
			if got := st.Status.Value().Text; got != contract.StatusDone {
				t.Fatalf("status %q", got)
			}
			if st.FrameCount.Value().Int() != n {
				t.Fatalf("frame-count %d", st.FrameCount.Value().Int())
			}
			// Every frame's file reads back: the simulator's pixels, masked
			// pixels as -1, the gzip CRC-32 checked, no Content-MD5 (the
			// default for .cbf.gz: the CRC covers every byte).
			gen := h.det.Generator(id)
			raw := make([]byte, gen.FrameBytes())
			var tf truth.Frame
			for i := 0; i < n; i++ {
				path := filepath.Join(h.dir, "images", fmt.Sprintf("scan_1_%05d.cbf.gz", i+1))
				img, err := cbf.ReadFile(path)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if img.Width != 1030 || img.Height != 514 || img.HasMD5 {
					t.Fatalf("frame %d: %dx%d md5 %v", i, img.Width, img.Height, img.HasMD5)
				}
				if err := gen.Frame(i, raw, &tf); err != nil {
					t.Fatal(err)
				}
				want := cbf.Pixels{Data: raw, Width: 1030, Height: 514, ElemSize: gen.ElemSize()}
				for k, v := range img.Pixels {
					if v != want.Value(k) {
						t.Fatalf("frame %d pixel %d: file %d, simulator %d", i, k, v, want.Value(k))
					}
				}
			}

			// The records: the batches, concatenated, are frames 0..n-1 in
			// order, and the complete array is sent once more at the end.
			batches := h.batches.snapshot()
			var all []float32
			final := 0
			for _, b := range batches {
				if len(b) == 4*n && len(all) == 4*n {
					final++
					continue
				}
				all = append(all, b...)
			}
			if final != 1 {
				t.Fatalf("complete array sent %d times (want once), %d batches", final, len(batches))
			}
			if len(all) != 4*n {
				t.Fatalf("batches carried %d records, want %d", len(all)/4, n)
			}
			for i := 0; i < n; i++ {
				if all[4*i] != float32(i) {
					t.Fatalf("record %d is frame %g: not in frame order", i, all[4*i])
				}
			}
			if v, _ := st.DozorPass.Read(); v.Rows() != n {
				t.Fatalf("read returns %d records", v.Rows())
			}

			// Hit rate within 2 % of the truth; the best frame in the crystal.
			trueHits := 0
			for _, f := range tr {
				if f.Hit {
					trueHits++
				}
			}
			trueRate := 100 * float64(trueHits) / float64(n)
			gotRate := st.HitRate.Value().Float()
			t.Logf("hit rate %.2f %% (truth %.2f %%), %d hits", gotRate, trueRate, sum.Hits)
			if math.Abs(gotRate-trueRate) > 2 {
				t.Fatalf("hit rate %.2f %%, truth %.2f %%", gotRate, trueRate)
			}
			best := h.dev.Scan.BestFrame.Value().Int()
			if best < 0 || !tr[best].Hit {
				t.Fatalf("best frame %d is not in the crystal region", best)
			}
			cell := h.dev.Scan.BestCell.Value().Int32s
			if int(cell[0]) != tr[best].Line || int(cell[1]) != tr[best].Column {
				t.Fatalf("best cell %v, truth (%d, %d)", cell, tr[best].Line, tr[best].Column)
			}
			if h.dev.Scan.Progress.Value().Float() != 100 {
				t.Fatalf("progress %v", h.dev.Scan.Progress.Value())
			}
			wantSource := "property"
			if tc.gridInHeader {
				wantSource = "header"
			}
			if got := h.dev.Scan.Source.Value().Text; got != wantSource {
				t.Fatalf("geometry source %q", got)
			}
			if sc := h.dev.Scan; sc.Lines.Value().Int() != lines || sc.FramesPerLine.Value().Int() != perLine || !sc.Serpentine.Value().Bool() {
				t.Fatalf("geometry %v x %v serpentine %v", sc.Lines.Value(), sc.FramesPerLine.Value(), sc.Serpentine.Value())
			}
			if _, err := os.Stat(sum.HeatMap); err != nil {
				t.Fatalf("heat map: %v", err)
			}

			// The tracker heard of every written frame, in order.
			h.sink.mu.Lock()
			frames := h.sink.frames
			h.sink.mu.Unlock()
			if len(frames) != n || frames[n-1].Index != n-1 {
				t.Fatalf("tracker heard of %d frames", len(frames))
			}
			// The result files.
			for _, p := range []string{sum.Results, sum.HitList, sum.Spots} {
				if fi, err := os.Stat(p); err != nil || (fi.Size() == 0 && p != sum.HitList) {
					t.Fatalf("per-series file %s: %v", p, err)
				}
			}
		})
	}
}
