package tracker

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"tioga/device/contract"
	"tioga/driver/adxv"
)

// TestMillionFramesBoundedMemory feeds a 1,000,000-frame series (each frame
// with 50 spots and its own path string) and checks that the tracker's
// heap stays bounded by its queue, and that the queue holds exactly the
// best frames.
func TestMillionFramesBoundedMemory(t *testing.T) {
	const (
		frames   = 1_000_000
		size     = 100
		spots    = 50
		maxBytes = 512 << 10 // 100 frames x (50 spots x 8 B + path + entry) is ~60 kB; a leak of half a byte per frame fails
	)
	r := newRig(t, true, func(c *Config) { c.QueueSize = size })
	r.tr.SeriesStarted(1)
	rng := rand.New(rand.NewPCG(1, 1))
	xy := make([]float32, 2*spots)
	type ranked struct {
		frame int
		score float32
	}
	top := make([]ranked, 0, size+1) // the test's own top 100
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	buf := []byte("/data/p14/ssx/ssx_1_")
	prefix := len(buf)
	for i := 0; i < frames; i++ {
		score := float32(0)
		if rng.IntN(5) == 0 {
			score = rng.Float32() * 1000
		}
		for j := range xy {
			xy[j] = float32(i + j)
		}
		buf = strconv.AppendInt(buf[:prefix], int64(i+1), 10)
		buf = append(buf, ".cbf.gz"...)
		r.tr.FrameWritten(Frame{Series: 1, Index: i, Path: string(buf), Score: score, Spots: spots, SpotXY: xy})
		if len(top) < size || score > top[size-1].score {
			at, _ := slices.BinarySearchFunc(top, score, func(e ranked, s float32) int {
				if e.score >= s {
					return -1
				}
				return 1
			})
			top = slices.Insert(top, at, ranked{i, score})
			if len(top) > size {
				top = top[:size]
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grown := int64(ms.HeapAlloc) - int64(before)
	t.Logf("heap grew by %d bytes over %d frames", grown, frames)
	if grown > maxBytes {
		t.Fatalf("heap grew by %d bytes over %d frames, bound %d", grown, frames, maxBytes)
	}
	s := r.tr.Stats()
	if s.Frames != frames || s.Rejected != 0 {
		t.Fatalf("stats %+v", s)
	}
	want := make([]float32, 0, 4*size)
	for _, e := range top {
		want = append(want, float32(e.frame), e.score, spots, 0)
	}
	r.until("queue of the best 100", func() bool { return slices.Equal(r.dev.Queue.Value().Float32s, want) })
	best := "/data/p14/ssx/ssx_1_" + strconv.Itoa(top[0].frame+1) + ".cbf.gz"
	r.waitShown(best)
}

// TestFrameWrittenAllocatesNothing: after warm-up, neither a frame that
// misses the queue nor one that enters it allocates.
func TestFrameWrittenAllocatesNothing(t *testing.T) {
	r := newRig(t, true)
	r.tr.SeriesStarted(1)
	xy := make([]float32, 100)
	p := "/data/p14/ssx/ssx_1_00001.cbf.gz"
	i := 0
	for ; i < 100; i++ {
		r.tr.FrameWritten(Frame{Series: 1, Index: i, Path: p, Score: float32(i), SpotXY: xy})
	}
	if a := testing.AllocsPerRun(1000, func() {
		i++
		r.tr.FrameWritten(Frame{Series: 1, Index: i, Path: p, Score: 0, SpotXY: xy})
	}); a != 0 {
		t.Errorf("a frame that misses the queue: %v allocations", a)
	}
	if a := testing.AllocsPerRun(1000, func() {
		i++
		r.tr.FrameWritten(Frame{Series: 1, Index: i, Path: p, Score: float32(i), SpotXY: xy})
	}); a != 0 {
		t.Errorf("a frame that enters the queue: %v allocations", a)
	}
}

// benchTracker is a tracker whose ADXV never answers (nobody listens on
// its port): the benchmark measures FrameWritten alone.
func benchTracker(b *testing.B) *Tracker {
	b.Helper()
	tr, err := New(contract.NewTracker(), newScheduler(b), Config{
		ADXV: adxv.Config{Host: "127.0.0.1", Port: freePort(b)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	return tr
}

// BenchmarkFrameWritten: the pipeline's cost per frame. "miss": an SSX
// series where one frame in five is a hit, so after warm-up almost every
// frame misses the queue; "enter": every frame better than the last (the
// worst case: each one enters the queue and copies 100 spots).
func BenchmarkFrameWritten(b *testing.B) {
	xy := make([]float32, 200)
	p := "/data/p14/ssx/ssx_1_00001.cbf.gz"
	b.Run("miss", func(b *testing.B) {
		tr := benchTracker(b)
		tr.SeriesStarted(1)
		rng := rand.New(rand.NewPCG(3, 3))
		scores := make([]float32, 1<<16)
		for i := range scores {
			if rng.IntN(5) == 0 {
				scores[i] = rng.Float32() * 1000
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			tr.FrameWritten(Frame{Series: 1, Index: i, Path: p, Score: scores[i&(1<<16-1)], Spots: 100, SpotXY: xy})
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mframes/s")
	})
	b.Run("enter", func(b *testing.B) {
		tr := benchTracker(b)
		tr.SeriesStarted(1)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			tr.FrameWritten(Frame{Series: 1, Index: i, Path: p, Score: float32(i), Spots: 100, SpotXY: xy})
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mframes/s")
	})
}
