// Package streamer is the simulated detector's data output: a ZeroMQ PUSH
// socket that sends a series header, the frames and the end message in
// Stream V1 or V2 (messages built by tioga/driver/stream's builders, pixels
// encoded by tioga/driver/codec), at the detector's frame rate, at a fixed
// rate, or as fast as possible.
//
// Frames are produced ahead of the sender by a pool of workers (one per CPU
// by default) into a bounded ring of reusable slots: each worker generates
// the frame's pixels, encodes them and, for V2, builds the whole message; the
// sender only stamps V1 headers and hands bytes to ZeroMQ, so it is never
// the bottleneck. For throughput runs a series can instead cycle K frames
// generated once (Options.Reuse).
//
// Apart from what zmq4 forces (zmq_send copies each part into a ZeroMQ
// message), nothing copies a frame on the way out.
package streamer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"

	"tioga/driver/codec"
	"tioga/driver/stream"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// TickRate is the EIGER's clock: image times are counted in 20 ns ticks.
const TickRate = 50_000_000

// Default endpoints of a DCU.
const (
	DefaultV1Endpoint = "tcp://*:9999"
	DefaultV2Endpoint = "tcp://*:31001"
)

// Options configure a Streamer.
type Options struct {
	// Workers producing frames (default runtime.NumCPU()).
	Workers int
	// Ring is how many frames may be produced ahead of the sender
	// (default 4 per worker, at least 8). Memory: Ring x (raw + encoded frame).
	Ring int
	// FPS paces the sender: 0 follows the series' frame_time like the
	// detector, > 0 sends that many frames per second, < 0 sends as fast as
	// the receiver takes them.
	FPS float64
	// Reuse > 0 generates only the first Reuse frames of each series (at
	// arm time) and sends frame i with the pixels of frame i % Reuse: for
	// throughput runs that must not be limited by frame generation.
	Reuse int
	// SendHWM is the ZeroMQ send high-water mark in messages (default 64):
	// how many frames the socket queues for a slow receiver before the
	// sender blocks (or drops, see DropAfter).
	SendHWM int
	// DropAfter > 0 makes a frame that cannot be handed to ZeroMQ within
	// that time count as dropped and be skipped, as a DCU whose buffer
	// overflows does. 0 blocks until the receiver takes it.
	DropAfter time.Duration
	// Linger is how long Close waits for queued messages (default 2 s).
	// Drain waits longer, for as long as it is told: a lagging receiver
	// must still get the end of a series.
	Linger time.Duration
	Logger zerolog.Logger
}

// Series is one series as the streamer sends it.
type Series struct {
	Header    *stream.Series // the header/start message content (Version selects V1 or V2)
	Encoding  codec.Encoding // pixel encoding on the wire
	Generator *diffraction.Generator
	// CountTicks and FrameTicks are count_time and frame_time in ticks;
	// ReadoutTicks the dead time real_time excludes.
	CountTicks, FrameTicks, ReadoutTicks uint64
	// ImageAppendix is sent with every frame: text for V1, one CBOR item
	// for V2 (nil = none).
	ImageAppendix []byte
	// Sent, if set, is called in frame order after each frame was handed to
	// ZeroMQ (or dropped) with the frame's truth: the simulator writes its
	// ground truth and progress there. The Frame is only valid during the
	// call.
	Sent func(t *truth.Frame, dropped bool)

	reuse []*slot // Options.Reuse frames, generated at Header time
}

