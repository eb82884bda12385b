package opcua

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"tioga/properties"
)

// TestCertificateGeneratedOnFirstRun: the first NewServer writes an RSA
// 2048 certificate naming the application URI and its key; the next one
// loads the same identity.
func TestCertificateGeneratedOnFirstRun(t *testing.T) {
	pki := t.TempDir()
	cfg := Config{ListenHost: "127.0.0.1", Port: freePort(t), PKIDir: pki, ApplicationURI: "urn:tioga:test:first-run"}
	s1, err := NewServer(newTestTree(t).tree, cfg)
	if err != nil {
		t.Fatal(err)
	}
	der, err := os.ReadFile(filepath.Join(pki, "own", "certs", "tioga.der"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := c.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("key %T", c.PublicKey)
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != "urn:tioga:test:first-run" {
		t.Fatalf("URIs %v", c.URIs)
	}
	if fi, err := os.Stat(filepath.Join(pki, "own", "private", "tioga.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	s2, err := NewServer(newTestTree(t).tree, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1.Certificate(), s2.Certificate()) || !bytes.Equal(s2.Certificate(), der) {
		t.Fatal("second start did not reuse the certificate")
	}
	// A certificate without its key is refused rather than replaced.
	if err := os.Remove(filepath.Join(pki, "own", "private", "tioga.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(newTestTree(t).tree, cfg); err == nil {
		t.Fatal("certificate without key accepted")
	}
}

// TestBadRequests sends requests gopcua's own services crash or misanswer
// on, and checks the answers and that the server goes on serving.
func TestBadRequests(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	ctx := ctxT(t)
	fault := func(req ua.Request) ua.StatusCode {
		t.Helper()
		var code ua.StatusCode
		err := c.Send(ctx, req, func(r ua.Response) error {
			code = r.Header().ServiceResult
			return nil
		})
		if err != nil {
			if sc, ok := err.(ua.StatusCode); ok {
				return sc
			}
			t.Fatal(err)
		}
		return code
	}
	// Unknown subscription and monitored item ids (gopcua dereferences nil).
	if code := fault(&ua.DeleteMonitoredItemsRequest{SubscriptionID: 77, MonitoredItemIDs: []uint32{5}}); code != ua.StatusBadSubscriptionIDInvalid {
		t.Fatalf("DeleteMonitoredItems on no subscription: %v", code)
	}
	var subID uint32
	if err := c.Send(ctx, &ua.CreateSubscriptionRequest{RequestedPublishingInterval: 100, RequestedMaxKeepAliveCount: 10, RequestedLifetimeCount: 100, PublishingEnabled: true}, func(r ua.Response) error {
		subID = r.(*ua.CreateSubscriptionResponse).SubscriptionID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var results []ua.StatusCode
	if err := c.Send(ctx, &ua.DeleteMonitoredItemsRequest{SubscriptionID: subID, MonitoredItemIDs: []uint32{12345}}, func(r ua.Response) error {
		results = r.(*ua.DeleteMonitoredItemsResponse).Results
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0] != ua.StatusBadMonitoredItemIDInvalid {
		t.Fatalf("unknown monitored item: %v", results)
	}
	if code := fault(&ua.ReadRequest{}); code != ua.StatusBadNothingToDo {
		t.Fatalf("empty read: %v", code)
	}
	// Reads of nodes and attributes that do not exist, and index ranges.
	_ = h.tt.dozorPass.Set(propsRecords(5))
	res := readValues(t, c,
		&ua.ReadValueID{NodeID: ua.NewNumericNodeID(h.srv.NamespaceIndex(), 42), AttributeID: ua.AttributeIDValue},
		&ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/frame-count"), AttributeID: 999},
		&ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/dozor-pass"), AttributeID: ua.AttributeIDValue, IndexRange: "1:2"},
		&ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/dozor-pass"), AttributeID: ua.AttributeIDValue, IndexRange: "3:9,2:3"},
		&ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/dozor-pass"), AttributeID: ua.AttributeIDValue, IndexRange: "9:12"},
		&ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/dozor-pass"), AttributeID: ua.AttributeIDValue, IndexRange: "2:1"},
		&ua.ReadValueID{NodeID: ua.NewNumericNodeID(9, 1), AttributeID: ua.AttributeIDValue},
	)
	want := []ua.StatusCode{ua.StatusBadNodeIDUnknown, ua.StatusBadAttributeIDInvalid, ua.StatusOK, ua.StatusOK, ua.StatusBadIndexRangeNoData, ua.StatusBadIndexRangeInvalid, ua.StatusBadNodeIDUnknown}
	for i, w := range want {
		if res[i].Status != w {
			t.Errorf("read %d: %v, want %v", i, res[i].Status, w)
		}
	}
	if rows := res[2].Value.Value().([][]float32); len(rows) != 2 || rows[0][0] != 1 || rows[1][0] != 2 {
		t.Errorf("rows 1:2 = %v", rows)
	}
	if rows := res[3].Value.Value().([][]float32); len(rows) != 2 || len(rows[0]) != 2 || rows[0][0] != 3*10+2 || rows[1][1] != 4*10+3 {
		t.Errorf("rows 3:9, columns 2:3 = %v", rows)
	}
	// The server still serves.
	if v := readValues(t, c, &ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/status"), AttributeID: ua.AttributeIDValue})[0]; v.Status != ua.StatusOK {
		t.Fatalf("after bad requests: %v", v.Status)
	}
}

func propsRecords(n int) properties.Value {
	data := make([]float32, 0, 4*n)
	for i := 0; i < n; i++ {
		data = append(data, float32(i), float32(i*10+1), float32(i*10+2), float32(i*10+3))
	}
	return properties.Float32Records(4, data)
}

// TestSessionsExpire: a client that vanishes without closing its session
// loses it after the session timeout.
func TestSessionsExpire(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	if n := h.srv.Stats().SessionsOpen; n != 1 {
		t.Fatalf("%d sessions", n)
	}
	for _, sess := range h.srv.sessions.list() {
		sess.lastSeen.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	}
	h.srv.expireSessions()
	if st := h.srv.Stats(); st.SessionsOpen != 0 || st.SessionsExpired != 1 {
		t.Fatalf("after expiry: %+v", st)
	}
	_, err := c.Read(context.Background(), &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: h.nodeID("/P14/rideau/tioga/status"), AttributeID: ua.AttributeIDValue}}})
	if err == nil {
		t.Fatal("read in an expired session succeeded")
	}
}
