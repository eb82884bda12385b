package stream

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/rs/zerolog"
)

// Config configures a Receiver. Only Endpoint is required; every other zero
// value selects a default that works on a beamline.
type Config struct {
	// Endpoint is the detector's stream: "tcp://dcu:9999" (V1) or
	// "tcp://dcu:31001" (V2). The receiver connects to it unless Bind is set
	// (then it binds, e.g. "tcp://*:9999" for a detector simulator that
	// connects, or "tcp://127.0.0.1:*" for a free port; see Endpoint()).
	Endpoint string
	Bind     bool

	// Version fixes the stream version (1 or 2). 0 detects it per message:
	// a multipart message, or one starting with '{', is V1; a single CBOR
	// item is V2.
	Version int

	// Channel is the V2 channel to deliver in Image.Pixels. "" selects the
	// first of the start message's channels, else the first in the image.
	Channel string

	// ReceiveHWM is ZMQ_RCVHWM, the number of messages libzmq queues before
	// TCP flow control pushes back on the detector. Default 100: enough to
	// ride out a short stall of the consumer, small enough that queued 4M
	// and 16M frames cannot exhaust memory.
	ReceiveHWM int
	// ReceiveBuffer is the kernel socket buffer (ZMQ_RCVBUF) in bytes; 0
	// keeps the OS default.
	ReceiveBuffer int
	// MaxMessageSize is ZMQ_MAXMSGSIZE in bytes: libzmq disconnects a peer
	// that sends a larger message part (a V1 flatfield of a 16M is 72 MB).
	// 0 means no limit.
	MaxMessageSize int64

	// SeriesTimeout ends an open series with a synthesized End (reason
	// "timeout") when no message arrives for this long. 0 never times out
	// (a series may legitimately wait minutes for external triggers).
	SeriesTimeout time.Duration

	// QueueLength is the capacity of the Events channel. When it is full the
	// receiver stops reading the socket, so libzmq's queue fills and the
	// detector is pushed back: memory stays bounded. Default 16.
	QueueLength int

	// Forward, when set, re-sends every raw message, unchanged, on a PUSH
	// socket (connect, or bind with ForwardBind), so that a second consumer
	// can see the stream without stealing frames from this one. Sending
	// never blocks: when the forward peer is absent or slow, messages are
	// dropped and counted, and the primary stream is unaffected.
	Forward     string
	ForwardBind bool
	ForwardHWM  int // ZMQ_SNDHWM of the forward socket; default 100

	// Logger receives structured logs; per-message problems (malformed,
	// straggler, missed header) are rate-limited. The zero Logger discards.
	Logger zerolog.Logger

	// PollInterval bounds how long the loop waits on the socket before it
	// looks at cancellation, Abort and the series timeout. Default 50 ms.
	PollInterval time.Duration
}

// Defaults.
const (
	defaultHWM          = 100
	defaultQueue        = 16
	defaultPollInterval = 50 * time.Millisecond
	// maxParts bounds the parts of one message: a V1 header has at most 9.
	maxParts = 64
)

// Stats are the receiver's counters since New.
type Stats struct {
	Messages uint64 // ZeroMQ messages received (a multipart message counts once)
	Bytes    uint64 // bytes received, all parts

	Series uint64 // series headers delivered
	Images uint64 // images delivered
	Ends   uint64 // end messages delivered (received from the detector)

	// Synthesized ends, by reason.
	Superseded uint64 // a new series header arrived before the old series' end
	Timeouts   uint64 // no message for SeriesTimeout
	Aborts     uint64 // Abort called while a series was open

	Stragglers   uint64 // images/ends of an older series, dropped
	MissedHeader uint64 // images/ends of a series whose header never came, dropped
	Malformed    uint64 // messages that did not parse, dropped
	Duplicates   uint64 // repeated image numbers (dropped) or byte-identical repeated headers (ignored)
	// Restarts counts headers that arrived with the id of the open series
	// but different content (a detector restart or re-arm): the open
	// series was ended (also counted in Superseded) and a new one started.
	Restarts uint64
	// HeaderUnusable counts header parts that were sent but unusable
	// (Series.Unusable); their series were delivered without them.
	HeaderUnusable uint64
	OutOfOrder     uint64 // images numbered below one already delivered (delivered)
	AbortDropped   uint64 // messages of an aborted series dropped while draining

	// Back-pressure: how often the Events channel was full when the
	// receiver had an event, and the total time it waited.
	QueueFull uint64
	Stalled   time.Duration

	Forwarded      uint64 // messages re-sent on the forward socket
	ForwardDropped uint64 // messages the forward socket could not take

	// Buffers counts the message buffers allocated since New. It grows
	// while frames in flight grow (and a little after garbage collections,
	// which empty the pool), then stays: a count that keeps growing with
	// Images means the consumer does not call Image.Release.
	Buffers uint64

	// The series being received, if any.
	InSeries bool
	SeriesID uint64

	LastError   string // text of the last problem counted above
	LastErrorAt time.Time
}

