package opcua

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// Session limits.
const (
	sessionTimeoutDefault = 60 * time.Second
	sessionTimeoutMin     = 2 * time.Second
	nonceLength           = 32
	// opQueue bounds the writes and calls a session may have waiting.
	opQueue = 64
	// anonymousPolicy is the one user token policy the server offers: it
	// cannot verify user names or user certificates, so it does not
	// pretend to (the client's application certificate is what grants
	// control, see rights).
	anonymousPolicy = "anonymous"
)

// securedPolicies are the security policies the server offers besides
// None, each with Sign and SignAndEncrypt, strongest last; a session over
// one of them may control the server (with the SignAndEncrypt mode, or
// Sign when Config.AllowSignOnlyControl) when its certificate is trusted.
// gopcua refuses every policy not offered before a session exists. The
// deprecated Basic128Rsa15 and Basic256 are never offered.
var securedPolicies = []string{
	ua.SecurityPolicyURIBasic256Sha256,
	ua.SecurityPolicyURIAes128Sha256RsaOaep,
	ua.SecurityPolicyURIAes256Sha256RsaPss,
}

// controlPolicies is securedPolicies as a set.
var controlPolicies = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range securedPolicies {
		m[p] = true
	}
	return m
}()

type securityChoice struct {
	policy string
	mode   ua.MessageSecurityMode
}

// offeredSecurity lists the endpoints' policy and mode pairs.
func offeredSecurity() []securityChoice {
	out := []securityChoice{{ua.SecurityPolicyURINone, ua.MessageSecurityModeNone}}
	for _, p := range securedPolicies {
		out = append(out, securityChoice{p, ua.MessageSecurityModeSign}, securityChoice{p, ua.MessageSecurityModeSignAndEncrypt})
	}
	return out
}

// session is one client session. Its fields after creation are guarded by
// mu; the identity (id, token, channel, certificate) never changes.
type session struct {
	id       *ua.NodeID
	token    *ua.NodeID
	key      string // token.String(), the session table key
	name     string
	sc       *uasc.SecureChannel
	remote   string
	created  time.Time
	timeout  time.Duration
	mode     ua.MessageSecurityMode
	policy   string
	cert     []byte // client application certificate (secured channels only)
	clientID string // client application URI as the client states it
	// reserved: the session holds one of the slots reserved for trusted
	// clients (Config.TrustedSessionReserve)
	reserved bool
	lastSeen atomic.Int64

	mu        sync.Mutex
	nonce     []byte
	activated bool
	rights    rights
	trust     string // why the client is or is not trusted, for logs and Sessions
	subs      map[uint32]*subscription
	pub       publishQueue
	closed    bool

	ops  chan func() // writes and calls, run in order by runOps
	done chan struct{}
	wake chan struct{} // nudges the publisher
}

func (s *session) touch(now time.Time) { s.lastSeen.Store(now.UnixNano()) }

// control reports whether the session may write and call commands.
func (s *session) currentRights() rights {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rights
}

func (s *session) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// runOps performs the session's writes and calls one at a time, in the
// order they arrived. They run here rather than on gopcua's single
// dispatcher goroutine because a command (re-initialising a detector) may
// take seconds, and every other client would wait for it.
func (s *session) runOps() {
	for {
		select {
		case op := <-s.ops:
			op()
		case <-s.done:
			return
		}
	}
}

// sessionTable holds the live sessions by authentication token.
type sessionTable struct {
	mu sync.Mutex
	m  map[string]*session
}

func (t *sessionTable) get(token *ua.NodeID) *session {
	if token == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[token.String()]
}

