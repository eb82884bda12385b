// Package results keeps what the analysis found for each frame of a series,
// in the compact form the control system reads it: flat float32 records
// ([frame, spots, score, resolution] and [frame, IS]), appended in frame
// order, with a mark of what has already been exported as an event batch.
//
// A series can hold 1,000,000 frames; a heap object per frame would cost
// the garbage collector dearly, so records live in two growing float32
// arrays (24 bytes per frame). Readers get views of the arrays that stay
// valid while more records are appended: append never rewrites an element a
// reader can see.
package results

import (
	"math"
	"sync"
	"time"
)

// PassWidth and ISWidth are the record widths of dozor-pass and
// dozor-pass-IS.
const (
	PassWidth = 4
	ISWidth   = 2
)

// Record is one frame's result.
type Record struct {
	Frame      int
	Spots      int
	Score      float32
	Resolution float32 // Å, 0 = none
	IS         float32 // integrated signal
	Hit        bool
	MeanI      float32 // mean spot intensity of the frame (0 without spots)
	Ice        bool    // an ice ring was detected on the frame
}

// Store holds the records of one series.
type Store struct {
	limit int

	mu        sync.RWMutex
	pass      []float32
	is        []float32
	exported  int // records already handed out by TakeNew
	overflow  int // records not kept because the store was full
	hits      int
	sumSpotI  float64 // Σ spot intensities of the series
	sumSpots  int
	lastFrame int
}

// NewStore returns a store for a series expected to hold expected records
// (pre-allocated, up to limit) that keeps at most limit records: results of
// frames beyond it are still counted, and written to the result files by
// the writer, but not kept in memory.
func NewStore(expected, limit int) *Store {
	if expected > limit {
		expected = limit
	}
	if expected < 0 {
		expected = 0
	}
	return &Store{
		limit:     limit,
		pass:      make([]float32, 0, expected*PassWidth),
		is:        make([]float32, 0, expected*ISWidth),
		lastFrame: -1,
	}
}

// Add appends one record. Records are expected in frame order.
func (s *Store) Add(r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Hit {
		s.hits++
	}
	s.sumSpots += r.Spots
	s.sumSpotI += float64(r.MeanI) * float64(r.Spots)
	s.lastFrame = r.Frame
	if len(s.pass)/PassWidth >= s.limit {
		s.overflow++
		return
	}
	s.pass = append(s.pass, float32(r.Frame), float32(r.Spots), r.Score, r.Resolution)
	s.is = append(s.is, float32(r.Frame), r.IS)
}

// Len is the number of records kept.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.pass) / PassWidth
}

// Pass returns every dozor-pass record so far (a shared, read-only view).
func (s *Store) Pass() []float32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pass[:len(s.pass):len(s.pass)]
}

// IS returns every dozor-pass-IS record so far (a shared, read-only view).
func (s *Store) IS() []float32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.is[:len(s.is):len(s.is)]
}

// TakeNew returns the records added since the last call (views) and moves
// the export mark: each record is exported exactly once.
func (s *Store) TakeNew() (pass, is []float32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.pass) / PassWidth
	from := s.exported
	s.exported = n
	return s.pass[from*PassWidth : n*PassWidth : n*PassWidth], s.is[from*ISWidth : n*ISWidth : n*ISWidth]
}

// Summary is what the streaming device publishes about the series.
type Summary struct {
	Records   int // kept
	Overflow  int // not kept (store full)
	Hits      int
	MeanSpotI float64 // mean spot intensity over the series (dozor-average-i)
	LastFrame int
}

// Summary returns the series totals.
func (s *Store) Summary() Summary {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sum := Summary{Records: len(s.pass) / PassWidth, Overflow: s.overflow, Hits: s.hits, LastFrame: s.lastFrame}
	if s.sumSpots > 0 {
		sum.MeanSpotI = s.sumSpotI / float64(s.sumSpots)
	}
	return sum
}

// SSX accumulates serial-crystallography statistics until Reset: frames,
// hits, hit rate, mean resolution of hits, spots per hit.
type SSX struct {
	mu       sync.Mutex
	frames   int
	hits     int
	hitSpots int
	resSum   float64
	resN     int
}

