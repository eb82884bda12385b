package tine

import (
	"sync/atomic"
	"time"

	"tioga/adapters/tine/wire"
	"tioga/properties"
)

// linkKey identifies a link of one client endpoint: the client's link id
// and the link's start time (§5.3: a renewal matches by client address,
// linkId, starttime and contract).
type linkKey struct {
	id    uint16
	start uint32
}

// ackCounter is the counter of a DATACHANGE or EVENT delivery made after an
// acknowledgement; unacknowledged deliveries count down from it [verified:
// event-frame-count.rep001 (10) -> rep003 (9) -> ack -> rep004 (10)].
const ackCounter = 10

// pollCounter is the counter a POLL link starts from after (re)attachment:
// 60 x m + r with m = 1000/interval for intervals below one second (else
// 1) and r random in [0, 100) [verified: 311, 304 and 122 at 200, 200 and
// 1000 ms]. It counts down with every delivery; a client renews before it
// runs out, and a link whose counter reaches 0 is dropped.
func pollCounter(interval time.Duration, r int) int {
	m := 1
	if interval > 0 && interval < time.Second {
		m = int(time.Second / interval)
	}
	return 60*m + r
}

// link is an attached POLL, DATACHANGE or EVENT link. Its state belongs to
// the peer goroutine, except changed, which the subscription forwarder
// sets.
type link struct {
	key      linkKey
	sub      wire.Subscription
	sent     wire.Contract // the contract as the client sent it (renewals repeat it)
	con      wire.Contract // the contract served: CF_DEFAULT replaced by the native format
	mode     wire.Mode     // base mode
	interval time.Duration
	tgt      target
	rawIn    []byte // input bytes as received (renewals must match)
	input    properties.Value
	hasInput bool
	// batches: an EVENT link on a property that emits event batches
	// (dozor-pass): every batch is delivered as it comes, nothing is
	// coalesced, heartbeats carry no data.
	batches bool

	counter   int
	acked     bool // renewed or acknowledged since the last delivery
	unacked   int  // deliveries since the last renewal or acknowledgement
	delivered bool
	renewedAt time.Time
	lastSent  time.Time
	nextPoll  time.Time

	changed atomic.Bool // the value changed since the last delivery
	// latest is the value the registry last delivered (links without
	// input on plain values): what the link sends, so that the links a
	// batch changed send that batch's values, never a mix with the next.
	latest atomic.Pointer[properties.Value]
	// polled is the latest value a POLL link last sent: a POLL delivery is
	// "changed" when latest is another value since. (The changed flag is
	// stored after latest: a poll between the two stores sent new data
	// marked unchanged, then the same data marked changed.)
	polled *properties.Value
	psub   *properties.Subscription
	stop   chan struct{}
}

// renew records an attachment, renewal or acknowledgement.
func (l *link) renew(now time.Time, rnd int) {
	l.renewedAt = now
	l.unacked = 0
	if l.mode == wire.Poll {
		l.counter = pollCounter(l.interval, rnd)
		return
	}
	l.acked = true
}

// stamp returns the counter and transfer reason of the next delivery and
// advances the link's state; ok is false when a POLL link's counter ran
// out (the link must be dropped instead).
//
// POLL: the counter counts down by one per delivery; 0x18 on the first
// delivery and when the value changed, else 0x10. DATACHANGE/EVENT: 0x8a
// with counter 10 first; then 0x0a with counter 10 after an
// acknowledgement, or 0x18 with the counter one lower when the previous
// delivery is still unacknowledged (it stays at 1 until the link times
// out); heartbeats of unchanged data carry 0x14 (unverified).
func (l *link) stamp(changed, heartbeat bool) (counter uint16, xfer wire.XferReason, ok bool) {
	if l.mode == wire.Poll {
		if l.counter <= 0 {
			return 0, 0, false
		}
		c := l.counter
		l.counter--
		xfer = wire.XferSingle
		if changed || !l.delivered {
			xfer = wire.XferPollChanged
		}
		l.delivered = true
		return uint16(c), xfer, true
	}
	switch {
	case l.acked:
		l.counter = ackCounter
	case l.counter > 1:
		l.counter--
	}
	if !l.acked {
		l.unacked++
	}
	switch {
	case !l.delivered:
		xfer = wire.XferFirst
	case heartbeat:
		xfer = wire.XferKeepAlive
	case l.acked:
		xfer = wire.XferUpdate
	default:
		xfer = wire.XferPollChanged
	}
	l.acked, l.delivered = false, true
	return uint16(l.counter), xfer, true
}

// heartbeat is how long a DATACHANGE or EVENT link may stay silent.
func (l *link) heartbeat(cfg *Config) time.Duration { return max(l.interval, cfg.Heartbeat) }

// spacing is the least time between two deliveries of changed data
// (DATACHANGE: the polling interval; EVENT on a plain value: MinInterval).
func (l *link) spacing(cfg *Config) time.Duration {
	if l.mode == wire.Event {
		return cfg.MinInterval
	}
	return l.interval
}

// expireAfter is the number of unacknowledged deliveries after which a
// DATACHANGE or EVENT link may expire: a live client acknowledges the
// first one whose counter is below 10 [verified: event-frame-count.req003].
const expireAfter = 3

// expired reports whether a DATACHANGE or EVENT link's client stopped
// acknowledging it: no renewal for LinkTimeout, despite several
// deliveries telling it the server waits. POLL links expire through
// their counter.
func (l *link) expired(now time.Time, cfg *Config) bool {
	return l.mode != wire.Poll && l.unacked >= expireAfter && now.Sub(l.renewedAt) > cfg.LinkTimeout
}

// due is when the link next needs attention.
func (l *link) due(cfg *Config) time.Time {
	if l.mode == wire.Poll {
		return l.nextPoll
	}
	t := l.lastSent.Add(l.heartbeat(cfg))
	if !l.batches && l.changed.Load() {
		t = l.lastSent.Add(l.spacing(cfg))
	}
	if l.unacked >= expireAfter {
		if e := l.renewedAt.Add(cfg.LinkTimeout + time.Millisecond); e.Before(t) {
			t = e
		}
	}
	return t
}