func (t *sessionTable) list() []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*session, 0, len(t.m))
	for _, s := range t.m {
		out = append(out, s)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

func randomGUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// createSession implements CreateSession (OPC UA Part 4, 5.6.2).
func (s *Server) createSession(sc *uasc.SecureChannel, req *ua.CreateSessionRequest) (ua.Response, ua.StatusCode) {
	chanSec, ok := sc.Security()
	if !ok {
		return nil, ua.StatusBadSecureChannelIDInvalid
	}
	mode, policy, chanCert := chanSec.Mode, chanSec.PolicyURI, chanSec.RemoteCertificate
	secured := policy != ua.SecurityPolicyURINone &&
		(mode == ua.MessageSecurityModeSign || mode == ua.MessageSecurityModeSignAndEncrypt)
	var cert []byte
	if secured {
		cert = req.ClientCertificate
		c, err := x509.ParseCertificate(cert)
		if err != nil {
			return nil, ua.StatusBadCertificateInvalid
		}
		if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
			return nil, ua.StatusBadCertificateInvalid
		}
		// Part 4, 5.6.2: the session's certificate is the one that
		// secured the channel.
		if len(chanCert) > 0 && string(chanCert) != string(cert) {
			return nil, ua.StatusBadCertificateInvalid
		}
		if len(req.ClientNonce) < nonceLength {
			return nil, ua.StatusBadNonceInvalid
		}
	}
	// Slots: a client whose channel is secured with a trusted certificate
	// may take any; the others (anonymous, untrusted) only those outside
	// the trusted reserve, so that they cannot lock out control clients.
	trusted := false
	if secured {
		trusted, _ = s.trust.trusts(chanCert, time.Now())
	}
	s.sessions.mu.Lock()
	total, open := len(s.sessions.m), 0
	for _, o := range s.sessions.m {
		if !o.reserved {
			open++
		}
	}
	admit, reserved := false, false
	switch {
	case total >= s.cfg.MaxSessions:
	case open < s.cfg.MaxSessions-s.cfg.TrustedSessionReserve:
		admit = true
	case trusted:
		admit, reserved = true, true
	}
	s.sessions.mu.Unlock()
	if !admit {
		s.stats.sessionsRefused.Add(1)
		s.log.Warn().Str("remote", sc.RemoteAddr().String()).Int("sessions", total).Bool("trusted", trusted).
			Msg("OPC UA session refused: too many sessions")
		return nil, ua.StatusBadTooManySessions
	}

	timeout := time.Duration(req.RequestedSessionTimeout * float64(time.Millisecond))
	switch {
	case timeout <= 0:
		timeout = sessionTimeoutDefault
	case timeout < sessionTimeoutMin:
		timeout = sessionTimeoutMin
	}
	timeout = min(timeout, s.cfg.MaxSessionTimeout)
	var sig []byte
	var alg string
	if secured {
		var err error
		sig, alg, err = sc.NewSessionSignature(cert, req.ClientNonce)
		if err != nil {
			return nil, ua.StatusBadSecurityChecksFailed
		}
	}
	now := time.Now()
	sess := &session{
		id:       ua.NewGUIDNodeID(s.as.ns, randomGUID()),
		token:    ua.NewByteStringNodeID(0, randomBytes(32)),
		name:     req.SessionName,
		sc:       sc,
		remote:   sc.RemoteAddr().String(),
		created:  now,
		timeout:  timeout,
		mode:     mode,
		policy:   policy,
		cert:     cert,
		reserved: reserved,
		nonce:    randomBytes(nonceLength),
		subs:     map[uint32]*subscription{},
		ops:      make(chan func(), opQueue),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
	if req.ClientDescription != nil {
		sess.clientID = req.ClientDescription.ApplicationURI
	}
	sess.key = sess.token.String()
	sess.touch(now)
	s.sessions.mu.Lock()
	s.sessions.m[sess.key] = sess
	s.sessions.mu.Unlock()
	// the client has ActivateTimeout to activate it, unless the channel
	// already carries an activated session
	if !s.channelActive(sc) {
		_ = sc.SetReadDeadline(now.Add(s.cfg.ActivateTimeout))
	}
	s.stats.sessionsCreated.Add(1)
	go sess.runOps()
	go s.publisher(sess)

	s.log.Info().Str("session", sess.name).Str("remote", sess.remote).Str("mode", mode.String()).
		Str("client", sess.clientID).Msg("OPC UA session created")
	return &ua.CreateSessionResponse{
		ResponseHeader:             s.header(req.RequestHeader, ua.StatusOK),
		SessionID:                  sess.id,
		AuthenticationToken:        sess.token,
		RevisedSessionTimeout:      float64(timeout / time.Millisecond),
		ServerNonce:                sess.nonce,
		ServerCertificate:          s.cert,
		ServerEndpoints:            s.endpoints,
		ServerSoftwareCertificates: []*ua.SignedSoftwareCertificate{},
		ServerSignature:            &ua.SignatureData{Algorithm: alg, Signature: sig},
		MaxRequestMessageSize:      0,
	}, ua.StatusOK
}

// activateSession implements ActivateSession (Part 4, 5.6.3): it checks
// that the client holds the private key of its certificate, accepts only
// the anonymous user token (the only policy offered) and decides the
// session's rights.
func (s *Server) activateSession(sc *uasc.SecureChannel, req *ua.ActivateSessionRequest) (ua.Response, ua.StatusCode) {
	sess := s.sessions.get(req.RequestHeader.AuthenticationToken)
	if sess == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	if sess.sc != sc {
		// Moving a session to another channel would need the same
		// certificate proof again; clients then create a new session.
		return nil, ua.StatusBadSecureChannelIDInvalid
	}
	secured := sess.mode != ua.MessageSecurityModeNone
	sess.mu.Lock()
	nonce := sess.nonce
	sess.mu.Unlock()
	if secured {
		if req.ClientSignature == nil || len(req.ClientSignature.Signature) == 0 {
			return nil, ua.StatusBadApplicationSignatureInvalid
		}
		if err := sc.VerifySessionSignature(sess.cert, nonce, req.ClientSignature.Signature); err != nil {
			return nil, ua.StatusBadApplicationSignatureInvalid
		}
	}
	if code := checkIdentity(req.UserIdentityToken); code != ua.StatusOK {
		return nil, code
	}
	r := anonymous
	trust := "anonymous (security mode None)"
	if secured {
		ok, why := s.trust.trusts(sess.cert, time.Now())
		switch {
		case !ok:
			trust = "untrusted: " + why
			s.rejected.keep(sess.cert, s.log)
		case !controlPolicies[sess.policy]:
			trust = "trusted, but control needs a secured policy, not " + sess.policy
		case sess.mode != ua.MessageSecurityModeSignAndEncrypt && sess.mode != ua.MessageSecurityModeSign:
			trust = "trusted, but control needs SignAndEncrypt"
		case sess.mode == ua.MessageSecurityModeSign && !s.cfg.AllowSignOnlyControl:
			trust = "trusted, but control needs SignAndEncrypt"
		default:
			r.control = true
			trust = "trusted"
		}
	}
	newNonce := randomBytes(nonceLength)
	sess.mu.Lock()
	sess.activated = true
	sess.rights = r
	sess.trust = trust
	sess.nonce = newNonce
	sess.mu.Unlock()
	// an activated session keeps its channel open for as long as it lives
	_ = sc.SetReadDeadline(time.Time{})
	s.log.Info().Str("session", sess.name).Str("remote", sess.remote).Str("mode", sess.mode.String()).
		Bool("control", r.control).Str("trust", trust).Msg("OPC UA session activated")
	return &ua.ActivateSessionResponse{
		ResponseHeader:  s.header(req.RequestHeader, ua.StatusOK),
		ServerNonce:     newNonce,
		Results:         []ua.StatusCode{},
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, ua.StatusOK
}

// checkIdentity accepts an anonymous user identity token (or none, which
// Part 4 treats as anonymous) and refuses every other kind: the server
// offers no policy for them and could not check them.
func checkIdentity(tok *ua.ExtensionObject) ua.StatusCode {
	if tok == nil || tok.Value == nil {
		return ua.StatusOK
	}
	switch t := tok.Value.(type) {
	case *ua.AnonymousIdentityToken:
		if t.PolicyID != "" && t.PolicyID != anonymousPolicy {
			return ua.StatusBadIdentityTokenInvalid
		}
		return ua.StatusOK
	case *ua.UserNameIdentityToken, *ua.X509IdentityToken, *ua.IssuedIdentityToken:
		return ua.StatusBadIdentityTokenRejected
	}
	return ua.StatusBadIdentityTokenInvalid
}

// closeSession ends a session: its subscriptions go, waiting publish
// requests are answered, its goroutines stop.
func (s *Server) closeSession(sess *session, why string) {
	s.sessions.mu.Lock()
	_, live := s.sessions.m[sess.key]
	delete(s.sessions.m, sess.key)
	s.sessions.mu.Unlock()
	if !live {
		return
	}
	sess.mu.Lock()
	sess.closed = true
	subs := sess.subs
	sess.subs = map[uint32]*subscription{}
	pending := sess.pub.drain()
	sess.mu.Unlock()
	for _, sub := range subs {
		sub.stop()
	}
	close(sess.done)
	for _, p := range pending {
		s.send(sess, p.reqID, &ua.PublishResponse{ResponseHeader: s.header(p.req.RequestHeader, ua.StatusBadSessionClosed)})
	}
	// a channel left without an activated session gets CreateSessionTimeout
	// to start another one
	if !s.channelActive(sess.sc) {
		_ = sess.sc.SetReadDeadline(time.Now().Add(s.cfg.CreateSessionTimeout))
	}
	s.log.Info().Str("session", sess.name).Str("remote", sess.remote).Str("reason", why).Msg("OPC UA session closed")
}

// expireSessions closes sessions that have been silent for longer than
// their timeout (Part 4, 5.6.2): clients that vanished without closing;
// and sessions not activated within ActivateTimeout of their creation
// (their channel's deadline closes it too; this also catches a session
// created on a channel that died meanwhile).
func (s *Server) expireSessions() {
	now := time.Now()
	for _, sess := range s.sessions.list() {
		sess.mu.Lock()
		activated := sess.activated
		sess.mu.Unlock()
		switch {
		case !activated && now.Sub(sess.created) > s.cfg.ActivateTimeout:
			s.stats.sessionsExpired.Add(1)
			s.closeSession(sess, "not activated in time")
		case now.UnixNano()-sess.lastSeen.Load() > int64(sess.timeout):
			s.stats.sessionsExpired.Add(1)
			s.closeSession(sess, "timed out")
		}
	}
}

// channelActive reports whether sc carries an activated session.
func (s *Server) channelActive(sc *uasc.SecureChannel) bool {
	for _, o := range s.sessions.list() {
		if o.sc != sc {
			continue
		}
		o.mu.Lock()
		a := o.activated && !o.closed
		o.mu.Unlock()
		if a {
			return true
		}
	}
	return false
}

// channelClosed releases the sessions of a secure channel whose connection
// closed. They are orphans: this server does not move a session to another
// channel, so no client can use them again, and they would hold their
// slots until their timeout.
func (s *Server) channelClosed(sc *uasc.SecureChannel) {
	for _, sess := range s.sessions.list() {
		if sess.sc == sc {
			s.stats.sessionsOrphaned.Add(1)
			s.closeSession(sess, "secure channel closed")
		}
	}
}

// send delivers a response outside the dispatcher (publish, writes,
// calls). A client that does not read for 10 s loses the response.
func (s *Server) send(sess *session, reqID uint32, resp ua.Response) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sess.sc.SendResponseWithContext(ctx, reqID, resp); err != nil {
		s.log.Debug().Err(err).Str("session", sess.name).Msg("cannot send OPC UA response")
	}
}
