package tine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/rs/zerolog"

	"tioga/adapters/tine/internal/sockbuf"
	"tioga/adapters/tine/wire"
	"tioga/device"
)

// Server is a TINE device server (protocol level 6) for every device server
// of a device tree. One Server is one TINE FEC: one UDP port (9003 + port
// offset) for all the tree's equipment modules, which clients tell apart
// by the equipment module name in each contract.
type Server struct {
	tree   *device.Tree
	cfg    Config
	log    zerolog.Logger
	access writeAccess
	start  time.Time

	udp    *net.UDPConn
	tcp    *net.TCPListener // UDP framing on a stream (8503+offset)
	stream *net.TCPListener // tine.jar's CM_STREAM framing (10003+offset)

	// base is the parent of every request's context: Close cancels it, so
	// a write hook waiting on the detector stops when the server does.
	base       context.Context
	cancelBase context.CancelFunc

	done      chan struct{}
	closeOnce sync.Once
	serving   atomic.Bool
	wg        sync.WaitGroup

	mu       sync.Mutex
	peers    map[netip.AddrPort]*peer // UDP peers
	tcpPeers int

	stats counters
	warns *warnLimiter
	holds holds // reply holds of tine.jar clients (hold.go)
}

// NewServer binds the server's sockets (UDP, and TCP when configured) and
// returns it ready to Run; Addr is valid at once. The tree's device
// servers must have distinct equipment modules (their first 8 bytes, which
// is what a contract carries).
func NewServer(tree *device.Tree, cfg Config) (*Server, error) {
	log := cfg.Logger
	if tree == nil {
		return nil, errors.New("tine: nil device tree")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	seen := map[string]string{}
	for _, s := range tree.Servers() {
		m := truncate(s.Module(), wire.EqmSize)
		key := upper(m)
		if other, dup := seen[key]; dup {
			return nil, fmt.Errorf("tine: servers %s and %s share the equipment module %q", other, s.Address(), m)
		}
		seen[key] = s.Address()
	}
	access, err := newWriteAccess(cfg.WriteUsers, cfg.WriteNets)
	if err != nil {
		return nil, err
	}
	s := &Server{
		tree: tree, cfg: cfg, log: log.With().Str("component", "tine").Logger(), access: access, start: time.Now(),
		done: make(chan struct{}), peers: map[netip.AddrPort]*peer{}, warns: newWarnLimiter(10 * time.Second),
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	host := cfg.Listen
	udpAddr := net.JoinHostPort(host, strconv.Itoa(cfg.udpPort()))
	uc, err := net.ListenPacket("udp", udpAddr)
	if err != nil {
		return nil, fmt.Errorf("tine: listen UDP %s: %w", udpAddr, err)
	}
	s.udp = uc.(*net.UDPConn)
	sockbuf.Raise(s.udp, cfg.ReceiveBuffer, cfg.SendBuffer)
	if cfg.TCP {
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(cfg.tcpPort()))
		tl, err := net.Listen("tcp", tcpAddr)
		if err != nil {
			s.udp.Close()
			return nil, fmt.Errorf("tine: listen TCP %s: %w", tcpAddr, err)
		}
		s.tcp = tl.(*net.TCPListener)
		streamAddr := net.JoinHostPort(host, strconv.Itoa(cfg.streamPort()))
		sl, err := net.Listen("tcp", streamAddr)
		if err != nil {
			s.udp.Close()
			s.tcp.Close()
			return nil, fmt.Errorf("tine: listen TCP %s: %w", streamAddr, err)
		}
		s.stream = sl.(*net.TCPListener)
	}
	return s, nil
}

// StreamAddr is the TCP address of tine.jar's CM_STREAM transfers, or nil
// when TCP is off.
func (s *Server) StreamAddr() net.Addr {
	if s.stream == nil {
		return nil
	}
	return s.stream.Addr()
}

// Addr is the UDP address the server listens on.
func (s *Server) Addr() net.Addr { return s.udp.LocalAddr() }

// TCPAddr is the TCP address, or nil when TCP is off.
func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// StartTime is when the server started (its SRVSTARTTIME).
func (s *Server) StartTime() time.Time { return s.start }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	s.mu.Lock()
	st.Clients = len(s.peers) + s.tcpPeers
	s.mu.Unlock()
	return st
}

