package tine

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"tioga/adapters/tine/internal/sockbuf"
	"tioga/device"
	"tioga/properties"
	"tioga/sim/fixtures"
)

// refTree is the device tree of the capture's reference server (PeerServer
// in tine.jar 4.5.6): /TEST/TIOGA.SIM/tioga, equipment module TIOGA, with
// the six properties and values INDEX.md and client-output.txt show.
type refTree struct {
	tree                                 *device.Tree
	dev                                  *device.Device
	frameCount, speed, status, threshold *properties.Property
	dozor, big                           *properties.Property
}

func newRefTree(t testing.TB) *refTree {
	t.Helper()
	r := &refTree{tree: device.NewTree()}
	srv := device.NewServer("TEST", "TIOGA.SIM", "TIOGA", "Tioga reference test server")
	r.dev = srv.MustAdd(device.New("tioga", "EIGER stream analysis (test)"))
	r.speed = r.dev.Add(properties.Spec{Name: "average-speed", Description: "[0:1000 Hz]average frame rate", Elem: properties.Float32, Access: properties.Read})
	r.big = r.dev.Add(properties.Spec{Name: "big-array", Description: "[0:50000]large float spectrum", Elem: properties.Float32, Shape: properties.Array, MaxLen: 100000, Access: properties.Read})
	r.dozor = r.dev.Add(properties.Spec{Name: "dozor-pass", Description: "dozor pass records (img,spots,score,res)", Elem: properties.Float32,
		Shape: properties.Records, Width: 4, MaxLen: 8, Access: properties.Read, Events: true})
	r.frameCount = r.dev.Add(properties.Spec{Name: "frame-count", Description: "[0:1000000 frames]number of frames seen", Elem: properties.Int32, Access: properties.Read})
	r.status = r.dev.Add(properties.Spec{Name: "status", Description: "server status text", Elem: properties.Text, MaxLen: 64, Access: properties.Read})
	r.threshold = r.dev.Add(properties.Spec{Name: "threshold", Description: "[0:10]detection threshold", Elem: properties.Float64,
		Access: properties.Read | properties.Write, Limits: &properties.Limits{Min: 0, Max: 10}})
	if err := r.tree.Add(srv); err != nil {
		t.Fatal(err)
	}
	r.speed.SetFloat(12.5)
	big := make([]float32, 100000)
	for i := range big {
		big[i] = float32(i) * 0.5
	}
	if err := r.big.Set(properties.Float32s(big)); err != nil {
		t.Fatal(err)
	}
	rec := make([]float32, 0, 32)
	for i := 0; i < 8; i++ {
		rec = append(rec, float32(i), float32(10*i+1), 0.25*float32(i), 1.5+float32(i))
	}
	if err := r.dozor.Set(properties.Float32Records(4, rec)); err != nil {
		t.Fatal(err)
	}
	r.status.SetText("RUNNING")
	r.threshold.SetFloat(0.5)
	r.frameCount.SetInt32(1)
	return r
}

// tick makes frame-count count up every period, as the reference server's
// did (every 500 ms), until the test ends.
func (r *refTree) tick(t testing.TB, period time.Duration) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(period)
		defer tk.Stop()
		n := int32(1)
		for {
			select {
			case <-tk.C:
				n++
				r.frameCount.SetInt32(n)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// startServer runs a server for tree on an ephemeral loopback port until
// the test ends.
func startServer(t testing.TB, tree *device.Tree, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1"
	}
	if cfg.UDPPort == 0 {
		cfg.UDPPort = -1
	}
	if cfg.TCP && cfg.TCPPort == 0 {
		cfg.TCPPort = -1
	}
	cfg.Logger = testLogger(t)
	s, err := NewServer(tree, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if st := s.Stats(); st.Panics != 0 {
			t.Errorf("%d requests panicked", st.Panics)
		}
	})
	return s
}

func testLogger(t testing.TB) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

// udpClient is a raw UDP socket on loopback speaking to the server.
type udpClient struct {
	t    testing.TB
	conn *net.UDPConn
	to   netip.AddrPort
	buf  []byte
}

func newUDPClient(t testing.TB, s *Server) *udpClient {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	sockbuf.Raise(c, 8<<20, 0)
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, conn: c, to: s.Addr().(*net.UDPAddr).AddrPort(), buf: make([]byte, 1<<16)}
}

func (c *udpClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(b, c.to); err != nil {
		c.t.Fatal(err)
	}
}

// recv returns the next datagram, or nil after timeout.
func (c *udpClient) recv(timeout time.Duration) []byte {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := c.conn.ReadFromUDPAddrPort(c.buf)
	if err != nil {
		return nil
	}
	return append([]byte(nil), c.buf[:n]...)
}

// timelineEntry is one captured datagram of a step, in capture order.
type timelineEntry struct {
	file string
	req  bool
}

var (
	stepRe  = regexp.MustCompile(`^## (\S+)`)
	entryRe = regexp.MustCompile("^- `([^`]+\\.bin)`")
)

// captureTimeline reads INDEX.md: every step with its datagrams in the
// order they crossed the wire.
func captureTimeline(t testing.TB) (steps []string, timeline map[string][]timelineEntry) {
	t.Helper()
	f, err := os.Open(fixtures.Path(t, "tine", "INDEX.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	timeline = map[string][]timelineEntry{}
	step := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := stepRe.FindStringSubmatch(sc.Text()); m != nil {
			step = m[1]
			steps = append(steps, step)
			continue
		}
		if m := entryRe.FindStringSubmatch(sc.Text()); m != nil && step != "" {
			timeline[step] = append(timeline[step], timelineEntry{file: m[1], req: strings.Contains(m[1], ".req")})
		}
	}
	if len(steps) != 22 {
		t.Fatalf("INDEX.md: %d steps, want 22", len(steps))
	}
	return steps, timeline
}

func mustRead(t testing.TB, name string) []byte { return fixtures.Read(t, "tine", name) }
