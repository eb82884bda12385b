package stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strings"
	"time"
)

// Series tracking: which series is open, which messages belong to it, and
// what to do with the ones that do not. Everything here runs on the Run
// goroutine.
//
// The rules (shared/docs/eiger-stream.md, "Robustness rules"):
//   - only the open series' images and end are delivered;
//   - images and ends of an older series are stragglers: counted, dropped;
//   - images and ends of a series whose header never came are counted as
//     "header missed" (the receiver was connected after arming) and dropped;
//   - a new header while a series is open ends it (End "superseded") and
//     starts a new series, also when it carries the same series id: the DCU
//     numbers series from 1 again after a restart, so only a header that is
//     byte-identical to the open series' one is a repeat (counted as a
//     duplicate and ignored). Every message after a header belongs to the
//     newest series of its id: a PUSH stream from one DCU keeps its order;
//   - Abort ends the open series (End "aborted") and drops its messages until
//     its end message arrives. A new header (a different series) also ends
//     the drain: with series ids on every message there is no risk of mixing
//     series, and waiting would lose the new series;
//   - no message for SeriesTimeout while a series is open ends it (End
//     "timeout").

// seriesKey identifies a series: V1 has only the id; V2 adds the unique id,
// which tells apart two series with the same id (the DCU restarts counting
// after a reboot).
type seriesKey struct {
	id  uint64
	uid string
}

func (k seriesKey) matches(id uint64, uid string) bool {
	return k.id == id && (k.uid == "" || uid == "" || k.uid == uid)
}

// openSeries is the series being received.
type openSeries struct {
	key       seriesKey
	header    uint64 // fingerprint of the header message (headerFingerprint)
	version   int
	expected  uint64
	delivered uint64
	next      uint64 // one past the highest image number delivered
}

// maxTracked bounds the image numbers whose arrival is remembered for
// duplicate detection (2 MiB of bits); numbers beyond are delivered without
// the check.
const maxTracked = 1 << 24

// bitset remembers which image numbers of the open series arrived.
type bitset []uint64

func (b *bitset) reset(sizeHint uint64) {
	n := int(min(sizeHint, maxTracked)+63) / 64
	if cap(*b) < n {
		*b = make(bitset, n)
		return
	}
	*b = (*b)[:n]
	clear(*b)
}

// testAndSet reports whether i was set, and sets it.
func (b *bitset) testAndSet(i uint64) bool {
	if i >= maxTracked {
		return false
	}
	w := int(i / 64)
	if w >= len(*b) {
		*b = append(*b, make(bitset, w+1-len(*b))...)
	}
	mask := uint64(1) << (i % 64)
	was := (*b)[w]&mask != 0
	(*b)[w] |= mask
	return was
}

// track applies the series rules to one parsed message. It returns false
// when ctx was cancelled during delivery.
func (r *Receiver) track(ctx context.Context, m Message, parts [][]byte, now time.Time) bool {
	switch {
	case m.Series != nil:
		return r.onSeries(ctx, m.Series, r.headerFingerprint(parts), now)
	case m.Image != nil:
		return r.onImage(ctx, m.Image, now)
	default:
		return r.onEnd(ctx, m.End, now)
	}
}

// headerFingerprint identifies a header message by its bytes (every part):
// the arm date, the configuration and the V2 unique id are all in them, so
// two arms never give the same fingerprint, while a header sent twice does.
func (r *Receiver) headerFingerprint(parts [][]byte) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	for _, p := range parts {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum64()
}

func (r *Receiver) onSeries(ctx context.Context, s *Series, fp uint64, now time.Time) bool {
	s.Arrival = now
	if r.cur != nil {
		if r.cur.key.matches(s.ID, s.UniqueID) && r.cur.header == fp {
			r.problem(&r.c.duplicates, "duplicate header", fmt.Errorf("series %d: identical header repeated while the series is open, ignored", s.ID))
			return true
		}
		old := r.cur.key.id
		sameID := r.cur.key.matches(s.ID, s.UniqueID)
		r.c.superseded.Add(1)
		if !r.endCurrent(ctx, EndSuperseded) {
			return false
		}
		if sameID {
			r.c.restarts.Add(1)
			r.note(fmt.Sprintf("series %d: a different header with the same series id arrived before the end (detector restarted or re-armed): the open series ended incomplete, a new one started", s.ID))
		} else {
			r.log.Warn().Uint64("series", old).Uint64("new_series", s.ID).Msg("series superseded by a new header before its end")
		}
	}
	if r.drain != nil {
		if r.drain.matches(s.ID, s.UniqueID) && r.drainHeader == fp {
			r.c.abortDropped.Add(1)
			return true
		}
		r.log.Warn().Uint64("aborted_series", r.drain.id).Uint64("new_series", s.ID).Msg("end of aborted series never arrived; new series accepted")
		r.drain = nil
	}
	r.cur = &openSeries{key: seriesKey{s.ID, s.UniqueID}, header: fp, version: s.Version, expected: s.NumberOfImages}
	r.seen.reset(s.NumberOfImages)
	// The channel to deliver: the configured one, else the first announced.
	r.parser.Channel = r.cfg.Channel
	if r.parser.Channel == "" && len(s.Channels) > 0 {
		r.parser.Channel = s.Channels[0]
	}
	if len(s.Unusable) > 0 {
		r.c.headerUnusable.Add(uint64(len(s.Unusable)))
		r.note(fmt.Sprintf("series %d: header parts unusable, series kept without them: %s", s.ID, strings.Join(s.Unusable, "; ")))
	}
	r.c.series.Add(1)
	r.c.seriesID.Store(s.ID)
	r.c.inSeries.Store(true)
	r.log.Info().Uint64("series", s.ID).Str("unique_id", s.UniqueID).Int("version", s.Version).
		Uint64("images", s.NumberOfImages).Int("width", s.Width).Int("height", s.Height).
		Str("header_detail", s.HeaderDetail).Msg("series started")
	return r.deliver(ctx, Message{Series: s})
}