// Run answers requests until ctx is cancelled or Close is called, then
// releases the sockets and every link, and returns nil. It may be called
// once.
func (s *Server) Run(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("tine: Run called twice")
	}
	sched, own := s.cfg.Scheduler, false
	if sched == nil {
		var err error
		if sched, err = gocron.NewScheduler(); err != nil {
			s.Close()
			return fmt.Errorf("tine: scheduler: %w", err)
		}
		own = true
	}
	job, err := sched.NewJob(gocron.DurationJob(time.Minute), gocron.NewTask(s.housekeeping),
		gocron.WithName("tine housekeeping"), gocron.WithSingletonMode(gocron.LimitModeReschedule))
	if err != nil {
		s.Close()
		if own {
			_ = sched.Shutdown()
		}
		return fmt.Errorf("tine: scheduler: %w", err)
	}
	if own {
		sched.Start()
	}
	s.logStart()
	s.wg.Add(1)
	go s.readUDP()
	if s.tcp != nil {
		s.wg.Add(2)
		go s.acceptTCP(s.tcp, false)
		go s.acceptTCP(s.stream, true)
	}
	if s.cfg.Export {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.export(ctx)
		}()
	}
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	s.Close()
	if own {
		_ = sched.Shutdown()
	} else {
		_ = sched.RemoveJob(job.ID())
	}
	s.wg.Wait()
	st := s.Stats()
	s.log.Info().Uint64("requests", st.Requests).Uint64("malformed", st.Malformed).Uint64("writes", st.Writes).Msg("tine: server stopped")
	return nil
}

// Close stops the server (Run returns). It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancelBase()
		close(s.done)
		s.udp.Close()
		if s.tcp != nil {
			s.tcp.Close()
			s.stream.Close()
		}
	})
	return nil
}

// defaultRequestTimeout bounds a request whose client states no timeout.
const defaultRequestTimeout = 5 * time.Second

// requestContext is the context a request's hooks get: the client's
// timeout (a SINGLE request's pollingInterval, a link's interval) as
// deadline, cancelled when the server closes.
func (s *Server) requestContext(d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = defaultRequestTimeout
	}
	return context.WithTimeout(s.base, d)
}

func (s *Server) logStart() {
	ev := s.log.Info().Str("udp", s.Addr().String()).Int("port_offset", s.cfg.PortOffset).Str("fec", s.cfg.FECName)
	if s.tcp != nil {
		ev = ev.Str("tcp", s.tcp.Addr().String()).Str("stream", s.stream.Addr().String())
	}
	for _, r := range AddressRows(s.tree, s.cfg) {
		ev = ev.Str("/"+r.Context+"/"+r.Name, r.Module)
	}
	ev.Msg("tine: serving")
	s.log.Info().Msg("tine: writes allowed " + s.access.describe())
}

func (s *Server) housekeeping() {
	s.warns.prune(time.Now())
	st := s.Stats()
	s.log.Debug().Uint64("datagrams", st.Datagrams).Uint64("malformed", st.Malformed).Uint64("requests", st.Requests).
		Uint64("errors", st.Errors).Int64("links", st.Links).Int("clients", st.Clients).Uint64("busy", st.Busy).
		Uint64("expired", st.LinksExpired).Msg("tine: statistics")
}

// warnf logs a warning about a client, at most once per 10 s per address,
// reporting how many similar warnings were held back.
func (s *Server) warnf(addr netip.Addr, format string, args ...any) {
	ok, suppressed := s.warns.allow(addr, time.Now())
	if !ok {
		return
	}
	ev := s.log.Warn().Str("client", addr.String())
	if suppressed > 0 {
		ev = ev.Int("suppressed", suppressed)
	}
	ev.Msgf(format, args...)
}

