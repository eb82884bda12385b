// Tests of the connection patches (tioga): connection limits, the
// OpenSecureChannel deadline, the Hello buffer minimum and the channel
// closed hook.
package server_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

func startPlainServer(t *testing.T, opts ...server.Option) (*server.Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	opts = append([]server.Option{
		server.EndPoint("127.0.0.1", port),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
	}, opts...)
	s := server.New(opts...)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return s, "127.0.0.1:" + strconv.Itoa(port)
}

func uacpMsg(typ string, body []byte) []byte {
	b := append([]byte(typ), 0, 0, 0, 0)
	b = append(b, body...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	return b
}

func hello(bufSize uint32, url string) []byte {
	var b []byte
	for _, v := range []uint32{0, bufSize, bufSize, 0, 0} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(url)))
	return uacpMsg("HELF", append(b, url...))
}

// readMsg reads one UACP message and returns its type and body.
func readMsg(t *testing.T, c net.Conn) (string, []byte) {
	t.Helper()
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("read: %v", err)
	}
	body := make([]byte, binary.LittleEndian.Uint32(hdr[4:])-8)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(hdr[:4]), body
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func wantError(t *testing.T, c net.Conn, want ua.StatusCode) {
	t.Helper()
	typ, body := readMsg(t, c)
	if typ != "ERRF" || ua.StatusCode(binary.LittleEndian.Uint32(body)) != want {
		t.Fatalf("got %s %x, want ERRF %v", typ, body, want)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection not closed after the error: %v", err)
	}
}

func TestHelloBufferMinimum(t *testing.T) {
	_, addr := startPlainServer(t)
	c := dialRaw(t, addr)
	c.Write(hello(8191, "opc.tcp://"+addr))
	wantError(t, c, ua.StatusBadConnectionRejected)

	c = dialRaw(t, addr)
	c.Write(hello(8192, "opc.tcp://"+addr))
	if typ, _ := readMsg(t, c); typ != "ACKF" {
		t.Fatalf("8192-byte buffers: got %s, want ACKF", typ)
	}
}

func TestConnectionLimits(t *testing.T) {
	s, addr := startPlainServer(t, server.ConnectionLimits(3, 2))
	// two from 127.0.0.1 are admitted (handshake completes), the third is
	// refused by the per-address limit
	for i := 0; i < 2; i++ {
		c := dialRaw(t, addr)
		c.Write(hello(65535, "opc.tcp://"+addr))
		if typ, _ := readMsg(t, c); typ != "ACKF" {
			t.Fatalf("connection %d: got %s", i, typ)
		}
	}
	c := dialRaw(t, addr)
	wantError(t, c, ua.StatusBadTCPNotEnoughResources)
	// another loopback address counts separately, up to the total
	c2, err := net.Dial("tcp", "127.0.0.2:"+addr[len("127.0.0.1:"):])
	if err != nil {
		t.Skipf("127.0.0.2 not reachable: %v", err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	c2.Write(hello(65535, "opc.tcp://"+addr))
	if typ, _ := readMsg(t, c2); typ != "ACKF" {
		t.Fatalf("other address: got %s", typ)
	}
	if open, refused := s.ConnectionStats(); open != 3 || refused != 1 {
		t.Errorf("ConnectionStats = %d open, %d refused; want 3, 1", open, refused)
	}
}

func TestOpenTimeoutAndChannelClosed(t *testing.T) {
	closed := make(chan *uasc.SecureChannel, 1)
	_, addr := startPlainServer(t, server.OpenTimeout(200*time.Millisecond, time.Minute),
		server.ChannelClosed(func(sc *uasc.SecureChannel) { closed <- sc }))
	c := dialRaw(t, addr)
	c.Write(hello(65535, "opc.tcp://"+addr))
	if typ, _ := readMsg(t, c); typ != "ACKF" {
		t.Fatalf("got %s, want ACKF", typ)
	}
	// silent after the handshake: closed with BadTimeout
	wantError(t, c, ua.StatusBadTimeout)
	select {
	case sc := <-closed:
		if sc == nil {
			t.Fatal("ChannelClosed called with nil")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ChannelClosed not called")
	}
}
