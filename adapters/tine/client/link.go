package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"tioga/adapters/tine/wire"
)

// Update is one delivery of an attached link.
type Update struct {
	Reply
	// Err is set for an error reply, a silent server (code 45, link
	// timeout, once until the server answers again) or a lost connection.
	Err error
}

const (
	// A POLL link is renewed when the server's counter falls to this,
	// or after renewEvery, whichever comes first.
	pollRenewAt = 10
	// ackCounter: DATACHANGE and EVENT deliveries with a lower counter
	// are acknowledged at once (the server is counting down, waiting).
	ackCounter = 10
	// renewEvery keeps a quiet link alive.
	renewEvery = 20 * time.Second
)

// Link is an attached POLL, DATACHANGE or EVENT link. Its deliveries
// arrive on C until Close (C is then closed). When the client reads C too
// slowly, deliveries beyond Options.LinkBuffer are dropped and counted.
type Link struct {
	C <-chan Update

	c        *Client
	ch       chan Update
	key      partKey
	req      Request
	mode     wire.Mode
	interval time.Duration
	first    chan Reply
	onReply  func(*Reply) // the watchdog's handler, instead of C

	mu        sync.Mutex
	blkid     uint16
	lastRenew time.Time
	finished  bool
	dropped   atomic.Uint64
}

// Attach opens a link: mode wire.Poll (every interval), wire.DataChange
// (when the value changes, checked every interval, plus heartbeats) or
// wire.Event (when the server signals; tine.jar sends an interval of 30 s
// for events). It returns once the server answered with the first
// delivery, which is also the first Update on C; a TINE error in that
// answer is returned as an *Error.
func (c *Client) Attach(ctx context.Context, req Request, mode wire.Mode, interval time.Duration) (*Link, error) {
	switch mode.Base() {
	case wire.Poll, wire.DataChange, wire.Event:
	default:
		return nil, fmt.Errorf("tine: cannot attach in mode %s", mode)
	}
	if req.Write {
		return nil, errors.New("tine: links read; write with Call")
	}
	if interval <= 0 {
		interval = time.Second
	}
	l, err := c.newLink(req, mode.Base(), interval, nil)
	if err != nil {
		return nil, err
	}
	timeout := c.opts.Timeout
	if req.Timeout > 0 {
		timeout = req.Timeout
	}
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if err := l.resend(); err != nil {
			l.Close()
			return nil, err
		}
		timer := time.NewTimer(timeout)
		select {
		case r := <-l.first:
			timer.Stop()
			if err := r.Err(); err != nil {
				l.Close()
				return nil, err
			}
			return l, nil
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			l.Close()
			return nil, ctx.Err()
		}
	}
	l.Close()
	return nil, ErrTimeout
}

// newLink registers a link (and, with the first ordinary link, the
// watchdog link on the server's SRVSTARTTIME).
//
// The watchdog's attachment is sent before newLink returns, from the
// caller's goroutine: sent later (it once was, from a goroutine of its
// own) it could overtake the CANCEL of a link whose attach failed, and
// leave the server holding a watchdog link nobody cancels.
func (c *Client) newLink(req Request, mode wire.Mode, interval time.Duration, onReply func(*Reply)) (*Link, error) {
	l, wd, err := c.registerLink(req, mode, interval, onReply)
	if wd != nil {
		_ = wd.resend()
	}
	return l, err
}

// registerLink does newLink's work under the client's lock and returns the
// watchdog link when this link started one.
func (c *Client) registerLink(req Request, mode wire.Mode, interval time.Duration, onReply func(*Reply)) (*Link, *Link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, ErrClosed
	}
	l := &Link{c: c, req: req, mode: mode, interval: interval, first: make(chan Reply, 1), onReply: onReply}
	l.key = c.newKeyLocked()
	if _, err := buildLinks(l.key, &req, mode, interval, 1); err != nil {
		return nil, nil, err
	}
	if onReply == nil {
		l.ch = make(chan Update, c.opts.LinkBuffer)
		l.C = l.ch
	}
	c.links[l.key] = l
	if onReply == nil && c.wd == nil && c.opts.Watchdog > 0 {
		wd := &Link{c: c, mode: wire.Poll, interval: c.opts.Watchdog, first: make(chan Reply, 1), onReply: c.watchdogReply,
			req: Request{Address: Address{Module: req.Module, Property: "SRVSTARTTIME"}, Format: wire.Int32, Size: 1, Tag: wire.WatchdogTag}}
		wd.key = c.newKeyLocked()
		c.links[wd.key] = wd
		c.wd = wd
		c.wdLast.Store(time.Now().UnixNano())
		c.lost.Store(false)
		return l, wd, nil
	}
	return l, nil, nil
}

// Dropped is the number of deliveries lost because C was not read.
func (l *Link) Dropped() uint64 { return l.dropped.Load() }