// Streamer owns one PUSH socket.
type Streamer struct {
	opts     Options
	log      zerolog.Logger
	ctx      *zmq.Context
	sock     *zmq.Socket
	endpoint string
	boot     time.Time

	mu      sync.Mutex // one sender at a time: the socket is not thread-safe
	v1      stream.V1Builder
	v2      stream.V2Builder
	msg     []byte
	slots   []*slot
	dropped atomic.Uint64
	sent    atomic.Uint64

	// interrupted makes every send that would block give up at once
	// (Interrupt: SIGTERM); read by the sender without the lock, since a
	// blocked sender holds it.
	interrupted atomic.Bool
	// Accounting for Drain's report, under mu: messages handed to ZeroMQ
	// in the current series, frames among them, the last frame number,
	// whether the end went out.
	seriesMsgs   int
	seriesFrames int
	frameParts   int // message parts per frame (V1 4 or 5, V2 1)
	lastFrame    int
	endSent      bool

	// Delivery accounting, for an exact drain report: the socket monitor
	// names the TCP connection (watch), and the bytes of every message
	// sent on it are counted with their ZMTP framing (account), so the
	// kernel's counters for the connection say which messages ZeroMQ
	// still holds. Untracked (the report falls back to a bound) when the
	// series saw no connection, or more than one.
	monQuit    atomic.Bool
	monDone    chan struct{}
	cmu        sync.Mutex
	conns      map[int]*tcpConn // by file descriptor, under cmu
	sentRing   []sentMsg        // the series' last messages, under mu
	sentN      int
	seriesConn *tcpConn
	tracked    bool
}

// tcpConn is one TCP connection of the socket and the bytes of the
// messages sent on it (under Streamer.cmu).
type tcpConn struct {
	fd    int
	peer  string
	bytes uint64
}

// sentMsg is a message sent in the current series: a frame number, or
// msgHeader / msgEnd; end is the connection's byte count after it.
type sentMsg struct {
	frame int
	end   uint64
}

const (
	msgHeader = -1
	msgEnd    = -2
)

// zmtpHandshake is what ZeroMQ sends on a new connection before any
// message: the 64-byte ZMTP 3 greeting and the READY command of a PUSH
// socket with no metadata (28 bytes).
const zmtpHandshake = 92

// ErrInterrupted is returned by a send that Interrupt stopped while it
// waited for a receiver.
var ErrInterrupted = errors.New("interrupted")

// slot is one frame in flight: its pixels, their encoding, (V2) the message.
type slot struct {
	index int
	raw   []byte
	enc   []byte
	msg   []byte
	truth truth.Frame
	err   error
	ready chan struct{} // capacity 1: the worker signals, the sender waits; made once per slot
}

// New binds a PUSH socket to endpoint ("tcp://*:9999", or
// "tcp://127.0.0.1:*" for a free port).
func New(endpoint string, opts Options) (*Streamer, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Ring <= 0 {
		opts.Ring = max(8, 4*opts.Workers)
	}
	if opts.SendHWM <= 0 {
		opts.SendHWM = 64
	}
	if opts.Linger == 0 {
		opts.Linger = 2 * time.Second
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, fmt.Errorf("streamer: zmq context: %w", err)
	}
	sock, err := zctx.NewSocket(zmq.PUSH)
	if err != nil {
		zctx.Term()
		return nil, fmt.Errorf("streamer: zmq socket: %w", err)
	}
	fail := func(err error) (*Streamer, error) {
		sock.Close()
		zctx.Term()
		return nil, err
	}
	// Multipart V1 frames count one per part against the high-water mark.
	if err := sock.SetSndhwm(opts.SendHWM * 5); err != nil {
		return fail(fmt.Errorf("streamer: SNDHWM: %w", err))
	}
	// A large kernel buffer means fewer, larger writes for MB-sized frames.
	if err := sock.SetSndbuf(8 << 20); err != nil {
		return fail(fmt.Errorf("streamer: SNDBUF: %w", err))
	}
	if err := sock.SetLinger(opts.Linger); err != nil {
		return fail(fmt.Errorf("streamer: LINGER: %w", err))
	}
	// A bounded send timeout lets a blocked send notice abort and DropAfter.
	if err := sock.SetSndtimeo(50 * time.Millisecond); err != nil {
		return fail(fmt.Errorf("streamer: SNDTIMEO: %w", err))
	}
	// The monitor is set before the bind, so no connection goes unseen.
	// Without it a drain that times out reports a bound, not a count.
	mon, err := monitor(zctx, sock)
	if err != nil {
		opts.Logger.Debug().Err(err).Msg("streamer: no socket monitor: a drain that times out will bound what it discards, not count it")
	}
	if err := sock.Bind(endpoint); err != nil {
		if mon != nil {
			mon.Close()
		}
		return fail(fmt.Errorf("streamer: bind %s: %w", endpoint, err))
	}
	ep, err := sock.GetLastEndpoint()
	if err != nil {
		if mon != nil {
			mon.Close()
		}
		return fail(fmt.Errorf("streamer: endpoint: %w", err))
	}
	s := &Streamer{opts: opts, log: opts.Logger, ctx: zctx, sock: sock, endpoint: ep,
		boot: time.Now().Add(-47 * time.Minute), conns: map[int]*tcpConn{}, monDone: make(chan struct{})}
	if mon != nil {
		go s.watch(mon)
	} else {
		close(s.monDone)
	}
	return s, nil
}