// counters are the live Stats, written by the receive loop and read by
// Stats from any goroutine.
type counters struct {
	messages, bytes                                 atomic.Uint64
	series, images, ends                            atomic.Uint64
	superseded, timeouts, aborts, restarts          atomic.Uint64
	headerUnusable                                  atomic.Uint64
	stragglers, missedHeader, malformed, duplicates atomic.Uint64
	outOfOrder, abortDropped, queueFull             atomic.Uint64
	stalledNs, forwarded, forwardDropped, seriesID  atomic.Uint64
	buffers                                         atomic.Uint64
	inSeries                                        atomic.Bool
	mu                                              sync.Mutex
	lastErr                                         string
	lastErrAt                                       time.Time
}

// Receiver receives one detector stream. Create it with New before the
// detector is armed (the header is sent at arm time and lost to a receiver
// that connects later), run it with Run, and read Events.
type Receiver struct {
	cfg     Config
	log     zerolog.Logger // lifecycle events
	sampled zerolog.Logger // per-message problems, rate-limited

	zctx     *zmq.Context
	sock     *zmq.Socket
	reader   *partReader // receives sock's messages into bufs
	fwd      *zmq.Socket
	endpoint string

	// bufs pools the message buffers (*msgBuf) that images are received
	// into; Image.Release puts them back.
	bufs sync.Pool

	events  chan Message
	abortCh chan uint64 // series id to abort
	started atomic.Bool
	closeMu sync.Mutex
	closed  bool

	c counters

	// State of the receive loop (owned by the Run goroutine).
	parser Parser
	cur    *openSeries
	drain  *seriesKey // an aborted series, dropped until its end
	// drainHeader is the fingerprint of the aborted series' header: the
	// same header again is part of the drain, another one a new series.
	drainHeader uint64
	seed        maphash.Seed
	recent      [8]seriesKey
	nRecent     int
	lastMsg     time.Time
	seen        bitset
	// handed is set when the message being handled was delivered as an
	// Image: its buffer now belongs to the consumer.
	handed bool
}

// New creates the socket and connects (or binds) it, so that nothing sent
// after New returns is lost, even before Run starts.
func New(cfg Config) (*Receiver, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("stream: no endpoint")
	}
	if cfg.Version != 0 && cfg.Version != 1 && cfg.Version != 2 {
		return nil, fmt.Errorf("stream: version %d (want 0 = auto, 1 or 2)", cfg.Version)
	}
	if cfg.ReceiveHWM <= 0 {
		cfg.ReceiveHWM = defaultHWM
	}
	if cfg.ForwardHWM <= 0 {
		cfg.ForwardHWM = defaultHWM
	}
	if cfg.QueueLength <= 0 {
		cfg.QueueLength = defaultQueue
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = defaultPollInterval
	}
	r := &Receiver{
		cfg:     cfg,
		events:  make(chan Message, cfg.QueueLength),
		abortCh: make(chan uint64, 1),
		parser:  Parser{Channel: cfg.Channel},
		seed:    maphash.MakeSeed(),
	}
	r.bufs.New = func() any {
		r.c.buffers.Add(1)
		return &msgBuf{pool: &r.bufs}
	}
	r.log = cfg.Logger.With().Str("component", "stream").Str("endpoint", cfg.Endpoint).Logger()
	r.sampled = r.log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})

	var err error
	if r.zctx, err = zmq.NewContext(); err != nil {
		return nil, fmt.Errorf("stream: zmq context: %w", err)
	}
	if err := r.openSockets(); err != nil {
		r.closeSockets()
		return nil, err
	}
	r.log.Info().Bool("bind", cfg.Bind).Int("version", cfg.Version).Str("actual_endpoint", r.endpoint).Msg("stream receiver ready")
	return r, nil
}

