package tine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime/debug"
	"time"

	"tioga/adapters/tine/wire"
	"tioga/properties"
)

// A peer is one client endpoint (UDP source address and port, or a TCP
// connection) and everything the server keeps for it: its links, its
// partial multi-block inputs and its outgoing datagrams. One goroutine per
// peer owns that state and does all the peer's work, so a client fetching a
// 16 MB array never stalls another client, and a peer's replies leave in
// order. (tine.jar clients use one UDP socket for synchronous calls and
// others for links [verified: source ports 8054-8056]; each is a peer.)
type peer struct {
	s      *Server
	addr   netip.AddrPort
	tr     transport
	in     chan *inMsg
	events chan linkEvent
	wake   chan struct{}
	quit   chan struct{} // closed when the peer goroutine ends
	// closing, for TCP peers, is closed when the connection ends.
	closing chan struct{}

	links      map[linkKey]*link
	inputs     map[inputKey]*assembly
	writes     map[inputKey]writeDone // recent writes, against repeats
	w          replyWriter
	lastActive time.Time
	udp        bool
	due        []due // runDue's scratch
	// hold, holdUntil and last: replies held back for tine.jar (hold.go).
	hold      time.Duration
	holdUntil time.Time
	last      lastSingle
}

// transport sends one reply datagram.
type transport interface {
	send(b []byte) error
}

type linkEvent struct {
	l *link
	v properties.Value
}

const (
	peerQueue   = 256              // request datagrams waiting per peer
	peerIdle    = 30 * time.Second // an idle UDP peer without links is forgotten
	eventBuffer = 4096             // event batches queued per link before the registry drops (and counts) them
)

func newPeer(s *Server, addr netip.AddrPort, tr transport, udp bool) *peer {
	p := &peer{
		s: s, addr: addr, tr: tr, udp: udp,
		in:     make(chan *inMsg, peerQueue),
		events: make(chan linkEvent, 64),
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		links:  map[linkKey]*link{},
		inputs: map[inputKey]*assembly{},
		writes: map[inputKey]writeDone{},
	}
	p.w = newReplyWriter(p.sendDatagram)
	if udp {
		p.hold = s.holds.get(addr)
	}

	p.lastActive = time.Now()
	return p
}

func (p *peer) sendDatagram(b []byte) error {
	// Counted before sending, so that a client that has its reply also
	// sees it counted; taken back if the send fails.
	p.s.stats.replies.Add(1)
	err := p.tr.send(b)
	if err != nil {
		p.s.stats.replies.Add(^uint64(0))
		p.s.stats.sendErrors.Add(1)
		p.s.warnf(p.addr.Addr(), "tine: send to %s failed: %v", p.addr, err)
		return err
	}
	return nil
}

// run is the peer goroutine.
func (p *peer) run() {
	defer p.s.wg.Done()
	defer close(p.quit)
	defer p.dropAll()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		next := p.nextDue(now)
		timer.Reset(max(next.Sub(now), 0))
		select {
		case m := <-p.in:
			p.safely(func() { p.handleDatagram(m) })
			putMsg(m)
		case ev := <-p.events:
			p.safely(func() { p.deliverBatch(ev) })
		case <-p.wake:
		case <-timer.C:
		case <-p.s.done:
			return
		case <-p.closing:
			return
		}
		now = time.Now()
		p.safely(func() { p.runDue(now) })
		p.flushDue(now)
		if p.udp && len(p.links) == 0 && len(p.inputs) == 0 && now.Sub(p.lastActive) >= peerIdle && p.s.retire(p) {
			return
		}
	}
}

// safely runs fn, turning a panic (a bug) into a logged, counted error so
// that one bad request cannot take the server down.
func (p *peer) safely(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			p.s.stats.panics.Add(1)
			p.s.log.Error().Str("client", p.addr.String()).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("tine: request handling failed")
			p.w.buf = p.w.buf[:2]
		}
	}()
	fn()
}