var monitors atomic.Int64

// monitor starts ZeroMQ's socket monitor on sock and returns the PAIR
// socket its events arrive on.
func monitor(zctx *zmq.Context, sock *zmq.Socket) (*zmq.Socket, error) {
	addr := fmt.Sprintf("inproc://tioga-streamer-monitor-%d", monitors.Add(1))
	if err := sock.Monitor(addr, zmq.EVENT_ACCEPTED|zmq.EVENT_DISCONNECTED|zmq.EVENT_CLOSED); err != nil {
		return nil, err
	}
	mon, err := zctx.NewSocket(zmq.PAIR)
	if err != nil {
		return nil, err
	}
	mon.SetLinger(0)
	mon.SetRcvtimeo(25 * time.Millisecond) // how soon stopMonitor is heard
	if err := mon.Connect(addr); err != nil {
		mon.Close()
		return nil, err
	}
	return mon, nil
}

// watch follows the socket's TCP connections from the monitor's events
// until stopMonitor; it owns mon.
func (s *Streamer) watch(mon *zmq.Socket) {
	defer close(s.monDone)
	defer mon.Close()
	for !s.monQuit.Load() {
		ev, _, fd, err := mon.RecvEvent(0)
		if err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) {
				continue // look at monQuit
			}
			return
		}
		s.cmu.Lock()
		switch ev {
		case zmq.EVENT_ACCEPTED:
			s.conns[fd] = &tcpConn{fd: fd, peer: peerOf(fd)}
		case zmq.EVENT_DISCONNECTED, zmq.EVENT_CLOSED:
			delete(s.conns, fd)
		}
		s.cmu.Unlock()
	}
}

// stopMonitor stops watch; the monitor's socket must be closed before the
// context can terminate.
func (s *Streamer) stopMonitor() {
	s.monQuit.Store(true)
	<-s.monDone
}

// account records a message sent (under mu): its bytes on the wire
// (ZMTP framing: a flags byte and a 1- or 8-byte size per part) on the one
// connection the socket has.
func (s *Streamer) account(parts [][]byte, frame int) {
	var n uint64
	for _, p := range parts {
		n += 2 + uint64(len(p))
		if len(p) > 255 {
			n += 7
		}
	}
	var c *tcpConn
	var end uint64
	s.cmu.Lock()
	if len(s.conns) == 1 {
		for _, x := range s.conns {
			c = x
		}
		c.bytes += n
		end = c.bytes
	}
	s.cmu.Unlock()
	if c == nil || (s.seriesConn != nil && c != s.seriesConn) {
		s.tracked = false
	}
	s.seriesConn = c
	if len(s.sentRing) == 0 {
		// The frames ZeroMQ can hold (SNDHWM parts, one part per frame at
		// least), the end message and a few more.
		s.sentRing = make([]sentMsg, 5*s.opts.SendHWM+8)
	}
	s.sentRing[s.sentN%len(s.sentRing)] = sentMsg{frame: frame, end: end}
	s.sentN++
}

// Endpoint is the bound endpoint ("tcp://0.0.0.0:9999").
func (s *Streamer) Endpoint() string { return s.endpoint }

// ConnectEndpoint is an endpoint a local receiver can connect to: the
// bound one with a wildcard address replaced by 127.0.0.1.
func (s *Streamer) ConnectEndpoint() string {
	return strings.Replace(s.endpoint, "//0.0.0.0:", "//127.0.0.1:", 1)
}

