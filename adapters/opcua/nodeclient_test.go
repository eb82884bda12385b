package opcua

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tioga/properties"
)

// nodeClientDir is the node-opcua client project. The Makefile installs
// its node_modules with `npm ci --prefix adapters/opcua/testdata/nodeclient`.
const nodeClientDir = "testdata/nodeclient"

type nodeResult struct {
	Event                     string    `json:"event"`
	Message                   string    `json:"message"`
	RideauNodeID              string    `json:"rideauNodeId"`
	Devices                   []string  `json:"devices"`
	Properties                []string  `json:"properties"`
	Methods                   []string  `json:"methods"`
	FrameCount                int32     `json:"frameCount"`
	FrameCountSourceTimestamp string    `json:"frameCountSourceTimestamp"`
	Status                    string    `json:"status"`
	DozorPassDimensions       []int     `json:"dozorPassDimensions"`
	DozorPass                 []float32 `json:"dozorPass"`
	DozorPassValueRank        int       `json:"dozorPassValueRank"`
	DozorPassArrayDimensions  []int     `json:"dozorPassArrayDimensions"`
	AnonymousUserAccessLevel  int       `json:"anonymousUserAccessLevel"`
	AnonymousWrite            string    `json:"anonymousWrite"`
	AnonymousCall             string    `json:"anonymousCall"`
	FrameCounts               []int32   `json:"frameCounts"`
	UntrustedWrite            string    `json:"untrustedWrite"`
	TrustedWrite              string    `json:"trustedWrite"`
	SpotLevelReadBack         float64   `json:"spotLevelReadBack"`
	OutOfRangeWrite           string    `json:"outOfRangeWrite"`
	ReadOnlyWrite             string    `json:"readOnlyWrite"`
	TypeMismatchWrite         string    `json:"typeMismatchWrite"`
	TrustedCall               string    `json:"trustedCall"`
	QueryCall                 string    `json:"queryCall"`
	QueryDimensions           []int     `json:"queryDimensions"`
	QueryValues               []float32 `json:"queryValues"`
}

