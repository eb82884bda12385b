package opcua

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// Inputs that crashed gopcua's Variant decoder (v0.9.0 and v0.9.1) before
// any code of this package ran; the patched copy in third_party/gopcua refuses
// them. The first three are FuzzWriteValue's saved crashers.
var hostileVariants = []struct {
	name string
	in   []byte
	// the status the decoder returns (zero: gopcua's unbalanced-array
	// error) and the one the server sends before closing the channel
	want, sent ua.StatusCode
	// what v0.9.1 did with it
	was string
}{
	{"8470b4939c139242", []byte("\x86000\x86"), ua.StatusBadEncodingLimitsExceeded, ua.StatusBadEncodingLimitsExceeded,
		"Int32 array of length -2043203536: reflect.MakeSlice panics, the process dies"},
	{"808ab2dd2d523bcc", []byte("\xca\x00\x00\x00\x00?\x00\x000\x00\x00\x00@@\x00\x00\x80y\x02\x00\x00"), ua.StatusBadEncodingLimitsExceeded, ua.StatusBadEncodingLimitsExceeded,
		"805306431 array dimensions: allocates 3 GiB"},
	{"2810518bf08bc330", []byte("\xca\x00\x00\x00\x00?\x00\x00@\x00\x00\x00@@\x00\x00\x80l\x02\x00\x00"), ua.StatusBadEncodingLimitsExceeded, ua.StatusBadEncodingLimitsExceeded,
		"1073741887 array dimensions: allocates 4 GiB"},
	{"dimensions wrap to the length", hostileWrap(), 0, ua.StatusBadDecodingError,
		"dimensions 83 x 51746594 wrap to 6 in int32: split() loops until out of memory"},
}

// hostileWrap is a Byte array of 6 elements whose dimensions multiply to
// 2^32 + 6.
func hostileWrap() []byte {
	b := []byte{ua.VariantArrayValues | ua.VariantArrayDimensions | byte(ua.TypeIDByte)}
	b = binary.LittleEndian.AppendUint32(b, 6)
	b = append(b, 1, 2, 3, 4, 5, 6)
	for _, d := range []uint32{2, 83, 51746594} {
		b = binary.LittleEndian.AppendUint32(b, d)
	}
	return b
}

// TestHostileVariantsRefused: the crafted Variants decode to an error,
// allocating next to nothing.
func TestHostileVariantsRefused(t *testing.T) {
	for _, h := range hostileVariants {
		var err error
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = new(ua.Variant).Decode(h.in)
		runtime.ReadMemStats(&after)
		if err == nil || (h.want != 0 && !errors.Is(err, h.want)) {
			t.Errorf("%s: error %v, want %v", h.name, err, h.want)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("%s: allocated %d bytes", h.name, n)
		}
	}
}

// variantMarker is the Variant a test client writes; the proxy replaces its
// encoding with a hostile one on the wire.
var variantMarker = ua.MustVariant("tioga: replace this Variant on the wire")

// TestHostileWriteOverSession sends each hostile Variant as the value of a
// Write in a real session: a gopcua client writes a marker value through a
// TCP proxy that swaps the marker's encoding for the hostile bytes (the
// None security policy neither signs nor encrypts, so the server takes the
// message as sent). The server must refuse the message, tell the client
// why (an Error message with the status) and close that connection, write
// nothing and go on serving everyone else.
func TestHostileWriteOverSession(t *testing.T) {
	h := startHarness(t, nil)
	marker, err := variantMarker.Encode()
	if err != nil {
		t.Fatal(err)
	}
	spot := h.nodeID("/P14/rideau/tioga/spot-level")
	for _, hv := range hostileVariants {
		t.Run(hv.name, func(t *testing.T) {
			p := startRewritingProxy(t, net.JoinHostPort(h.cfg.ListenHost, strconv.Itoa(h.cfg.Port)), marker, hv.in)
			c := h.connectVia(p.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
				NodeID: spot, AttributeID: ua.AttributeIDValue,
				Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: variantMarker},
			}}})
			if got := p.rewrites.Load(); got != 1 {
				t.Fatalf("proxy rewrote %d messages, want 1", got)
			}
			if err == nil {
				t.Fatal("hostile write answered as if decoded")
			}
			// The last thing the server sent is the Error message.
			got := p.wait()
			i := bytes.LastIndex(got, []byte("ERRF"))
			if i < 0 || len(got) < i+12 || int(binary.LittleEndian.Uint32(got[i+4:])) != len(got)-i {
				t.Fatalf("server did not end with an Error message: % x", got[max(0, len(got)-64):])
			}
			if code := ua.StatusCode(binary.LittleEndian.Uint32(got[i+8:])); code != hv.sent {
				t.Fatalf("server sent %v, want %v", code, hv.sent)
			}
			t.Logf("client: %v; server sent %v (v0.9.1: %s)", err, hv.sent, hv.was)
		})
	}
	// The server still serves, and nothing was written.
	c := h.connect(ua.MessageSecurityModeNone, nil)
	v := readValues(t, c, &ua.ReadValueID{NodeID: spot, AttributeID: ua.AttributeIDValue})[0]
	if v.Status != ua.StatusOK || v.Value.Value() != 3.0 {
		t.Fatalf("spot-level after the hostile writes: %v %v", v.Status, v.Value.Value())
	}
	if st := h.srv.Stats(); st.Writes != 0 || st.WritesRefused != 0 || st.Panics != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// connectVia opens an anonymous session with the None policy through addr
