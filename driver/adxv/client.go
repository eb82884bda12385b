package adxv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// DefaultPort is the port ADXV listens on when started as `adxv -socket`.
const DefaultPort = 8100

// Defaults of Config.
const (
	DefaultHost         = "localhost"
	DefaultDialTimeout  = time.Second
	DefaultWriteTimeout = 2 * time.Second
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	DefaultCloseWait    = 500 * time.Millisecond
)

// ErrClosed is returned by a Client that has been closed.
var ErrClosed = errors.New("adxv client closed")

// Reach is what the client knows of ADXV's socket.
type Reach int32

// Reach values.
const (
	// ReachUnknown: no attempt yet since start or since the address changed.
	ReachUnknown Reach = iota
	// ReachUp: the last attempt reached ADXV.
	ReachUp
	// ReachDown: the last attempt failed; the client is retrying.
	ReachDown
)

func (r Reach) String() string {
	switch r {
	case ReachUnknown:
		return "unknown"
	case ReachUp:
		return "up"
	case ReachDown:
		return "down"
	}
	return "reach(" + strconv.Itoa(int(r)) + ")"
}

// Config tunes a Client. Zero fields take the defaults above.
type Config struct {
	Host string // where ADXV runs (default localhost)
	Port int    // ADXV's socket port (default 8100)
	// KeepOpen keeps one connection open between batches instead of
	// connecting for each batch and closing after it.
	KeepOpen     bool
	DialTimeout  time.Duration // how long a connection attempt may take
	WriteTimeout time.Duration // how long ADXV may take to accept a batch
	MinBackoff   time.Duration // first delay after a failure
	MaxBackoff   time.Duration // longest delay between attempts
	// CloseWait is how long a connect-send-close delivery waits, after
	// sending, for ADXV to close its end. ADXV reads a connection to its
	// end before it takes the next one, so waiting for that close keeps
	// batches in order (without it a later batch on a new connection can
	// overtake an earlier one) and proves that ADXV read the batch. If
	// ADXV lets the time pass without closing, the client stops waiting on
	// that address. Negative: never wait.
	CloseWait time.Duration
	Logger    zerolog.Logger
	// OnReport, if set, is called from the client's goroutine after every
	// attempt, in order. It must return quickly: the next attempt waits.
	OnReport func(Report)
}

func (c *Config) fill() error {
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.CloseWait == 0 {
		c.CloseWait = DefaultCloseWait
	}
	if c.MaxBackoff < c.MinBackoff {
		return fmt.Errorf("adxv: max back-off %v below min back-off %v", c.MaxBackoff, c.MinBackoff)
	}
	_, err := JoinHostPort(c.Host, c.Port)
	return err
}

// JoinHostPort validates an ADXV host and port (as clients write them into
// properties) and joins them into a dial address.
func JoinHostPort(host string, port int) (string, error) {
	if host == "" || len(host) > 255 {
		return "", fmt.Errorf("adxv host %q: must be 1..255 characters", host)
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c == 0x7f || c == '/' {
			return "", fmt.Errorf("adxv host %q: not a host name or address", host)
		}
	}
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("adxv port %d outside [1, 65535]", port)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// Report describes one attempt to reach ADXV.
type Report struct {
	Addr string
	// Ticket is the batch the attempt carried (as returned by Submit); 0
	// for a probe, an empty connection made only to learn whether ADXV
	// listens.
	Ticket uint64
	Image  string // Batch.Image of that batch
	Err    error  // nil: ADXV took the batch (or the probe connection)
	Reach  Reach  // after this attempt
	// RetryIn is, after a failure, the delay before the next attempt.
	RetryIn time.Duration
	// Dropped is set after a failure when the batch will not be retried:
	// a newer batch replaced it meanwhile, or it was withdrawn.
	Dropped bool
}

// Stats counts what a client did since it was created.
type Stats struct {
	Delivered   uint64 // batches ADXV took
	Lines       uint64 // command lines in them
	Failures    uint64 // attempts that failed (dial, write or probe)
	Probes      uint64 // probe connections made
	Connections uint64 // TCP connections opened
	Reconnects  uint64 // times ADXV was reached again after being unreachable
	Superseded  uint64 // batches replaced by a newer one before delivery
	Withdrawn   uint64 // batches withdrawn before delivery
}

// Client delivers batches to ADXV from its own goroutine. Submit never
// blocks: the client holds one pending batch, and a newer batch replaces
// an older one that is still waiting (the viewer only ever needs the
// latest). While ADXV cannot be reached the client retries with
// exponential back-off, probing with empty connections when it has
// nothing to deliver, so that the caller learns when ADXV is back.
//
// All methods are safe for concurrent use.
type Client struct {
	cfg Config
	log zerolog.Logger

	ctx    context.Context // cancelled by Close: aborts a dial in progress
	cancel context.CancelFunc
	wake   chan struct{}
	exited chan struct{}

	mu          sync.Mutex
	addr        string
	addrChanged bool
	pending     *Batch
	pendingT    uint64
	inFlightT   uint64
	withdrawn   bool // the batch in flight was withdrawn
	tickets     uint64
	closed      bool

	reach atomic.Int32

	delivered, lines, failures, probes, connections, reconnects, superseded, withdrawnN atomic.Uint64

	// Owned by the client's goroutine.
	conn      net.Conn
	connAddr  string
	dialer    net.Dialer
	skipClose bool // ADXV at this address does not close after EOF
}

// New starts a client. It probes ADXV at once, so that Reach (and the
// first Report) tell soon whether the viewer is there.
func New(cfg Config) (*Client, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	addr, _ := JoinHostPort(cfg.Host, cfg.Port)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:    cfg,
		log:    cfg.Logger.With().Str("component", "adxv").Logger(),
		ctx:    ctx,
		cancel: cancel,
		wake:   make(chan struct{}, 1),
		exited: make(chan struct{}),
		addr:   addr,
		dialer: net.Dialer{Timeout: cfg.DialTimeout},
	}
	go c.run()
	return c, nil
}