// SSXStats is a snapshot of SSX.
type SSXStats struct {
	Frames         int
	Hits           int
	HitRate        float64 // percent
	MeanResolution float64 // Å over hits with a resolution; 0 = none
	SpotsPerHit    float64
}

// Add counts one analysed frame.
func (x *SSX) Add(r Record) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.frames++
	if !r.Hit {
		return
	}
	x.hits++
	x.hitSpots += r.Spots
	if r.Resolution > 0 {
		x.resSum += float64(r.Resolution)
		x.resN++
	}
}

// Reset zeroes the statistics.
func (x *SSX) Reset() {
	x.mu.Lock()
	x.frames, x.hits, x.hitSpots, x.resSum, x.resN = 0, 0, 0, 0, 0
	x.mu.Unlock()
}

// Stats returns a snapshot.
func (x *SSX) Stats() SSXStats {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := SSXStats{Frames: x.frames, Hits: x.hits}
	if x.frames > 0 {
		st.HitRate = 100 * float64(x.hits) / float64(x.frames)
	}
	if x.resN > 0 {
		st.MeanResolution = x.resSum / float64(x.resN)
	}
	if x.hits > 0 {
		st.SpotsPerHit = float64(x.hitSpots) / float64(x.hits)
	}
	return st
}

// SpotWidth is the width of a spot record: x, y, intensity, sigma, d.
const SpotWidth = 5

// SpotRing keeps the spot lists of the most recent frames, so that a client
// can ask for a frame's spots while the scan runs without the server holding
// every spot of a million-frame series (the spot file has them all). Memory
// is bounded by both a frame count and a total spot count.
//
// The lists lie one after another in one circular buffer (a list may wrap
// around its end), so that once the buffer has grown to the spot budget a
// running series costs no allocation per frame, whatever the lists'
// lengths: storing each list in the storage of the one it evicted
// allocated whenever a frame had more spots than that one.
type SpotRing struct {
	mu       sync.RWMutex
	frames   int
	maxSpots int

	// order holds the entries, oldest first. Evicting reslices it from
	// the front; pushEntry moves the held ones back to the start of base
	// when they reach its end, rather than letting append copy them to a
	// new array every ring's worth of frames.
	order []spotEntry
	base  []spotEntry // the array order is a part of
	// hi is the highest frame number ever put: a frame above it is not
	// held, which spares the usual Put (frames come in order) the search
	// of order. Not a map from frame to entry: a map allocates now and
	// then as the deletes and inserts turn its table over.
	hi    int
	live  int // frames held: the entries of order not replaced
	total int // spots held

	// buf holds the lists: entry e's n floats start at buffer position
	// e.at, taken modulo len(buf). Positions only grow: the lists held
	// span [order[0].at, end).
	buf []float32
	end int
}

// spotEntry is a frame's list in the buffer.
type spotEntry struct {
	frame int
	at, n int
	gone  bool // replaced by a later Put of the same frame
}

// NewSpotRing keeps at most frames frames and maxSpots spots in all.
func NewSpotRing(frames, maxSpots int) *SpotRing {
	return &SpotRing{frames: frames, maxSpots: maxSpots, hi: math.MinInt}
}

// Put stores a copy of a frame's spot records (SpotWidth floats each),
// evicting the oldest frames until both budgets hold (a single frame with
// more spots than the budget is kept alone). The buffer grows to the spot
// budget as the series warms up and no further, so a running series costs
// no allocation per frame.
func (r *SpotRing) Put(frame int, spots []float32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := r.find(frame); i >= 0 {
		e := &r.order[i]
		r.total -= e.n / SpotWidth
		e.gone = true
		r.live--
	}
	r.hi = max(r.hi, frame)
	n := len(spots) / SpotWidth
	// Replaced entries count against the frame budget until they age
	// out, so that order stays within it whatever is put again.
	for len(r.order) > 0 && (len(r.order) >= r.frames || r.total+n > r.maxSpots) {
		r.evict()
	}
	m := len(spots)
	for m > len(r.buf)-r.used() {
		if limit := max(r.maxSpots*SpotWidth, m); len(r.buf) < limit {
			r.grow(min(max(2*len(r.buf), r.used()+m, 1<<12), limit))
		} else {
			r.evict() // space held by replaced entries
		}
	}
	at := r.end
	if m > 0 {
		p := at % len(r.buf)
		k := copy(r.buf[p:], spots)
		copy(r.buf, spots[k:])
	}
	r.end += m
	r.pushEntry(spotEntry{frame: frame, at: at, n: m})
	r.live++
	r.total += n
}