// (a proxy in front of the server).
func (h *harness) connectVia(addr string) *opcua.Client {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, h.srv.Endpoint())
	if err != nil {
		h.t.Fatal(err)
	}
	ep, err := opcua.SelectEndpoint(eps, ua.SecurityPolicyURINone, ua.MessageSecurityModeNone)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := opcua.NewClient("opc.tcp://"+addr,
		opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous),
		opcua.AutoReconnect(false),
		opcua.RequestTimeout(5*time.Second))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		h.t.Fatalf("connect via %s: %v", addr, err)
	}
	h.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// rewritingProxy forwards one TCP connection to the server, replacing the
// first occurrence of a byte string in the client's MSG chunks (and fixing
// the chunk's size), and records what the server sends.
type rewritingProxy struct {
	addr     string
	rewrites atomic.Int32
	done     chan struct{}
	fromSrv  bytes.Buffer // written by the proxy until done
}

// wait returns what the server sent, once both sides have closed.
func (p *rewritingProxy) wait() []byte {
	<-p.done
	return p.fromSrv.Bytes()
}

func startRewritingProxy(t *testing.T, target string, from, to []byte) *rewritingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rewritingProxy{addr: l.Addr().String(), done: make(chan struct{})}
	t.Cleanup(func() {
		l.Close()
		<-p.done
	})
	go func() {
		defer close(p.done)
		client, err := l.Accept()
		if err != nil {
			return
		}
		defer client.Close()
		server, err := net.Dial("tcp", target)
		if err != nil {
			t.Error(err)
			return
		}
		defer server.Close()
		back := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.MultiWriter(client, &p.fromSrv), server)
			client.Close()
			close(back)
		}()
		for {
			hdr := make([]byte, 8)
			if _, err := io.ReadFull(client, hdr); err != nil {
				break
			}
			size := binary.LittleEndian.Uint32(hdr[4:])
			if size < 8 || size > 1<<24 {
				t.Errorf("proxy: chunk size %d", size)
				break
			}
			chunk := append(hdr, make([]byte, size-8)...)
			if _, err := io.ReadFull(client, chunk[8:]); err != nil {
				break
			}
			if string(chunk[:3]) == "MSG" && bytes.Contains(chunk, from) {
				chunk = bytes.Replace(chunk, from, to, 1)
				binary.LittleEndian.PutUint32(chunk[4:], uint32(len(chunk)))
				p.rewrites.Add(1)
			}
			if _, err := server.Write(chunk); err != nil {
				break
			}
		}
		server.Close()
		<-back
	}()
	return p
}