func (r *Receiver) onImage(ctx context.Context, img *Image, now time.Time) bool {
	cur := r.cur
	if cur == nil || !cur.key.matches(img.SeriesID, img.UniqueID) {
		r.stray(img.SeriesID, img.UniqueID, fmt.Sprintf("image %d", img.Number))
		return true
	}
	if r.seen.testAndSet(img.Number) {
		r.problem(&r.c.duplicates, "duplicate image", fmt.Errorf("series %d: image %d received twice, second dropped", img.SeriesID, img.Number))
		return true
	}
	if img.Number+1 < cur.next {
		r.c.outOfOrder.Add(1)
	}
	cur.next = max(cur.next, img.Number+1)
	cur.delivered++
	img.Arrival = now
	r.c.images.Add(1)
	r.handed = true
	return r.deliver(ctx, Message{Image: img})
}

func (r *Receiver) onEnd(ctx context.Context, e *End, now time.Time) bool {
	if r.cur != nil && r.cur.key.matches(e.SeriesID, e.UniqueID) {
		e.Arrival = now
		e.Images, e.Expected = r.cur.delivered, r.cur.expected
		r.closeCurrent()
		r.c.ends.Add(1)
		r.log.Info().Uint64("series", e.SeriesID).Uint64("images", e.Images).Uint64("expected", e.Expected).Msg("series ended")
		return r.deliver(ctx, Message{End: e})
	}
	r.stray(e.SeriesID, e.UniqueID, "end")
	return true
}

// stray classifies and drops a message that is not of the open series.
func (r *Receiver) stray(id uint64, uid, what string) {
	if r.drain != nil && r.drain.matches(id, uid) {
		r.c.abortDropped.Add(1)
		if what == "end" {
			r.log.Info().Uint64("series", id).Msg("aborted series drained")
			r.remember(*r.drain)
			r.drain = nil
		}
		return
	}
	if r.isOld(id, uid) {
		r.problem(&r.c.stragglers, "straggler", fmt.Errorf("series %d: %s of an ended series, dropped", id, what))
		return
	}
	r.problem(&r.c.missedHeader, "header missed", fmt.Errorf("series %d: %s without its series header (header missed: connect the receiver before arming)", id, what))
}

// isOld reports whether a series ended recently, or precedes the open one.
func (r *Receiver) isOld(id uint64, uid string) bool {
	for i := 0; i < r.nRecent; i++ {
		if r.recent[i].matches(id, uid) {
			return true
		}
	}
	return r.cur != nil && id < r.cur.key.id
}

// remember records an ended series, to recognise its stragglers.
func (r *Receiver) remember(k seriesKey) {
	copy(r.recent[1:], r.recent[:len(r.recent)-1])
	r.recent[0] = k
	r.nRecent = min(r.nRecent+1, len(r.recent))
}

func (r *Receiver) closeCurrent() {
	r.remember(r.cur.key)
	r.cur = nil
	r.c.inSeries.Store(false)
}

// synthEnd closes the open series and returns the End the receiver makes
// up for it.
func (r *Receiver) synthEnd(reason EndReason) *End {
	cur := r.cur
	e := &End{
		Version:     cur.version,
		SeriesID:    cur.key.id,
		UniqueID:    cur.key.uid,
		Synthesized: true,
		Reason:      reason,
		Images:      cur.delivered,
		Expected:    cur.expected,
		Arrival:     time.Now(),
	}
	r.closeCurrent()
	return e
}

// endCurrent delivers a synthesized End for the open series.
func (r *Receiver) endCurrent(ctx context.Context, reason EndReason) bool {
	return r.deliver(ctx, Message{End: r.synthEnd(reason)})
}

// handleAbort ends the open series, if it is the one Abort was called for,
// and starts draining it.
func (r *Receiver) handleAbort(ctx context.Context, id uint64) bool {
	if r.cur == nil || r.cur.key.id != id {
		r.log.Info().Uint64("series", id).Msg("abort of a series no longer open: nothing to do")
		return true
	}
	k := r.cur.key
	r.c.aborts.Add(1)
	r.log.Warn().Uint64("series", k.id).Uint64("images", r.cur.delivered).Msg("series aborted; draining until its end")
	r.drain, r.drainHeader = &k, r.cur.header
	return r.endCurrent(ctx, EndAborted)
}

// checkTimeout runs when the socket was idle for a poll interval.
func (r *Receiver) checkTimeout(ctx context.Context) bool {
	if r.cfg.SeriesTimeout <= 0 || time.Since(r.lastMsg) < r.cfg.SeriesTimeout {
		return true
	}
	if r.drain != nil {
		r.log.Warn().Uint64("series", r.drain.id).Msg("end of aborted series never arrived; drain given up after the series timeout")
		r.remember(*r.drain)
		r.drain = nil
	}
	if r.cur == nil {
		return true
	}
	id := r.cur.key.id
	r.c.timeouts.Add(1)
	r.c.mu.Lock()
	r.c.lastErr = fmt.Sprintf("series %d: no message for %v, ended by timeout", id, r.cfg.SeriesTimeout)
	r.c.lastErrAt = time.Now()
	r.c.mu.Unlock()
	r.log.Warn().Uint64("series", id).Dur("timeout", r.cfg.SeriesTimeout).Msg("series timed out")
	return r.endCurrent(ctx, EndTimeout)
}
