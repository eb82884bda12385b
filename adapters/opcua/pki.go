package opcua

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// loadOrCreateIdentity returns the server's certificate (DER) and key. When
// neither file exists it generates a self-signed RSA 2048 certificate for
// appURI and hosts and writes both (the key readable by the owner only).
// One file without the other is an error: silently replacing a
// certificate that clients already trust would lock them out.
func loadOrCreateIdentity(certFile, keyFile, appURI string, hosts []string, log zerolog.Logger) ([]byte, *rsa.PrivateKey, error) {
	_, cerr := os.Stat(certFile)
	_, kerr := os.Stat(keyFile)
	switch {
	case cerr == nil && kerr == nil:
		cert, err := readCertificate(certFile)
		if err != nil {
			return nil, nil, err
		}
		key, err := readKey(keyFile)
		if err != nil {
			return nil, nil, err
		}
		c, _ := x509.ParseCertificate(cert)
		pub, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok || !pub.Equal(&key.PublicKey) {
			return nil, nil, fmt.Errorf("opcua: %s is not the key of %s", keyFile, certFile)
		}
		if !hasURI(c, appURI) {
			log.Warn().Str("cert", certFile).Str("application_uri", appURI).
				Msg("server certificate does not name the application URI; clients may refuse it")
		}
		return cert, key, nil
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
	default:
		return nil, nil, fmt.Errorf("opcua: need both or neither of %s (%v) and %s (%v)", certFile, cerr, keyFile, kerr)
	}
	cert, key, err := newSelfSigned(appURI, hosts, 10*365*24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o755); err != nil {
		return nil, nil, fmt.Errorf("opcua: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return nil, nil, fmt.Errorf("opcua: %w", err)
	}
	if err := os.WriteFile(keyFile, pemKey(key), 0o600); err != nil {
		return nil, nil, fmt.Errorf("opcua: %w", err)
	}
	if err := os.WriteFile(certFile, cert, 0o644); err != nil {
		return nil, nil, fmt.Errorf("opcua: %w", err)
	}
	log.Info().Str("cert", certFile).Str("key", keyFile).Str("application_uri", appURI).
		Str("thumbprint", thumbprint(cert)).Msg("generated OPC UA server certificate")
	return cert, key, nil
}

// newSelfSigned creates an RSA 2048 application instance certificate as
// OPC UA Part 6, 6.2.2 describes it: the application URI as a URI in
// subjectAltName, host names and addresses beside it, usable for signing
// and key encipherment by a client or a server.
func newSelfSigned(appURI string, hosts []string, validity time.Duration) ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("opcua: generate key: %w", err)
	}
	u, err := url.Parse(appURI)
	if err != nil {
		return nil, nil, fmt.Errorf("opcua: application URI: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	cn := "Tioga"
	if len(hosts) > 0 {
		cn = "Tioga@" + hosts[0]
	}
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Tioga"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("opcua: create certificate: %w", err)
	}
	return der, key, nil
}

func hasURI(c *x509.Certificate, uri string) bool {
	for _, u := range c.URIs {
		if u.String() == uri {
			return true
		}
	}
	return false
}

// readCertificate reads one certificate, DER or PEM, and returns it as DER.
func readCertificate(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("opcua: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("opcua: %s: PEM block %q is not a certificate", path, blk.Type)
		}
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("opcua: %s: %w", path, err)
	}
	return b, nil
}

// readKey reads an RSA private key in PEM (PKCS#1 or PKCS#8) or DER.
func readKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("opcua: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if k, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("opcua: %s: not an RSA private key: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("opcua: %s: %T is not an RSA key (OPC UA security policies need RSA)", path, k)
	}
	return rk, nil
}