func (r *Receiver) openSockets() error {
	cfg := &r.cfg
	var err error
	if r.sock, err = r.zctx.NewSocket(zmq.PULL); err != nil {
		return fmt.Errorf("stream: PULL socket: %w", err)
	}
	// Options are applied in order; the first failure names its option.
	type option struct {
		name string
		err  error
	}
	opts := []option{
		{"linger", r.sock.SetLinger(0)},
		{"rcvhwm", r.sock.SetRcvhwm(cfg.ReceiveHWM)},
		{"rcvtimeo", r.sock.SetRcvtimeo(cfg.PollInterval)},
		// Keepalive lets a dead DCU connection be noticed and re-dialled.
		{"tcp_keepalive", r.sock.SetTcpKeepalive(1)},
	}
	if cfg.ReceiveBuffer > 0 {
		opts = append(opts, option{"rcvbuf", r.sock.SetRcvbuf(cfg.ReceiveBuffer)})
	}
	if cfg.MaxMessageSize > 0 {
		opts = append(opts, option{"maxmsgsize", r.sock.SetMaxmsgsize(cfg.MaxMessageSize)})
	}
	for _, o := range opts {
		if o.err != nil {
			return fmt.Errorf("stream: set %s: %w", o.name, o.err)
		}
	}
	if r.reader, err = newPartReader(r.sock); err != nil {
		return err
	}
	if cfg.Bind {
		err = r.sock.Bind(cfg.Endpoint)
	} else {
		err = r.sock.Connect(cfg.Endpoint)
	}
	if err != nil {
		verb := "connect"
		if cfg.Bind {
			verb = "bind"
		}
		return fmt.Errorf("stream: %s %s: %w", verb, cfg.Endpoint, err)
	}
	r.endpoint = cfg.Endpoint
	if cfg.Bind {
		if ep, err := r.sock.GetLastEndpoint(); err == nil {
			r.endpoint = ep
		}
	}
	if cfg.Forward == "" {
		return nil
	}
	if r.fwd, err = r.zctx.NewSocket(zmq.PUSH); err != nil {
		return fmt.Errorf("stream: forward PUSH socket: %w", err)
	}
	if err := r.fwd.SetLinger(0); err != nil {
		return fmt.Errorf("stream: forward linger: %w", err)
	}
	if err := r.fwd.SetSndhwm(cfg.ForwardHWM); err != nil {
		return fmt.Errorf("stream: forward sndhwm: %w", err)
	}
	if cfg.ForwardBind {
		err = r.fwd.Bind(cfg.Forward)
	} else {
		err = r.fwd.Connect(cfg.Forward)
	}
	if err != nil {
		return fmt.Errorf("stream: forward to %s: %w", cfg.Forward, err)
	}
	return nil
}

// closeSockets releases the sockets and the context; only the goroutine that
// uses the sockets may call it.
func (r *Receiver) closeSockets() {
	if r.reader != nil {
		r.reader.close()
		r.reader = nil
	}
	if r.sock != nil {
		r.sock.Close()
		r.sock = nil
	}
	if r.fwd != nil {
		r.fwd.Close()
		r.fwd = nil
	}
	if r.zctx != nil {
		r.zctx.Term()
		r.zctx = nil
	}
}

// Endpoint is the endpoint actually connected or bound (with a wildcard port
// resolved, e.g. "tcp://127.0.0.1:45123").
func (r *Receiver) Endpoint() string { return r.endpoint }

// ForwardEndpoint is the forward socket's endpoint with a wildcard port
// resolved; "" when forwarding is off.
func (r *Receiver) ForwardEndpoint() string {
	if r.fwd == nil {
		return ""
	}
	if r.cfg.ForwardBind {
		if ep, err := r.fwd.GetLastEndpoint(); err == nil {
			return ep
		}
	}
	return r.cfg.Forward
}