// inMsg is one request datagram, copied out of the read buffer and parsed,
// on its way to a peer.
type inMsg struct {
	buf []byte
	req wire.Request
}

var msgPool = sync.Pool{New: func() any { return &inMsg{buf: make([]byte, 0, wire.MaxDatagram)} }}

func putMsg(m *inMsg) {
	if cap(m.buf) > 4*wire.MaxDatagram {
		return // an outsize TCP message: let it go
	}
	m.buf = m.buf[:0]
	m.req.Links = m.req.Links[:0]
	msgPool.Put(m)
}

// parse copies and parses a datagram; it counts and reports malformed ones.
func (s *Server) parse(b []byte, from netip.AddrPort) *inMsg {
	m := msgPool.Get().(*inMsg)
	m.buf = append(m.buf[:0], b...)
	if err := m.req.Parse(m.buf); err != nil {
		s.stats.malformed.Add(1)
		s.warnf(from.Addr(), "tine: malformed datagram of %d bytes from %s: %v", len(b), from, err)
		putMsg(m)
		return nil
	}
	return m
}

func (s *Server) readUDP() {
	defer s.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn().Err(err).Msg("tine: UDP receive")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.receive(buf[:n], from)
	}
}

// receive hands one UDP datagram to its client's peer.
func (s *Server) receive(b []byte, from netip.AddrPort) {
	s.stats.datagrams.Add(1)
	m := s.parse(b, from)
	if m == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.peers[from]
	if !ok {
		select {
		case <-s.done:
			putMsg(m)
			return
		default:
		}
		if len(s.peers)+s.tcpPeers >= s.cfg.MaxClients {
			s.stats.busy.Add(1)
			s.warnf(from.Addr(), "tine: request from %s dropped: %d clients served already", from, s.cfg.MaxClients)
			putMsg(m)
			return
		}
		p = newPeer(s, from, udpTransport{s.udp, from}, true)
		s.peers[from] = p
		s.wg.Add(1)
		go p.run()
	}
	select {
	case p.in <- m:
		return
	default:
	}
	// The queue is full. A block of a multi-block input is one part of a
	// single request that the client can only send again whole, in the
	// same burst, which a peer slowed down by load drops at the same place
	// every time: a 450-block write then never completes. Such a block
	// waits for room (inputBlockWait at most; the socket buffer holds what
	// arrives meanwhile); anything else is dropped at once. Only clients on
	// the write networks get the wait: a flood of fake blocks from
	// elsewhere must not hold up the one UDP reader.
	if m.carriesInputBlock() && s.access.allowsAddr(from.Addr()) {
		t := time.NewTimer(inputBlockWait)
		defer t.Stop()
		select {
		case p.in <- m:
			return
		case <-t.C:
		case <-s.done:
		}
	}
	s.stats.busy.Add(1)
	s.warnf(from.Addr(), "tine: request from %s dropped: %d requests queued", from, peerQueue)
	putMsg(m)
}

// inputBlockWait bounds how long the UDP reader waits for room in a peer's
// queue for a block of a multi-block input.
const inputBlockWait = 250 * time.Millisecond

// carriesInputBlock reports whether the datagram holds a block of a
// multi-block input.
func (m *inMsg) carriesInputBlock() bool {
	for i := range m.req.Links {
		if m.req.Links[i].NumBlocks > 1 && m.req.Links[i].FormatIn != wire.Null {
			return true
		}
	}
	return false
}

// retire forgets an idle UDP peer; it reports false when a request arrived
// meanwhile (the peer must go on).
func (s *Server) retire(p *peer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p.in) > 0 {
		return false
	}
	delete(s.peers, p.addr)
	return true
}

type udpTransport struct {
	conn *net.UDPConn
	to   netip.AddrPort
}

func (t udpTransport) send(b []byte) error {
	_, err := t.conn.WriteToUDPAddrPort(b, t.to)
	return err
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
