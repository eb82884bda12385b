// Tests of the server handshake patched into this copy (see PATCHES.md).

package uacp

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func listen(t *testing.T, timeout time.Duration) *Listener {
	t.Helper()
	l, err := Listen(context.Background(), "opc.tcp://127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	l.SetHandshakeTimeout(timeout)
	t.Cleanup(func() { l.Close() })
	return l
}

func endpointOf(l *Listener) string {
	return "opc.tcp://" + l.Addr().String()
}

// silentClient connects and sends nothing.
func silentClient(t *testing.T, l *Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestHandshakeOffTheAcceptLoop: with AcceptConn and Handshake on its own
// goroutine, a client that connects and says nothing does not hold up the
// next one, and is closed after the handshake timeout.
func TestHandshakeOffTheAcceptLoop(t *testing.T) {
	l := listen(t, 2*time.Second)
	type result struct {
		remote string
		err    error
	}
	results := make(chan result, 2)
	go func() {
		for {
			c, err := l.AcceptConn()
			if err != nil {
				return
			}
			go func() {
				remote := c.RemoteAddr().String()
				err := l.Handshake(c)
				if err == nil {
					c.Close()
				}
				results <- result{remote, err}
			}()
		}
	}()

	silent := silentClient(t, l)
	// The silent client is accepted first; the second still gets its
	// Acknowledge, long before the silent one times out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, endpointOf(l))
	if err != nil {
		t.Fatalf("second client: %v", err)
	}
	defer c.Close()
	r := <-results
	if r.err != nil || r.remote != c.LocalAddr().String() {
		t.Fatalf("first handshake done: %s %v, want the second client's (%s)", r.remote, r.err, c.LocalAddr())
	}

	r = <-results
	var ne net.Error
	if r.remote != silent.LocalAddr().String() || !errors.As(r.err, &ne) || !ne.Timeout() {
		t.Fatalf("silent client's handshake: %s %v, want a timeout", r.remote, r.err)
	}
	// and the server closed it
	if err := silent.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := silent.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("silent client read %d bytes, %v; want EOF", n, err)
	}
}

// TestAcceptHandshakeTimeout: Accept, which reads the Hello itself, gives
// up on a silent client after the timeout instead of blocking for ever.
func TestAcceptHandshakeTimeout(t *testing.T) {
	l := listen(t, 200*time.Millisecond)
	silentClient(t, l)
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept(context.Background())
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Accept: %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still blocked by a silent client")
	}
}

// TestHandshakeClearsDeadline: after a handshake the connection has no
// deadline left (the secure channel would fail on its first idle period).
func TestHandshakeClearsDeadline(t *testing.T) {
	l := listen(t, 100*time.Millisecond)
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept(context.Background())
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := Dial(ctx, endpointOf(l))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv := <-accepted
	if srv == nil {
		t.FailNow()
	}
	defer srv.Close()
	time.Sleep(300 * time.Millisecond) // past the handshake timeout
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(srv, b); err != nil || string(b) != "ping" {
		t.Fatalf("read after the handshake timeout: %q %v", b, err)
	}
}
