package tracker

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"

	"tioga/device/contract"
	"tioga/driver/adxv"
	fake "tioga/sim/adxv"
)

// wait bounds every wait of these tests. It only guards against a hang:
// the tests wait for conditions (commands received, counters, property
// values), never for a time.
const wait = 15 * time.Second

// rig is a tracker wired to a device, a running scheduler and the
// simulator's fake ADXV over TCP on 127.0.0.1.
type rig struct {
	t     *testing.T
	dev   *contract.Tracker
	sched gocron.Scheduler
	tr    *Tracker
	adxv  *fake.Listener // nil when the test starts without ADXV
	port  int
}

type rigOption func(*Config)

func keepOpen(c *Config) { c.ADXV.KeepOpen = true }

// newRig starts a tracker with a 20 ms display period; withADXV says
// whether the fake viewer is listening from the start.
func newRig(t *testing.T, withADXV bool, opts ...rigOption) *rig {
	t.Helper()
	r := &rig{t: t, dev: contract.NewTracker()}
	if withADXV {
		r.adxv = r.listen("127.0.0.1:0")
		r.port = r.adxv.Port()
	} else {
		r.port = freePort(t)
	}
	s := newScheduler(t)
	r.sched = s
	cfg := Config{
		ADXV: adxv.Config{Host: "127.0.0.1", Port: r.port,
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond},
		DisplayPeriod: 20 * time.Millisecond,
		QueueSize:     10,
	}
	for _, o := range opts {
		o(&cfg)
	}
	tr, err := New(r.dev, s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.tr = tr
	t.Cleanup(func() { tr.Close() })
	return r
}

// newScheduler starts a gocron scheduler for the test.
func newScheduler(tb testing.TB) gocron.Scheduler {
	tb.Helper()
	s, err := gocron.NewScheduler()
	if err != nil {
		tb.Fatal(err)
	}
	s.Start()
	tb.Cleanup(func() { s.Shutdown() })
	return s
}

func (r *rig) listen(addr string) *fake.Listener {
	r.t.Helper()
	l, err := fake.Listen(addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { l.Close() })
	return l
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// until polls cond (cheap reads of counters and properties) until it holds.
func (r *rig) until(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s (status %q, stats %+v)", what, r.status(), r.tr.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *rig) status() string { return r.dev.Status.Value().Text }

func (r *rig) waitStatus(want string) {
	r.t.Helper()
	r.until("status "+want, func() bool { return r.status() == want })
}

// periods waits until the display job has run n more times.
func (r *rig) periods(n uint64) {
	r.t.Helper()
	from := r.tr.Stats().Displays
	r.until(fmt.Sprintf("%d display periods", n), func() bool { return r.tr.Stats().Displays >= from+n })
}

// waitImage waits until ADXV was told to load path, and returns every
// load_image path received so far.
func (r *rig) waitImage(l *fake.Listener, path string) []string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := l.WaitFor(ctx, func(cs []fake.Command) bool {
		for _, c := range cs {
			if c.Line == "load_image "+path {
				return true
			}
		}
		return false
	})
	if err != nil {
		r.t.Fatalf("ADXV never loaded %s; it loaded %q (status %q, stats %+v)", path, l.Images(), r.status(), r.tr.Stats())
	}
	return l.Images()
}

// waitShown waits until the shown property says path (ADXV took it).
func (r *rig) waitShown(path string) {
	r.t.Helper()
	r.until("shown "+path, func() bool { return r.dev.Shown.Value().Text == path })
}

func path(series int64, frame int) string {
	return fmt.Sprintf("/data/p14/sample/s%d_1_%05d.cbf.gz", series, frame+1)
}

func frame(series int64, i int, score float32, xy ...float32) Frame {
	return Frame{Series: series, Index: i, Path: path(series, i), Score: score, Resolution: 2.5, Spots: len(xy) / 2, SpotXY: xy}
}
