package opcua

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/gopcua/opcua/uacp"
	"github.com/rs/zerolog"
)

// Config configures the OPC UA server. The zero value works on a laptop:
// every field has a documented default, applied by NewServer.
type Config struct {
	// Logger receives the server's logs (zero value: none), passed in the
	// configuration as every component of the process takes it.
	Logger zerolog.Logger
	// ListenHost is the address the server listens on. Default "0.0.0.0"
	// (every interface).
	ListenHost string
	// Port is the TCP port. Default 4840 (the IANA port of OPC UA).
	Port int
	// AdvertiseHost is the host name put in the endpoint URLs clients are
	// given (they connect to it after discovery). Default: ListenHost when
	// it names one host, else the machine's host name.
	AdvertiseHost string

	// ApplicationName is the server's human name. Default "Tioga".
	ApplicationName string
	// ApplicationURI identifies the server application; it is written into
	// the generated certificate's subjectAltName, where clients check it.
	// Default "urn:<host name>:tioga".
	ApplicationURI string
	// NamespaceURI names the namespace of the device tree. Default
	// "urn:tioga:devices".
	NamespaceURI string

	// PKIDir holds the server's certificate store in the usual OPC UA
	// layout: own/certs, own/private, trusted/certs, rejected/certs.
	// Default "<user config dir>/tioga/opcua-pki" (e.g.
	// ~/.config/tioga/opcua-pki).
	PKIDir string
	// CertFile and KeyFile are the server's certificate (DER or PEM) and
	// RSA private key (PEM, PKCS#1 or PKCS#8). When neither exists, a
	// self-signed RSA 2048 certificate with ApplicationURI and the host
	// names in its subjectAltName is generated there on first run. Defaults
	// "<PKIDir>/own/certs/tioga.der" and "<PKIDir>/own/private/tioga.pem".
	CertFile, KeyFile string
	// TrustedDir holds the certificates (DER or PEM, one per file) of the
	// clients allowed to write and call commands. It is re-read every few
	// seconds, so trusting a client is copying its certificate there.
	// Default "<PKIDir>/trusted/certs".
	TrustedDir string
	// TrustedCerts are more trusted client certificate files.
	TrustedCerts []string
	// RejectedDir receives a copy of each untrusted client certificate
	// that opened a secured session, for the operator to review and move to
	// TrustedDir (at most 100 are kept). Default "<PKIDir>/rejected/certs";
	// "-" disables it.
	RejectedDir string

	// AllowSignOnlyControl lets a trusted client write and call commands
	// over a Sign (not encrypted) channel. By default control needs
	// SignAndEncrypt, as docs/control-contract.md asks; Sign channels still
	// authenticate the client and protect integrity, which is all control
	// strictly needs, for sites that prefer readable traffic.
	AllowSignOnlyControl bool

	// MaxSessions bounds concurrent sessions. Default 50.
	MaxSessions int
	// TrustedSessionReserve is how many of MaxSessions only trusted
	// clients (a secured channel whose certificate is in the trust list)
	// may take: anonymous and untrusted sessions together are limited to
	// MaxSessions - TrustedSessionReserve, so they cannot lock out the
	// clients that control the server. Default 10 (at most a fifth of
	// MaxSessions); negative means none.
	TrustedSessionReserve int
	// MaxSessionTimeout caps the session timeout granted to a client (the
	// time a silent session keeps its slot). Default 10 minutes.
	MaxSessionTimeout time.Duration
	// ActivateTimeout bounds the time from CreateSession to
	// ActivateSession: a session not activated by then is closed with its
	// channel. Default 10 s.
	ActivateTimeout time.Duration

	// MaxConnections bounds the open TCP connections (default 100) and
	// MaxConnectionsPerHost those from one IP address (default 20); a
	// connection past either is refused (BadTCPNotEnoughResources).
	MaxConnections, MaxConnectionsPerHost int
	// OpenTimeout bounds the time from the Hello to OpenSecureChannel, and
	// CreateSessionTimeout the time a channel may stay open without an
	// activated session (from its opening, or from its last session
	// closing) before it is closed. Defaults 10 s and 30 s.
	OpenTimeout, CreateSessionTimeout time.Duration
	// MinPublishingInterval is the fastest publishing interval granted to
	// subscriptions. Default 20 ms.
	MinPublishingInterval time.Duration
	// HandshakeTimeout is how long a new connection may take to send its
	// Hello before the server closes it. Connections are handshaken each on
	// their own, so a slow or silent client delays nobody else; the limit
	// only frees what it holds. Default 5 s.
	HandshakeTimeout time.Duration

	// Scheduler runs the server's periodic work (trust-list reload,
	// session expiry). Default: a scheduler of the server's own, started
	// and stopped with it. Pass the process's scheduler to keep all
	// periodic work in one place.
	Scheduler gocron.Scheduler
}