// Close cancels the link at the server and closes C. Closing the last
// link also cancels the watchdog link, in the same datagram.
func (l *Link) Close() error {
	c := l.c
	c.mu.Lock()
	cur, ok := c.links[l.key]
	if !ok || cur != l {
		c.mu.Unlock()
		return nil
	}
	delete(c.links, l.key)
	var wd *Link
	if c.wd != nil && len(c.links) == 1 {
		wd = c.wd
		delete(c.links, wd.key)
		c.wd = nil
	}
	closed := c.closed
	c.mu.Unlock()
	var err error
	if !closed {
		cancel := []wire.Link{l.cancelLink()}
		if wd != nil {
			cancel = append(cancel, wd.cancelLink())
		}
		err = c.sendLinks(cancel)
	}
	l.finish()
	if wd != nil {
		wd.finish()
	}
	return err
}

func (l *Link) nextBlockID() uint16 {
	l.blkid = l.blkid%999 + 1
	return l.blkid
}

// resend sends the link's subscription again: the attachment itself, a
// renewal, or an acknowledgement (the server tells them apart).
func (l *Link) resend() error {
	l.mu.Lock()
	links, err := buildLinks(l.key, &l.req, l.mode, l.interval, l.nextBlockID())
	l.lastRenew = time.Now()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.c.sendLinks(links)
}

// cancelLink is the CANCEL of the link: the same subscription and
// contract with mode 0 [verified: poll-frame-count.req002.bin].
func (l *Link) cancelLink() wire.Link {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.req
	r.Input = nil
	r.Write = false
	links, _ := buildLinks(l.key, &r, wire.Cancel, l.interval, l.nextBlockID())
	return links[0]
}

// delivered handles one delivery (receiver goroutine): it renews or
// acknowledges as needed, then hands the update on.
func (l *Link) delivered(r *Reply) {
	select {
	case l.first <- *r:
	default:
	}
	// A reply with data and a quality code (data stale, not initialized:
	// CodeFlagPartial) is a delivery like any other.
	if r.Err() == nil || r.Code&wire.CodeFlagPartial != 0 {
		l.mu.Lock()
		quiet := time.Since(l.lastRenew) > renewEvery
		l.mu.Unlock()
		renew := quiet
		if l.mode == wire.Poll {
			renew = renew || r.Counter <= pollRenewAt
		} else {
			renew = renew || r.Counter < ackCounter
		}
		if renew {
			_ = l.resend()
		}
	}
	if l.onReply != nil {
		l.onReply(r)
		return
	}
	l.push(Update{Reply: *r, Err: r.Err()})
}

func (l *Link) push(u Update) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished || l.ch == nil {
		return
	}
	select {
	case l.ch <- u:
	default:
		l.dropped.Add(1)
	}
}

func (l *Link) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.finished {
		l.finished = true
		if l.ch != nil {
			close(l.ch)
		}
	}
}

// watchdogReply handles a delivery of the watchdog link: the server's
// start time. A new start time means the server restarted and forgot every
// link: they are attached again.
func (c *Client) watchdogReply(r *Reply) {
	if r.Err() != nil {
		return
	}
	xs, err := r.Data.Ints()
	if err != nil || len(xs) == 0 {
		return
	}
	c.wdLast.Store(time.Now().UnixNano())
	prev := c.wdStart.Swap(xs[0])
	restarted := prev != 0 && prev != xs[0]
	wasLost := c.lost.Swap(false)
	if restarted {
		c.log.Info().Int64("start", xs[0]).Msg("tine: server restarted; attaching links again")
	}
	if restarted || wasLost {
		for _, l := range c.ordinaryLinks() {
			_ = l.resend()
		}
	}
}

func (c *Client) ordinaryLinks() []*Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Link, 0, len(c.links))
	for _, l := range c.links {
		if l.onReply == nil {
			out = append(out, l)
		}
	}
	return out
}

// monitor keeps links alive and watches the watchdog link.
func (c *Client) monitor() {
	defer c.wg.Done()
	period := c.opts.Watchdog
	if period <= 0 {
		period = time.Second
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.check(now)
		}
	}
}

func (c *Client) check(now time.Time) {
	c.mu.Lock()
	wd := c.wd
	c.mu.Unlock()
	links := c.ordinaryLinks()
	if wd != nil && now.Sub(time.Unix(0, c.wdLast.Load())) > 3*c.opts.Watchdog+time.Second {
		if !c.lost.Swap(true) {
			c.log.Warn().Str("server", c.conn.RemoteAddr().String()).Msg("tine: server not answering")
			for _, l := range links {
				l.push(Update{Err: &Error{Code: wire.LinkTimeout, Status: "link timeout: server not answering"}})
			}
		}
		// Keep knocking: when the server is back, the links are too.
		_ = wd.resend()
		for _, l := range links {
			_ = l.resend()
		}
		return
	}
	for _, l := range links {
		l.mu.Lock()
		quiet := now.Sub(l.lastRenew) > renewEvery
		l.mu.Unlock()
		if quiet {
			_ = l.resend()
		}
	}
}