// Dropped returns the number of frames dropped (DropAfter) so far.
func (s *Streamer) Dropped() uint64 { return s.dropped.Load() }

// SentFrames returns the number of frames sent so far.
func (s *Streamer) SentFrames() uint64 { return s.sent.Load() }

// Close closes the socket, waiting up to Options.Linger for queued
// messages (not at all after Interrupt).
func (s *Streamer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock == nil {
		return nil
	}
	if s.interrupted.Load() {
		s.sock.SetLinger(0)
	}
	s.stopMonitor()
	err := s.sock.Close()
	s.sock = nil
	return errors.Join(err, s.ctx.Term())
}

// Interrupt makes sends blocked on a receiver that takes nothing (none
// connected, or one that stopped reading) give up with ErrInterrupted, now
// and from now on; a message ZeroMQ can queue without waiting still goes
// out. It is what SIGTERM does: a sender blocked in a send must not keep
// the process alive. Safe to call from any goroutine, at any time.
func (s *Streamer) Interrupt() { s.interrupted.Store(true) }

// Undelivered says what a drain that timed out discarded.
type Undelivered struct {
	// Frames is how many frames were discarded, the last ones the
	// streamer handed to ZeroMQ. Exact when the kernel's counters for the
	// connection were readable (one receiver, Linux): the frames ZeroMQ
	// still held, the ones the kernel had taken going on to the receiver.
	// Otherwise a bound: what ZeroMQ's send queue holds (its high-water
	// mark in message parts over the parts of a frame), or what the series
	// sent if fewer.
	Frames int
	Exact  bool
	// First and Last are the frame numbers that bound them.
	First, Last int
	// End reports whether the end message was among them.
	End bool
	// Waited is how long the drain waited; Stopped reports that it was
	// cut short (Interrupt, ctx).
	Waited  time.Duration
	Stopped bool
}

func (u *Undelivered) Error() string {
	what := fmt.Sprintf("%d frames (%d..%d)", u.Frames, u.First, u.Last)
	switch {
	case !u.Exact:
		what = "up to " + what
	case u.Frames == 0:
		what = "no frame"
	}
	if u.End {
		what = "the end message and " + what
	}
	if u.Stopped {
		return fmt.Sprintf("stopped before the receiver took the end of the series: %s still queued, discarded", what)
	}
	return fmt.Sprintf("receiver did not take the end of the series within %v: %s still queued, discarded", u.Waited.Round(time.Millisecond), what)
}

// Drain closes the socket once ZeroMQ has handed every queued message
// (frames and the end message) to the receiver's connection, waiting up to
// timeout: a receiver that lags behind the detector gets the whole series.
// Closing with the short default Linger would discard what ZeroMQ still
// queues, and the receiver would see a series without its last frames and
// without an end. When the wait times out (or ctx is done, or after
// Interrupt) the rest is discarded and the error is an *Undelivered saying
// how many frames were lost.
func (s *Streamer) Drain(ctx context.Context, timeout time.Duration) error {
	s.mu.Lock()
	if s.sock == nil {
		s.mu.Unlock()
		return nil
	}
	sock, zctx := s.sock, s.ctx
	s.sock = nil
	msgs, frames, last, end := s.seriesMsgs, s.seriesFrames, s.lastFrame, s.endSent
	queue := 5 * s.opts.SendHWM / max(1, s.frameParts) // frames the send queue holds (SNDHWM is in parts)
	stopped := s.interrupted.Load()
	if stopped {
		timeout = 0
	}
	// The connection the whole series went to, if there was one, and the
	// series' last messages, oldest first.
	var conn *tcpConn
	var total uint64
	var sent []sentMsg
	if c := s.seriesConn; s.tracked && c != nil {
		s.cmu.Lock()
		if s.conns[c.fd] == c {
			conn, total = c, c.bytes
		}
		s.cmu.Unlock()
		if s.sentN <= len(s.sentRing) {
			sent = append(sent, s.sentRing[:s.sentN]...)
		} else {
			k := s.sentN % len(s.sentRing)
			sent = append(append(sent, s.sentRing[k:]...), s.sentRing[:k]...)
		}
	}
	s.mu.Unlock()
	s.stopMonitor()

	t0 := time.Now()
	if conn != nil && msgs > 0 {
		if u, ok := s.drainCounted(ctx, conn, total, sent, t0.Add(timeout)); ok {
			if u != nil {
				sock.SetLinger(0)
				u.Waited, u.Stopped = time.Since(t0), stopped || ctx.Err() != nil
				return errors.Join(sock.Close(), zctx.Term(), u)
			}
			// ZeroMQ's queue is empty: what the kernel holds goes on.
			return errors.Join(sock.Close(), zctx.Term())
		}
		// The kernel's counters became unreadable: ZeroMQ's linger decides.
		timeout -= time.Since(t0)
	}

	sock.SetLinger(max(timeout, 0))
	err := sock.Close()
	done := make(chan error, 1)
	go func() { done <- zctx.Term() }() // returns when ZeroMQ's queue is empty or the linger ran out
	select {
	case e := <-done:
		err = errors.Join(err, e)
	case <-ctx.Done():
	}
	waited := time.Since(t0)
	// ZeroMQ does not report whether the linger ran out: a Term that took
	// the whole timeout (or was not waited for) may have discarded messages.
	if msgs > 0 && (waited >= timeout || ctx.Err() != nil) {
		frames = min(frames, queue)
		u := &Undelivered{Frames: frames, First: last - frames + 1, Last: last, End: end, Waited: waited, Stopped: stopped || ctx.Err() != nil}
		if frames == 0 {
			u.First, u.Last = 0, 0
		}
		return errors.Join(err, u)
	}
	return err
}

