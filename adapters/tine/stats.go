package tine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the server's counters since start.
type Stats struct {
	Datagrams     uint64 // request datagrams (or TCP messages) received
	Malformed     uint64 // datagrams that did not parse (not answered)
	Requests      uint64 // links processed (SINGLE, attach, renewal, cancel)
	Replies       uint64 // reply datagrams sent
	Errors        uint64 // error replies (completion code != 0)
	Writes        uint64 // writes and commands applied
	WritesRefused uint64 // writes refused by the access lists
	Links         int64  // links currently attached
	Renewals      uint64 // renewals and acknowledgements of links
	LinksExpired  uint64 // links dropped because their client stopped renewing
	Busy          uint64 // datagrams dropped: too many clients, or a client's queue full
	Incomplete    uint64 // multi-block inputs abandoned before their last block
	SendErrors    uint64 // datagrams the socket refused
	Panics        uint64 // requests that hit a bug (recovered, logged)
	TooLarge      uint64 // transfers refused over UDP: beyond Config.MaxUDPBlocks (udplimit.go)
	Held          uint64 // times a client's SINGLE replies were held back longer (tine.jar's early-reply race, hold.go)
	Clients       int    // client endpoints with state
}

type counters struct {
	datagrams, malformed, requests, replies, errors, writes, refused atomic.Uint64
	renewals, expired, busy, incomplete, sendErrors, panics, held    atomic.Uint64
	tooLarge                                                         atomic.Uint64
	links                                                            atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Datagrams: c.datagrams.Load(), Malformed: c.malformed.Load(), Requests: c.requests.Load(),
		Replies: c.replies.Load(), Errors: c.errors.Load(), Writes: c.writes.Load(), WritesRefused: c.refused.Load(),
		Links: c.links.Load(), Renewals: c.renewals.Load(), LinksExpired: c.expired.Load(), Busy: c.busy.Load(),
		Incomplete: c.incomplete.Load(), SendErrors: c.sendErrors.Load(), Panics: c.panics.Load(),
		Held: c.held.Load(), TooLarge: c.tooLarge.Load(),
	}
}

// warnLimiter lets through at most one warning per client address per
// period, and counts what it held back: a client spraying garbage must not
// flood the log, but must not go unnoticed either.
type warnLimiter struct {
	mu     sync.Mutex
	period time.Duration
	last   map[netip.Addr]*warnState
}

type warnState struct {
	at         time.Time
	suppressed int
}

const maxWarnClients = 4096

func newWarnLimiter(period time.Duration) *warnLimiter {
	return &warnLimiter{period: period, last: map[netip.Addr]*warnState{}}
}

// allow reports whether a warning about addr may be logged now, and how
// many were suppressed since the last one.
func (w *warnLimiter) allow(addr netip.Addr, now time.Time) (bool, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, ok := w.last[addr]
	if !ok {
		if len(w.last) >= maxWarnClients {
			w.pruneLocked(now)
			if len(w.last) >= maxWarnClients {
				clear(w.last)
			}
		}
		w.last[addr] = &warnState{at: now}
		return true, 0
	}
	if now.Sub(st.at) < w.period {
		st.suppressed++
		return false, 0
	}
	n := st.suppressed
	st.at, st.suppressed = now, 0
	return true, n
}

func (w *warnLimiter) prune(now time.Time) {
	w.mu.Lock()
	w.pruneLocked(now)
	w.mu.Unlock()
}

func (w *warnLimiter) pruneLocked(now time.Time) {
	for a, st := range w.last {
		if now.Sub(st.at) > w.period && st.suppressed == 0 {
			delete(w.last, a)
		}
	}
}
