package pipeline

import (
	"sync"
	"time"

	"tioga/properties"
)

// Stage timing, always on (as odin-data's plugins publish theirs): per
// series, the time each frame spent decoding, analysing and writing, and
// from its arrival at the receiver to its commit, each as [last, mean, max]
// in milliseconds on the streaming device. A beamline sees at once which
// stage limits the rate: a stage whose mean approaches workers / frame rate
// is the bottleneck; a latency far above the sum of the stages means frames
// wait in the queue.

// stage is one running [last, mean, max].
type stage struct {
	last, max, sum time.Duration
}

func (s *stage) add(d time.Duration) {
	s.last = d
	s.sum += d
	s.max = max(s.max, d)
}

// ms returns [last, mean, max] in milliseconds over n frames.
func (s *stage) ms(n int) []float64 {
	if n == 0 {
		return []float64{0, 0, 0}
	}
	const msPerNs = 1e-6
	return []float64{float64(s.last) * msPerNs, float64(s.sum) / float64(n) * msPerNs, float64(s.max) * msPerNs}
}

// stageTimes aggregates the frames of one series. The committer adds (one
// frame at a time, in commit order, so "last" is the last committed frame);
// the export reads.
type stageTimes struct {
	mu                              sync.Mutex
	n                               int
	decode, analyse, write, latency stage
}

func (t *stageTimes) reset() {
	t.mu.Lock()
	t.n = 0
	t.decode, t.analyse, t.write, t.latency = stage{}, stage{}, stage{}, stage{}
	t.mu.Unlock()
}

// add records one committed frame. Stages a frame skipped (analysis
// unavailable, writer off) count as zero, so that the means stay the
// per-frame cost of the series.
func (t *stageTimes) add(decode, analyse, write, latency time.Duration) {
	t.mu.Lock()
	t.n++
	t.decode.add(decode)
	t.analyse.add(analyse)
	t.write.add(write)
	t.latency.add(latency)
	t.mu.Unlock()
}

// publish sets the four timing properties.
func (t *stageTimes) publish(decode, analyse, write, latency *properties.Property) {
	t.mu.Lock()
	n := t.n
	d, a, w, l := t.decode.ms(n), t.analyse.ms(n), t.write.ms(n), t.latency.ms(n)
	t.mu.Unlock()
	_ = decode.Set(properties.Float64s(d))
	_ = analyse.Set(properties.Float64s(a))
	_ = write.Set(properties.Float64s(w))
	_ = latency.Set(properties.Float64s(l))
}
