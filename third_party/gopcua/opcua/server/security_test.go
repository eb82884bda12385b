// Tests of the channel security patches (tioga): channels accept exactly
// the security the server enables, SecureChannel.Security reports it, and
// SecureChannel.SetReadDeadline closes a channel that waits past it.
package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

func selfSigned(t *testing.T, uri string) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(uri)
	tmpl := x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: uri},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func respHeader(r ua.Request) *ua.ResponseHeader {
	return &ua.ResponseHeader{
		Timestamp: time.Now(), RequestHandle: r.Header().RequestHandle,
		ServiceDiagnostics: &ua.DiagnosticInfo{}, StringTable: []string{}, AdditionalHeader: ua.NewExtensionObject(nil),
	}
}

type securityServer struct {
	url        string
	cert       []byte
	mu         sync.Mutex
	seen       []uasc.ChannelSecurity
	seenOK     []bool
	deadlineSC chan *uasc.SecureChannel
}

// startSecurityServer runs a server offering None and Basic256Sha256
// SignAndEncrypt only; its GetEndpoints handler records the channel's
// security and its FindServers handler sets an expired read deadline.
func startSecurityServer(t *testing.T) *securityServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ss := &securityServer{url: "opc.tcp://127.0.0.1:" + strconv.Itoa(port)}
	var key *rsa.PrivateKey
	ss.cert, key = selfSigned(t, "urn:test:server")
	s := server.New(
		server.EndPoint("127.0.0.1", port),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableSecurity("Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.Certificate(ss.cert),
		server.PrivateKey(key),
	)
	s.RegisterHandler(id.GetEndpointsRequest_Encoding_DefaultBinary, func(sc *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
		sec, ok := sc.Security()
		ss.mu.Lock()
		ss.seen = append(ss.seen, sec)
		ss.seenOK = append(ss.seenOK, ok)
		ss.mu.Unlock()
		return &ua.GetEndpointsResponse{ResponseHeader: respHeader(r)}, nil
	})
	s.RegisterHandler(id.FindServersRequest_Encoding_DefaultBinary, func(sc *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
		if err := sc.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			t.Errorf("SetReadDeadline: %v", err)
		}
		return &ua.FindServersResponse{ResponseHeader: respHeader(r)}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return ss
}

func dial(t *testing.T, ss *securityServer, policy string, mode ua.MessageSecurityMode, cert []byte, key *rsa.PrivateKey) (*opcua.Client, error) {
	t.Helper()
	opts := []opcua.Option{opcua.SecurityPolicy(policy), opcua.SecurityMode(mode), opcua.AutoReconnect(false), opcua.DialTimeout(10 * time.Second), opcua.RequestTimeout(10 * time.Second)}
	if policy != ua.SecurityPolicyURINone {
		opts = append(opts, opcua.Certificate(cert), opcua.PrivateKey(key), opcua.RemoteCertificate(ss.cert))
	}
	c, err := opcua.NewClient(ss.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Dial(ctx); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, nil
}

func TestChannelSecurityReported(t *testing.T) {
	ss := startSecurityServer(t)
	cert, key := selfSigned(t, "urn:test:client")
	for _, tc := range []struct {
		policy string
		mode   ua.MessageSecurityMode
		cert   []byte
	}{
		{ua.SecurityPolicyURINone, ua.MessageSecurityModeNone, nil},
		{ua.SecurityPolicyURIBasic256Sha256, ua.MessageSecurityModeSignAndEncrypt, cert},
	} {
		c, err := dial(t, ss, tc.policy, tc.mode, cert, key)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.policy, tc.mode, err)
		}
		if _, err := c.GetEndpoints(context.Background()); err != nil {
			t.Fatalf("%s %s: GetEndpoints: %v", tc.policy, tc.mode, err)
		}
		ss.mu.Lock()
		sec, ok := ss.seen[len(ss.seen)-1], ss.seenOK[len(ss.seenOK)-1]
		ss.mu.Unlock()
		if !ok || sec.Mode != tc.mode || sec.PolicyURI != tc.policy || string(sec.RemoteCertificate) != string(tc.cert) {
			t.Errorf("channel %s %s: Security() = %v/%s/%d-byte cert, ok %v", tc.policy, tc.mode, sec.Mode, sec.PolicyURI, len(sec.RemoteCertificate), ok)
		}
	}
}

