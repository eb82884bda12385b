package opcua

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

func writeOne(t *testing.T, c *opcua.Client, nid *ua.NodeID, v any) ua.StatusCode {
	t.Helper()
	resp, err := c.Write(ctxT(t), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: nid, AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Results[0]
}

// TestWriteReadBack writes parameters in a trusted SignAndEncrypt session,
// reads them back over OPC UA and in the registry, and checks the status
// codes of every kind of invalid write.
func TestWriteReadBack(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeSignAndEncrypt, &h.trusted)
	spot := h.nodeID("/P14/rideau/tioga/spot-level")

	if code := writeOne(t, c, spot, 7.5); code != ua.StatusOK {
		t.Fatalf("write spot-level: %v", code)
	}
	if got := readValues(t, c, &ua.ReadValueID{NodeID: spot, AttributeID: ua.AttributeIDValue})[0].Value.Value(); got != 7.5 {
		t.Fatalf("spot-level read back %#v", got)
	}
	if got := h.tt.spotLevel.Value().Float(); got != 7.5 {
		t.Fatalf("registry spot-level %v", got)
	}
	// An integer literal is a number too (asyncua sends Int64).
	if code := writeOne(t, c, spot, int64(4)); code != ua.StatusOK || h.tt.spotLevel.Value().Float() != 4 {
		t.Fatalf("write Int64 4: %v, value %v", code, h.tt.spotLevel.Value().Float())
	}
	if code := writeOne(t, c, h.nodeID("/P14/image-tracker/img-tracker/load-state"), true); code != ua.StatusOK || !h.tt.loadState.Value().Bool() {
		t.Fatalf("write load-state: %v", code)
	}

	for _, tc := range []struct {
		name string
		node string
		v    any
		want ua.StatusCode
	}{
		{"above the limit", "/P14/rideau/tioga/spot-level", 99.0, ua.StatusBadOutOfRange},
		{"below the limit", "/P14/rideau/tioga/spot-level", 0.5, ua.StatusBadOutOfRange},
		{"text for a number", "/P14/rideau/tioga/spot-level", "7", ua.StatusBadTypeMismatch},
		{"array for a scalar", "/P14/rideau/tioga/spot-level", []float64{1, 2}, ua.StatusBadTypeMismatch},
		{"number for a bool", "/P14/image-tracker/img-tracker/load-state", int32(1), ua.StatusBadTypeMismatch},
		{"read-only", "/P14/rideau/tioga/frame-count", int32(5), ua.StatusBadNotWritable},
		{"read-only text", "/P14/rideau/tioga/status", "idle", ua.StatusBadNotWritable},
		{"a method", "/P14/rideau/tioga/reset", int32(0), ua.StatusBadNotWritable},
		{"unknown", "/P14/rideau/tioga/nope", int32(0), ua.StatusBadNodeIDUnknown},
	} {
		if got := writeOne(t, c, h.nodeID(tc.node), tc.v); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := h.tt.spotLevel.Value().Float(); got != 4 {
		t.Fatalf("refused writes changed spot-level to %v", got)
	}
	if st := h.srv.Stats(); st.Writes != 3 || st.WritesRefused != 9 {
		t.Fatalf("stats: %d writes, %d refused", st.Writes, st.WritesRefused)
	}
}

// TestWriteRefusedWhenAnonymousOrUntrusted: anonymous (None) sessions,
// sessions with a certificate outside the trust list, and (by default)
// trusted Sign-only sessions read but never write or command.
func TestWriteRefusedWhenAnonymousOrUntrusted(t *testing.T) {
	h := startHarness(t, nil)
	spot := h.nodeID("/P14/rideau/tioga/spot-level")
	for _, tc := range []struct {
		name string
		mode ua.MessageSecurityMode
		id   *clientIdentity
	}{
		{"anonymous", ua.MessageSecurityModeNone, nil},
		{"untrusted SignAndEncrypt", ua.MessageSecurityModeSignAndEncrypt, &h.untrusted},
		{"untrusted Sign", ua.MessageSecurityModeSign, &h.untrusted},
		{"trusted Sign", ua.MessageSecurityModeSign, &h.trusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.connect(tc.mode, tc.id)
			if code := writeOne(t, c, spot, 5.0); code != ua.StatusBadUserAccessDenied {
				t.Fatalf("write: %v, want BadUserAccessDenied", code)
			}
			res := readValues(t, c,
				&ua.ReadValueID{NodeID: spot, AttributeID: ua.AttributeIDValue},
				&ua.ReadValueID{NodeID: spot, AttributeID: ua.AttributeIDUserAccessLevel})
			if res[0].Value.Value() != 3.0 {
				t.Fatalf("read: %#v", res[0].Value.Value())
			}
			if res[1].Value.Value() != byte(ua.AccessLevelTypeCurrentRead) {
				t.Fatalf("UserAccessLevel %#v", res[1].Value.Value())
			}
			r := callMethod(t, c, h.nodeID("/P14/rideau/tioga"), h.nodeID("/P14/rideau/tioga/reset"), int32(0))
			if r.StatusCode != ua.StatusBadUserAccessDenied {
				t.Fatalf("call reset: %v", r.StatusCode)
			}
		})
	}
	if got := h.tt.spotLevel.Value().Float(); got != 3 {
		t.Fatalf("spot-level changed to %v", got)
	}
	if len(h.tt.resets) != 0 {
		t.Fatalf("reset ran %v", h.tt.resets)
	}
	// The untrusted certificate waits in rejected/ for the operator.
	want := filepath.Join(h.cfg.PKIDir, "rejected", "certs", thumbprint(h.untrusted.cert)+".der")
	if b, err := os.ReadFile(want); err != nil || !slices.Equal(b, h.untrusted.cert) {
		t.Fatalf("rejected certificate not kept: %v", err)
	}
	// Sessions() tells the three apart.
	modes := map[string]int{}
	for _, si := range h.srv.Sessions() {
		if si.Control {
			t.Fatalf("session %+v has control", si)
		}
		modes[si.SecurityMode]++
	}
	if modes["None"] != 1 || modes["Sign"] != 2 || modes["SignAndEncrypt"] != 1 {
		t.Fatalf("session modes %v", modes)
	}

	// Trusting the client (copying its certificate into trusted/) takes
	// effect for new sessions without a restart.
	if err := os.MkdirAll(h.cfg.PKIDir+"/trusted/certs", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.cfg.PKIDir, "trusted", "certs", "late.der"), h.untrusted.cert, 0o644); err != nil {
		t.Fatal(err)
	}
	h.srv.trust.reload()
	c := h.connect(ua.MessageSecurityModeSignAndEncrypt, &h.untrusted)
	if code := writeOne(t, c, spot, 5.0); code != ua.StatusOK {
		t.Fatalf("write after trusting: %v", code)
	}
}

