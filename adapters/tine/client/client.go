// Package client is a TINE client (protocol level 6) in pure Go, for
// scripts and tools that drive Tioga (or any TINE server speaking the
// tine.jar 4.x wire format) without DESY's libraries.
//
// A Client talks to one server endpoint (one FEC: UDP 9003 + port offset,
// or TCP 8503 + offset). It makes SINGLE calls (reads, writes, queries,
// several in one datagram if asked), and attaches POLL, DATACHANGE and
// EVENT links whose deliveries arrive on a channel. It does what tine.jar
// does to keep links alive: it renews a POLL link before its contract
// counter runs out, acknowledges DATACHANGE and EVENT deliveries when the
// server counts down, and keeps a watchdog link on the server's
// SRVSTARTTIME, re-attaching every link when the server restarts and
// reporting a link timeout when it goes silent. Multi-block replies and
// inputs are (re)assembled.
//
// There is no name server lookup: the caller says where the server is and
// which equipment module to address (see package addrdb for the csv
// database tine.jar clients use).
package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"tioga/adapters/tine/internal/sockbuf"
	"tioga/adapters/tine/wire"
)

// ErrTimeout is returned when a call got no (complete) reply in time.
var ErrTimeout = errors.New("tine: no reply from the server")

// partialLifetime is how long a multi-block transfer may wait for its
// missing blocks before it is dropped.
const partialLifetime = 30 * time.Second

// ErrIncomplete is returned when a call's reply began to arrive but
// blocks of it stayed missing after every attempt: they were lost, most
// likely because the UDP receive buffer could not hold the burst. The
// error says how many arrived; read such data over TCP.
var ErrIncomplete = errors.New("tine: reply incomplete")

// ErrClosed is returned by a closed client.
var ErrClosed = errors.New("tine: client closed")

// Options configure a Client. The zero value is usable.
type Options struct {
	// User is the user name sent with every request (TINE clients send it
	// upper-cased; write access lists compare it). Default: the login
	// name, upper-cased.
	User string
	// Timeout is how long one attempt of a SINGLE call waits (default 2 s);
	// it is also sent to the server as the call's polling interval.
	Timeout time.Duration
	// Retries is how many times a call is sent again when no complete
	// reply came (default 2; negative: never).
	Retries int
	// TCP uses the TINE framing over TCP (port 8503 + offset) instead of
	// UDP. Tioga's server speaks it; tine.jar servers were not seen doing
	// so (unverified).
	TCP bool
	// ReadBuffer is the UDP receive buffer to ask for (default 32 MiB): a
	// large array arrives as thousands of datagrams back to back.
	ReadBuffer int
	// Watchdog is the interval of the watchdog link (default 1 s;
	// negative: no watchdog link).
	Watchdog time.Duration
	// LinkBuffer is the number of deliveries a link's channel holds before
	// further ones are dropped and counted (default 1024).
	LinkBuffer int
	// Log receives the client's warnings (default: none).
	Log zerolog.Logger
}

func (o Options) withDefaults() Options {
	if o.User == "" {
		o.User = defaultUser()
	}
	o.User = strings.ToUpper(o.User)
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Retries == 0 {
		o.Retries = 2
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = 32 << 20
	}
	if o.Watchdog == 0 {
		o.Watchdog = time.Second
	}
	if o.LinkBuffer <= 0 {
		o.LinkBuffer = 1024
	}
	return o
}

func defaultUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "TIOGA"
}

// Address is what a contract names: the server's equipment module (from
// the address database: EQPMODULE), the device and the property.
type Address struct {
	Module   string
	Device   string
	Property string
}

func (a Address) String() string { return a.Module + "/" + a.Device + "/" + a.Property }

// Request is one contract.
type Request struct {
	Address
	// Format and Size are the output wanted: format (wire.Null for none)
	// and number of elements (bytes for TEXT and STRUCT).
	Format wire.Format
	Size   int
	// Tag is the output structure tag (STRUCT; "PRPQSr4" for property
	// information).
	Tag string
	// Input is the data sent with the request: a write's value, or a
	// query's argument on a read. Nil: none.
	Input *wire.Data
	// Write sets the WRITE access bit (with Input); a write that also wants
	// data back sets Format and Size too.
	Write bool
	// Timeout overrides Options.Timeout for this call.
	Timeout time.Duration
}