// TestNodeOPCUAClient runs an independent client, node-opcua, against the
// server: browse, read scalars and a record array, subscribe to
// frame-count during a simulated series, be refused a write anonymously
// and with an untrusted certificate, write and read back, call a command
// and a query with a trusted certificate over SignAndEncrypt. A missing
// node or node_modules fails the test: the Makefile installs both.
func TestNodeOPCUAClient(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node not found: install Node.js (apt-get install nodejs npm), as `make test` does")
	}
	if _, err := os.Stat(filepath.Join(nodeClientDir, "node_modules", "node-opcua-client")); err != nil {
		t.Fatalf("node-opcua not installed: run `npm ci --prefix adapters/opcua/testdata/nodeclient` (as `make test` does): %v", err)
	}
	h := startHarness(t, nil)
	at := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	_ = h.tt.frameCount.Set(properties.Int32Value(7).At(at))
	h.tt.status.SetText("idle")
	_ = h.tt.dozorPass.Set(properties.Float32Records(4, []float32{0, 12, 3.5, 2.25, 1, 0, 0, 0, 2, 40, 9.75, 1.5}))

	dir := t.TempDir()
	pemFile := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ident := func(name string, id clientIdentity) map[string]string {
		return map[string]string{
			"name":     name,
			"certFile": pemFile(name+"_cert.pem", "CERTIFICATE", id.cert),
			"keyFile":  filepath.Join(dir, name+"_key.pem"),
			"uri":      certURI(t, id.cert),
		}
	}
	trusted, untrusted := ident("trusted", h.trusted), ident("untrusted", h.untrusted)
	for name, id := range map[string]clientIdentity{"trusted": h.trusted, "untrusted": h.untrusted} {
		if err := os.WriteFile(filepath.Join(dir, name+"_key.pem"), pemKey(id.key), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const frames = 40
	cfg := map[string]any{
		"endpoint":       h.srv.Endpoint(),
		"namespace":      h.srv.NamespaceIndex(),
		"pkiDir":         filepath.Join(dir, "pki"),
		"trusted":        trusted,
		"untrusted":      untrusted,
		"frames":         frames,
		"timeoutSeconds": 60,
	}
	cfgFile := filepath.Join(dir, "config.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "client.js", cfgFile)
	cmd.Dir = nodeClientDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var res *nodeResult
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue // node-opcua's own console output
		}
		var r nodeResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad line from client.js: %q: %v", line, err)
		}
		switch r.Event {
		case "subscribed":
			go simulateSeries(h.tt, frames, 10, 2*time.Millisecond)
		case "result":
			res = &r
		case "error":
			t.Errorf("client.js: %s", r.Message)
		}
	}
	werr := cmd.Wait()
	if res == nil || werr != nil {
		t.Fatalf("client.js failed (%v): stderr:\n%s", werr, tail(stderr.String(), 4000))
	}

	if res.RideauNodeID != "ns=1;s=/P14/rideau" || !slices.Equal(res.Devices, []string{"tioga"}) {
		t.Errorf("browse: rideau %q, devices %v", res.RideauNodeID, res.Devices)
	}
	if want := []string{"dozor-pass", "frame-count", "status", "spot-level", "beam-xy", "reset", "spot-list"}; !slices.Equal(res.Properties, want) {
		t.Errorf("properties %v, want %v", res.Properties, want)
	}
	if !slices.Equal(res.Methods, []string{"reset", "spot-list"}) {
		t.Errorf("methods %v", res.Methods)
	}
	if res.FrameCount != 7 || res.Status != "idle" {
		t.Errorf("read frame-count %d, status %q", res.FrameCount, res.Status)
	}
	if ts, err := time.Parse(time.RFC3339Nano, res.FrameCountSourceTimestamp); err != nil || !ts.Equal(at) {
		t.Errorf("frame-count source timestamp %q, want %v", res.FrameCountSourceTimestamp, at)
	}
	if !slices.Equal(res.DozorPassDimensions, []int{3, 4}) || res.DozorPassValueRank != 2 || !slices.Equal(res.DozorPassArrayDimensions, []int{100000, 4}) {
		t.Errorf("dozor-pass dims %v, rank %d, ArrayDimensions %v", res.DozorPassDimensions, res.DozorPassValueRank, res.DozorPassArrayDimensions)
	}
	if !slices.Equal(res.DozorPass, []float32{0, 12, 3.5, 2.25, 1, 0, 0, 0, 2, 40, 9.75, 1.5}) {
		t.Errorf("dozor-pass %v", res.DozorPass)
	}
	if res.AnonymousUserAccessLevel != 1 {
		t.Errorf("anonymous UserAccessLevel %d", res.AnonymousUserAccessLevel)
	}
	for name, got := range map[string]string{"anonymous write": res.AnonymousWrite, "anonymous call": res.AnonymousCall, "untrusted write": res.UntrustedWrite} {
		if got != "BadUserAccessDenied" {
			t.Errorf("%s: %s, want BadUserAccessDenied", name, got)
		}
	}
	if len(res.FrameCounts) < 2 || res.FrameCounts[0] != 7 || res.FrameCounts[len(res.FrameCounts)-1] != frames {
		t.Errorf("frame-count notifications %v", res.FrameCounts)
	}
	for i := 1; i < len(res.FrameCounts); i++ {
		if res.FrameCounts[i] <= res.FrameCounts[i-1] && res.FrameCounts[i-1] != 7 {
			t.Errorf("frame-count went backwards: %v", res.FrameCounts)
			break
		}
	}
	if res.TrustedWrite != "Good" || res.SpotLevelReadBack != 7.25 {
		t.Errorf("trusted write %s, read back %v", res.TrustedWrite, res.SpotLevelReadBack)
	}
	if res.OutOfRangeWrite != "BadOutOfRange" || res.ReadOnlyWrite != "BadNotWritable" || res.TypeMismatchWrite != "BadTypeMismatch" {
		t.Errorf("invalid writes: %s, %s, %s", res.OutOfRangeWrite, res.ReadOnlyWrite, res.TypeMismatchWrite)
	}
	if res.TrustedCall != "Good" || res.QueryCall != "Good" || !slices.Equal(res.QueryDimensions, []int{2, 3}) ||
		!slices.Equal(res.QueryValues, []float32{5, 1, 100, 5, 2, 200}) {
		t.Errorf("calls: reset %s, spot-list %s %v %v", res.TrustedCall, res.QueryCall, res.QueryDimensions, res.QueryValues)
	}
	if got := h.tt.spotLevel.Value().Float(); got != 7.25 {
		t.Errorf("registry spot-level %v", got)
	}
	h.tt.mu.Lock()
	defer h.tt.mu.Unlock()
	if !slices.Equal(h.tt.resets, []int32{2}) {
		t.Errorf("resets %v", h.tt.resets)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