// Events delivers, in stream order, a *Series when a series starts, an
// *Image per accepted frame and an *End when the series ends (received or
// synthesized). It is closed when Run returns. The consumer applies
// back-pressure simply by not reading.
func (r *Receiver) Events() <-chan Message { return r.events }

// Abort drops the rest of the series open at the time of the call (see
// Stats().SeriesID): the receiver delivers an End with reason "aborted" and
// then drops every message of that series until its end message (or a new
// series header) arrives. Events already queued are still delivered, so a
// consumer discards images until it reads that End. Abort does not block;
// it is a no-op when no series is open, and a series that has ended or been
// superseded by the time the receiver acts is left alone.
func (r *Receiver) Abort() {
	if !r.c.inSeries.Load() {
		r.log.Info().Msg("abort with no series open: nothing to do")
		return
	}
	select {
	case r.abortCh <- r.c.seriesID.Load():
	default: // an abort is already pending
	}
}

// Close releases the socket of a Receiver whose Run was never called. A
// running Receiver is stopped by cancelling Run's context instead.
func (r *Receiver) Close() error {
	if r.started.Load() {
		return errors.New("stream: Close on a running receiver; cancel the context given to Run")
	}
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if !r.closed {
		r.closed = true
		r.closeSockets()
		close(r.events)
	}
	return nil
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (r *Receiver) Stats() Stats {
	c := &r.c
	s := Stats{
		Messages: c.messages.Load(), Bytes: c.bytes.Load(),
		Series: c.series.Load(), Images: c.images.Load(), Ends: c.ends.Load(),
		Superseded: c.superseded.Load(), Timeouts: c.timeouts.Load(), Aborts: c.aborts.Load(), Restarts: c.restarts.Load(),
		HeaderUnusable: c.headerUnusable.Load(),
		Stragglers:     c.stragglers.Load(), MissedHeader: c.missedHeader.Load(),
		Malformed: c.malformed.Load(), Duplicates: c.duplicates.Load(),
		OutOfOrder: c.outOfOrder.Load(), AbortDropped: c.abortDropped.Load(),
		QueueFull: c.queueFull.Load(), Stalled: time.Duration(c.stalledNs.Load()),
		Forwarded: c.forwarded.Load(), ForwardDropped: c.forwardDropped.Load(),
		Buffers:  c.buffers.Load(),
		InSeries: c.inSeries.Load(), SeriesID: c.seriesID.Load(),
	}
	c.mu.Lock()
	s.LastError, s.LastErrorAt = c.lastErr, c.lastErrAt
	c.mu.Unlock()
	return s
}

// problem records a counted problem as the last error and logs it,
// rate-limited.
func (r *Receiver) problem(counter *atomic.Uint64, kind string, err error) {
	counter.Add(1)
	now := time.Now()
	r.c.mu.Lock()
	r.c.lastErr, r.c.lastErrAt = err.Error(), now
	r.c.mu.Unlock()
	r.sampled.Warn().Str("problem", kind).Err(err).Msg("stream message dropped")
}

// note records a problem that dropped nothing as the last error, and logs it.
func (r *Receiver) note(msg string) {
	r.c.mu.Lock()
	r.c.lastErr, r.c.lastErrAt = msg, time.Now()
	r.c.mu.Unlock()
	r.log.Warn().Msg(msg)
}

// Run receives until ctx is cancelled, then closes the socket and the Events
// channel. It returns nil after cancellation, or the socket error that made
// it stop. Malformed messages never stop it. Run may be called once.
func (r *Receiver) Run(ctx context.Context) error {
	r.closeMu.Lock()
	closed := r.closed
	r.closeMu.Unlock()
	if closed || !r.started.CompareAndSwap(false, true) {
		return errors.New("stream: Run called twice or after Close")
	}
	defer func() {
		r.closeSockets()
		close(r.events)
	}()
	r.lastMsg = time.Now()
	var mb *msgBuf // the buffer to receive the next message into
	for {
		if ctx.Err() != nil {
			r.shutdown()
			return nil
		}
		select {
		case id := <-r.abortCh:
			if !r.handleAbort(ctx, id) {
				return nil
			}
		default:
		}
		if mb == nil {
			mb = r.bufs.Get().(*msgBuf)
		}
		err := r.reader.receive(mb)
		if err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) {
				if !r.checkTimeout(ctx) {
					return nil
				}
				continue
			}
			if ctx.Err() != nil {
				r.shutdown()
				return nil
			}
			r.log.Error().Err(err).Msg("stream socket failed")
			return fmt.Errorf("stream: receive: %w", err)
		}
		ok, kept := r.handle(ctx, mb, time.Now())
		if !ok {
			return nil
		}
		if kept {
			mb = nil
		}
	}
}