// thumbprint is the SHA-1 of a DER certificate, the way OPC UA names
// certificates (and file names in a certificate store).
func thumbprint(der []byte) string {
	s := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// trustList is the set of client certificates allowed to control the
// server. It is reloaded periodically from the trusted directory, so that
// an operator adds or removes a client without restarting the server.
type trustList struct {
	dir   string
	files []string
	log   zerolog.Logger

	mu     sync.RWMutex
	certs  map[string]*x509.Certificate // by thumbprint
	byPath map[string]*x509.Certificate // what each file held when last read
	failed bool                         // the last reload could not read everything
}

func newTrustList(dir string, files []string, log zerolog.Logger) *trustList {
	return &trustList{dir: dir, files: files, log: log, certs: map[string]*x509.Certificate{}, byPath: map[string]*x509.Certificate{}}
}

// reload re-reads the trusted certificates. A file that does not hold a
// certificate is logged and skipped: one bad file must not revoke every
// other client. When reading fails (the directory or a file cannot be
// read, e.g. the process is out of file descriptors) what was trusted
// before stays trusted: a transient error must not empty the list.
func (t *trustList) reload() {
	t.mu.RLock()
	prev := t.byPath
	t.mu.RUnlock()
	byPath := map[string]*x509.Certificate{}
	var readErr error
	add := func(path string) {
		der, err := readCertificate(path)
		switch {
		case err == nil:
			c, _ := x509.ParseCertificate(der)
			byPath[path] = c
		case errors.Is(err, os.ErrNotExist):
			// removed: no longer trusted
		case isReadError(err):
			readErr = err
			if c, ok := prev[path]; ok {
				byPath[path] = c
			}
		default:
			t.log.Warn().Err(err).Str("file", path).Msg("skipping trusted certificate")
		}
	}
	for _, f := range t.files {
		add(f)
	}
	if t.dir != "" {
		entries, err := os.ReadDir(t.dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			// keep every certificate that came from the directory
			readErr = err
			for path, c := range prev {
				if filepath.Dir(path) == filepath.Clean(t.dir) {
					byPath[path] = c
				}
			}
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".der", ".pem", ".crt", ".cer":
				add(filepath.Join(t.dir, e.Name()))
			}
		}
	}
	certs := map[string]*x509.Certificate{}
	for _, c := range byPath {
		certs[thumbprint(c.Raw)] = c
	}
	t.mu.Lock()
	changed := len(certs) != len(t.certs)
	for k := range certs {
		if _, ok := t.certs[k]; !ok {
			changed = true
		}
	}
	wasFailing := t.failed
	t.failed = readErr != nil
	t.certs, t.byPath = certs, byPath
	t.mu.Unlock()
	switch {
	case readErr != nil && !wasFailing:
		t.log.Warn().Err(readErr).Str("dir", t.dir).Int("certificates", len(certs)).
			Msg("cannot read the trusted certificates; keeping the ones read before")
	case readErr == nil && wasFailing:
		t.log.Info().Str("dir", t.dir).Msg("trusted certificates readable again")
	}
	if changed {
		t.log.Info().Int("certificates", len(certs)).Msg("OPC UA trust list loaded")
	}
}

// isReadError tells an I/O failure (the file may be fine) from a file
// that was read and holds no certificate.
func isReadError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

// trusts reports whether der is a trusted certificate that is currently
// valid. Trust is by exact certificate (thumbprint), not by issuer: the
// clients are a handful of known applications.
func (t *trustList) trusts(der []byte, now time.Time) (bool, string) {
	if len(der) == 0 {
		return false, "no client certificate"
	}
	t.mu.RLock()
	c, ok := t.certs[thumbprint(der)]
	t.mu.RUnlock()
	if !ok || !bytes.Equal(c.Raw, der) {
		return false, "certificate not in the trust list"
	}
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return false, "trusted certificate outside its validity period"
	}
	return true, ""
}

// rejectedStore keeps copies of untrusted client certificates for the
// operator, bounded so that a flood of clients cannot fill the disk.
type rejectedStore struct {
	dir string
	max int
	mu  sync.Mutex
}

func (r *rejectedStore) keep(der []byte, log zerolog.Logger) {
	if r == nil || r.dir == "" || len(der) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	path := filepath.Join(r.dir, thumbprint(der)+".der")
	if _, err := os.Stat(path); err == nil {
		return
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		log.Warn().Err(err).Msg("cannot keep rejected certificate")
		return
	}
	if entries, err := os.ReadDir(r.dir); err == nil && len(entries) >= r.max {
		return
	}
	if err := os.WriteFile(path, der, 0o644); err != nil {
		log.Warn().Err(err).Msg("cannot keep rejected certificate")
	}
}

// pemKey encodes an RSA private key as PKCS#1 PEM.
func pemKey(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}