// drainCounted waits, from the kernel's counters for conn, until ZeroMQ has
// handed the kernel every byte sent (total, handshake aside) or the
// deadline; then it says which of the messages sent were still in ZeroMQ's
// queue (nil: none). ok is false when the counters cannot be read (the
// connection closed, not Linux).
func (s *Streamer) drainCounted(ctx context.Context, conn *tcpConn, total uint64, sent []sentMsg, deadline time.Time) (*Undelivered, bool) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		carried, ok := kernelCarried(conn.fd, conn.peer)
		if !ok {
			return nil, false
		}
		carried -= min(carried, zmtpHandshake)
		if carried >= total {
			return nil, true
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			u := &Undelivered{Exact: true}
			for _, m := range sent {
				if m.end <= carried {
					continue
				}
				switch m.frame {
				case msgEnd:
					u.End = true
				case msgHeader:
				default:
					if u.Frames == 0 {
						u.First = m.frame
					}
					u.Frames++
					u.Last = m.frame
				}
			}
			if u.Frames == 0 && !u.End {
				return nil, true // the counters disagree by less than a message: nothing to report
			}
			return u, true
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

// ticks is the detector clock now.
func (s *Streamer) ticks() uint64 { return uint64(time.Since(s.boot).Nanoseconds() / (1e9 / TickRate)) }

// Header sends the series header (V1) or start message (V2). With
// Options.Reuse it first generates the frames the series will cycle.
func (s *Streamer) Header(ser *Series) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock == nil {
		return errors.New("streamer: closed")
	}
	if err := s.checkSeries(ser); err != nil {
		return err
	}
	if s.opts.Reuse > 0 {
		if err := s.pregenerate(ser); err != nil {
			return err
		}
	}
	s.seriesMsgs, s.seriesFrames, s.lastFrame, s.endSent = 0, 0, -1, false
	s.sentN, s.seriesConn, s.tracked = 0, nil, true
	var parts [][]byte
	switch ser.Header.Version {
	case 1:
		var err error
		if parts, err = s.v1.Header(ser.Header); err != nil {
			return fmt.Errorf("streamer: %w", err)
		}
	default:
		msg, err := s.v2.AppendStart(s.msg[:0], ser.Header)
		if err != nil {
			return fmt.Errorf("streamer: %w", err)
		}
		s.msg = msg
		parts = [][]byte{msg}
	}
	if err := s.sendWaiting(parts, "waiting for a receiver to connect and take the series header"); err != nil {
		if errors.Is(err, ErrInterrupted) {
			return fmt.Errorf("series header not taken by any receiver on %s: %w", s.endpoint, err)
		}
		return err
	}
	s.account(parts, msgHeader)
	return nil
}

