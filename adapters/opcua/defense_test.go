package opcua

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"
)

// Tests of the server's defences against a hostile network (issue 13,
// items 8-11): connection limits, a deadline for every stage of a client's
// start, session slots, accepted security, accept-loop survival.

// rawConn is a TCP connection that speaks UACP by hand.
type rawConn struct {
	t *testing.T
	net.Conn
}

func (h *harness) dialRaw(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort(h.cfg.ListenHost, strconv.Itoa(h.cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c}
}

func (c *rawConn) hello(bufSize uint32, url string) {
	var b []byte
	for _, v := range []uint32{0, bufSize, bufSize, 0, 0} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(url)))
	b = append(b, url...)
	msg := append([]byte("HELF\x00\x00\x00\x00"), b...)
	binary.LittleEndian.PutUint32(msg[4:], uint32(len(msg)))
	if _, err := c.Write(msg); err != nil {
		c.t.Fatal(err)
	}
}

// next reads one UACP message: its type and, for an Error, the status.
func (c *rawConn) next() (string, ua.StatusCode) {
	c.t.Helper()
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(c, hdr); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	body := make([]byte, binary.LittleEndian.Uint32(hdr[4:])-8)
	if _, err := io.ReadFull(c, body); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if string(hdr[:4]) == "ERRF" {
		return "ERRF", ua.StatusCode(binary.LittleEndian.Uint32(body))
	}
	return string(hdr[:4]), ua.StatusOK
}

// refused expects an Error message with want, then the connection closed.
func (c *rawConn) refused(want ua.StatusCode) {
	c.t.Helper()
	if typ, code := c.next(); typ != "ERRF" || code != want {
		c.t.Fatalf("got %s %v, want ERRF %v", typ, code, want)
	}
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		c.t.Fatalf("connection still open after the error (%d, %v)", n, err)
	}
}

// TestHelloBufferBelow8192Refused: Part 6 asks for buffers of at least
// 8192 bytes; a Hello stating less is refused.
func TestHelloBufferBelow8192Refused(t *testing.T) {
	h := startHarness(t, nil)
	c := h.dialRaw(t)
	c.hello(1024, h.srv.Endpoint())
	c.refused(ua.StatusBadConnectionRejected)
	c = h.dialRaw(t)
	c.hello(8192, h.srv.Endpoint())
	if typ, _ := c.next(); typ != "ACKF" {
		t.Fatalf("8192-byte buffers: got %s, want ACKF", typ)
	}
}

// TestSilentAfterHelloClosed: a client that sends Hello and then nothing
// (the attack that exhausted descriptors) is closed after OpenTimeout.
func TestSilentAfterHelloClosed(t *testing.T) {
	h := startHarness(t, func(c *Config) { c.OpenTimeout = 300 * time.Millisecond })
	c := h.dialRaw(t)
	c.hello(65535, h.srv.Endpoint())
	if typ, _ := c.next(); typ != "ACKF" {
		t.Fatalf("got %s, want ACKF", typ)
	}
	c.refused(ua.StatusBadTimeout)
}

