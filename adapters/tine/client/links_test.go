package client_test

import (
	"net"
	"testing"
	"time"

	"tioga/adapters/tine"
	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/properties"
)

// TestPollLink: a POLL link delivers every interval, its counter counting
// down by one from 60 x m + r; the client renews it (the server resets the
// counter) and CANCEL ends it at the server.
func TestPollLink(t *testing.T) {
	r := newRig(t, tine.Config{})
	c := r.dial(t, client.Options{})
	ctx := ctxT(t)
	r.frameCount.SetInt32(5)
	l, err := c.Attach(ctx, client.Request{Address: tioga("frame-count"), Format: wire.Int32, Size: 1}, wire.Poll, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	first := recvUpdate(t, l, time.Second)
	if first.Err != nil || first.Data.String() != "5" || first.Reason != wire.XferPollChanged || first.Counter < 3000 || first.Counter >= 3100 {
		t.Fatalf("first delivery: %+v", first)
	}
	prev := first.Counter
	start := time.Now()
	for i := 0; i < 10; i++ {
		u := recvUpdate(t, l, time.Second)
		if u.Counter != prev-1 || u.Reason != wire.XferSingle || u.Data.String() != "5" {
			t.Fatalf("delivery %d: counter %d after %d, reason %#x, %s", i, u.Counter, prev, u.Reason, u.Data)
		}
		prev = u.Counter
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("10 deliveries at 20 ms took only %s", el)
	}
	r.frameCount.SetInt32(6)
	for {
		u := recvUpdate(t, l, time.Second)
		if u.Data.String() == "6" {
			if u.Reason != wire.XferPollChanged {
				t.Errorf("changed value delivered with reason %#x", u.Reason)
			}
			break
		}
	}
	eventually(t, time.Second, "links at the server", func() bool { return r.srv.Stats().Links == 2 }) // + the watchdog
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "CANCEL of the link and the watchdog", func() bool { return r.srv.Stats().Links == 0 })
	for range l.C {
	}
}

