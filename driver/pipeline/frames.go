package pipeline

import "sync/atomic"

// Frame accounting of one series: which frame numbers arrived, which are
// lost, which lie beyond the announced number of images.
//
// A frame is lost when it never arrived by the end of the series. Frames
// may arrive out of order (a late frame is not lost), so during the series
// a missing frame is counted as lost only once reorderWindow frames beyond
// it have arrived; should it still come, it is taken off the count again.
// At the end the frames still missing below the bound are lost: the
// announced number of images when the detector's end message arrived, else
// (abort, timeout, a new header, shutdown) the highest frame received, since
// the frames after it were never sent.
//
// Frames numbered at or beyond nimages are kept (analysed, written and
// reported) and counted apart; they are never part of the lost count.
type frameBook struct {
	limit    uint64 // numbers below are tracked: nimages, or maxTracked when unknown
	expected uint64 // nimages, 0 when unknown
	seen     []uint64
	next     uint64 // one past the highest number received
	judged   uint64 // numbers below have been judged (arrived or lost)

	lost   atomic.Int64
	beyond atomic.Int64 // frames numbered >= nimages
}

// reorderWindow is how many frames beyond a missing one must arrive before
// the live count calls it lost.
const reorderWindow = 1024

// maxTracked bounds the frame numbers remembered when nimages is unknown
// (2 MiB of bits).
const maxTracked = 1 << 24

func (b *frameBook) init(expected uint64) {
	b.expected = expected
	b.limit = expected
	if expected == 0 || expected > maxTracked {
		b.limit = maxTracked
	}
	// Grown on demand: a series announcing a million frames that stops
	// after ten costs little.
	b.seen = make([]uint64, 0, min(b.limit, 1<<16)/64+1)
}

// arrive records frame number n (the receiver has removed duplicates).
func (b *frameBook) arrive(n uint64) {
	if b.expected > 0 && n >= b.expected {
		b.beyond.Add(1)
		return
	}
	if n < b.limit {
		w := int(n / 64)
		if w >= len(b.seen) {
			if w < cap(b.seen) {
				b.seen = b.seen[:w+1]
			} else {
				b.seen = append(b.seen, make([]uint64, w+1-len(b.seen))...)
			}
		}
		b.seen[w] |= 1 << (n % 64)
		if n < b.judged {
			b.lost.Add(-1) // counted lost, arrived after all
		}
	}
	if n >= b.next {
		b.next = n + 1
		if b.next > reorderWindow {
			b.judge(b.next - reorderWindow)
		}
	}
}

// judge counts the missing numbers below upTo (capped at the limit).
func (b *frameBook) judge(upTo uint64) {
	upTo = min(upTo, b.limit)
	var lost int64
	for ; b.judged < upTo; b.judged++ {
		if !b.has(b.judged) {
			lost++
		}
	}
	if lost > 0 {
		b.lost.Add(lost)
	}
}

func (b *frameBook) has(n uint64) bool {
	w := int(n / 64)
	return w < len(b.seen) && b.seen[w]&(1<<(n%64)) != 0
}

// finish judges every frame of the series: up to nimages when the detector
// said the series is complete (received reports its end message), else up
// to the highest frame received.
func (b *frameBook) finish(received bool) {
	bound := b.next
	if received && b.expected > 0 {
		bound = b.expected
	}
	b.judge(bound)
}