func TestUnofferedSecurityRefused(t *testing.T) {
	ss := startSecurityServer(t)
	cert, key := selfSigned(t, "urn:test:client")
	for _, tc := range []struct {
		policy string
		mode   ua.MessageSecurityMode
		want   ua.StatusCode
	}{
		{ua.SecurityPolicyURIBasic128Rsa15, ua.MessageSecurityModeSignAndEncrypt, ua.StatusBadSecurityPolicyRejected},
		{ua.SecurityPolicyURIBasic256, ua.MessageSecurityModeSignAndEncrypt, ua.StatusBadSecurityPolicyRejected},
		{ua.SecurityPolicyURIAes128Sha256RsaOaep, ua.MessageSecurityModeSignAndEncrypt, ua.StatusBadSecurityPolicyRejected},
		{ua.SecurityPolicyURIAes256Sha256RsaPss, ua.MessageSecurityModeSign, ua.StatusBadSecurityPolicyRejected},
		{ua.SecurityPolicyURIBasic256Sha256, ua.MessageSecurityModeSign, ua.StatusBadSecurityModeRejected},
	} {
		// gopcua's client drops the server's Error message and reports
		// EOF; rawOpen below reads the status itself.
		if _, err := dial(t, ss, tc.policy, tc.mode, cert, key); err == nil {
			t.Errorf("%s %s: channel opened", tc.policy, tc.mode)
		}
		if tc.want == ua.StatusBadSecurityPolicyRejected {
			if got := rawOpen(t, ss, tc.policy); got != tc.want {
				t.Errorf("%s: server sent %v, want %v", tc.policy, got, tc.want)
			}
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.seen) != 0 {
		t.Errorf("%d requests served on refused channels", len(ss.seen))
	}
}

// rawOpen sends Hello and an OpenSecureChannel chunk naming policy (its
// body is never looked at: the policy is refused first) and returns the
// status of the Error message the server answers with.
func rawOpen(t *testing.T, ss *securityServer, policy string) ua.StatusCode {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ss.url, "opc.tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := func(typ string, body []byte) []byte {
		b := append([]byte(typ), 0, 0, 0, 0)
		b = append(b, body...)
		binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
		return b
	}
	str := func(b []byte, s string) []byte {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		return append(b, s...)
	}
	var hel []byte
	for _, v := range []uint32{0, 65535, 65535, 0, 0} {
		hel = binary.LittleEndian.AppendUint32(hel, v)
	}
	hel = str(hel, ss.url)
	if _, err := c.Write(msg("HELF", hel)); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, binary.LittleEndian.Uint32(hdr[4:])-8)); err != nil {
		t.Fatal(err)
	}
	opn := binary.LittleEndian.AppendUint32(nil, 0) // secure channel id
	opn = str(opn, policy)
	opn = binary.LittleEndian.AppendUint32(opn, 0xffffffff) // no certificate
	opn = binary.LittleEndian.AppendUint32(opn, 0xffffffff) // no thumbprint
	opn = append(opn, make([]byte, 64)...)
	if _, err := c.Write(msg("OPNF", opn)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("%s: no answer: %v", policy, err)
	}
	if string(hdr[:4]) != "ERRF" {
		t.Fatalf("%s: answer %q, want ERRF", policy, hdr[:4])
	}
	body := make([]byte, binary.LittleEndian.Uint32(hdr[4:])-8)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	return ua.StatusCode(binary.LittleEndian.Uint32(body))
}

func TestReadDeadlineClosesChannel(t *testing.T) {
	ss := startSecurityServer(t)
	c, err := dial(t, ss, ua.SecurityPolicyURINone, ua.MessageSecurityModeNone, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindServers(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Once the deadline passes the server closes the channel: requests
	// fail instead of being answered (bounded wait, 20 s).
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.GetEndpoints(ctx)
		cancel()
		if err != nil {
			break
		}
		if i == 100 {
			t.Fatal("channel still answers 20 s after its read deadline")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