// TestSignOnlyControlOption: AllowSignOnlyControl lets a trusted client
// control the server over a Sign channel.
func TestSignOnlyControlOption(t *testing.T) {
	h := startHarness(t, func(c *Config) { c.AllowSignOnlyControl = true })
	c := h.connect(ua.MessageSecurityModeSign, &h.trusted)
	if code := writeOne(t, c, h.nodeID("/P14/rideau/tioga/spot-level"), 6.0); code != ua.StatusOK {
		t.Fatalf("write: %v", code)
	}
	anon := h.connect(ua.MessageSecurityModeNone, nil)
	if code := writeOne(t, anon, h.nodeID("/P14/rideau/tioga/spot-level"), 6.0); code != ua.StatusBadUserAccessDenied {
		t.Fatalf("anonymous write: %v", code)
	}
}

func callMethod(t *testing.T, c *opcua.Client, obj, meth *ua.NodeID, args ...any) *ua.CallMethodResult {
	t.Helper()
	var in []*ua.Variant
	for _, a := range args {
		in = append(in, ua.MustVariant(a))
	}
	res, err := c.Call(ctxT(t), &ua.CallMethodRequest{ObjectID: obj, MethodID: meth, InputArguments: in})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestCallMethods calls a command and a query, and checks argument
// validation and the advertised InputArguments.
func TestCallMethods(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeSignAndEncrypt, &h.trusted)
	tioga := h.nodeID("/P14/rideau/tioga")
	reset := h.nodeID("/P14/rideau/tioga/reset")

	if r := callMethod(t, c, tioga, reset, int32(1)); r.StatusCode != ua.StatusOK || !slices.Equal(r.InputArgumentResults, []ua.StatusCode{ua.StatusOK}) {
		t.Fatalf("reset(1): %+v", r)
	}
	if r := callMethod(t, c, h.nodeID("/P14/image-tracker/img-tracker"), h.nodeID("/P14/image-tracker/img-tracker/load"), "/data/x_1_00007.cbf"); r.StatusCode != ua.StatusOK {
		t.Fatalf("load: %v", r.StatusCode)
	}
	if r := callMethod(t, c, tioga, reset, "one"); r.StatusCode != ua.StatusBadInvalidArgument || !slices.Equal(r.InputArgumentResults, []ua.StatusCode{ua.StatusBadTypeMismatch}) {
		t.Fatalf("reset(\"one\"): %+v", r)
	}
	if r := callMethod(t, c, tioga, reset, int32(-1)); r.StatusCode != ua.StatusBadInvalidArgument {
		t.Fatalf("reset(-1) (refused by the device): %v", r.StatusCode)
	}
	if r := callMethod(t, c, tioga, reset); r.StatusCode != ua.StatusBadArgumentsMissing {
		t.Fatalf("reset(): %v", r.StatusCode)
	}
	if r := callMethod(t, c, tioga, reset, int32(1), int32(2)); r.StatusCode != ua.StatusBadTooManyArguments {
		t.Fatalf("reset(1, 2): %v", r.StatusCode)
	}
	if r := callMethod(t, c, h.nodeID("/P14/image-tracker/img-tracker"), reset, int32(1)); r.StatusCode != ua.StatusBadMethodInvalid {
		t.Fatalf("reset on the wrong object: %v", r.StatusCode)
	}
	if r := callMethod(t, c, tioga, h.nodeID("/P14/rideau/tioga/frame-count"), int32(1)); r.StatusCode != ua.StatusBadMethodInvalid {
		t.Fatalf("calling a variable: %v", r.StatusCode)
	}
	h.tt.mu.Lock()
	resets, loaded := slices.Clone(h.tt.resets), slices.Clone(h.tt.loaded)
	h.tt.mu.Unlock()
	if !slices.Equal(resets, []int32{1}) || !slices.Equal(loaded, []string{"/data/x_1_00007.cbf"}) {
		t.Fatalf("device saw resets %v, loads %v", resets, loaded)
	}

	// A query is a read with an input: anonymous sessions may call it.
	anon := h.connect(ua.MessageSecurityModeNone, nil)
	r := callMethod(t, anon, tioga, h.nodeID("/P14/rideau/tioga/spot-list"), int32(7))
	if r.StatusCode != ua.StatusOK || len(r.OutputArguments) != 1 {
		t.Fatalf("spot-list(7): %+v", r)
	}
	out := r.OutputArguments[0]
	if dims := out.ArrayDimensions(); !slices.Equal(dims, []int32{2, 3}) {
		t.Fatalf("spot-list dims %v", dims)
	}
	if rows := out.Value().([][]float32); !slices.Equal(rows[1], []float32{7, 2, 200}) {
		t.Fatalf("spot-list rows %v", rows)
	}
	if r := callMethod(t, anon, tioga, h.nodeID("/P14/rideau/tioga/spot-list"), int32(-3)); r.StatusCode != ua.StatusBadOutOfRange {
		t.Fatalf("spot-list(-3): %v", r.StatusCode)
	}

	// InputArguments describe the argument.
	dv := readValues(t, anon, &ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/reset.InputArguments"), AttributeID: ua.AttributeIDValue})[0]
	xs, ok := dv.Value.Value().([]*ua.ExtensionObject)
	if !ok || len(xs) != 1 {
		t.Fatalf("InputArguments %#v", dv.Value.Value())
	}
	arg := xs[0].Value.(*ua.Argument)
	if arg.DataType.IntID() != 6 || arg.ValueRank != -1 || arg.Description.Text != "0 = keep files" {
		t.Fatalf("argument %+v", arg)
	}
}
