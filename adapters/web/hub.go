package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"tioga/device"
	"tioga/properties"
)

// Property names of the control contract that the page's panels use.
const (
	propDozorPass = "dozor-pass"
	propSeriesID  = "series-id"
	// series-start changes with every series, also when a restarted
	// detector numbers its series from 1 again.
	propSeriesStart = "series-start"
)

// watched is one subscribed property.
type watched struct {
	addr    string
	prop    *properties.Property
	sub     *properties.Subscription
	dropped uint64 // the subscription's Dropped when last drained
}

// client is one open page: batches queue on ch; a page that falls behind
// by more than its queue is disconnected (its browser reconnects and gets a
// fresh snapshot) rather than letting memory grow.
type client struct {
	ch   chan []byte
	gone chan struct{}
	once sync.Once
}

func (c *client) drop() { c.once.Do(func() { close(c.gone) }) }

// hub holds one set of registry subscriptions for every open page, drains
// them every batch period and broadcasts one update to all pages.
type hub struct {
	s *Server

	mu      sync.Mutex
	clients map[*client]struct{}
	subs    []watched  // nil while no page is open
	seriesW []*watched // the series-id and series-start subscriptions among subs
	passW   *watched   // the dozor-pass event subscription among subs
	sent    uint64     // batches sent (for tests and metrics)
}

func newHub(s *Server) *hub { return &hub{s: s, clients: map[*client]struct{}{}} }

// run ticks every batch period until ctx ends, then disconnects every page.
func (h *hub) run(ctx context.Context) {
	t := time.NewTicker(h.s.cfg.BatchPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.mu.Lock()
			for c := range h.clients {
				c.drop()
				delete(h.clients, c)
			}
			h.unsubscribeLocked()
			h.mu.Unlock()
			return
		case <-t.C:
			h.tick()
		}
	}
}

// join registers a page and returns its client with the snapshot it must
// show first. Registration and snapshot happen under the hub's lock, so
// every later batch is newer than the snapshot.
func (h *hub) join(canWrite bool) (*client, []byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) >= h.s.cfg.MaxClients {
		return nil, nil, fmt.Errorf("too many open pages (%d)", len(h.clients))
	}
	if h.subs == nil {
		h.subscribeLocked()
	}
	c := &client{ch: make(chan []byte, 32), gone: make(chan struct{})}
	h.clients[c] = struct{}{}
	return c, h.s.snapshot(true, canWrite), nil
}

func (h *hub) leave(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	c.drop()
	if len(h.clients) == 0 {
		h.unsubscribeLocked()
	}
}

// clientCount is the number of open pages.
func (h *hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *hub) subscribeLocked() {
	h.subs = []watched{}
	for _, d := range h.s.devices() {
		for _, p := range d.dev.Properties() {
			spec := p.Spec()
			if !spec.Readable() || spec.Arg != 0 {
				continue
			}
			opts := properties.SubscribeOptions{Mode: properties.OnChange, Tolerance: 0, Buffer: 16}
			if spec.Events && d.dev == h.s.cfg.Stream && spec.Name == propDozorPass {
				// Batches: the page keeps the records itself.
				opts = properties.SubscribeOptions{Mode: properties.OnEvent, Buffer: 256}
			}
			// Other batched arrays reach data-change subscribers as their
			// full value each export, shown summarised (their size).
			h.subs = append(h.subs, watched{addr: d.addr + "/" + spec.Name, prop: p, sub: p.Subscribe(opts)})
		}
	}
	h.seriesW, h.passW = nil, nil
	for i := range h.subs {
		w := &h.subs[i]
		if h.s.isStreamProp(w.prop, propSeriesID) || h.s.isStreamProp(w.prop, propSeriesStart) {
			h.seriesW = append(h.seriesW, w)
		}
		if h.s.isStreamProp(w.prop, propDozorPass) {
			h.passW = w
		}
	}
}

func (h *hub) unsubscribeLocked() {
	for _, w := range h.subs {
		w.sub.Close()
	}
	h.subs, h.seriesW, h.passW = nil, nil, nil
}

// tick drains every subscription and sends what changed as one update.
func (h *hub) tick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) == 0 {
		return
	}
	// Between two batch deliveries: an update carries all of a batch
	// (a series start, an export) or none of it.
	var msg []byte
	properties.Settle(func() { msg = h.drainLocked() })
	if msg == nil {
		return
	}
	h.sent++
	for c := range h.clients {
		select {
		case c.ch <- msg:
		default:
			// The page cannot keep up: disconnect it; it reconnects to a
			// fresh snapshot.
			delete(h.clients, c)
			c.drop()
		}
	}
	if len(h.clients) == 0 {
		h.unsubscribeLocked()
	}
}

