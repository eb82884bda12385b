package client_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"tioga/adapters/tine"
	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/properties"
)

// TestBatchIsOneUpdatePerLink: the pipeline publishes a series start as
// one batch (properties.Batch). A TINE client with a link on each of two
// of its values (frame-count standing for series-id, status for what goes
// with it) never sees a mixed snapshot, over many batches: each link gets
// at most one update per batch, the two updates of a batch carry the
// batch's one timestamp, and a read made on hearing frame-count k finds
// status of batch k or later, never of an earlier one.
func TestBatchIsOneUpdatePerLink(t *testing.T) {
	r := newRig(t, tine.Config{})
	c := r.dial(t, client.Options{})
	ctx := ctxT(t)
	r.frameCount.SetInt32(0)
	r.status.SetText("series 0")
	count, err := c.Attach(ctx, client.Request{Address: tioga("frame-count"), Format: wire.Int32, Size: 1}, wire.Event, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer count.Close()
	status, err := c.Attach(ctx, client.Request{Address: tioga("status"), Format: wire.Text, Size: 64}, wire.Event, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer status.Close()
	recvUpdate(t, count, 5*time.Second)
	recvUpdate(t, status, 5*time.Second)

	const batches = 100
	countAt := map[int32]time.Time{}
	statusAt := map[int32]time.Time{}
	lastCount, lastStatus := int32(0), int32(0)
	seriesOf := func(s string) int32 {
		var k int32
		if _, err := fmt.Sscanf(s, "series %d", &k); err != nil {
			t.Fatalf("status %q", s)
		}
		return k
	}
	take := func(u client.Update, isStatus bool) {
		t.Helper()
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		if isStatus {
			k := seriesOf(u.Data.Text())
			if k <= lastStatus {
				t.Fatalf("status went from series %d to %d: more than one update per batch", lastStatus, k)
			}
			lastStatus, statusAt[k] = k, u.Time
			return
		}
		k := int32(ints(t, u.Data)[0])
		if k <= lastCount {
			t.Fatalf("frame-count went from %d to %d: more than one update per batch", lastCount, k)
		}
		lastCount, countAt[k] = k, u.Time
		// What a client reads on hearing of batch k is batch k or later.
		d, err := c.Get(ctx, tioga("status"), wire.Text, 64)
		if err != nil {
			t.Fatal(err)
		}
		if j := seriesOf(d.Text()); j < k {
			t.Fatalf("mixed snapshot: frame-count %d, then status of series %d", k, j)
		}
	}
	waitCount := func(k int32) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for lastCount < k || lastStatus < k {
			select {
			case u := <-count.C:
				take(u, false)
			case u := <-status.C:
				take(u, true)
			case <-deadline:
				t.Fatalf("batch %d: frame-count %d, status series %d", k, lastCount, lastStatus)
			}
		}
	}
	for k := int32(1); k <= batches; k++ {
		properties.Batch(func() {
			r.frameCount.SetInt32(k)
			r.status.SetText(fmt.Sprintf("series %d", k))
		})
		if k%4 != 1 {
			waitCount(k) // else the next batch follows at once
		}
	}
	waitCount(batches)
	both := 0
	for k, tc := range countAt {
		if ts, ok := statusAt[k]; ok {
			both++
			if !ts.Equal(tc) {
				t.Errorf("batch %d: frame-count at %v, status at %v", k, tc, ts)
			}
		}
	}
	if both < batches/2 {
		t.Fatalf("only %d batches reached both links", both)
	}
	t.Logf("%d frame-count and %d status updates for %d batches", len(countAt), len(statusAt), batches)
}

// TestQualityReachesTINEClient: a value that is not good is still sent,
// with completion code data stale (156) or not initialized (152), the
// data flag, and the reason in the status text, to SINGLE reads and to
// links; good again, the code is 0.
func TestQualityReachesTINEClient(t *testing.T) {
	r := newRig(t, tine.Config{})
	c := r.dial(t, client.Options{})
	ctx := ctxT(t)
	req := client.Request{Address: tioga("threshold"), Format: wire.Double, Size: 1}
	l, err := c.Attach(ctx, req, wire.DataChange, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if u := recvUpdate(t, l, 5*time.Second); u.Err != nil || floats(t, u.Data)[0] != 0.5 {
		t.Fatalf("first: %+v", u)
	}

	r.threshold.SetQuality(properties.NoCommunication("SIMPLON http://det unreachable"))
	u := recvUpdate(t, l, 5*time.Second)
	var te *client.Error
	if !errors.As(u.Err, &te) || te.Code != wire.DataStale || u.Code&wire.CodeFlagPartial == 0 {
		t.Fatalf("link, source lost: code %#x err %v", uint16(u.Code), u.Err)
	}
	if te.Status != "data stale: SIMPLON http://det unreachable" || floats(t, u.Data)[0] != 0.5 {
		t.Fatalf("link, source lost: status %q data %v", te.Status, u.Data)
	}
	rep, err := c.Call(ctx, req) // the reply, and its code as an *Error
	if !errors.As(err, &te) || rep == nil {
		t.Fatalf("read, source lost: %v", err)
	}
	if rep.Code.Code() != wire.DataStale || !strings.Contains(rep.Status, "unreachable") || floats(t, rep.Data)[0] != 0.5 {
		t.Fatalf("read, source lost: %#x %q %v", uint16(rep.Code), rep.Status, rep.Data)
	}

	r.threshold.SetQuality(properties.NoValueYet("no series yet"))
	u = recvUpdate(t, l, 5*time.Second)
	if !errors.As(u.Err, &te) || te.Code != wire.NotInitialized || te.Status != "not initialized: no series yet" {
		t.Fatalf("link, no value yet: %v", u.Err)
	}

	r.threshold.SetFloat(0.75) // good again
	u = recvUpdate(t, l, 5*time.Second)
	if u.Err != nil || u.Code != wire.OK || floats(t, u.Data)[0] != 0.75 {
		t.Fatalf("good again: %#x %v %v", uint16(u.Code), u.Err, u.Data)
	}
	if d, err := c.Get(ctx, req.Address, wire.Double, 1); err != nil || floats(t, d)[0] != 0.75 {
		t.Fatalf("read, good again: %v %v", d, err)
	}
}

func ints(t *testing.T, d wire.Data) []int64 {
	t.Helper()
	v, err := d.Ints()
	if err != nil || len(v) == 0 {
		t.Fatalf("data %v: %v", d, err)
	}
	return v
}

func floats(t *testing.T, d wire.Data) []float64 {
	t.Helper()
	v, err := d.Floats()
	if err != nil || len(v) == 0 {
		t.Fatalf("data %v: %v", d, err)
	}
	return v
}
