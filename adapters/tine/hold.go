package tine

import (
	"net/netip"
	"sync"
	"time"

	"tioga/adapters/tine/wire"
)

// Held replies: tine.jar's early-reply race.
//
// tine.jar 4.5.6's TLink.execute sends a SINGLE request and only then marks
// the link active (TLink.execute: sendLinkRequest, adjustLinkTable, then
// active = true and wait). Its receiving thread drops a reply for a link
// that is not active yet without waking the caller, but the reply's header
// has already set the link status to 0 (TPHdr.toStruct). A reply that
// arrives within that window - this server answers over loopback in about
// 0.1 ms, and on a loaded machine the calling thread can be descheduled
// between the two steps - makes execute wait out its whole timeout and
// then return 0 (success) without the data: a 2 s stall per read and the
// previous value, silently [verified: 1000 reads of one TLink, 2000 ms
// timeout: 7-19 reads/s with stalls of 2.5 s after a reply sent 0.1 ms
// after its request; the same replies relayed 2 ms later: 249 reads/s, no
// stall; tine.jar's own server answers in 1-7 ms and stalls rarely].
//
// The server sees the symptom: the client's next SINGLE request (on the
// same link, or on a new TLink made for the next read) arrives a full
// timeout - the one the previous request announced - after the reply.
// From then on that client endpoint's replies to SINGLE requests are held
// back firstHold before they are sent, doubled (up to maxHold) each time
// the symptom recurs. A client that executes the same link again (the
// same link id and start time, a new blkid: one TLink in a read loop) is
// held from its second read on, before any stall; Tioga's Go client makes
// a new link per call, back to back, and is never held [verified with
// tine.jar, 1000 reads of one TLink, three rounds: 594-640 reads/s, no
// stall; tine.jar's own server 21 and 1157 in the same run]. The hold is
// remembered per client address and port (tine.jar keeps one socket for
// its synchronous calls) beyond the peer's idle retirement. A client that
// reads less often than its timeout is held too: harmless, half a
// millisecond on a read it makes seldom.
const (
	firstHold = 500 * time.Microsecond
	maxHold   = 16 * time.Millisecond
	maxHolds  = 4096 // client endpoints remembered
)

// holds remembers the reply hold of client endpoints that showed the race.
type holds struct {
	mu sync.Mutex
	m  map[netip.AddrPort]time.Duration
}

func (h *holds) get(a netip.AddrPort) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[a]
}

// raise doubles a's hold (firstHold the first time, at most maxHold) and
// returns it.
func (h *holds) raise(a netip.AddrPort) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[netip.AddrPort]time.Duration{}
	}
	d, ok := h.m[a]
	if !ok && len(h.m) >= maxHolds {
		clear(h.m)
	}
	d = min(max(2*d, firstHold), maxHold)
	h.m[a] = d
	return d
}

// lastSingle is when the peer's last SINGLE request was answered, and the
// timeout it announced.
type lastSingle struct {
	at      time.Time
	timeout time.Duration
	key     linkKey
	blkid   uint16
}

// noteSingle looks for the symptom, or a link executed again, before a
// SINGLE request is answered.
func (p *peer) noteSingle(l *wire.Link, now time.Time) {
	if !p.udp {
		return
	}
	last := p.last
	if p.hold == 0 && !last.at.IsZero() && last.key == (linkKey{l.LinkID, l.StartTime}) && last.blkid != l.BlockID {
		// One link executed again (a TLink in a read loop): tine.jar's
		// pattern, never the Go client's (a new link per call). Hold from
		// now on rather than after the first stall.
		p.hold = p.s.holds.raise(p.addr)
		p.s.stats.held.Add(1)
		p.s.log.Debug().Str("client", p.addr.String()).Dur("hold", p.hold).Msg("tine: client executes a link again: its replies are held back")
		return
	}
	if last.at.IsZero() || last.timeout <= 0 || now.Sub(last.at) < last.timeout || p.hold >= maxHold {
		return
	}
	p.hold = p.s.holds.raise(p.addr)
	p.s.stats.held.Add(1)
	p.s.log.Info().Str("client", p.addr.String()).Dur("waited", now.Sub(last.at)).Dur("timeout", last.timeout).Dur("hold", p.hold).
		Msg("tine: client sent its next read a full timeout after the reply (tine.jar drops replies that come too early): its replies are now held back")
}

// answeredSingle records the SINGLE request just answered and holds the
// reply when the peer needs it.
func (p *peer) answeredSingle(l *wire.Link, now time.Time) {
	if !p.udp {
		return
	}
	p.last = lastSingle{at: now.Add(p.hold), timeout: time.Duration(l.PollingInterval) * time.Millisecond,
		key: linkKey{l.LinkID, l.StartTime}, blkid: l.BlockID}
	if p.hold > 0 && p.holdUntil.IsZero() {
		p.holdUntil = now.Add(p.hold)
	}
}

// flushDue sends the datagram being built unless it is held.
func (p *peer) flushDue(now time.Time) {
	if !p.holdUntil.IsZero() {
		if now.Before(p.holdUntil) {
			return
		}
		p.holdUntil = time.Time{}
	}
	p.w.flush()
}