// Client is a connection to one TINE server endpoint. Its methods are safe
// for concurrent use.
type Client struct {
	opts Options
	conn net.Conn
	tcp  bool
	log  zerolog.Logger

	sendMu sync.Mutex // one datagram (TCP message) at a time

	mu     sync.Mutex
	nextID uint16
	calls  map[partKey]*call
	links  map[partKey]*Link
	wd     *Link
	closed bool

	wdStart atomic.Int64 // SRVSTARTTIME last seen
	wdLast  atomic.Int64 // unix nanoseconds of the last watchdog delivery
	lost    atomic.Bool  // the server is silent; links were told

	asm  *Assembler // receiver goroutine only
	done chan struct{}
	wg   sync.WaitGroup

	// Abandoned counts reply transfers that never completed.
	abandoned atomic.Uint64
}

type call struct {
	ch chan Reply
	// have and of: the most blocks of a multi-block reply seen so far
	// (written by the receiver under Client.mu), to tell an incomplete
	// transfer from no reply.
	have, of int
}

// Dial connects to a server at addr ("host:port"; UDP port 9003 + offset,
// or TCP 8503 + offset with Options.TCP).
func Dial(addr string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	network := "udp"
	if opts.TCP {
		network = "tcp"
	}
	conn, err := net.DialTimeout(network, addr, opts.Timeout)
	if err != nil {
		return nil, fmt.Errorf("tine: dial %s: %w", addr, err)
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		if got := sockbuf.Raise(uc, opts.ReadBuffer, 0); got > 0 && got < opts.ReadBuffer {
			opts.Log.Debug().Int("asked", opts.ReadBuffer).Int("got", got).
				Msg("tine: UDP receive buffer capped by net.core.rmem_max; large transfers may lose blocks and be retried")
		}
	}
	c := &Client{
		opts: opts, conn: conn, tcp: opts.TCP, log: opts.Log,
		calls: map[partKey]*call{}, links: map[partKey]*Link{}, asm: NewAssembler(), done: make(chan struct{}),
	}
	c.asm.OnPartial = c.partial
	c.wg.Add(2)
	go c.receive()
	go c.monitor()
	return c, nil
}

// DialServer connects to the server at host with the given port offset.
func DialServer(host string, portOffset int, opts Options) (*Client, error) {
	port := wire.UDPBasePort + portOffset
	if opts.TCP {
		port = wire.TCPBasePort + portOffset
	}
	return Dial(net.JoinHostPort(host, fmt.Sprint(port)), opts)
}

// RemoteAddr is the server's address.
func (c *Client) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// Close cancels every attached link (several per datagram, as tine.jar
// does) and closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	var cancel []wire.Link
	var all []*Link
	for _, l := range c.links {
		all = append(all, l)
		cancel = append(cancel, l.cancelLink())
	}
	c.closed = true
	c.links = map[partKey]*Link{}
	c.wd = nil
	c.mu.Unlock()
	if len(cancel) > 0 {
		_ = c.sendLinks(cancel)
	}
	for _, l := range all {
		l.finish()
	}
	close(c.done)
	err := c.conn.Close()
	c.wg.Wait()
	for _, cl := range c.pendingCalls() {
		close(cl.ch)
	}
	return err
}

func (c *Client) pendingCalls() []*call {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*call, 0, len(c.calls))
	for k, cl := range c.calls {
		out = append(out, cl)
		delete(c.calls, k)
	}
	return out
}

// Abandoned is the number of reply transfers dropped incomplete (lost
// blocks); a call that lost one is sent again.
func (c *Client) Abandoned() uint64 { return c.abandoned.Load() }

// newKey allocates a link id unused by pending calls and links.
func (c *Client) newKeyLocked() partKey {
	start := uint32(time.Now().Unix())
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if !c.idBusyLocked(c.nextID) {
			return partKey{c.nextID, start}
		}
	}
}

// idBusyLocked reports whether a pending call or a link uses the id (with
// any start time: a server takes a reused id for a new incarnation).
func (c *Client) idBusyLocked(id uint16) bool {
	for k := range c.calls {
		if k.sub == id {
			return true
		}
	}
	for k := range c.links {
		if k.sub == id {
			return true
		}
	}
	return false
}