// Addr is the address batches go to.
func (c *Client) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// Reach is what the last attempt learnt of ADXV.
func (c *Client) Reach() Reach { return Reach(c.reach.Load()) }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Delivered:   c.delivered.Load(),
		Lines:       c.lines.Load(),
		Failures:    c.failures.Load(),
		Probes:      c.probes.Load(),
		Connections: c.connections.Load(),
		Reconnects:  c.reconnects.Load(),
		Superseded:  c.superseded.Load(),
		Withdrawn:   c.withdrawnN.Load(),
	}
}

// SetAddr points the client at another ADXV. The next attempt goes there at
// once (back-off starts over), and a kept-open connection to the old
// address is closed.
func (c *Client) SetAddr(host string, port int) error {
	addr, err := JoinHostPort(host, port)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if addr != c.addr {
		c.addr = addr
		c.addrChanged = true
	}
	c.mu.Unlock()
	c.poke()
	return nil
}

// Submit hands a batch to the client and returns its ticket (never 0),
// which later Reports carry. A batch still waiting from an earlier Submit
// is dropped (counted as superseded). The batch belongs to the client from
// now on.
func (c *Client) Submit(b *Batch) (uint64, error) {
	if b == nil || b.Lines() == 0 {
		return 0, errors.New("adxv: empty batch")
	}
	if err := b.Err(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	if c.pending != nil {
		c.superseded.Add(1)
	}
	c.tickets++
	c.pending, c.pendingT = b, c.tickets
	t := c.tickets
	c.mu.Unlock()
	c.poke()
	return t, nil
}

// Withdraw drops the batch of the given ticket if it has not been
// delivered yet, and reports whether it was still waiting. A batch whose
// delivery is under way at that moment is not recalled, but it is not
// retried if that delivery fails.
func (c *Client) Withdraw(ticket uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ticket != 0 && c.pendingT == ticket && c.pending != nil:
		c.pending, c.pendingT = nil, 0
		c.withdrawnN.Add(1)
		return true
	case ticket != 0 && c.inFlightT == ticket:
		c.withdrawn = true
	}
	return false
}

// Close stops the client: an attempt in progress is aborted and a batch
// still waiting is dropped.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	<-c.exited
	return nil
}

func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run is the client's goroutine: it delivers the pending batch (or probes)
// whenever it may, and waits out the back-off after a failure.
func (c *Client) run() {
	defer close(c.exited)
	defer c.dropConn()
	bo := Backoff{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff}
	var retryAt time.Time
	probe := true // learn at once whether ADXV is there
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		c.mu.Lock()
		if c.addrChanged {
			c.addrChanged = false
			retryAt, probe = time.Time{}, true
			bo.Reset()
			c.reach.Store(int32(ReachUnknown))
			c.skipClose = false
		}
		addr, has := c.addr, c.pending != nil
		c.mu.Unlock()

		if !has && !probe {
			select {
			case <-c.wake:
				continue
			case <-c.ctx.Done():
				return
			}
		}
		if wait := time.Until(retryAt); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-c.wake:
				// A new batch waits out the back-off like the old one;
				// only an address change cuts it short (seen above).
				timer.Stop()
			case <-c.ctx.Done():
				return
			}
			continue
		}

		c.mu.Lock()
		b, ticket := c.pending, c.pendingT
		c.pending, c.pendingT = nil, 0
		c.inFlightT, c.withdrawn = ticket, false
		c.mu.Unlock()
		if b == nil && !probe {
			continue // withdrawn meanwhile
		}

		err := c.attempt(addr, b)
		if c.ctx.Err() != nil {
			return
		}
		r := Report{Addr: addr, Ticket: ticket, Err: err}
		if b != nil {
			r.Image = b.Image()
		}
		wasDown := Reach(c.reach.Load()) == ReachDown
		c.mu.Lock()
		if err != nil && b != nil {
			if c.pending == nil && !c.withdrawn {
				c.pending, c.pendingT = b, ticket // retry it
			} else {
				r.Dropped = true
				if c.withdrawn {
					c.withdrawnN.Add(1)
				} else {
					c.superseded.Add(1)
				}
			}
		}
		c.inFlightT, c.withdrawn = 0, false
		c.mu.Unlock()

		if err == nil {
			probe, retryAt = false, time.Time{}
			bo.Reset()
			c.reach.Store(int32(ReachUp))
			r.Reach = ReachUp
			if wasDown {
				c.reconnects.Add(1)
				c.log.Info().Str("addr", addr).Msg("ADXV reachable again")
			}
			if b != nil {
				c.delivered.Add(1)
				c.lines.Add(uint64(b.Lines()))
				c.log.Debug().Str("addr", addr).Str("image", b.Image()).Int("lines", b.Lines()).Msg("batch delivered")
			}
		} else {
			c.failures.Add(1)
			delay := bo.Next()
			probe, retryAt = true, time.Now().Add(delay)
			c.reach.Store(int32(ReachDown))
			r.Reach, r.RetryIn = ReachDown, delay
			ev := c.log.Debug()
			if !wasDown {
				ev = c.log.Warn()
			}
			ev.Err(err).Str("addr", addr).Dur("retry_in", delay).Bool("dropped", r.Dropped).Msg("ADXV unreachable")
		}
		if c.cfg.OnReport != nil {
			c.cfg.OnReport(r)
		}
	}
}