func (s *Streamer) checkSeries(ser *Series) error {
	g := ser.Generator
	switch {
	case ser.Header == nil || g == nil:
		return errors.New("streamer: series without header or generator")
	case ser.Header.Version != 1 && ser.Header.Version != 2:
		return fmt.Errorf("streamer: stream version %d", ser.Header.Version)
	case ser.Header.Version == 2 && ser.Encoding == codec.LZ4Block:
		return errors.New("streamer: Stream V2 has no single-block lz4 (use codec.HDF5LZ4)")
	case ser.Header.Version == 2 && ser.Encoding == codec.BSLZ4NoHeader:
		return errors.New("streamer: headerless bslz4 exists only in Stream V1")
	}
	return nil
}

// End sends the end-of-series message.
func (s *Streamer) End(ser *Series) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock == nil {
		return errors.New("streamer: closed")
	}
	e := stream.End{Version: ser.Header.Version, SeriesID: ser.Header.ID, UniqueID: ser.Header.UniqueID}
	ser.reuse = nil
	var parts [][]byte
	if ser.Header.Version == 1 {
		parts = s.v1.End(&e)
	} else {
		s.msg = s.v2.AppendEnd(s.msg[:0], &e)
		parts = [][]byte{s.msg}
	}
	if err := s.sendWaiting(parts, "waiting for the receiver to take the end of the series"); err != nil {
		if errors.Is(err, ErrInterrupted) {
			return fmt.Errorf("end of series %d not taken by the receiver on %s: %w", e.SeriesID, s.endpoint, err)
		}
		return err
	}
	s.endSent = true
	s.account(parts, msgEnd)
	return nil
}

// sendWaiting sends a message that must not be dropped (header, end),
// waiting for as long as it takes (until Interrupt); when that is more
// than a second, it says so once, so an operator sees what the detector
// waits for.
func (s *Streamer) sendWaiting(parts [][]byte, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := s.trySend(ctx, parts, 0)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	s.log.Warn().Str("endpoint", s.endpoint).Msg(what)
	_, err = s.trySend(context.Background(), parts, 0)
	return err
}

var errDropped = errors.New("dropped")

// trySend sends one (multipart) message. A send that blocks wakes up every
// SNDTIMEO (50 ms) to look at ctx, dropAfter and Interrupt.
func (s *Streamer) trySend(ctx context.Context, parts [][]byte, dropAfter time.Duration) (bool, error) {
	var t0 time.Time
	for i, p := range parts {
		flag := zmq.Flag(0)
		if i < len(parts)-1 {
			flag = zmq.SNDMORE
		}
		for {
			_, err := s.sock.SendBytes(p, flag)
			if err == nil {
				break
			}
			if zmq.AsErrno(err) != zmq.Errno(syscall.EAGAIN) {
				return false, fmt.Errorf("streamer: send: %w", err)
			}
			// Only the first part can block: ZeroMQ accepts the rest of a
			// multipart message once it has taken the first. Giving up
			// there leaves no half message behind (sendWaiting retries).
			if s.interrupted.Load() {
				return false, ErrInterrupted
			}
			if i > 0 {
				continue
			}
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if dropAfter > 0 && i == 0 {
				if t0.IsZero() {
					t0 = time.Now()
				} else if time.Since(t0) > dropAfter {
					return false, errDropped
				}
			}
		}
	}
	s.seriesMsgs++
	return true, nil
}

// pregenerate fills ser.reuse with the first Options.Reuse frames, encoded.
func (s *Streamer) pregenerate(ser *Series) error {
	k := s.opts.Reuse
	if n := ser.Generator.Frames(); n > 0 && n < k {
		k = n
	}
	slots := make([]*slot, k)
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make([]error, s.opts.Workers)
	for w := 0; w < s.opts.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			enc := codec.NewEncoder()
			for {
				i := int(next.Add(1) - 1)
				if i >= k {
					return
				}
				sl := &slot{index: i}
				if err := s.produce(sl, ser, enc, nil, 0, 0); err != nil {
					errs[w] = err
					return
				}
				slots[i] = sl
			}
		}(w)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	ser.reuse = slots
	return nil
}

