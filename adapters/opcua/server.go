package opcua

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uapolicy"
	"github.com/rs/zerolog"

	"tioga/device"
)

// Server serves a device tree over OPC UA.
type Server struct {
	cfg  Config
	log  zerolog.Logger
	srv  *server.Server
	as   *addressSpace
	url  string
	cert []byte
	key  *rsa.PrivateKey

	app       *ua.ApplicationDescription
	endpoints []*ua.EndpointDescription

	trust    *trustList
	rejected *rejectedStore
	sessions sessionTable

	nextSubID  atomic.Uint32
	nextItemID atomic.Uint32
	stats      counters

	sched    gocron.Scheduler
	ownSched bool
	jobs     []gocron.Job
	cancel   context.CancelFunc
	// base is the parent of every request's context: Close cancels it, so
	// a write hook waiting on the detector stops when the server does.
	base       context.Context
	cancelBase context.CancelFunc
	mu         sync.Mutex
	started    bool
	closed     bool
}

// NewServer builds the address space of tree and the server's identity
// (loading or generating its certificate). It does not listen yet: call
// Start. The device tree's structure must not change afterwards (values
// do, of course).
func NewServer(tree *device.Tree, cfg Config) (*Server, error) {
	log := cfg.Logger
	if tree == nil {
		return nil, errors.New("opcua: nil device tree")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log = log.With().Str("component", "opcua").Logger()
	hosts := []string{cfg.AdvertiseHost, "localhost"}
	if cfg.ListenHost != "0.0.0.0" && cfg.ListenHost != cfg.AdvertiseHost {
		hosts = append(hosts, cfg.ListenHost)
	}
	cert, key, err := loadOrCreateIdentity(cfg.CertFile, cfg.KeyFile, cfg.ApplicationURI, hosts, log)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		url:      "opc.tcp://" + net.JoinHostPort(cfg.AdvertiseHost, strconv.Itoa(cfg.Port)),
		cert:     cert,
		key:      key,
		trust:    newTrustList(cfg.TrustedDir, cfg.TrustedCerts, log),
		sessions: sessionTable{m: map[string]*session{}},
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	if cfg.RejectedDir != "-" {
		s.rejected = &rejectedStore{dir: cfg.RejectedDir, max: 100}
	}
	s.trust.reload()
	s.app = &ua.ApplicationDescription{
		ApplicationURI:  cfg.ApplicationURI,
		ProductURI:      "urn:tioga:opcua",
		ApplicationName: text(cfg.ApplicationName),
		ApplicationType: ua.ApplicationTypeServer,
		DiscoveryURLs:   []string{s.url},
	}
	for _, ep := range offeredSecurity() {
		s.endpoints = append(s.endpoints, &ua.EndpointDescription{
			EndpointURL:       s.url,
			Server:            s.app,
			ServerCertificate: cert,
			SecurityMode:      ep.mode,
			SecurityPolicyURI: ep.policy,
			UserIdentityTokens: []*ua.UserTokenPolicy{{
				PolicyID:  anonymousPolicy,
				TokenType: ua.UserTokenTypeAnonymous,
			}},
			TransportProfileURI: binaryTransport,
			SecurityLevel:       uapolicy.SecurityLevel(ep.policy, ep.mode),
		})
	}

	// gopcua logs a few dozen errors about its own built-in node set while
	// it imports it; they say nothing about this server, so its logging
	// starts once the server is built.
	glog := &gopcuaLogger{log: log}
	opts := []server.Option{server.EndPoint(cfg.ListenHost, cfg.Port)}
	for _, ep := range offeredSecurity() {
		opts = append(opts, server.EnableSecurity(ep.policy, ep.mode))
	}
	s.srv = server.New(append(opts,
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.Certificate(cert),
		server.PrivateKey(key),
		server.ServerName(cfg.ApplicationName),
		server.ManufacturerName("Tioga"),
		server.ProductName("Tioga OPC UA adapter"),
		server.SetLogger(glog),
		server.HandshakeTimeout(cfg.HandshakeTimeout),
		server.ConnectionLimits(cfg.MaxConnections, cfg.MaxConnectionsPerHost),
		server.OpenTimeout(cfg.OpenTimeout, cfg.CreateSessionTimeout),
		server.ChannelClosed(s.channelClosed),
	)...)
	s.as = newAddressSpace(cfg.NamespaceURI)
	s.srv.AddNamespace(s.as)
	if err := s.as.build(tree); err != nil {
		return nil, err
	}
	if err := s.as.linkObjects(s.srv); err != nil {
		return nil, err
	}
	s.registerServices()
	glog.on.Store(true)
	return s, nil
}

// defaultRequestTimeout bounds a request whose header has no TimeoutHint.
const defaultRequestTimeout = 10 * time.Second

// requestContext is the context a request's hooks get: the client's
// TimeoutHint, counted from the request's arrival, as deadline, cancelled
// when the server closes.
func (s *Server) requestContext(h *ua.RequestHeader) (context.Context, context.CancelFunc) {
	d := defaultRequestTimeout
	if h != nil && h.TimeoutHint > 0 {
		d = time.Duration(h.TimeoutHint) * time.Millisecond
	}
	return context.WithTimeout(s.base, d)
}

// Endpoint is the URL clients connect to, e.g. opc.tcp://host:4840.
func (s *Server) Endpoint() string { return s.url }

// NamespaceIndex is the index of the device tree's namespace (the "ns=" of
// every NodeId the server generates).
func (s *Server) NamespaceIndex() uint16 { return s.as.ns }

// Certificate returns the server's certificate (DER), which clients pin.
func (s *Server) Certificate() []byte { return append([]byte(nil), s.cert...) }

// Start listens and serves until ctx is cancelled or Close is called.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("opcua: server already started or closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	if err := s.srv.Start(ctx); err != nil {
		cancel()
		return fmt.Errorf("opcua: listen on %s:%d: %w", s.cfg.ListenHost, s.cfg.Port, err)
	}
	s.cancel = cancel
	s.sched = s.cfg.Scheduler
	if s.sched == nil {
		sched, err := gocron.NewScheduler()
		if err != nil {
			cancel()
			_ = s.srv.Close()
			return fmt.Errorf("opcua: scheduler: %w", err)
		}
		s.sched, s.ownSched = sched, true
	}
	for _, j := range []struct {
		every time.Duration
		name  string
		fn    func()
	}{
		{time.Second, "opcua-session-expiry", s.expireSessions},
		{3 * time.Second, "opcua-trust-reload", s.trust.reload},
	} {
		job, err := s.sched.NewJob(gocron.DurationJob(j.every), gocron.NewTask(j.fn),
			gocron.WithName(j.name), gocron.WithSingletonMode(gocron.LimitModeReschedule))
		if err != nil {
			cancel()
			_ = s.srv.Close()
			return fmt.Errorf("opcua: schedule %s: %w", j.name, err)
		}
		s.jobs = append(s.jobs, job)
	}
	if s.ownSched {
		s.sched.Start()
	}
	s.started = true
	s.log.Info().Str("endpoint", s.url).Str("listen", net.JoinHostPort(s.cfg.ListenHost, strconv.Itoa(s.cfg.Port))).
		Uint16("namespace", s.as.ns).Str("certificate", thumbprint(s.cert)).Msg("OPC UA server started")
	return nil
}