// attempt delivers b (nil: probe) to addr.
func (c *Client) attempt(addr string, b *Batch) error {
	if b == nil {
		c.probes.Add(1)
	}
	if !c.cfg.KeepOpen {
		conn, err := c.dial(addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		if b == nil {
			return nil
		}
		if err := c.write(conn, b); err != nil {
			return err
		}
		c.awaitClose(conn)
		return nil
	}
	if c.conn != nil && (c.connAddr != addr || !alive(c.conn)) {
		c.dropConn()
	}
	fresh := false
	if c.conn == nil {
		conn, err := c.dial(addr)
		if err != nil {
			return err
		}
		c.conn, c.connAddr, fresh = conn, addr, true
	}
	if b == nil {
		return nil
	}
	err := c.write(c.conn, b)
	if err == nil || fresh {
		if err != nil {
			c.dropConn()
		}
		return err
	}
	// The kept connection broke (ADXV restarted between the liveness
	// check and the write): one more try on a new connection before
	// reporting a failure.
	c.dropConn()
	conn, derr := c.dial(addr)
	if derr != nil {
		return derr
	}
	c.conn, c.connAddr = conn, addr
	if err = c.write(conn, b); err != nil {
		c.dropConn()
	}
	return err
}

func (c *Client) dial(addr string) (net.Conn, error) {
	conn, err := c.dialer.DialContext(c.ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.connections.Add(1)
	return conn, nil
}

func (c *Client) write(conn net.Conn, b *Batch) error {
	// Close must not wait for a write timeout.
	defer context.AfterFunc(c.ctx, func() { conn.SetDeadline(time.Now()) })()
	if err := conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
		return err
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write to ADXV: %w", err)
	}
	return nil
}

// awaitClose half-closes conn and waits up to CloseWait for ADXV to close
// its end (see Config.CloseWait).
func (c *Client) awaitClose(conn net.Conn) {
	tc, ok := conn.(*net.TCPConn)
	if c.skipClose || c.cfg.CloseWait < 0 || !ok || tc.CloseWrite() != nil {
		return
	}
	defer context.AfterFunc(c.ctx, func() { conn.SetDeadline(time.Now()) })()
	if conn.SetReadDeadline(time.Now().Add(c.cfg.CloseWait)) != nil {
		return
	}
	var buf [256]byte
	for {
		_, err := conn.Read(buf[:])
		switch {
		case err == nil:
			continue // ADXV does not talk back; discard whatever it sent
		case errors.Is(err, os.ErrDeadlineExceeded) && c.ctx.Err() == nil:
			c.skipClose = true
			c.log.Info().Str("addr", conn.RemoteAddr().String()).Dur("waited", c.cfg.CloseWait).
				Msg("ADXV keeps connections open after the end of a batch; not waiting for its close any more")
		}
		return
	}
}

func (c *Client) dropConn() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.connAddr = nil, ""
	}
}

// Send delivers b once to ADXV at addr (host:port) on a connection of its
// own and returns when ADXV has taken it, the write failed, or ctx ended.
// It is for scripts and command-line tools (e.g. slab, contrast or
// save_image on request); long-running callers use a Client, which never
// makes them wait.
func Send(ctx context.Context, addr string, b *Batch) error {
	if b == nil || b.Lines() == 0 {
		return errors.New("adxv: empty batch")
	}
	if err := b.Err(); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDialTimeout+DefaultWriteTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetWriteDeadline(dl); err != nil {
			return err
		}
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write to ADXV: %w", err)
	}
	return nil
}