func (p *peer) nextDue(now time.Time) time.Time {
	next := now.Add(time.Hour)
	cfg := &p.s.cfg
	for _, l := range p.links {
		if d := l.due(cfg); d.Before(next) {
			next = d
		}
	}
	for _, a := range p.inputs {
		if d := a.started.Add(inputTimeout); d.Before(next) {
			next = d
		}
	}
	if !p.holdUntil.IsZero() && p.holdUntil.Before(next) {
		next = p.holdUntil
	}
	if p.udp && len(p.links) == 0 {
		if d := p.lastActive.Add(peerIdle); d.Before(next) {
			next = d
		}
	}
	return next
}

func (p *peer) handleDatagram(m *inMsg) {
	now := time.Now()
	p.lastActive = now
	for i := range m.req.Links {
		p.s.stats.requests.Add(1)
		p.handleLink(&m.req.Links[i], m.req.Header.User, now)
	}
}

func (p *peer) fail(l *wire.Link, e *tineError) {
	p.s.stats.errors.Add(1)
	p.w.failure(l.LinkID, l.StartTime, l.FormatOut, e)
}

func (p *peer) handleLink(l *wire.Link, user string, now time.Time) {
	mode := l.Mode.Base()
	if mode == wire.Cancel {
		if old, ok := p.links[linkKey{l.LinkID, l.StartTime}]; ok {
			p.removeLink(old)
		}
		return
	}
	input, complete, e := p.collectInput(l, now)
	if e != nil {
		p.fail(l, e)
		return
	}
	if !complete {
		return
	}
	switch mode {
	case wire.Single:
		p.noteSingle(l, now)
		p.single(l, input, user)
		p.answeredSingle(l, time.Now())
	case wire.Poll, wire.DataChange, wire.Event:
		p.attach(l, input, now)
	default:
		p.fail(l, fail(wire.IllegalMode, fmt.Sprintf("mode %s not served", mode)))
	}
}

// decodeInput turns the contract's input into a value.
func decodeInput(c *wire.Contract, input []byte) (properties.Value, bool, *tineError) {
	if c.FormatIn == wire.Null || (len(input) == 0 && c.SizeIn <= 0) {
		return properties.Value{}, false, nil
	}
	v, code, err := inputValue(c.FormatIn, input, int(c.SizeIn))
	if err != nil {
		return properties.Value{}, false, fail(code, err.Error())
	}
	return v, true, nil
}

// wantsWrite reports whether a SINGLE request writes: the WRITE access bit,
// or (for clients that send no access bits) input without output.
func wantsWrite(c *wire.Contract) bool {
	if c.Access&wire.AccessWrite != 0 {
		return true
	}
	return c.Access&wire.AccessRead == 0 && c.FormatIn != wire.Null && c.FormatOut == wire.Null
}

// resolveWithInput finds what the link's contract addresses and decodes the
// contract's input data; when either fails it answers the link with the
// error and ok is false. SINGLE requests and attaches start alike.
func (p *peer) resolveWithInput(l *wire.Link, input []byte) (tgt target, in properties.Value, hasIn, ok bool) {
	c := &l.Contract
	tgt, e := p.s.resolve(c)
	if e != nil {
		p.fail(l, e)
		return tgt, in, false, false
	}
	in, hasIn, e = decodeInput(c, input)
	if e != nil {
		p.fail(l, e)
		return tgt, in, false, false
	}
	return tgt, in, hasIn, true
}

