package tracker

import (
	"cmp"
	"slices"
)

// entry is one written frame held by the queue.
type entry struct {
	series     int64
	frame      int
	score      float32
	resolution float32
	spots      int
	path       string
	// xy is the tracker's own copy of the frame's spot positions. When a
	// slot is refilled its buffer is reused, so a steady stream of better
	// frames costs no allocation once every slot has held a spot list.
	xy []float32
}

// better reports whether a ranks before b: the higher score first and,
// for equal scores, the earlier frame. Frames arrive in order, so a later
// frame that only ties never displaces what is shown.
func better(a, b *entry) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.frame < b.frame
}

// queue keeps the best frames of a series, at most limit of them: a
// binary min-heap ordered worst-first, so that the frame to drop is at the
// root and an insert costs O(log limit), plus the index of the best frame,
// which only a better frame can replace (the best is never the one
// evicted while two or more are held). Memory is bounded by the largest
// limit ever set, whatever the length of the series.
//
// queue is not safe for concurrent use; the Tracker guards it.
type queue struct {
	limit int
	// slots holds the entries; slots beyond len keep the spot buffers of
	// entries dropped by reset or a smaller limit, for reuse.
	slots   []entry
	heap    []int32 // indices into slots, worst first
	best    int     // index into slots of the best entry; -1 when empty
	version uint64  // changes whenever the content changes
}

func newQueue(limit int) queue {
	return queue{limit: limit, slots: make([]entry, 0, limit), heap: make([]int32, 0, limit), best: -1}
}

// admits reports whether a frame with this score and number would enter
// the queue. It is the whole cost of a frame that does not.
func (q *queue) admits(score float32, frame int) bool {
	if len(q.slots) < q.limit {
		return true
	}
	w := &q.slots[q.heap[0]]
	return score > w.score || score == w.score && frame < w.frame
}

// insert adds a frame that admits accepted, dropping the worst frame when
// the queue is full. xy is copied.
func (q *queue) insert(series int64, frame int, score, resolution float32, spots int, path string, xy []float32) {
	var i int
	if n := len(q.slots); n < q.limit {
		if n < cap(q.slots) {
			q.slots = q.slots[:n+1]
		} else {
			q.slots = append(q.slots, entry{})
		}
		i = n
		q.heap = append(q.heap, int32(i))
		q.fill(i, series, frame, score, resolution, spots, path, xy)
		q.up(len(q.heap) - 1)
	} else {
		i = int(q.heap[0])
		q.fill(i, series, frame, score, resolution, spots, path, xy)
		q.down(0)
	}
	if q.best < 0 || q.best == i || better(&q.slots[i], &q.slots[q.best]) {
		q.best = i
	}
	q.version++
}

func (q *queue) fill(i int, series int64, frame int, score, resolution float32, spots int, path string, xy []float32) {
	e := &q.slots[i]
	e.series, e.frame, e.score, e.resolution, e.spots, e.path = series, frame, score, resolution, spots, path
	e.xy = append(e.xy[:0], xy...)
}

// worse is the heap order: slot a ranks after slot b.
func (q *queue) worse(a, b int32) bool { return better(&q.slots[b], &q.slots[a]) }

func (q *queue) up(j int) {
	h := q.heap
	for j > 0 {
		p := (j - 1) / 2
		if !q.worse(h[j], h[p]) {
			break
		}
		h[j], h[p] = h[p], h[j]
		j = p
	}
}

func (q *queue) down(j int) {
	h := q.heap
	n := len(h)
	for {
		l := 2*j + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && q.worse(h[r], h[l]) {
			c = r
		}
		if !q.worse(h[c], h[j]) {
			return
		}
		h[j], h[c] = h[c], h[j]
		j = c
	}
}

// reset empties the queue for a new series, keeping the spot buffers.
func (q *queue) reset() {
	for i := range q.slots {
		q.slots[i].path = "" // do not keep the old series' paths alive
	}
	q.slots = q.slots[:0]
	q.heap = q.heap[:0]
	q.best = -1
	q.version++
}

// setLimit changes how many frames the queue keeps; a smaller limit drops
// the worst frames at once. O(n log n); an operator's action, not per frame.
func (q *queue) setLimit(limit int) {
	if limit < 1 {
		limit = 1
	}
	if limit < len(q.slots) {
		slices.SortFunc(q.slots, func(a, b entry) int {
			if better(&a, &b) {
				return -1
			}
			if better(&b, &a) {
				return 1
			}
			return 0
		})
		for i := limit; i < len(q.slots); i++ {
			q.slots[i].path = ""
		}
		q.slots = q.slots[:limit]
		q.heap = q.heap[:0]
		for i := range q.slots {
			q.heap = append(q.heap, int32(i))
		}
		for j := len(q.heap)/2 - 1; j >= 0; j-- {
			q.down(j)
		}
		q.best = 0
	}
	q.limit = limit
	q.version++
}

// spotsOf finds the frame written to path and returns its spots (shared;
// copy before releasing the lock).
func (q *queue) spotsOf(path string) ([]float32, bool) {
	for i := range q.slots {
		if q.slots[i].path == path {
			return q.slots[i].xy, true
		}
	}
	return nil, false
}

// record is what the queue property publishes of an entry.
type record struct {
	frame      int
	score      float32
	spots      int
	resolution float32
	path       string
}

// appendRecords appends the entries (only hits, score > 0, when hitsOnly)
// in no particular order; sortRecords puts them best first.
func (q *queue) appendRecords(dst []record, hitsOnly bool) []record {
	for i := range q.slots {
		e := &q.slots[i]
		if hitsOnly && !(e.score > 0) {
			continue
		}
		dst = append(dst, record{frame: e.frame, score: e.score, spots: e.spots, resolution: e.resolution, path: e.path})
	}
	return dst
}

func sortRecords(rs []record) {
	slices.SortFunc(rs, func(a, b record) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.frame, b.frame)
	})
}