// Run starts the server and serves until ctx ends, then closes it as
// Close does. It is Start and Close for a caller that runs components
// under one context (cmd/tioga's group).
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// Close stops listening, closes every session and channel, and stops the
// server's periodic jobs.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancelBase()
	if !s.started {
		return nil
	}
	for _, j := range s.jobs {
		_ = s.sched.RemoveJob(j.ID())
	}
	if s.ownSched {
		_ = s.sched.Shutdown()
	}
	for _, sess := range s.sessions.list() {
		s.closeSession(sess, "server shutting down")
	}
	s.cancel()
	err := s.srv.Close()
	s.log.Info().Msg("OPC UA server stopped")
	return err
}

// Stats are the server's counters since it started.
type Stats struct {
	Requests             uint64 // service requests handled
	Reads                uint64 // attributes read
	Writes               uint64 // values written
	WritesRefused        uint64 // writes refused (type, range, access, ...)
	Calls                uint64 // methods called
	CallsRefused         uint64
	Faults               uint64 // requests answered with a ServiceFault
	BadSession           uint64 // requests with an unknown, foreign or inactive session
	Malformed            uint64 // requests without a header
	Panics               uint64 // handler panics recovered (each one is a bug)
	Notifications        uint64 // data changes queued for subscribers
	SessionsCreated      uint64
	SessionsExpired      uint64 // silent past their timeout, or not activated in time
	SessionsOrphaned     uint64 // released because their secure channel closed
	SessionsRefused      uint64 // BadTooManySessions
	SessionsOpen         int
	ConnectionsOpen      int    // TCP connections open now
	ConnectionsRefused   uint64 // refused by MaxConnections / MaxConnectionsPerHost
	Subscriptions        uint64 // subscriptions created
	SubscriptionsExpired uint64
	MonitoredItems       uint64 // monitored items created
}