// send writes one request datagram (or TCP message).
func (c *Client) send(b []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.tcp {
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
	}
	_, err := c.conn.Write(b)
	return err
}

// sendLinks sends links (each carrying at most one input block), packing
// as many as fit into each datagram.
func (c *Client) sendLinks(links []wire.Link) error {
	var dgram []wire.Link
	size := wire.RequestHeaderSize
	flush := func() error {
		if len(dgram) == 0 {
			return nil
		}
		b, err := wire.AppendRequest(nil, c.opts.User, dgram)
		if err != nil {
			return err
		}
		dgram, size = dgram[:0], wire.RequestHeaderSize
		return c.send(b)
	}
	for _, l := range links {
		n := wire.LinkHeaderSize + len(l.Input) + len(l.Ext)
		if size+n > wire.MaxDatagram {
			if err := flush(); err != nil {
				return err
			}
		}
		dgram = append(dgram, l)
		size += n
	}
	return flush()
}

// receive reads reply datagrams and hands complete transfers to the calls
// and links waiting for them.
func (c *Client) receive() {
	defer c.wg.Done()
	buf := make([]byte, 1<<16)
	var hdr [2]byte
	lastSweep := time.Now()
	for {
		if now := time.Now(); now.Sub(lastSweep) > time.Second {
			lastSweep = now
			before := c.asm.Abandoned
			c.asm.Sweep(now.Add(-partialLifetime))
			c.abandoned.Add(c.asm.Abandoned - before)
		}
		var b []byte
		if c.tcp {
			if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
				c.connLost(err)
				return
			}
			n := int(binary.LittleEndian.Uint16(hdr[:]))
			if n < 2 {
				c.connLost(fmt.Errorf("tine: reply of %d bytes", n))
				return
			}
			copy(buf, hdr[:])
			if _, err := io.ReadFull(c.conn, buf[2:n]); err != nil {
				c.connLost(err)
				return
			}
			b = buf[:n]
		} else {
			// The deadline only wakes the loop to sweep stale partial
			// transfers (UDP has no framing a timeout could break).
			_ = c.conn.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.conn.Read(buf)
			if err != nil {
				select {
				case <-c.done:
					return
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				// ICMP port unreachable (server down) surfaces here on a
				// connected UDP socket: keep listening, the calls time out.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			b = buf[:n]
		}
		before := c.asm.Abandoned
		replies, err := c.asm.Add(b)
		if err != nil {
			c.log.Warn().Err(err).Int("bytes", len(b)).Msg("tine: malformed reply")
		}
		if d := c.asm.Abandoned - before; d > 0 {
			c.abandoned.Add(d)
		}
		for i := range replies {
			c.dispatch(&replies[i])
		}
	}
}

func (c *Client) connLost(err error) {
	select {
	case <-c.done:
		return
	default:
	}
	c.log.Warn().Err(err).Msg("tine: connection to the server lost")
	for _, cl := range c.pendingCalls() {
		close(cl.ch)
	}
	c.mu.Lock()
	links := make([]*Link, 0, len(c.links))
	for _, l := range c.links {
		links = append(links, l)
	}
	c.mu.Unlock()
	for _, l := range links {
		l.push(Update{Err: fmt.Errorf("tine: connection lost: %w", err)})
	}
}

// partial records a call's progress through a multi-block reply.
func (c *Client) partial(sub uint16, start uint32, have, n int) {
	c.mu.Lock()
	if cl := c.calls[partKey{sub, start}]; cl != nil && have >= cl.have {
		cl.have, cl.of = have, n
	}
	c.mu.Unlock()
}

func (c *Client) dispatch(r *Reply) {
	key := partKey{r.SubID, r.StartTime}
	c.mu.Lock()
	cl, isCall := c.calls[key]
	if isCall {
		delete(c.calls, key)
	}
	l := c.links[key]
	c.mu.Unlock()
	switch {
	case isCall:
		select {
		case cl.ch <- *r: // buffered: one reply per call
		default: // a duplicate (the call was sent again)
		}
	case l != nil:
		l.delivered(r)
	}
}