// TestDataChangeLink: deliveries when the value changes by more than the
// tolerance (and no more often than the interval), heartbeats otherwise,
// and the counter stays up because the client acknowledges.
func TestDataChangeLink(t *testing.T) {
	r := newRig(t, tine.Config{Heartbeat: 300 * time.Millisecond})
	c := r.dial(t, client.Options{})
	ctx := ctxT(t)
	l, err := c.Attach(ctx, client.Request{Address: tioga("average-speed"), Format: wire.Float, Size: 1}, wire.DataChange, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	u := recvUpdate(t, l, time.Second)
	if u.Data.String() != "12.5" || u.Reason != wire.XferFirst || u.Counter != 10 {
		t.Fatalf("first delivery %+v", u)
	}
	r.speed.SetFloat(12.8) // within the tolerance (0.5)
	r.speed.SetFloat(14)
	u = recvUpdate(t, l, time.Second)
	if u.Data.String() != "14" || (u.Reason != wire.XferUpdate && u.Reason != wire.XferPollChanged) {
		t.Fatalf("change delivered as %+v", u)
	}
	// Nothing changes: a heartbeat with the value after Heartbeat.
	t0 := time.Now()
	u = recvUpdate(t, l, time.Second)
	if u.Data.String() != "14" || u.Reason != wire.XferKeepAlive || time.Since(t0) < 200*time.Millisecond {
		t.Fatalf("heartbeat %+v after %s", u, time.Since(t0))
	}
	// Bursts are coalesced to one delivery per interval, the last value.
	for i := 0; i < 50; i++ {
		r.speed.SetFloat(20 + float64(i))
	}
	deadline := time.After(time.Second)
	n := 0
	for last := ""; last != "69"; n++ {
		select {
		case u := <-l.C:
			last = u.Data.String()
		case <-deadline:
			t.Fatal("last value of the burst never delivered")
		}
	}
	if n > 3 {
		t.Errorf("a burst of 50 changes took %d deliveries", n)
	}
	st := r.srv.Stats()
	if st.Renewals == 0 || st.LinksExpired != 0 {
		t.Errorf("renewals %d, expired %d", st.Renewals, st.LinksExpired)
	}
}

// TestEventSeriesOfDozorPass: an EVENT subscriber receives each batch of
// new dozor-pass records while a simulated series exports every 300 ms, and
// at the end the complete array once more (multi-block), from which it can
// tell the series is done. A second subscriber attaching mid-series gets
// the records so far first.
func TestEventSeriesOfDozorPass(t *testing.T) {
	r := newRig(t, tine.Config{})
	c := r.dial(t, client.Options{})
	ctx := ctxT(t)
	req := client.Request{Address: tioga("dozor-pass"), Format: wire.Float, Size: 4 * 2_000_000}
	l, err := c.Attach(ctx, req, wire.Event, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if u := recvUpdate(t, l, time.Second); u.Reason != wire.XferFirst || u.Data.Len() != 0 {
		t.Fatalf("attach delivery %+v", u)
	}
	const batches, perBatch = 6, 250
	var all []float32
	go func() {
		tk := time.NewTicker(300 * time.Millisecond)
		defer tk.Stop()
		for b := 0; b < batches; b++ {
			<-tk.C
			batch := make([]float32, 0, perBatch*4)
			for i := 0; i < perBatch; i++ {
				f := float32(b*perBatch + i)
				batch = append(batch, f, float32(int(f)%17), f/1000, 2.5)
			}
			all = append(all, batch...)
			_ = r.dozor.Set(properties.Float32Records(4, append([]float32(nil), all...)))
			r.dozor.Emit(properties.Float32Records(4, batch))
		}
		<-tk.C
		r.dozor.Emit(r.dozor.Value()) // series end: the whole array once more
	}()
	var got []float64
	var late *client.Link
	for b := 0; b < batches; b++ {
		u := recvUpdate(t, l, 2*time.Second)
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		xs, _ := u.Data.Floats()
		if len(xs) != perBatch*4 || xs[0] != float64(b*perBatch) {
			t.Fatalf("batch %d: %d values starting %v", b, len(xs), xs[:1])
		}
		got = append(got, xs...)
		if b == 2 {
			c2 := r.dial(t, client.Options{})
			if late, err = c2.Attach(ctx, req, wire.Event, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			if u := recvUpdate(t, late, time.Second); u.Data.Len() != 3*perBatch*4 {
				t.Fatalf("late subscriber's first delivery: %d values", u.Data.Len())
			}
		}
	}
	final := recvUpdate(t, l, 2*time.Second)
	xs, _ := final.Data.Floats()
	if len(xs) != batches*perBatch*4 || final.Blocks != (len(xs)*4+1423)/1424 {
		t.Fatalf("final array: %d values in %d blocks", len(xs), final.Blocks)
	}
	for i := range xs {
		if xs[i] != got[i] {
			t.Fatalf("final array differs from the batches at %d", i)
		}
	}
	if rows := len(got) / 4; rows != batches*perBatch {
		t.Fatalf("%d records accumulated", rows)
	}
	for i := 0; i < batches-3; i++ {
		if u := recvUpdate(t, late, 2*time.Second); u.Data.Len() != perBatch*4 {
			t.Fatalf("late subscriber batch: %d values", u.Data.Len())
		}
	}
	if u := recvUpdate(t, late, 2*time.Second); u.Data.Len() != batches*perBatch*4 {
		t.Fatalf("late subscriber final: %d values", u.Data.Len())
	}
	if l.Dropped() != 0 || c.Abandoned() != 0 {
		t.Errorf("dropped %d, abandoned %d", l.Dropped(), c.Abandoned())
	}
}

// TestEventOnPlainValue: EVENT on a property that does not emit batches
// delivers its changes.
func TestEventOnPlainValue(t *testing.T) {
	r := newRig(t, tine.Config{})
	c := r.dial(t, client.Options{})
	l, err := c.Attach(ctxT(t), client.Request{Address: tioga("frame-count"), Format: wire.Int32, Size: 1}, wire.Event, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	recvUpdate(t, l, time.Second)
	for i := int32(1); i <= 5; i++ {
		r.frameCount.SetInt32(i)
		if u := recvUpdate(t, l, time.Second); u.Data.String() != itoa(int64(i)) {
			t.Fatalf("event %d: %s", i, u.Data)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

// TestLinkErrors: attaching to what does not exist fails at once, and
// links cannot write.
func TestLinkErrors(t *testing.T) {
	r := newRig(t, tine.Config{})
	c := r.dial(t, client.Options{})
	ctx := ctxT(t)
	_, err := c.Attach(ctx, client.Request{Address: tioga("nope"), Format: wire.Int32, Size: 1}, wire.Poll, time.Second)
	wantCode(t, err, wire.IllegalProperty)
	_, err = c.Attach(ctx, client.Request{Address: tioga("frame-count"), Format: wire.Int32, Size: 1}, wire.Single, time.Second)
	if err == nil {
		t.Error("SINGLE accepted as a link mode")
	}
	eventually(t, 5*time.Second, "no links left", func() bool { return r.srv.Stats().Links == 0 })
}

// TestContractExpiry: links whose client stops renewing are dropped: a
// DATACHANGE link never acknowledged (raw requests, no client library) and
// an EVENT link likewise.
func TestContractExpiry(t *testing.T) {
	r := newRig(t, tine.Config{Heartbeat: 30 * time.Millisecond, LinkTimeout: 200 * time.Millisecond})
	conn, err := net.DialUDP("udp", nil, udpAddr(t, r.srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, mode := range []wire.Mode{wire.DataChange, wire.Event} {
		l := wire.Link{
			Subscription: wire.Subscription{MTU: wire.MaxInputData, NumBlocks: 1, BlockNum: 1, LinkID: uint16(i + 1), Mode: mode, BlockID: 3, PollingInterval: 20, StartTime: 1},
			Contract:     wire.Contract{Property: "frame-count", Device: "tioga", EqmName: rideau, SizeOut: 1, Access: wire.AccessRead, FormatIn: wire.Null, FormatOut: wire.Int32},
		}
		b, _ := wire.AppendRequest(nil, "ROOT", []wire.Link{l})
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 2*time.Second, "two links attached", func() bool { return r.srv.Stats().Links == 2 })
	// Deliveries count down 10, 9, 8, ... (nobody acknowledges).
	buf := make([]byte, 2048)
	seen := map[uint16][]uint16{}
	for len(seen[1]) < 4 {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		blocks, _ := wire.ParseReply(buf[:n], nil)
		for _, blk := range blocks {
			seen[blk.Header.SubID] = append(seen[blk.Header.SubID], blk.Header.Counter)
		}
	}
	if c := seen[1]; c[0] != 10 || c[1] != 9 || c[2] != 8 {
		t.Errorf("unacknowledged counters %v, want 10 9 8 ...", c)
	}
	eventually(t, 3*time.Second, "links expired", func() bool { st := r.srv.Stats(); return st.Links == 0 && st.LinksExpired == 2 })
}

// TestWatchdogAndRestart: the client's watchdog link on SRVSTARTTIME
// notices a silent server (one link-timeout update per link) and a
// restarted one (a new start time), and attaches its links again.
func TestWatchdogAndRestart(t *testing.T) {
	r := newRig(t, tine.Config{})
	port := udpAddr(t, r.srv.Addr()).Port
	c := r.dial(t, client.Options{Watchdog: 100 * time.Millisecond, Timeout: 300 * time.Millisecond})
	ctx := ctxT(t)
	r.frameCount.SetInt32(1)
	l, err := c.Attach(ctx, client.Request{Address: tioga("frame-count"), Format: wire.Int32, Size: 1}, wire.DataChange, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	recvUpdate(t, l, time.Second)
	eventually(t, time.Second, "watchdog link attached", func() bool { return r.srv.Stats().Links == 2 })
	r.stop()
	// The server is gone: one link-timeout update.
	u := recvUpdate(t, l, 5*time.Second)
	if e, ok := u.Err.(*client.Error); !ok || e.Code != wire.LinkTimeout {
		t.Fatalf("silent server reported as %+v", u)
	}
	// A new server process on the same port (new start time): the client
	// attaches its links again by itself.
	time.Sleep(1100 * time.Millisecond) // SRVSTARTTIME has one-second resolution
	r.frameCount.SetInt32(77)
	r.start(t, tine.Config{UDPPort: port})
	u = recvUpdate(t, l, 5*time.Second)
	if u.Err != nil || u.Data.String() != "77" || u.Reason != wire.XferFirst {
		t.Fatalf("after restart: %+v", u)
	}
	r.frameCount.SetInt32(78)
	if u := recvUpdate(t, l, time.Second); u.Data.String() != "78" {
		t.Fatalf("after restart, change: %+v", u)
	}
}

// TestLinksOverTCP: the same link machinery over the TCP framing.
func TestLinksOverTCP(t *testing.T) {
	r := newRig(t, tine.Config{TCP: true})
	c := r.dial(t, client.Options{TCP: true})
	ctx := ctxT(t)
	l, err := c.Attach(ctx, client.Request{Address: tioga("status"), Format: wire.Text, Size: 64}, wire.DataChange, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if u := recvUpdate(t, l, time.Second); u.Data.String() != "idle" {
		t.Fatalf("%+v", u)
	}
	r.status.SetText("processing")
	if u := recvUpdate(t, l, time.Second); u.Data.String() != "processing" {
		t.Fatalf("%+v", u)
	}
	if err := c.Set(ctx, tioga("threshold"), mustNum(wire.Double, 3)); err != nil || r.threshold.Value().Float() != 3 {
		t.Fatalf("write over TCP: %v", err)
	}
	c.Close()
	eventually(t, time.Second, "TCP client gone", func() bool { st := r.srv.Stats(); return st.Links == 0 && st.Clients == 0 })
}
