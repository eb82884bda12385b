package opcua

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"tioga/device"
	"tioga/properties"
)

// testTree is a device tree shaped like docs/control-contract.md: the
// streaming server /P14/rideau/tioga (alias /P14/tioga/tioga) and the image
// tracker /P14/image-tracker/img-tracker.
type testTree struct {
	tree       *device.Tree
	frameCount *properties.Property
	dozorPass  *properties.Property
	status     *properties.Property
	spotLevel  *properties.Property
	beamXY     *properties.Property
	reset      *properties.Property
	spotList   *properties.Property
	loadState  *properties.Property
	load       *properties.Property

	mu      sync.Mutex
	resets  []int32
	loaded  []string
	queries []int32
}

// noDataFrame is the frame spot-list answers ErrNoData for (as the
// pipeline's frame-spots does before any series).
const noDataFrame = 99999

func newTestTree(t testing.TB) *testTree {
	t.Helper()
	tt := &testTree{tree: device.NewTree()}
	rideau := device.NewServer("P14", "rideau", "", "EIGER streaming server")
	tioga := rideau.MustAdd(device.New("tioga", "EIGER stream analysis"))
	tt.dozorPass = tioga.Add(properties.Spec{
		Name: "dozor-pass", Description: "Per-frame results of the current series.",
		Elem: properties.Float32, Shape: properties.Records, Width: 4, MaxLen: 100000,
		Columns: []string{"frame", "spots", "score", "resolution"}, Access: properties.Read, Events: true,
	})
	tt.frameCount = tioga.Add(properties.Spec{Name: "frame-count", Description: "Frames processed in the current series.", Elem: properties.Int32, Access: properties.Read})
	tt.status = tioga.Add(properties.Spec{Name: "status", Description: "Pipeline state.", Elem: properties.Text, MaxLen: 256, Access: properties.Read})
	tt.spotLevel = tioga.Add(properties.Spec{
		Name: "spot-level", Description: "Spot detection threshold.", Elem: properties.Float64,
		Access: properties.Read | properties.Write, Units: "sigma", Limits: &properties.Limits{Min: 1, Max: 20},
	})
	tt.spotLevel.SetFloat(3)
	tt.beamXY = tioga.Add(properties.Spec{Name: "beam-xy", Description: "Beam centre.", Elem: properties.Float32, Shape: properties.Array, MaxLen: 2, Units: "mm", Access: properties.Read})
	_ = tt.beamXY.Set(properties.Float32s([]float32{77.625, 80.25}))
	tt.reset = tioga.Add(properties.Spec{Name: "reset", Description: "Forget the current series.", Elem: properties.Int32, Access: properties.Command, ArgDescription: "0 = keep files"})
	tt.reset.OnWrite(func(_ context.Context, v properties.Value) error {
		if v.Int() < 0 {
			return fmt.Errorf("mode %d unknown", v.Int())
		}
		tt.mu.Lock()
		tt.resets = append(tt.resets, int32(v.Int()))
		tt.mu.Unlock()
		return nil
	})
	tt.spotList = tioga.Add(properties.Spec{
		Name: "spot-list", Description: "Spots of one frame.", Elem: properties.Float32, Shape: properties.Records,
		Width: 3, MaxLen: 1000, Columns: []string{"x", "y", "intensity"}, Access: properties.Read, Arg: properties.Int32,
		ArgDescription: "frame number (0-based)",
	})
	tt.spotList.OnQuery(func(_ context.Context, arg properties.Value) (properties.Value, error) {
		f := int32(arg.Int())
		tt.mu.Lock()
		tt.queries = append(tt.queries, f)
		tt.mu.Unlock()
		if f < 0 {
			return properties.Value{}, fmt.Errorf("%w: no frame %d", properties.ErrOutOfRange, f)
		}
		if f == noDataFrame {
			return properties.Value{}, fmt.Errorf("%w: no series has been received yet", properties.ErrNoData)
		}
		return properties.Float32Records(3, []float32{float32(f), 1, 100, float32(f), 2, 200}), nil
	})
	tracker := device.NewServer("P14", "image-tracker", "", "image tracker")
	img := tracker.MustAdd(device.New("img-tracker", "ADXV image tracker"))
	tt.loadState = img.Add(properties.Spec{Name: "load-state", Description: "Tracking enabled.", Elem: properties.Bool, Access: properties.Read | properties.Write})
	tt.load = img.Add(properties.Spec{Name: "load", Description: "Show this image now.", Elem: properties.Text, MaxLen: 4096, Access: properties.Command})
	tt.load.OnWrite(func(_ context.Context, v properties.Value) error {
		tt.mu.Lock()
		tt.loaded = append(tt.loaded, v.Text)
		tt.mu.Unlock()
		return nil
	})
	for _, s := range []*device.Server{rideau, tracker} {
		if err := tt.tree.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := tt.tree.Alias(rideau, "tioga"); err != nil {
		t.Fatal(err)
	}
	return tt
}

// harness is a running server on a free loopback port with a trusted and
// an untrusted client identity.
type harness struct {
	t         testing.TB
	tt        *testTree
	srv       *Server
	cfg       Config
	trusted   clientIdentity
	untrusted clientIdentity
}

type clientIdentity struct {
	cert     []byte
	key      *rsa.PrivateKey
	certFile string
	keyFile  string
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// identities caches the RSA keys of the test identities by name: an RSA
// 2048 key takes about a second on a busy machine, and every harness needs
// three.
var identities sync.Map // name -> *cachedIdentity

type cachedIdentity struct {
	once sync.Once
	cert []byte
	key  *rsa.PrivateKey
	err  error
}

func cachedSelfSigned(name, uri string, hosts []string) ([]byte, *rsa.PrivateKey, error) {
	v, _ := identities.LoadOrStore(name, &cachedIdentity{})
	c := v.(*cachedIdentity)
	c.once.Do(func() { c.cert, c.key, c.err = newSelfSigned(uri, hosts, time.Hour) })
	return c.cert, c.key, c.err
}

func newIdentity(t testing.TB, dir, name string) clientIdentity {
	t.Helper()
	cert, key, err := cachedSelfSigned("client:"+name, "urn:tioga:test:"+name, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	id := clientIdentity{cert: cert, key: key, certFile: filepath.Join(dir, name+".der"), keyFile: filepath.Join(dir, name+".pem")}
	if err := os.WriteFile(id.certFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	kb := pemKey(key)
	if err := os.WriteFile(id.keyFile, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}

func quietLogger(t testing.TB) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

func startHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, tt: newTestTree(t)}
	pki := t.TempDir()
	clients := t.TempDir()
	h.trusted = newIdentity(t, clients, "trusted")
	h.untrusted = newIdentity(t, clients, "untrusted")
	h.cfg = Config{ListenHost: "127.0.0.1", Port: freePort(t), PKIDir: pki, ApplicationURI: "urn:tioga:test:server", TrustedCerts: []string{h.trusted.certFile}}
	// the server's identity, generated once per test process
	scert, skey, err := cachedSelfSigned("server", h.cfg.ApplicationURI, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	h.cfg.CertFile, h.cfg.KeyFile = filepath.Join(pki, "server.der"), filepath.Join(pki, "server.pem")
	if err := os.WriteFile(h.cfg.CertFile, scert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.cfg.KeyFile, pemKey(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(&h.cfg)
	}
	h.cfg.Logger = quietLogger(t)
	srv, err := NewServer(h.tt.tree, h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if p := srv.Stats().Panics; p != 0 {
			t.Errorf("%d handler panics", p)
		}
	})
	return h
}

// connect opens a gopcua client session with the given security mode
// (None uses no certificate; others use id, which must be non-nil).
func (h *harness) connect(mode ua.MessageSecurityMode, id *clientIdentity) *opcua.Client {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, h.srv.Endpoint())
	if err != nil {
		h.t.Fatal(err)
	}
	policy := ua.SecurityPolicyURIBasic256Sha256
	if mode == ua.MessageSecurityModeNone {
		policy = ua.SecurityPolicyURINone
	}
	ep, err := opcua.SelectEndpoint(eps, policy, mode)
	if err != nil {
		h.t.Fatal(err)
	}
	opts := []opcua.Option{
		opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous),
		opcua.AutoReconnect(false),
		opcua.RequestTimeout(10 * time.Second),
	}
	if id != nil {
		opts = append(opts, opcua.Certificate(id.cert), opcua.PrivateKey(id.key), opcua.ApplicationURI(certURI(h.t, id.cert)))
	}
	c, err := opcua.NewClient(ep.EndpointURL, opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		h.t.Fatalf("connect %v: %v", mode, err)
	}
	h.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func (h *harness) nodeID(addr string) *ua.NodeID {
	return ua.NewStringNodeID(h.srv.NamespaceIndex(), addr)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func certURI(t testing.TB, der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil || len(c.URIs) == 0 {
		t.Fatalf("certificate without URI: %v", err)
	}
	return c.URIs[0].String()
}
