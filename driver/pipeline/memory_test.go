package pipeline

import (
	"bufio"
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"

	"tioga/device/contract"
	"tioga/driver/analysis"
	"tioga/driver/codec"
	"tioga/driver/stream"
	"tioga/internal/testenv"
)

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// TestMillionFrameSeriesKeepsMemoryBounded pushes a 1,000,000-frame series
// of tiny frames through the pipeline (analysis only) and checks that the
// heap stays bounded: 24 bytes of results per frame, nothing else that
// grows with the series.
func TestMillionFrameSeriesKeepsMemoryBounded(t *testing.T) {
	testenv.SkipIfShort(t)
	const n = 1_000_000
	const w, h = 32, 32
	dev, err := contract.Build(contract.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	sched, _ := gocron.NewScheduler()
	sched.Start()
	defer sched.Shutdown()
	// Eight shells: a 32 x 32 frame has no use for 128, and the per-shell
	// histograms would dominate the cost of such tiny frames.
	params := analysis.DefaultParams()
	params.Shells = 8
	p, err := New(Config{Workers: 2, QueueDepth: 8, ExportPeriod: 50 * time.Millisecond, DisableHeatMap: true, Analysis: params},
		dev, sched, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan stream.Message, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, in) }()

	// A flat background of 2 counts with one bright 3x3 spot: every frame
	// goes through the whole analysis.
	frame := make([]byte, w*h*2)
	for i := 0; i < w*h; i++ {
		binary.LittleEndian.PutUint16(frame[2*i:], 2)
	}
	for y := 4; y < 7; y++ {
		for x := 4; x < 7; x++ {
			binary.LittleEndian.PutUint16(frame[2*(y*w+x):], 500)
		}
	}
	in <- stream.Message{Series: &stream.Series{Version: 1, ID: 1, Width: w, Height: h, ElemSize: 2, BitDepth: 16,
		PixelSizeX: 75e-6, PixelSizeY: 75e-6, BeamCenterX: 16, BeamCenterY: 16, DetectorDistance: 0.05,
		Wavelength: 1, NumberOfImages: n}}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	for i := 0; i < n; i++ {
		in <- stream.Message{Image: &stream.Image{Version: 1, SeriesID: 1, Number: uint64(i),
			Pixels: stream.Pixels{Width: w, Height: h, ElemSize: 2, Encoding: codec.Raw, Data: frame}}}
		if i%50_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	in <- stream.Message{End: &stream.End{Version: 1, SeriesID: 1}}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if s, ok := p.LastSummary(); ok && s.SeriesID == 1 {
			if s.Processed != n || !s.Complete {
				t.Fatalf("summary %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("series not finished")
		}
		time.Sleep(20 * time.Millisecond)
	}
	runtime.ReadMemStats(&ms)
	peak = max(peak, ms.HeapInuse)
	if v, _ := dev.Stream.DozorPass.Read(); v.Rows() != n || v.Float32s[4*(n-1)] != n-1 {
		t.Fatalf("dozor-pass has %d records", v.Rows())
	}
	if got := dev.Stream.FrameCount.Value().Int(); got != n {
		t.Fatalf("frame-count %d", got)
	}
	grown := int64(peak) - int64(base)
	rss := peakRSS(t)
	t.Logf("1,000,000 frames: heap in use grew by at most %.1f MB; peak RSS %.1f MB", float64(grown)/(1<<20), float64(rss)/(1<<20))
	// 24 MB of records (and their growth by doubling) plus small change;
	// anything per frame would be hundreds of MB.
	if grown > 120<<20 {
		t.Fatalf("heap grew by %d MB over the series", grown>>20)
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
