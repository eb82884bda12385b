package client_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"tioga/adapters/tine"
	"tioga/adapters/tine/client"
	"tioga/device"
	"tioga/properties"
)

// rig is a Tioga-like device tree served by a real TINE server on a
// loopback port: /P14/rideau/tioga (module RIDEAU) and
// /P14/image-tracker/img-tracker (module IMGTRK).
type rig struct {
	tree       *device.Tree
	srv        *tine.Server
	frameCount *properties.Property
	threshold  *properties.Property
	status     *properties.Property
	dozor      *properties.Property
	spectrum   *properties.Property
	speed      *properties.Property
	loadState  *properties.Property
	commands   chan int32
	cancel     context.CancelFunc
	done       chan error
}

const (
	rideau = "RIDEAU"
	imgtrk = "IMGTRK"
)

func tioga(p string) client.Address {
	return client.Address{Module: rideau, Device: "tioga", Property: p}
}
func tracker(p string) client.Address {
	return client.Address{Module: imgtrk, Device: "img-tracker", Property: p}
}

func newTree(r *rig) *device.Tree {
	tree := device.NewTree()
	rs := device.NewServer("P14", "rideau", rideau, "Tioga streaming server")
	d := rs.MustAdd(device.New("tioga", "EIGER stream analysis"))
	r.frameCount = d.Add(properties.Spec{Name: "frame-count", Description: "frames processed in the current series", Elem: properties.Int32, Access: properties.Read})
	r.speed = d.Add(properties.Spec{Name: "average-speed", Description: "frames per second over the last second", Elem: properties.Float32,
		Access: properties.Read, Units: "Hz", Tolerance: 0.5})
	r.threshold = d.Add(properties.Spec{Name: "threshold", Description: "spot detection threshold", Elem: properties.Float64,
		Access: properties.Read | properties.Write, Units: "sigma", Limits: &properties.Limits{Min: 0, Max: 10}})
	r.status = d.Add(properties.Spec{Name: "status", Description: "server status", Elem: properties.Text, MaxLen: 64, Access: properties.Read})
	r.dozor = d.Add(properties.Spec{Name: "dozor-pass", Description: "per-frame results [frame, spots, score, resolution]", Elem: properties.Float32,
		Shape: properties.Records, Width: 4, MaxLen: 2_000_000, Access: properties.Read, Events: true, Units: "Å"})
	r.spectrum = d.Add(properties.Spec{Name: "spectrum", Description: "a writable array", Elem: properties.Float32, Shape: properties.Array,
		MaxLen: 200_000, Access: properties.Read | properties.Write})
	r.commands = make(chan int32, 8)
	d.Add(properties.Spec{Name: "reset", Description: "restart the analysis", Elem: properties.Int32, Access: properties.Command}).
		OnWrite(func(_ context.Context, v properties.Value) error { r.commands <- v.Int32s[0]; return nil })
	spots := d.Add(properties.Spec{Name: "spot-list", Description: "spots of a frame [x, y, intensity]", Elem: properties.Float32,
		Shape: properties.Records, Width: 3, MaxLen: 1000, Access: properties.Read, Arg: properties.Int32, ArgDescription: "frame number"})
	spots.OnQuery(func(_ context.Context, arg properties.Value) (properties.Value, error) {
		n := arg.Int()
		if n < 0 {
			return properties.Value{}, fmt.Errorf("%w: frame %d", properties.ErrOutOfRange, n)
		}
		return properties.Float32Records(3, []float32{float32(n), 1, 100, float32(n), 2, 200}), nil
	})
	ts := device.NewServer("P14", "image-tracker", imgtrk, "image tracker")
	td := ts.MustAdd(device.New("img-tracker", "shows the best frames in ADXV"))
	r.loadState = td.Add(properties.Spec{Name: "load-state", Description: "tracking enabled", Elem: properties.Bool, Access: properties.Read | properties.Write})
	for _, s := range []*device.Server{rs, ts} {
		if err := tree.Add(s); err != nil {
			panic(err)
		}
	}
	if err := tree.Alias(rs, "tioga"); err != nil {
		panic(err)
	}
	r.status.SetText("idle")
	r.threshold.SetFloat(0.5)
	r.speed.SetFloat(12.5)
	return tree
}

// newRig starts a server for a fresh tree. cfg's ports default to
// ephemeral loopback ports.
func newRig(t testing.TB, cfg tine.Config) *rig {
	t.Helper()
	r := &rig{}
	r.tree = newTree(r)
	r.start(t, cfg)
	t.Cleanup(r.stop)
	return r
}

func (r *rig) start(t testing.TB, cfg tine.Config) {
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
	cfg.Logger = logger(t)
	srv, err := tine.NewServer(r.tree, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.srv, r.cancel, r.done = srv, cancel, make(chan error, 1)
	go func() { r.done <- srv.Run(ctx) }()
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

func logger(t testing.TB) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	}
	return zerolog.Nop()
}

// dial connects a client to the rig's server.
func (r *rig) dial(t testing.TB, opts client.Options) *client.Client {
	t.Helper()
	addr := r.srv.Addr().String()
	if opts.TCP {
		addr = r.srv.TCPAddr().String()
	}
	if opts.User == "" {
		opts.User = "operator"
	}
	c, err := client.Dial(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recvUpdate waits for the next update of a link.
func recvUpdate(t testing.TB, l *client.Link, within time.Duration) client.Update {
	t.Helper()
	select {
	case u, ok := <-l.C:
		if !ok {
			t.Fatal("link channel closed")
		}
		return u
	case <-time.After(within):
		t.Fatalf("no update within %s", within)
	}
	return client.Update{}
}

// eventually polls cond until it holds or the time is up.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func udpAddr(t testing.TB, a net.Addr) *net.UDPAddr {
	t.Helper()
	u, ok := a.(*net.UDPAddr)
	if !ok {
		t.Fatalf("%v is not UDP", a)
	}
	return u
}
