package tracker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// refQueue is the obviously right model: every frame, sorted, cut to limit.
type refQueue struct {
	limit int
	all   []entry
}

func (r *refQueue) add(e entry) {
	r.all = append(r.all, e)
	r.sortCut()
}

func (r *refQueue) sortCut() {
	slices.SortStableFunc(r.all, func(a, b entry) int {
		switch {
		case better(&a, &b):
			return -1
		case better(&b, &a):
			return 1
		}
		return 0
	})
	if len(r.all) > r.limit {
		r.all = r.all[:r.limit]
	}
}

// check compares the queue with the model: same frames, best first, and
// the heap and best index consistent.
func check(t *testing.T, q *queue, r *refQueue) {
	t.Helper()
	recs := q.appendRecords(nil, false)
	sortRecords(recs)
	if len(recs) != len(r.all) {
		t.Fatalf("queue holds %d frames, model %d", len(recs), len(r.all))
	}
	for i, rec := range recs {
		w := r.all[i]
		if rec.frame != w.frame || rec.score != w.score || rec.path != w.path || rec.spots != w.spots {
			t.Fatalf("rank %d: got frame %d score %g, want frame %d score %g", i, rec.frame, rec.score, w.frame, w.score)
		}
	}
	if len(recs) == 0 {
		if q.best != -1 {
			t.Fatalf("empty queue with best %d", q.best)
		}
		return
	}
	if b := q.slots[q.best]; b.frame != r.all[0].frame {
		t.Fatalf("best is frame %d, want %d", b.frame, r.all[0].frame)
	}
	if w := q.slots[q.heap[0]]; w.frame != r.all[len(r.all)-1].frame {
		t.Fatalf("heap root is frame %d, want the worst, %d", w.frame, r.all[len(r.all)-1].frame)
	}
	for i := range q.slots {
		e := q.slots[i]
		if want := fmt.Sprintf("/d/f_%d.cbf", e.frame); e.path != want || len(e.xy) != 2*(e.frame%5) || (len(e.xy) > 0 && e.xy[0] != float32(e.frame)) {
			t.Fatalf("slot %d holds frame %d with path %q and %d coords", i, e.frame, e.path, len(e.xy))
		}
	}
}

func put(q *queue, r *refQueue, frame int, score float32) {
	xy := make([]float32, 2*(frame%5))
	for i := range xy {
		xy[i] = float32(frame)
	}
	e := entry{frame: frame, score: score, spots: frame % 5, path: fmt.Sprintf("/d/f_%d.cbf", frame)}
	if q.admits(score, frame) {
		q.insert(1, frame, score, 0, e.spots, e.path, xy)
	}
	r.add(e)
}

func TestQueueKeepsTopN(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	q := newQueue(10)
	r := &refQueue{limit: 10}
	for f := 0; f < 2000; f++ {
		score := float32(rng.IntN(50)) // many ties
		if f%7 == 0 {
			score = 0
		}
		put(&q, r, f, score)
		check(t, &q, r)
	}
	// Shrink, grow, reset.
	q.setLimit(3)
	r.limit = 3
	r.sortCut()
	check(t, &q, r)
	q.setLimit(8)
	r.limit = 8
	for f := 2000; f < 2100; f++ {
		put(&q, r, f, float32(f%60))
		check(t, &q, r)
	}
	q.reset()
	r.all = nil
	check(t, &q, r)
	put(&q, r, 5000, -1)
	check(t, &q, r)
}

func TestQueueOfOne(t *testing.T) {
	q := newQueue(1)
	r := &refQueue{limit: 1}
	for f, s := range []float32{3, 1, 3, 4, 0, 9, 9} {
		put(&q, r, f, s)
		check(t, &q, r)
	}
	if q.slots[q.best].frame != 5 {
		t.Fatalf("best frame %d, want 5 (the first 9)", q.slots[q.best].frame)
	}
}

// TestQueueReusesSpotBuffers: once every slot has held a spot list, a
// stream of better frames allocates nothing.
func TestQueueReusesSpotBuffers(t *testing.T) {
	q := newQueue(16)
	xy := make([]float32, 200)
	frame := 0
	for ; frame < 64; frame++ {
		q.insert(1, frame, float32(frame), 0, 100, "/d/x.cbf", xy)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		frame++
		if q.admits(float32(frame), frame) {
			q.insert(1, frame, float32(frame), 0, 100, "/d/x.cbf", xy)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per insert", allocs)
	}
}

// FuzzQueue drives the queue with arbitrary scores, limits and resets and
// compares it with the sorted model after every step.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0})
	f.Add([]byte{1, 9, 9, 9, 250, 3, 1, 2, 255, 7, 7})
	f.Add([]byte{3, 0, 0, 0, 0, 251, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 {
			return
		}
		limit := int(ops[0])%12 + 1
		q := newQueue(limit)
		r := &refQueue{limit: limit}
		for i, op := range ops[1:] {
			switch {
			case op == 255:
				q.reset()
				r.all = nil
			case op >= 250:
				limit = int(op-249) * 2
				q.setLimit(limit)
				r.limit = limit
				r.sortCut()
			default:
				put(&q, r, i, float32(int(op)%25-5))
			}
			check(t, &q, r)
		}
	})
}