// produce generates and encodes frame sl.index; with a V2 builder it also
// builds the message (times from trigTicks, frame offset k in the trigger).
func (s *Streamer) produce(sl *slot, ser *Series, enc *codec.Encoder, v2 *stream.V2Builder, trigTicks uint64, k int) error {
	g := ser.Generator
	if len(sl.raw) != g.FrameBytes() {
		sl.raw = make([]byte, g.FrameBytes())
	}
	if need := enc.MaxEncodedSize(g.FrameBytes(), ser.Encoding, g.ElemSize()); cap(sl.enc) < need {
		sl.enc = make([]byte, 0, need)
	}
	if err := g.Frame(sl.index, sl.raw, &sl.truth); err != nil {
		return fmt.Errorf("streamer: frame %d: %w", sl.index, err)
	}
	var err error
	if sl.enc, err = enc.Encode(sl.enc[:0], sl.raw, ser.Encoding, g.ElemSize()); err != nil {
		return fmt.Errorf("streamer: encode frame %d: %w", sl.index, err)
	}
	if v2 != nil {
		img := s.image(ser, sl.index, sl.enc, trigTicks, k)
		if sl.msg, err = v2.AppendImage(sl.msg[:0], &img); err != nil {
			return fmt.Errorf("streamer: frame %d: %w", sl.index, err)
		}
	}
	return nil
}

// image describes frame i (the k-th of its trigger) for the builders.
func (s *Streamer) image(ser *Series, i int, data []byte, trigTicks uint64, k int) stream.Image {
	h := ser.Header
	g := ser.Generator
	rate := uint64(0)
	if h.Version == 2 {
		rate = TickRate
	}
	start := trigTicks + uint64(k)*ser.FrameTicks
	img := stream.Image{
		Version: h.Version, SeriesID: h.ID, UniqueID: h.UniqueID, Number: uint64(i),
		Pixels: stream.Pixels{Width: g.Width(), Height: g.Height(), ElemSize: g.ElemSize(),
			Encoding: ser.Encoding, Data: data},
		StartTime: stream.Ticks{Count: start, Rate: rate},
		StopTime:  stream.Ticks{Count: start + ser.CountTicks, Rate: rate},
		RealTime:  stream.Ticks{Count: ser.CountTicks - min(ser.ReadoutTicks, ser.CountTicks), Rate: rate},
		Appendix:  ser.ImageAppendix,
	}
	if h.Version == 2 {
		img.SeriesDate = h.ArmDate
	}
	return img
}

// Frames sends frames first .. first+n-1 of the series (one trigger). It
// returns early, with a nil error, when ctx is done (abort, disarm,
// cancel): frames already handed to ZeroMQ stay sent, none is cut.
func (s *Streamer) Frames(ctx context.Context, ser *Series, first, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock == nil {
		return errors.New("streamer: closed")
	}
	if err := s.checkSeries(ser); err != nil {
		return err
	}
	if n <= 0 {
		return nil
	}
	trigTicks := s.ticks()
	pace := s.period(ser)
	if ser.reuse != nil {
		return s.sendReused(ctx, ser, first, n, trigTicks, pace)
	}

	// Produce ahead into the ring; send in order.
	ring := min(s.opts.Ring, n)
	for len(s.slots) < ring {
		s.slots = append(s.slots, &slot{ready: make(chan struct{}, 1)})
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	free := make(chan *slot, ring)
	for _, sl := range s.slots[:ring] {
		free <- sl
	}
	jobs := make(chan *slot, ring)
	order := make(chan *slot, ring)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // dispatcher: hands out frame numbers in order
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		for i := first; i < first+n; i++ {
			var sl *slot
			select {
			case sl = <-free:
			case <-pctx.Done():
				return
			}
			sl.index, sl.err = i, nil
			jobs <- sl
			order <- sl
		}
	}()
	for w := 0; w < s.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc := codec.NewEncoder()
			var v2 *stream.V2Builder
			if ser.Header.Version == 2 {
				v2 = &stream.V2Builder{SelfDescribe: true}
			}
			for sl := range jobs {
				if pctx.Err() == nil {
					sl.err = s.produce(sl, ser, enc, v2, trigTicks, sl.index-first)
				}
				sl.ready <- struct{}{}
			}
		}()
	}
	var err error
	t0 := time.Now()
	k := 0
	for sl := range order {
		<-sl.ready
		if err == nil && ctx.Err() == nil {
			if sl.err != nil {
				err = sl.err
				stop()
			} else {
				s.wait(t0, k, pace)
				if e := s.sendFrame(ctx, ser, sl, sl.index, trigTicks, k); e != nil && ctx.Err() == nil {
					err = e
					stop()
				}
			}
		}
		k++
		free <- sl
	}
	stop()
	wg.Wait()
	return err
}