// drainLocked builds an update message ({"values": {...}, "pass": [...],
// "passReset": bool}) from what the subscriptions queued, or nil when
// nothing changed.
func (h *hub) drainLocked() []byte {
	b := make([]byte, 0, 1024)
	b = append(b, `{"values":{`...)
	nvals := 0
	seriesChanged, lostBatches := false, false
	var batches [][]float32
	for i := range h.subs {
		w := &h.subs[i]
		var last properties.Value
		have := false
	drain:
		for {
			select {
			case u, ok := <-w.sub.C:
				if !ok {
					break drain
				}
				if w == h.passW {
					if u.Event {
						batches = append(batches, u.Value.Float32s)
					}
					continue
				}
				last, have = u.Value, true
			default:
				break drain
			}
		}
		if d := w.sub.Dropped(); d != w.dropped {
			// Updates were dropped while the hub waited for its tick (more
			// changes in one period than the subscription buffers): the
			// newest may be among them, so take the value itself; lost
			// dozor-pass batches make the page start from the full value.
			w.dropped = d
			if w == h.passW {
				lostBatches = true
			} else {
				last, have = readValue(w.prop), true
			}
		}
		if !have {
			continue
		}
		for _, sw := range h.seriesW {
			if w == sw {
				seriesChanged = true
			}
		}
		if nvals > 0 {
			b = append(b, ',')
		}
		nvals++
		b = appendString(b, w.addr)
		b = append(b, ':')
		b = appendEntry(b, last, w.prop.Spec())
	}
	if h.passW != nil && (len(batches) > 0 || seriesChanged || lostBatches) {
		// The devices table shows dozor-pass's size.
		if nvals > 0 {
			b = append(b, ',')
		}
		nvals++
		b = appendString(b, h.passW.addr)
		b = append(b, ':')
		b = appendEntry(b, readValue(h.passW.prop), h.passW.prop.Spec())
	}
	b = append(b, '}')
	switch {
	case (seriesChanged || lostBatches) && h.passW != nil:
		// A new series: send its records from the start instead of
		// batches that may mix two series.
		b = append(b, `,"passReset":true,"pass":`...)
		b = appendFloat32s(b, readValue(h.passW.prop).Float32s)
	case len(batches) > 0:
		b = append(b, `,"pass":[`...)
		first := true
		for _, fs := range batches {
			for _, f := range fs {
				if !first {
					b = append(b, ',')
				}
				first = false
				b = appendFloat(b, float64(f), 32)
			}
		}
		b = append(b, ']')
	case nvals == 0:
		return nil
	}
	return append(b, '}')
}

// appendEntry writes {"value": v, "time": ms, "len": n} and, when the
// value is not good, its quality, cause and reason.
func appendEntry(b []byte, v properties.Value, spec properties.Spec) []byte {
	b = append(b, `{"value":`...)
	b = appendValue(b, v, spec)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, v.Time.UnixMilli(), 10)
	b = append(b, `,"len":`...)
	b = strconv.AppendInt(b, int64(v.Rows()), 10)
	b = appendQuality(b, v.Quality)
	return append(b, '}')
}

// handleEvents is the page's event stream: one "snapshot" event, then an
// "update" event per batch period in which something changed.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	c, snap, err := s.hub.join(s.canWrite(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer s.hub.leave(c)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := writeEvent(w, "snapshot", snap); err != nil {
		return
	}
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return
		case msg := <-c.ch:
			if err := writeEvent(w, "update", msg); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func writeEvent(w http.ResponseWriter, name string, data []byte) error {
	if _, err := fmt.Fprintf(w, "event: %s\ndata: ", name); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := w.Write([]byte("\n\n"))
	return err
}

// devRef is a device with its canonical address.
type devRef struct {
	addr string
	srv  *device.Server
	dev  *device.Device
}

// devices lists every device of the tree with its canonical address.
func (s *Server) devices() []devRef {
	var out []devRef
	for _, srv := range s.cfg.Tree.Servers() {
		for _, d := range srv.Devices() {
			out = append(out, devRef{addr: srv.Address() + "/" + d.Name(), srv: srv, dev: d})
		}
	}
	return out
}

// isStreamProp reports whether p is the named property of the streaming
// device.
func (s *Server) isStreamProp(p *properties.Property, name string) bool {
	if s.cfg.Stream == nil {
		return false
	}
	q, ok := s.cfg.Stream.Property(name)
	return ok && q == p
}

// addressOf finds the canonical address of a device.
func (s *Server) addressOf(d *device.Device) string {
	if d == nil {
		return ""
	}
	for _, r := range s.devices() {
		if r.dev == d {
			return r.addr
		}
	}
	return ""
}