// handle processes one received message. ok is false when ctx was
// cancelled while delivering. kept reports that the message's buffer went
// with the message (an Image's until Image.Release; a Series', whose
// appendix aliases it, for good); otherwise the caller reuses it at once.
func (r *Receiver) handle(ctx context.Context, mb *msgBuf, now time.Time) (ok, kept bool) {
	r.handed = false
	mb.img.buf = mb // before delivery: the consumer may release at once
	r.parser.target = &mb.img
	m, ok := r.handleParts(ctx, mb.parts, now)
	r.parser.target = nil
	return ok, r.handed || m.Series != nil
}

// handleParts parses, tracks and delivers one message.
func (r *Receiver) handleParts(ctx context.Context, parts [][]byte, now time.Time) (Message, bool) {
	r.lastMsg = now
	r.c.messages.Add(1)
	var size uint64
	for _, p := range parts {
		size += uint64(len(p))
	}
	r.c.bytes.Add(size)
	if r.fwd != nil {
		r.forward(parts)
	}
	if len(parts) > maxParts {
		r.problem(&r.c.malformed, "malformed", fmt.Errorf("message of more than %d parts", maxParts))
		return Message{}, true
	}
	m, err := r.parse(parts)
	if err != nil {
		r.problem(&r.c.malformed, "malformed", err)
		return Message{}, true
	}
	return m, r.track(ctx, m, parts, now)
}

// parse detects the version (unless configured) and parses.
func (r *Receiver) parse(parts [][]byte) (Message, error) {
	v := r.cfg.Version
	if v == 0 {
		v = 2
		if len(parts) > 1 || (len(parts[0]) > 0 && parts[0][0] == '{') {
			v = 1
		}
	}
	if v == 1 {
		return r.parser.ParseV1(parts)
	}
	if len(parts) != 1 {
		return Message{}, fmt.Errorf("V2: message of %d parts, want 1", len(parts))
	}
	return r.parser.ParseV2(parts[0])
}

// forward re-sends a raw message without ever blocking the primary stream.
func (r *Receiver) forward(parts [][]byte) {
	for i, p := range parts {
		flags := zmq.DONTWAIT
		if i < len(parts)-1 {
			flags |= zmq.SNDMORE
		}
		if _, err := r.fwd.SendBytes(p, flags); err != nil {
			// libzmq queues a multipart message atomically: only the first
			// part can be refused, later ones always go through.
			r.c.forwardDropped.Add(1)
			return
		}
	}
	r.c.forwarded.Add(1)
}

// deliver hands an event to the consumer, waiting while the queue is full.
// It returns false when ctx is cancelled first.
func (r *Receiver) deliver(ctx context.Context, m Message) bool {
	select {
	case r.events <- m:
		return true
	default:
	}
	r.c.queueFull.Add(1)
	start := time.Now()
	defer func() {
		now := time.Now()
		r.c.stalledNs.Add(uint64(now.Sub(start)))
		r.lastMsg = now // a stall of the consumer is not silence of the detector
	}()
	select {
	case r.events <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// shutdown offers the consumer an End for a series still open, without
// waiting: the closed Events channel tells a consumer that is no longer
// reading everything it needs.
func (r *Receiver) shutdown() {
	if r.cur == nil {
		return
	}
	e := r.synthEnd(EndShutdown)
	select {
	case r.events <- Message{End: e}:
	default:
		r.log.Warn().Uint64("series", e.SeriesID).Msg("no room for the shutdown End of the open series")
	}
	r.log.Info().Uint64("series", e.SeriesID).Msg("stream receiver stopped with a series open")
}