// used is the part of the buffer the held lists take.
func (r *SpotRing) used() int {
	if len(r.order) == 0 {
		return 0
	}
	return r.end - r.order[0].at
}

// evict forgets the oldest entry.
func (r *SpotRing) evict() {
	e := r.order[0]
	if !e.gone {
		r.live--
		r.total -= e.n / SpotWidth
	}
	r.order = r.order[1:]
}

// find returns the index in order of frame's entry, -1 if not held.
func (r *SpotRing) find(frame int) int {
	if frame > r.hi {
		return -1
	}
	for i := len(r.order) - 1; i >= 0; i-- {
		if r.order[i].frame == frame && !r.order[i].gone {
			return i
		}
	}
	return -1
}

// grow moves the held lists to a buffer of size floats, from its start.
func (r *SpotRing) grow(size int) {
	buf := make([]float32, size)
	start, used := 0, r.used()
	if len(r.order) > 0 {
		start = r.order[0].at
		r.read(buf[:used], start)
	}
	for i := range r.order {
		r.order[i].at -= start
	}
	r.buf, r.end = buf, used
}

// read copies len(dst) floats from buffer position at into dst.
func (r *SpotRing) read(dst []float32, at int) {
	if len(dst) == 0 {
		return
	}
	p := at % len(r.buf)
	k := copy(dst, r.buf[p:])
	copy(dst[k:], r.buf)
}

// pushEntry appends e to order, within base once base is as large as the
// ring ever holds.
func (r *SpotRing) pushEntry(e spotEntry) {
	if len(r.order) == cap(r.order) && len(r.order) < cap(r.base) {
		r.order = r.base[:copy(r.base, r.order)]
	}
	r.order = append(r.order, e)
	if cap(r.order) > cap(r.base) {
		r.base = r.order[:cap(r.order)]
	}
}

// Get returns a copy of the spot records of a frame, if still held (a
// copy: the buffer is reused for later frames while the caller reads).
func (r *SpotRing) Get(frame int) ([]float32, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := r.find(frame)
	if i < 0 {
		return nil, false
	}
	e := r.order[i]
	out := make([]float32, e.n)
	r.read(out, e.at)
	return out, true
}

// Speed measures frames per second over a sliding window (the contract's
// average-speed is "over the last second").
type Speed struct {
	mu      sync.Mutex
	window  time.Duration
	samples []speedSample
}

type speedSample struct {
	t time.Time
	n int
}

// NewSpeed returns a meter over window.
func NewSpeed(window time.Duration) *Speed { return &Speed{window: window} }

// Observe records the running frame count at time t and returns the rate
// over the window (0 until two samples span some time).
func (s *Speed) Observe(t time.Time, count int) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, speedSample{t, count})
	// Keep one sample at or before the window's start, drop older ones.
	cut := t.Add(-s.window)
	i := 0
	for i+1 < len(s.samples) && !s.samples[i+1].t.After(cut) {
		i++
	}
	s.samples = s.samples[i:]
	first := s.samples[0]
	dt := t.Sub(first.t).Seconds()
	if dt <= 0 {
		return 0
	}
	r := float64(count-first.n) / dt
	if r < 0 || math.IsNaN(r) {
		return 0
	}
	return r
}

// Reset forgets the samples (new series).
func (s *Speed) Reset() {
	s.mu.Lock()
	s.samples = s.samples[:0]
	s.mu.Unlock()
}