func (p *peer) single(l *wire.Link, input []byte, user string) {
	c := &l.Contract
	tgt, in, hasIn, ok := p.resolveWithInput(l, input)
	if !ok {
		return
	}
	eff := withDefaultFormat(c, &tgt)
	c = &eff
	var (
		pl payload
		e  *tineError
	)
	ts := time.Now()
	ctx, cancel := p.s.requestContext(time.Duration(l.PollingInterval) * time.Millisecond) // SINGLE: the client's timeout
	defer cancel()
	if wantsWrite(c) {
		ip := p.addr.Addr().Unmap()
		if !p.s.access.allows(user, ip) {
			p.s.stats.refused.Add(1)
			p.s.warnf(ip, "tine: write of %s/%s by %q from %s refused by the access lists", c.Device, c.Property, user, ip)
			p.fail(l, fail(wire.AccessDenied, fmt.Sprintf("user %s at %s may not write", user, ip)))
			return
		}
		// A client that lost the reply sends the same request again (same
		// link id, start time and blkid): answer it without writing twice,
		// which matters for commands.
		key := inputKey{l.LinkID, l.StartTime, l.BlockID}
		done, repeat := p.writes[key]
		if repeat && time.Since(done.at) > writeMemory {
			repeat = false
		}
		if !repeat {
			done = writeDone{at: time.Now(), err: p.s.write(ctx, &tgt, in, hasIn)}
			p.rememberWrite(key, done)
			if done.err == nil {
				p.s.stats.writes.Add(1)
				p.s.log.Info().Str("client", p.addr.String()).Str("user", user).Str("device", tgt.dev.Name()).
					Str("property", tgt.name()).Str("value", truncate(in.String(), 200)).Msg("tine: write")
			}
		}
		if done.err != nil {
			p.fail(l, done.err)
			return
		}
		pl = payload{format: c.FormatOut}
		if c.FormatOut != wire.Null && c.SizeOut > 0 {
			if pl, ts, e = p.s.read(ctx, &tgt, c, properties.Value{}, false); e != nil {
				p.fail(l, e)
				return
			}
		}
	} else {
		if pl, ts, e = p.s.read(ctx, &tgt, c, in, hasIn); e != nil {
			p.fail(l, e)
			return
		}
	}
	if e := p.tooLarge(&pl); e != nil {
		p.fail(l, e)
		return
	}
	h := wire.ReplyHeader{SubID: l.LinkID, Format: wire.FormatField(c.FormatOut), Counter: 1, XferReason: wire.XferSingle, StartTime: l.StartTime}
	h.SetTime(ts)
	p.w.data(h, &pl)
}

// writeDone is the outcome of a recent write.
type writeDone struct {
	at  time.Time
	err *tineError
}

const (
	writeMemory = 10 * time.Second // how long a write's outcome is remembered
	maxWrites   = 64               // outcomes remembered per client
)

func (p *peer) rememberWrite(k inputKey, d writeDone) {
	if len(p.writes) >= maxWrites {
		for old, w := range p.writes {
			if d.at.Sub(w.at) > writeMemory || len(p.writes) >= maxWrites {
				delete(p.writes, old)
			}
		}
	}
	p.writes[k] = d
}

