package pipeline

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"

	"tioga/device/contract"
	"tioga/device/detectormodel"
	"tioga/driver/codec"
	"tioga/driver/stream"
	"tioga/driver/writer"
	"tioga/internal/testenv"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// TestFramePathAllocatesNothingPerFrame pins the frame path's promise once
// warm, writer included: simulated EIGER 500K frames (half hits, bslz4)
// dispatched, decoded, analysed, written as .cbf.gz with their result
// lines and committed (results store, spot ring, statistics) by two
// workers cost fewer than one allocation in ten frames in at least one of
// three windows of 150 frames, counted over all of them (every
// goroutine's, MemStats): the writer's path blocks, the runtime's own (a
// thread started when the system monitor hands a P on from a worker
// blocked in write(2) costs 7), and the 10 s housekeeping job, which may
// fall in one window on a slow machine. An allocation per frame is 150 in
// every window. Before, every frame cost 11 in the writer, every hit one
// in the spot ring (until the ring was full, and often after), and jobs
// beyond the free list's bound were made anew with their buffers.
//
// The 300 ms export is left out (ExportPeriod of an hour): it allocates
// per export, not per frame (gocron's run of a job and the property
// values it publishes, about 35 allocations per export).
func TestFramePathAllocatesNothingPerFrame(t *testing.T) {
	testenv.SkipIfShort(t) // the race detector allocates
	prof, _ := detectormodel.ByName("eiger500k")
	c := diffraction.DefaultConfig(prof)
	c.HitFraction, c.Seed = 0.5, 5
	gen, err := diffraction.New(c)
	if err != nil {
		t.Fatal(err)
	}
	var enc [][]byte
	e := codec.NewEncoder()
	var tr truth.Frame
	for i := 0; i < 8; i++ {
		raw := make([]byte, prof.Pixels()*2)
		if err := gen.Frame(i, raw, &tr); err != nil {
			t.Fatal(err)
		}
		b, err := e.Encode(nil, raw, codec.BSLZ4, 2)
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, b)
	}

	dev, err := contract.Build(contract.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	sched, _ := gocron.NewScheduler()
	sched.Start()
	defer sched.Shutdown()
	p, err := New(Config{Workers: 2, ExportPeriod: time.Hour, DisableHeatMap: true, SpotRingFrames: 50,
		Writer:        writer.Config{Directory: t.TempDir(), Prefix: "alloc", Run: 1, MinFreeBytes: -1, Fsync: writer.FsyncNever},
		WriterEnabled: true}, dev, sched, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan stream.Message, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, in) }()

	const warm, window, windows = 400, 150, 3
	const runs = window * windows
	g := gen.Config()
	in <- stream.Message{Series: &stream.Series{Version: 1, ID: 1, Width: prof.Width(), Height: prof.Height(), ElemSize: 2, BitDepth: 16,
		Description: "Dectris EIGER X 500K", PixelSizeX: 75e-6, PixelSizeY: 75e-6, BeamCenterX: g.BeamX + stream.PixelCentre, BeamCenterY: g.BeamY + stream.PixelCentre,
		DetectorDistance: g.Distance, Wavelength: g.Wavelength, CountTime: 0.001, FrameTime: 0.001, NumberOfImages: warm + runs}}
	// The messages are made beforehand: the test's own allocations are
	// not the pipeline's.
	images := make([]stream.Image, warm+runs)
	for i := range images {
		images[i] = stream.Image{Version: 1, SeriesID: 1, Number: uint64(i),
			Pixels: stream.Pixels{Width: prof.Width(), Height: prof.Height(), ElemSize: 2, Encoding: codec.BSLZ4, Data: enc[i%len(enc)]}}
	}
	deadline := time.Now().Add(2 * time.Minute)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			in <- stream.Message{Image: &images[i]}
		}
		for {
			if s := p.cur.Load(); s != nil && s.committed.Load() >= uint64(to) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("frames %d-%d not committed in time", from, to-1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	send(0, warm)
	runtime.GC() // the collector's own first allocations are not the pipeline's
	counts := make([]uint64, windows)
	for w := range counts {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mallocs := ms.Mallocs
		send(warm+w*window, warm+(w+1)*window)
		runtime.ReadMemStats(&ms)
		counts[w] = ms.Mallocs - mallocs
	}
	t.Logf("allocations in windows of %d frames: %v", window, counts)
	if least := slices.Min(counts); least > window/10 {
		t.Errorf("at least %d allocations in every window of %d frames, want at most %d in one", least, window, window/10)
	}

	in <- stream.Message{End: &stream.End{Version: 1, SeriesID: 1}}
	for {
		if s, ok := p.LastSummary(); ok && s.SeriesID == 1 {
			if s.Processed != warm+runs || s.Written != warm+runs || s.Hits == 0 {
				t.Fatalf("summary %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("series not finished")
		}
		time.Sleep(time.Millisecond)
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