func (c Config) withDefaults() (Config, error) {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if c.ListenHost == "" {
		c.ListenHost = "0.0.0.0"
	}
	if c.Port == 0 {
		c.Port = 4840
	}
	if c.Port < 0 || c.Port > 65535 {
		return c, fmt.Errorf("opcua: port %d out of range", c.Port)
	}
	if c.AdvertiseHost == "" {
		switch c.ListenHost {
		case "0.0.0.0", "::", "[::]":
			c.AdvertiseHost = host
		default:
			c.AdvertiseHost = c.ListenHost
		}
	}
	if c.ApplicationName == "" {
		c.ApplicationName = "Tioga"
	}
	if c.ApplicationURI == "" {
		c.ApplicationURI = "urn:" + host + ":tioga"
	}
	if u, err := url.Parse(c.ApplicationURI); err != nil || u.Scheme == "" {
		return c, fmt.Errorf("opcua: application URI %q is not a URI", c.ApplicationURI)
	}
	if c.NamespaceURI == "" {
		c.NamespaceURI = "urn:tioga:devices"
	}
	if c.PKIDir == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			dir = "."
		}
		c.PKIDir = filepath.Join(dir, "tioga", "opcua-pki")
	}
	if c.CertFile == "" {
		c.CertFile = filepath.Join(c.PKIDir, "own", "certs", "tioga.der")
	}
	if c.KeyFile == "" {
		c.KeyFile = filepath.Join(c.PKIDir, "own", "private", "tioga.pem")
	}
	if c.TrustedDir == "" {
		c.TrustedDir = filepath.Join(c.PKIDir, "trusted", "certs")
	}
	if c.RejectedDir == "" {
		c.RejectedDir = filepath.Join(c.PKIDir, "rejected", "certs")
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 50
	}
	switch {
	case c.TrustedSessionReserve == 0:
		c.TrustedSessionReserve = min(10, c.MaxSessions/5)
	case c.TrustedSessionReserve < 0:
		c.TrustedSessionReserve = 0
	}
	if c.TrustedSessionReserve > c.MaxSessions {
		return c, fmt.Errorf("opcua: trusted session reserve %d exceeds the session limit %d", c.TrustedSessionReserve, c.MaxSessions)
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 10 * time.Minute
	}
	c.MaxSessionTimeout = max(c.MaxSessionTimeout, sessionTimeoutMin)
	if c.ActivateTimeout <= 0 {
		c.ActivateTimeout = 10 * time.Second
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 100
	}
	if c.MaxConnectionsPerHost <= 0 {
		c.MaxConnectionsPerHost = 20
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = 10 * time.Second
	}
	if c.CreateSessionTimeout <= 0 {
		c.CreateSessionTimeout = 30 * time.Second
	}
	if c.MinPublishingInterval <= 0 {
		c.MinPublishingInterval = 20 * time.Millisecond
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = uacp.DefaultHandshakeTimeout
	}
	return c, nil
}
