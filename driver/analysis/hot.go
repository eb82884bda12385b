package analysis

import "sync"

// Hot pixels.
//
// A defective pixel that counts on every frame as if light fell on it is
// strong on every frame; clusters of them, or a column segment, make
// "spots" that turn a blank frame into a hit. A Bragg spot is strong on one
// frame, or on a run of neighbouring frames of a scan. So the HotMap
// counts, per pixel, the frames on which it was strong, and declares it hot
// once it was strong on at least hot-pixel-frames frames and on at least
// half of all frames it has seen. Chance cannot do that: on a frame with a
// few thousand strong pixels out of millions, a pixel is strong by chance
// with probability ~1e-3, and on 10 of 10 frames with ~1e-30. What can is a
// crystal that does not move: a series of stills of one crystal repeats its
// spots; hot-pixel-frames 0 turns the map off for such work.
//
// The map lives in the pipeline, not in one series: it persists across
// series (a hot pixel stays hot) until Reset (a command). Hot pixels are
// dropped from the strong pixels before spots are formed, which is what
// folding them into the mask means; they still count in the map.

// hotFraction: a hot pixel is strong on at least this share of the frames.
const hotFraction = 0.5

// HotMap is the hot-pixel map shared by every Analyser of a pipeline. It
// is safe for concurrent use.
type HotMap struct {
	mu     sync.Mutex
	n      int      // pixels of the frames it counts (a new size resets it)
	counts []uint32 // per pixel: frames on which it was strong
	hot    []uint64 // bit set of hot pixels
	frames uint32   // frames observed
	nHot   int
	touch  uint32 // observe's first loop stores its sum, so that its loads are kept
}

// NewHotMap returns an empty map; it allocates its per-pixel counts on the
// first frame it sees.
func NewHotMap() *HotMap { return &HotMap{} }

// Reset forgets every count and every hot pixel.
func (m *HotMap) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.counts)
	clear(m.hot)
	m.frames, m.nHot = 0, 0
}

// Pixels returns the number of pixels in the map now.
func (m *HotMap) Pixels() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nHot
}

// Frames returns the number of frames the map has counted since its reset.
func (m *HotMap) Frames() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int(m.frames)
}

// HotPixels returns the indices (y*width + x) of the hot pixels, sorted.
func (m *HotMap) HotPixels() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for w, bits := range m.hot {
		for ; bits != 0; bits &= bits - 1 {
			out = append(out, int32(w*64+trailingZeros(bits)))
		}
	}
	return out
}

func trailingZeros(x uint64) int {
	n := 0
	for x&1 == 0 {
		x >>= 1
		n++
	}
	return n
}

// observe counts one frame's strong pixels (n pixels in the frame), marks
// the pixels that became hot, and removes every hot pixel from strong in
// place. It returns the shortened list and how many were removed.
func (m *HotMap) observe(n int, strong []int32, minFrames int) ([]int32, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n != n {
		m.n = n
		m.counts = make([]uint32, n)
		m.hot = make([]uint64, (n+63)/64)
		m.frames, m.nHot = 0, 0
	}
	if m.frames < 1<<31 {
		m.frames++
	}
	need := max(uint32(minFrames), uint32(hotFraction*float64(m.frames)+0.5))
	// The counts of the strong pixels first, in a loop of loads only: the
	// counts (4 bytes per pixel, 18 MB on a 4M frame) are scattered far
	// beyond the caches, and there many misses are in flight together,
	// where the loop below, with its stores and branches, had few (the
	// real EIGER2 4M grid frame, 18 467 strong pixels: 0.5-0.8 ms -> 0.4-0.5
	// ms per frame in two profiles each).
	var touch uint32
	for _, i := range strong {
		touch += m.counts[i]
	}
	m.touch = touch
	kept := strong[:0]
	removed := 0
	for _, i := range strong {
		c := m.counts[i]
		if c < 1<<31 {
			c++
			m.counts[i] = c
		}
		w, b := i>>6, uint64(1)<<(i&63)
		if m.hot[w]&b == 0 && c >= need {
			m.hot[w] |= b
			m.nHot++
		}
		if m.hot[w]&b != 0 {
			removed++
			continue
		}
		kept = append(kept, i)
	}
	return kept, removed
}

// isLine reports a component whose seeds (the pixels above the
// strong-pixel threshold) form a line one pixel wide (or high) of at least
// minLinePixels: a hot column or row segment, or a streak, not a Bragg
// spot (whose profile is at least a few pixels across both ways). The
// seeds, not the grown pixels: a noise pixel beside a hot column that
// grow-level lets join it must not make the column two pixels wide.
func isLine(c *spotAcc) bool {
	return c.nseed >= minLinePixels && (c.sx0 == c.sx1 || c.sy0 == c.sy1)
}

// minLinePixels: a one-pixel-wide component of this many pixels or more is
// a line.
const minLinePixels = 5