// attach handles POLL, DATACHANGE and EVENT requests: a new link, a
// renewal, or an acknowledgement (the same subscription sent again).
func (p *peer) attach(l *wire.Link, input []byte, now time.Time) {
	key := linkKey{l.LinkID, l.StartTime}
	mode := l.Mode.Base()
	if old, ok := p.links[key]; ok {
		if old.sent == l.Contract && old.mode == mode && old.sub.PollingInterval == l.PollingInterval && bytes.Equal(old.rawIn, input) {
			old.sub = l.Subscription
			old.renew(now, rand.IntN(100))
			p.s.stats.renewals.Add(1)
			return
		}
		p.removeLink(old)
	}
	// A client reuses a link id only for a new incarnation of the link
	// (a new start time): the old one is dead.
	for k, old := range p.links {
		if k.id == key.id {
			p.removeLink(old)
		}
	}
	c := &l.Contract
	if c.Access&wire.AccessWrite != 0 {
		p.fail(l, fail(wire.IllegalMode, "links read; write with SINGLE requests"))
		return
	}
	if len(p.links) >= p.s.cfg.MaxLinks {
		p.fail(l, fail(wire.ResourcesExhausted, fmt.Sprintf("%d links from this client", len(p.links))))
		return
	}
	tgt, in, hasIn, ok := p.resolveWithInput(l, input)
	if !ok {
		return
	}
	interval := time.Duration(l.PollingInterval) * time.Millisecond
	if interval <= 0 {
		interval = time.Second
	}
	interval = max(interval, p.s.cfg.MinInterval)
	nl := &link{
		key: key, sub: l.Subscription, sent: *c, con: withDefaultFormat(c, &tgt), mode: mode, interval: interval, tgt: tgt,
		rawIn: append([]byte(nil), input...), input: in, hasInput: hasIn, stop: make(chan struct{}),
	}
	nl.renew(now, rand.IntN(100))
	nl.nextPoll = now.Add(interval)
	if tgt.prop != nil && tgt.meta == notMeta && !(hasIn && tgt.prop.Spec().Arg != 0) {
		p.subscribe(nl)
	}
	p.links[key] = nl
	p.s.stats.links.Add(1)
	v := nl.latest.Load()
	nl.polled = v
	p.deliverValue(nl, now, v, false, false)
}