// dialChannel opens a secure channel (None) without a session.
func (h *harness) dialChannel(t *testing.T) *opcua.Client {
	t.Helper()
	c, err := opcua.NewClient(h.srv.Endpoint(), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false),
		opcua.RequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Dial(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// waitChannelClosed polls c with GetEndpoints until the server has closed
// its channel (bounded: 20 s).
func waitChannelClosed(t *testing.T, c *opcua.Client, what string) {
	t.Helper()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.GetEndpoints(ctx)
		cancel()
		if err != nil {
			return
		}
		if i == 100 {
			t.Fatalf("%s: channel still open", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestChannelWithoutSessionClosed: an open channel that creates no session
// is closed after CreateSessionTimeout.
func TestChannelWithoutSessionClosed(t *testing.T) {
	h := startHarness(t, func(c *Config) { c.CreateSessionTimeout = 300 * time.Millisecond })
	c := h.dialChannel(t)
	waitChannelClosed(t, c, "channel without a session")
}

// TestUnactivatedSessionReleased: a session never activated is closed with
// its channel after ActivateTimeout, and its slot is free again.
func TestUnactivatedSessionReleased(t *testing.T) {
	h := startHarness(t, func(c *Config) {
		c.ActivateTimeout = 300 * time.Millisecond
		c.MaxSessions = 2
		c.TrustedSessionReserve = -1
	})
	c := h.dialChannel(t)
	if _, err := c.CreateSession(ctxT(t), opcua.DefaultSessionConfig()); err != nil {
		t.Fatal(err)
	}
	if n := h.srv.Stats().SessionsOpen; n != 1 {
		t.Fatalf("%d sessions open, want 1", n)
	}
	waitChannelClosed(t, c, "unactivated session")
	waitStat(t, "sessions open", func() bool { return h.srv.Stats().SessionsOpen == 0 })
}

func waitStat(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for i := 0; !ok(); i++ {
		if i == 200 {
			t.Fatalf("%s: not reached in 20 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSessionLockoutPrevented replays the attack of issue 13 item 9 on a
// small server (MaxSessions 6, 2 reserved for trusted clients): anonymous
// sessions requesting an hour's timeout, never activated, connections
// dropped. The orphans are released when their channels close; anonymous
// clients can never take the reserved slots; the timeout is capped.
func TestSessionLockoutPrevented(t *testing.T) {
	h := startHarness(t, func(c *Config) {
		c.MaxSessions = 6
		c.TrustedSessionReserve = 2
		c.MaxSessionTimeout = time.Minute
	})
	scfg := opcua.DefaultSessionConfig()
	scfg.SessionTimeout = time.Hour
	var chans []*opcua.Client
	for i := 0; i < 6; i++ {
		c := h.dialChannel(t)
		chans = append(chans, c)
		s, err := c.CreateSession(ctxT(t), scfg)
		switch {
		case i < 4 && err != nil:
			t.Fatalf("anonymous session %d: %v", i, err)
		case i >= 4 && !errors.Is(err, ua.StatusBadTooManySessions):
			t.Fatalf("anonymous session %d took a reserved slot: %v", i, err)
		case i == 0 && s.RevisedTimeout() != time.Minute:
			t.Errorf("granted timeout %v for an hour asked, want the 1 min cap", s.RevisedTimeout())
		}
	}
	for _, c := range chans {
		_ = c.Close(context.Background()) // drop the channels, sessions never activated
	}
	waitStat(t, "orphaned sessions released", func() bool { return h.srv.Stats().SessionsOpen == 0 })
	if st := h.srv.Stats(); st.SessionsOrphaned < 4 || st.SessionsRefused != 2 {
		t.Errorf("orphaned %d (want >= 4), refused %d (want 2)", st.SessionsOrphaned, st.SessionsRefused)
	}
	// Four anonymous sessions fill the open slots; trusted clients still
	// get the two reserved ones, with control.
	for i := 0; i < 4; i++ {
		h.connect(ua.MessageSecurityModeNone, nil)
	}
	for i := 0; i < 2; i++ {
		c := h.connect(ua.MessageSecurityModeSignAndEncrypt, &h.trusted)
		if code := writeValue(t, c, h.nodeID("/P14/rideau/tioga/spot-level"), ua.MustVariant(float64(4+i))); code != ua.StatusOK {
			t.Fatalf("trusted write in a reserved slot: %v", code)
		}
	}
}

func writeValue(t *testing.T, c *opcua.Client, id *ua.NodeID, v *ua.Variant) ua.StatusCode {
	t.Helper()
	resp, err := c.Write(ctxT(t), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: id, AttributeID: ua.AttributeIDValue, Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v},
	}}})
	if err != nil {
		return ua.StatusBadUnexpectedError
	}
	return resp.Results[0]
}

// TestConnectionLimitPerAddress: past MaxConnectionsPerHost a connection
// is refused at once; closing one lets the next client in.
func TestConnectionLimitPerAddress(t *testing.T) {
	h := startHarness(t, func(c *Config) { c.MaxConnectionsPerHost = 3 })
	var held []*rawConn
	for i := 0; i < 3; i++ {
		c := h.dialRaw(t)
		c.hello(65535, h.srv.Endpoint())
		if typ, _ := c.next(); typ != "ACKF" {
			t.Fatalf("connection %d: %s", i, typ)
		}
		held = append(held, c)
	}
	h.dialRaw(t).refused(ua.StatusBadTCPNotEnoughResources)
	if st := h.srv.Stats(); st.ConnectionsOpen != 3 || st.ConnectionsRefused != 1 {
		t.Errorf("connections open %d, refused %d; want 3, 1", st.ConnectionsOpen, st.ConnectionsRefused)
	}
	held[0].Close()
	held[1].Close()
	waitStat(t, "connections released", func() bool { return h.srv.Stats().ConnectionsOpen == 1 })
	c := h.connect(ua.MessageSecurityModeNone, nil)
	if v := readValues(t, c, &ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/status"), AttributeID: ua.AttributeIDValue})[0]; v.Status != ua.StatusOK {
		t.Fatalf("read: %v", v.Status)
	}
}

// TestUnadvertisedPoliciesRefused: channels open only with the advertised
// policies; the deprecated ones are refused even with a trusted
// certificate, so no session (and no control) exists over them.
func TestUnadvertisedPoliciesRefused(t *testing.T) {
	h := startHarness(t, nil)
	for _, p := range []string{ua.SecurityPolicyURIBasic128Rsa15, ua.SecurityPolicyURIBasic256} {
		for _, m := range []ua.MessageSecurityMode{ua.MessageSecurityModeSign, ua.MessageSecurityModeSignAndEncrypt} {
			c, err := opcua.NewClient(h.srv.Endpoint(), opcua.SecurityPolicy(p), opcua.SecurityMode(m),
				opcua.Certificate(h.trusted.cert), opcua.PrivateKey(h.trusted.key), opcua.RemoteCertificate(h.srv.Certificate()),
				opcua.AutoReconnect(false), opcua.DialTimeout(5*time.Second), opcua.RequestTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Connect(ctxT(t)); err == nil {
				_ = c.Close(context.Background())
				t.Errorf("%s %s: session opened", p, m)
			}
		}
	}
	if n := h.srv.Stats().SessionsCreated; n != 0 {
		t.Errorf("%d sessions created over refused policies", n)
	}
}

// TestAcceptSurvivesDescriptorExhaustion runs a server in a child process
// with a low RLIMIT_NOFILE, exhausts its descriptors with connections that
// send Hello and go silent, waits until the trust list reload has failed
// for want of descriptors, then lets them go: the server must accept again
// and still trust the trusted client (a write succeeds).
func TestAcceptSurvivesDescriptorExhaustion(t *testing.T) {
	if os.Getenv("TIOGA_FD_CHILD") != "" {
		t.Skip("child process")
	}
	dir := t.TempDir()
	trusted := newIdentity(t, dir, "trusted")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDescriptorExhaustionChild$", "-test.v")
	cmd.Env = append(os.Environ(), "TIOGA_FD_CHILD="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close() // the child stops when its stdin closes
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// wait for a line containing substr (bounded: 30 s)
	waitLine := func(substr string) string {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("child exited before %q", substr)
				}
				if strings.Contains(l, substr) {
					return l
				}
			case <-timeout:
				t.Fatalf("child did not print %q", substr)
			}
		}
	}
	var endpoint string
	var ns int
	if _, err := fmt.Sscanf(waitLine("ENDPOINT "), "ENDPOINT %s NS %d", &endpoint, &ns); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(endpoint, "opc.tcp://")
	// Exhaust: the child has about 40 descriptors to spare.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 80; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			break // backlog full: exhausted
		}
		conns = append(conns, c)
		(&rawConn{t: t, Conn: c}).hello(65535, endpoint)
	}
	waitLine("accepting connections failed")
	waitLine("cannot read the trusted certificates")
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	waitLine("accepting connections again")
	var c *opcua.Client
	for i := 0; ; i++ { // the child needs a moment to close the released sockets
		c, err = connectTo(endpoint, ua.MessageSecurityModeSignAndEncrypt, &trusted)
		if err == nil {
			break
		}
		if i == 50 {
			t.Fatalf("no session after the descriptors were released: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer c.Close(context.Background())
	id := ua.NewStringNodeID(uint16(ns), "/P14/rideau/tioga/spot-level")
	if code := writeValue(t, c, id, ua.MustVariant(float64(5))); code != ua.StatusOK {
		t.Fatalf("trusted write after the exhaustion: %v (trust list lost?)", code)
	}
}

func connectTo(endpoint string, mode ua.MessageSecurityMode, id *clientIdentity) (*opcua.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	ep, err := opcua.SelectEndpoint(eps, ua.SecurityPolicyURIBasic256Sha256, mode)
	if err != nil {
		return nil, err
	}
	c, err := opcua.NewClient(ep.EndpointURL, opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous), opcua.AutoReconnect(false),
		opcua.RequestTimeout(5*time.Second), opcua.Certificate(id.cert), opcua.PrivateKey(id.key), opcua.ApplicationURI("urn:tioga:test:trusted"))
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// TestDescriptorExhaustionChild is the server of
// TestAcceptSurvivesDescriptorExhaustion (it runs only in the child).
func TestDescriptorExhaustionChild(t *testing.T) {
	dir := os.Getenv("TIOGA_FD_CHILD")
	if dir == "" {
		t.Skip("runs as the child of TestAcceptSurvivesDescriptorExhaustion")
	}
	tt := newTestTree(t)
	cfg := Config{ListenHost: "127.0.0.1", Port: freePort(t), PKIDir: t.TempDir(), ApplicationURI: "urn:tioga:test:server",
		TrustedDir: dir, MaxConnections: 1000, MaxConnectionsPerHost: 1000, OpenTimeout: time.Hour}
	// log lines the parent waits for go to stdout
	cfg.Logger = zerolog.New(os.Stdout)
	srv, err := NewServer(tt.tree, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	lim := uint64(len(fds) + 40)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ENDPOINT %s NS %d\n", srv.Endpoint(), srv.NamespaceIndex())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
}

// TestQueryWithoutDataBadNoData: a query the registry cannot answer yet
// (frame-spots before any series) answers BadNoData, not
// BadInternalError, and the reason reaches the client's diagnostics.
func TestQueryWithoutDataBadNoData(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	tioga, spotList := h.nodeID("/P14/rideau/tioga"), h.nodeID("/P14/rideau/tioga/spot-list")
	if r := callMethod(t, c, tioga, spotList, int32(noDataFrame)); r.StatusCode != ua.StatusBadNoData {
		t.Fatalf("query without data: %v, want BadNoData", r.StatusCode)
	}
	// the text, as a client asking for diagnostics receives it
	_, err := h.srv.callOne(context.Background(), &session{}, &ua.CallMethodRequest{ObjectID: tioga, MethodID: spotList,
		InputArguments: []*ua.Variant{ua.MustVariant(int32(noDataFrame))}}, anonymous)
	if d := diagnostic(err); !strings.Contains(d.AdditionalInfo, "no series has been received yet") {
		t.Fatalf("diagnostic %q", d.AdditionalInfo)
	}
}

// TestStandardMethodArgumentsReadable: namespace 0's FindAlias argument
// nodes (and every other standard variable) answer their Variable
// attributes; gopcua's node-set import left them all BadAttributeIdInvalid.
func TestStandardMethodArgumentsReadable(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	in := ua.NewNumericNodeID(0, id.Aliases_FindAlias_InputArguments)
	read := func(n *ua.NodeID, a ua.AttributeID) any {
		t.Helper()
		v := readValues(t, c, &ua.ReadValueID{NodeID: n, AttributeID: a})[0]
		if v.Status != ua.StatusOK {
			t.Fatalf("%v attribute %d: %v", n, a, v.Status)
		}
		return v.Value.Value()
	}
	if dt := read(in, ua.AttributeIDDataType).(*ua.NodeID); dt.IntID() != id.Argument {
		t.Errorf("DataType %v, want Argument (i=296)", dt)
	}
	if r := read(in, ua.AttributeIDValueRank).(int32); r != 1 {
		t.Errorf("ValueRank %d, want 1", r)
	}
	if d := read(in, ua.AttributeIDArrayDimensions).([]uint32); len(d) != 1 || d[0] != 2 {
		t.Errorf("ArrayDimensions %v, want [2]", d)
	}
	if a := read(in, ua.AttributeIDAccessLevel).(byte); a&byte(ua.AccessLevelTypeCurrentRead) == 0 {
		t.Errorf("AccessLevel %#x, want readable", a)
	}
	objs := read(in, ua.AttributeIDValue).([]*ua.ExtensionObject)
	var names []string
	for _, o := range objs {
		names = append(names, o.Value.(*ua.Argument).Name)
	}
	if strings.Join(names, ",") != "AliasNameSearchPattern,ReferenceTypeFilter" {
		t.Errorf("FindAlias InputArguments %v", names)
	}
	out := ua.NewNumericNodeID(0, id.Aliases_FindAlias_OutputArguments)
	if objs := read(out, ua.AttributeIDValue).([]*ua.ExtensionObject); len(objs) != 1 {
		t.Errorf("FindAlias OutputArguments: %d, want 1", len(objs))
	}
	// a standard variable without a value in the node set: a null value
	if v := read(ua.NewNumericNodeID(0, id.ServerType_ServerArray), ua.AttributeIDValue); v != nil {
		t.Logf("ServerType.ServerArray = %v", v)
	}
}