type counters struct {
	requests, reads, writes, writesRefused, calls, callsRefused, faults, badSession, malformed, panics   atomic.Uint64
	notifications, sessionsCreated, sessionsExpired, subscriptions, subscriptionsExpired, monitoredItems atomic.Uint64
	sessionsOrphaned, sessionsRefused                                                                    atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	connsOpen, connsRefused := s.srv.ConnectionStats()
	return Stats{
		SessionsOrphaned: c.sessionsOrphaned.Load(), SessionsRefused: c.sessionsRefused.Load(),
		ConnectionsOpen: connsOpen, ConnectionsRefused: connsRefused,
		Requests: c.requests.Load(), Reads: c.reads.Load(), Writes: c.writes.Load(), WritesRefused: c.writesRefused.Load(),
		Calls: c.calls.Load(), CallsRefused: c.callsRefused.Load(), Faults: c.faults.Load(), BadSession: c.badSession.Load(),
		Malformed: c.malformed.Load(), Panics: c.panics.Load(), Notifications: c.notifications.Load(),
		SessionsCreated: c.sessionsCreated.Load(), SessionsExpired: c.sessionsExpired.Load(), SessionsOpen: len(s.sessions.list()),
		Subscriptions: c.subscriptions.Load(), SubscriptionsExpired: c.subscriptionsExpired.Load(), MonitoredItems: c.monitoredItems.Load(),
	}
}

// SessionInfo describes an open session, for diagnostics.
type SessionInfo struct {
	Name          string
	Remote        string
	Client        string // application URI the client states
	SecurityMode  string // None, Sign, SignAndEncrypt
	Control       bool   // may write and call commands
	Trust         string // why (or why not)
	Created       time.Time
	Subscriptions int
}

// Sessions lists the open sessions.
func (s *Server) Sessions() []SessionInfo {
	var out []SessionInfo
	for _, sess := range s.sessions.list() {
		sess.mu.Lock()
		out = append(out, SessionInfo{
			Name: sess.name, Remote: sess.remote, Client: sess.clientID, SecurityMode: modeName(sess.mode),
			Control: sess.rights.control, Trust: sess.trust, Created: sess.created, Subscriptions: len(sess.subs),
		})
		sess.mu.Unlock()
	}
	return out
}

func modeName(m ua.MessageSecurityMode) string {
	switch m {
	case ua.MessageSecurityModeSign:
		return "Sign"
	case ua.MessageSecurityModeSignAndEncrypt:
		return "SignAndEncrypt"
	}
	return "None"
}

// gopcuaLogger routes gopcua's printf-style logging into zerolog. Its Info
// messages (every connection) go to Debug.
type gopcuaLogger struct {
	log zerolog.Logger
	on  atomic.Bool
}

func (l *gopcuaLogger) Debug(msg string, args ...any) {
	if l.on.Load() {
		l.log.Debug().Msgf(msg, args...)
	}
}

func (l *gopcuaLogger) Info(msg string, args ...any) { l.Debug(msg, args...) }

func (l *gopcuaLogger) Warn(msg string, args ...any) {
	if l.on.Load() {
		l.log.Warn().Msgf(msg, args...)
	}
}

func (l *gopcuaLogger) Error(msg string, args ...any) {
	if l.on.Load() {
		l.log.Error().Msgf(msg, args...)
	}
}