// subscribe connects a link to its property's change notifications. POLL
// and DATACHANGE links (and EVENT links on plain values) only need to know
// that the value changed: the registry's delivery (a callback, run within
// a batch's flush) keeps the value, sets a flag and wakes the peer, which
// sends the value when the link's spacing allows; the peer looks at the
// flags inside properties.Settle, so the links one batch changed are seen
// changed together and sent in one pass, with the batch's values and
// timestamp. EVENT links on properties that emit batches get every batch,
// in order.
func (p *peer) subscribe(l *link) {
	spec := l.tgt.prop.Spec()
	opts := properties.SubscribeOptions{Mode: properties.OnChange, Tolerance: -1, Buffer: 16}
	switch l.mode {
	case wire.Poll:
		opts.Tolerance = 0
	case wire.Event:
		opts.Mode = properties.OnEvent
		if spec.Events {
			l.batches = true
			opts.Buffer = eventBuffer
		}
	}
	if !l.batches {
		first := true
		readable := spec.Readable() // else the link answers the read's error
		opts.Func = func(u properties.Update) {
			if readable {
				v := u.Value
				l.latest.Store(&v)
			}
			if first {
				// Subscribe delivers the current value at once; the
				// attach reply sends it already.
				first = false
				return
			}
			l.changed.Store(true)
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
		l.psub = l.tgt.prop.Subscribe(opts)
		return
	}
	sub := l.tgt.prop.Subscribe(opts)
	l.psub = sub
	go func() {
		for u := range sub.C {
			select {
			case p.events <- linkEvent{l, u.Value}:
			case <-l.stop:
				return
			case <-p.quit:
				return
			}
		}
	}()
}

func (p *peer) removeLink(l *link) {
	if cur, ok := p.links[l.key]; !ok || cur != l {
		return
	}
	delete(p.links, l.key)
	close(l.stop)
	if l.psub != nil {
		l.psub.Close()
	}
	p.s.stats.links.Add(-1)
}

func (p *peer) dropAll() {
	for _, l := range p.links {
		p.removeLink(l)
	}
}

// due is a delivery runDue decided on.
type due struct {
	l                  *link
	v                  *properties.Value // the registry's value, nil: read it
	changed, heartbeat bool
}

// runDue does whatever links and inputs are due. Which links are due,
// and the values they send, are decided between two batch deliveries
// (properties.Settle); encoding and sending happen after.
func (p *peer) runDue(now time.Time) {
	cfg := &p.s.cfg
	p.due = p.due[:0]
	properties.Settle(func() {
		for _, l := range p.links {
			if l.expired(now, cfg) {
				p.s.stats.expired.Add(1)
				p.s.log.Debug().Str("client", p.addr.String()).Str("property", l.con.Property).Str("mode", l.mode.String()).Msg("tine: link expired")
				p.removeLink(l)
				continue
			}
			switch {
			case l.mode == wire.Poll:
				if !now.Before(l.nextPoll) {
					l.nextPoll = l.nextPoll.Add(l.interval)
					if l.nextPoll.Before(now) {
						l.nextPoll = now.Add(l.interval)
					}
					v := l.latest.Load()
					changed := v != l.polled
					l.polled = v
					l.changed.Store(false)
					p.due = append(p.due, due{l, v, changed, false})
				}
			case !l.batches && l.changed.Load() && !now.Before(l.lastSent.Add(l.spacing(cfg))):
				l.changed.Store(false)
				p.due = append(p.due, due{l, l.latest.Load(), true, false})
			case !now.Before(l.lastSent.Add(l.heartbeat(cfg))):
				p.due = append(p.due, due{l, l.latest.Load(), false, true})
			}
		}
	})
	for i := range p.due {
		d := &p.due[i]
		if cur, ok := p.links[d.l.key]; ok && cur == d.l {
			p.deliverValue(d.l, now, d.v, d.changed, d.heartbeat)
		}
		p.due[i] = due{}
	}
	for k, a := range p.inputs {
		if now.Sub(a.started) > inputTimeout {
			delete(p.inputs, k)
			p.s.stats.incomplete.Add(1)
			p.s.warnf(p.addr.Addr(), "tine: %d-block input of link %d from %s incomplete after %s", a.blocks, k.id, p.addr, inputTimeout)
		}
	}
}

// deliverValue sends v, the value the registry delivered to the link, or
// when v is nil the link's target read now.
func (p *peer) deliverValue(l *link, now time.Time, v *properties.Value, changed, heartbeat bool) {
	var pl payload
	var ts time.Time
	var e *tineError
	switch {
	case heartbeat && l.batches:
		pl, ts = payload{format: l.con.FormatOut}, now
	case v != nil:
		pl, ts, e = readPayload(*v, &l.con, now)
	default:
		ctx, cancel := p.s.requestContext(l.interval)
		pl, ts, e = p.s.read(ctx, &l.tgt, &l.con, l.input, l.hasInput)
		cancel()
	}
	p.send(l, now, pl, ts, e, changed, heartbeat)
}

// deliverBatch sends one event batch of an EVENT link.
func (p *peer) deliverBatch(ev linkEvent) {
	l := ev.l
	if cur, ok := p.links[l.key]; !ok || cur != l {
		return // cancelled meanwhile
	}
	now := time.Now()
	pl, err := valuePayload(ev.v, l.con.FormatOut, int(l.con.SizeOut))
	var e *tineError
	if err != nil {
		e = codeFor(err)
	}
	ts := ev.v.Time
	if ts.IsZero() {
		ts = now
	}
	p.send(l, now, pl, ts, e, true, false)
}

func (p *peer) send(l *link, now time.Time, pl payload, ts time.Time, e *tineError, changed, heartbeat bool) {
	counter, xfer, ok := l.stamp(changed, heartbeat)
	if !ok {
		p.s.stats.expired.Add(1)
		p.s.log.Debug().Str("client", p.addr.String()).Str("property", l.con.Property).Msg("tine: poll link not renewed, dropped")
		p.removeLink(l)
		return
	}
	l.lastSent = now
	if e == nil {
		e = p.tooLarge(&pl)
	}
	if e != nil {
		p.s.stats.errors.Add(1)
		p.w.failure(l.key.id, l.key.start, l.con.FormatOut, e)
		return
	}
	h := wire.ReplyHeader{SubID: l.key.id, Format: wire.FormatField(l.con.FormatOut), Counter: counter, XferReason: xfer, StartTime: l.key.start}
	h.SetTime(ts)
	p.w.data(h, &pl)
}