// TestSilentConnectionBlocksNobody: a client that connects and sends
// nothing does not keep the next one from connecting (gopcua read the
// Hello on its accept loop, so one silent client blocked all new ones).
// The handshake timeout is set far beyond the test's own timeouts so that
// only a handshake off the accept loop passes.
func TestSilentConnectionBlocksNobody(t *testing.T) {
	h := startHarness(t, func(c *Config) { c.HandshakeTimeout = time.Hour })
	silent, err := net.Dial("tcp", net.JoinHostPort(h.cfg.ListenHost, strconv.Itoa(h.cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c := h.connect(ua.MessageSecurityModeNone, nil)
	v := readValues(t, c, &ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/status"), AttributeID: ua.AttributeIDValue})[0]
	if v.Status != ua.StatusOK {
		t.Fatalf("read while a client is silent: %v", v.Status)
	}
	// The silent connection is still open: its hour is not up.
	if err := silent.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, err := silent.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("silent connection: %v, want still open", err)
	}
}

// TestSilentConnectionClosed: the server closes a connection that sends no
// Hello within Config.HandshakeTimeout.
func TestSilentConnectionClosed(t *testing.T) {
	h := startHarness(t, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	silent, err := net.Dial("tcp", net.JoinHostPort(h.cfg.ListenHost, strconv.Itoa(h.cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := silent.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := silent.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("silent connection read %d bytes, %v; want EOF", n, err)
	}
}

// TestResetDuringHandshake: a client that resets its connection before
// sending a Hello does not stop the server from accepting (gopcua took
// the handshake's read error for a closed listener and stopped accepting
// for good).
func TestResetDuringHandshake(t *testing.T) {
	h := startHarness(t, nil)
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", net.JoinHostPort(h.cfg.ListenHost, strconv.Itoa(h.cfg.Port)))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).SetLinger(0); err != nil { // close sends RST
			t.Fatal(err)
		}
		c.Close()
	}
	c := h.connect(ua.MessageSecurityModeNone, nil)
	v := readValues(t, c, &ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/status"), AttributeID: ua.AttributeIDValue})[0]
	if v.Status != ua.StatusOK {
		t.Fatalf("read after reset clients: %v", v.Status)
	}
}

// TestPartialChunkFloodRefused: a client that sends intermediate ('C')
// chunks of many different requests and never the final ones made gopcua
// buffer them all without bound. The patched copy holds at most a few
// messages' worth per channel and answers BadEncodingLimitsExceeded.
func TestPartialChunkFloodRefused(t *testing.T) {
	h := startHarness(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const chunks, pad = 400, 60 << 10 // 24 MB of partial messages
	fromSrv := make(chan []byte, 1)
	go func() {
		client, err := l.Accept()
		if err != nil {
			return
		}
		defer client.Close()
		server, err := net.Dial("tcp", net.JoinHostPort(h.cfg.ListenHost, strconv.Itoa(h.cfg.Port)))
		if err != nil {
			t.Error(err)
			return
		}
		defer server.Close()
		var got bytes.Buffer
		back := make(chan struct{})
		go func() { _, _ = io.Copy(io.MultiWriter(client, &got), server); close(back) }()
		for {
			hdr := make([]byte, 8)
			if _, err := io.ReadFull(client, hdr); err != nil {
				break
			}
			chunk := append(hdr, make([]byte, binary.LittleEndian.Uint32(hdr[4:])-8)...)
			if _, err := io.ReadFull(client, chunk[8:]); err != nil {
				break
			}
			if string(chunk[:3]) != "MSG" {
				if _, err := server.Write(chunk); err != nil {
					break
				}
				continue
			}
			// The first request of the session becomes a flood of
			// intermediate chunks, each of its own request id
			// (None policy: message header, channel id, token id,
			// sequence number, request id, body).
			for i := 0; i < chunks; i++ {
				c := append(append([]byte(nil), chunk...), make([]byte, pad)...)
				c[3] = 'C'
				binary.LittleEndian.PutUint32(c[4:], uint32(len(c)))
				binary.LittleEndian.PutUint32(c[16:], uint32(1000+i))
				binary.LittleEndian.PutUint32(c[20:], uint32(1000+i))
				if _, err := server.Write(c); err != nil {
					break // the server closed the channel: what we want
				}
			}
			break
		}
		server.(*net.TCPConn).CloseWrite()
		select {
		case <-back:
		case <-time.After(10 * time.Second):
		}
		fromSrv <- got.Bytes()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, h.srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	ep, err := opcua.SelectEndpoint(eps, ua.SecurityPolicyURINone, ua.MessageSecurityModeNone)
	if err != nil {
		t.Fatal(err)
	}
	c, err := opcua.NewClient("opc.tcp://"+l.Addr().String(), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous),
		opcua.AutoReconnect(false), opcua.RequestTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err == nil {
		c.Close(context.Background())
		t.Fatal("session created through the flood")
	}
	got := <-fromSrv
	i := bytes.LastIndex(got, []byte("ERRF"))
	if i < 0 || len(got) < i+12 {
		t.Fatalf("server did not answer the flood with an Error message: % x", got[max(0, len(got)-64):])
	}
	if code := ua.StatusCode(binary.LittleEndian.Uint32(got[i+8:])); code != ua.StatusBadEncodingLimitsExceeded {
		t.Fatalf("server sent %v, want BadEncodingLimitsExceeded", code)
	}
	// The server still serves.
	ok := h.connect(ua.MessageSecurityModeNone, nil)
	if v := readValues(t, ok, &ua.ReadValueID{NodeID: h.nodeID("/P14/rideau/tioga/spot-level"), AttributeID: ua.AttributeIDValue})[0]; v.Status != ua.StatusOK {
		t.Fatalf("read after the flood: %v", v.Status)
	}
}