// sendReused cycles the pre-generated frames.
func (s *Streamer) sendReused(ctx context.Context, ser *Series, first, n int, trigTicks uint64, pace time.Duration) error {
	t0 := time.Now()
	for k := 0; k < n; k++ {
		if ctx.Err() != nil {
			return nil
		}
		i := first + k
		sl := ser.reuse[i%len(ser.reuse)]
		s.wait(t0, k, pace)
		if err := s.sendFrame(ctx, ser, sl, i, trigTicks, k); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// period is the time between frames the sender keeps (0: no pacing).
func (s *Streamer) period(ser *Series) time.Duration {
	switch {
	case s.opts.FPS > 0:
		return time.Duration(float64(time.Second) / s.opts.FPS)
	case s.opts.FPS < 0:
		return 0
	}
	return time.Duration(ser.FrameTicks) * (time.Second / TickRate)
}

// wait holds frame k of a trigger until its due time t0 + k*pace. Sleeping
// to absolute due times keeps the average rate exact despite the
// scheduler's granularity.
func (s *Streamer) wait(t0 time.Time, k int, pace time.Duration) {
	if pace <= 0 {
		return
	}
	if d := time.Until(t0.Add(time.Duration(k) * pace)); d > 0 {
		time.Sleep(d)
	}
}

// sendFrame sends one frame as number i and reports it to ser.Sent.
func (s *Streamer) sendFrame(ctx context.Context, ser *Series, sl *slot, i int, trigTicks uint64, k int) error {
	var parts [][]byte
	if ser.Header.Version == 1 {
		img := s.image(ser, i, sl.enc, trigTicks, k)
		var err error
		if parts, err = s.v1.Image(&img); err != nil {
			return fmt.Errorf("streamer: %w", err)
		}
	} else {
		if sl.index != i || ser.reuse != nil { // reused pixels: the message must carry this frame's number and times
			img := s.image(ser, i, sl.enc, trigTicks, k)
			var err error
			if s.msg, err = s.v2.AppendImage(s.msg[:0], &img); err != nil {
				return fmt.Errorf("streamer: %w", err)
			}
			parts = [][]byte{s.msg}
		} else {
			parts = [][]byte{sl.msg}
		}
	}
	_, err := s.trySend(ctx, parts, s.opts.DropAfter)
	dropped := false
	switch {
	case errors.Is(err, errDropped):
		dropped = true
		s.dropped.Add(1)
		s.log.Warn().Int("frame", i).Msg("frame dropped: receiver too slow")
	case errors.Is(err, ErrInterrupted):
		return fmt.Errorf("frame %d not taken by the receiver on %s: %w", i, s.endpoint, err)
	case err != nil:
		return err
	default:
		s.sent.Add(1)
		s.seriesFrames++
		s.frameParts = len(parts)
		s.lastFrame = i
		s.account(parts, i)
	}
	if ser.Sent != nil {
		t := &sl.truth
		if t.Frame != i { // a reused frame: report its own number
			saved := t.Frame
			t.Frame = i
			ser.Sent(t, dropped)
			t.Frame = saved
		} else {
			ser.Sent(t, dropped)
		}
	}
	return nil
}
