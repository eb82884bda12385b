package opcua

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// TestSecuredPoliciesWithNodeOPCUA: node-opcua, an independent
// implementation, opens a SignAndEncrypt session with the trusted
// certificate over every secured policy the server offers and writes a
// value through it (the AES policies are offered only because this
// passes), and is refused the deprecated ones.
func TestSecuredPoliciesWithNodeOPCUA(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node not found: install Node.js (apt-get install nodejs npm), as `make test` does")
	}
	if _, err := os.Stat(filepath.Join(nodeClientDir, "node_modules", "node-opcua-client")); err != nil {
		t.Fatalf("node-opcua not installed: run `make setup-node`: %v", err)
	}
	h := startHarness(t, nil)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "trusted_cert.pem")
	keyFile := filepath.Join(dir, "trusted_key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.trusted.cert}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pemKey(h.trusted.key), 0o600); err != nil {
		t.Fatal(err)
	}
	policies := []string{"Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "Basic128Rsa15", "Basic256"}
	cfg := map[string]any{
		"endpoint":       h.srv.Endpoint(),
		"namespace":      h.srv.NamespaceIndex(),
		"pkiDir":         filepath.Join(dir, "pki"),
		"trusted":        map[string]string{"certFile": certFile, "keyFile": keyFile, "uri": certURI(t, h.trusted.cert)},
		"policies":       policies,
		"timeoutSeconds": 90,
	}
	cfgFile := filepath.Join(dir, "config.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "policy.js", cfgFile)
	cmd.Dir = nodeClientDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("policy.js: %v\n%s\n%s", err, out, stderr.String())
	}
	var res struct {
		Event    string
		Message  string
		Policies map[string]struct {
			Read, Write string
			ReadBack    float64
			Error       string
		}
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "{") {
			if err := json.Unmarshal([]byte(l), &res); err != nil {
				t.Fatalf("bad line %q: %v", l, err)
			}
		}
	}
	if res.Event != "result" {
		t.Fatalf("policy.js: %s %s", res.Event, res.Message)
	}
	for i, p := range policies {
		r := res.Policies[p]
		offered := i < 3
		switch {
		case offered && (r.Error != "" || r.Read != "Good" || r.Write != "Good" || r.ReadBack != float64(5+i)):
			t.Errorf("%s: %+v, want a session that reads and writes", p, r)
		case !offered && r.Error == "":
			t.Errorf("%s (deprecated): session opened: %+v", p, r)
		}
	}
}

// TestSecuredPoliciesWithGopcua: gopcua's own client over every offered
// policy and mode gets a session; control only with SignAndEncrypt.
func TestSecuredPoliciesWithGopcua(t *testing.T) {
	h := startHarness(t, nil)
	for _, p := range securedPolicies {
		for _, m := range []ua.MessageSecurityMode{ua.MessageSecurityModeSign, ua.MessageSecurityModeSignAndEncrypt} {
			eps, err := opcua.GetEndpoints(ctxT(t), h.srv.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			ep, err := opcua.SelectEndpoint(eps, p, m)
			if err != nil {
				t.Fatalf("%s %s not offered: %v", p, m, err)
			}
			c, err := opcua.NewClient(ep.EndpointURL, opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous), opcua.AutoReconnect(false),
				opcua.Certificate(h.trusted.cert), opcua.PrivateKey(h.trusted.key), opcua.ApplicationURI(certURI(t, h.trusted.cert)))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Connect(ctxT(t)); err != nil {
				t.Fatalf("%s %s: %v", p, m, err)
			}
			code := writeValue(t, c, h.nodeID("/P14/rideau/tioga/spot-level"), ua.MustVariant(float64(6)))
			want := ua.StatusBadUserAccessDenied
			if m == ua.MessageSecurityModeSignAndEncrypt {
				want = ua.StatusOK
			}
			if code != want {
				t.Errorf("%s %s: write %v, want %v", p, m, code, want)
			}
			_ = c.Close(context.Background())
		}
	}
}
