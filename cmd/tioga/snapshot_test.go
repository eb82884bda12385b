package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/device/detectormodel"
	"tioga/sim"
	"tioga/sim/adxv"
)

// TestSeriesStartsAreSnapshots runs the assembled server against the
// simulated detector for many short series, each with another nimages,
// and watches series-id and nimages the way control systems do: a TINE
// client with an EVENT link on each, and a gopcua client with one
// subscription holding both. Neither ever sees a mixed snapshot: every
// series-id update comes with that series' nimages under the same
// timestamp (TINE: one update per link; OPC UA: in the same notification
// message), and what a TINE client reads on hearing of a new series-id is
// that series' nimages.
func TestSeriesStartsAreSnapshots(t *testing.T) {
	prof, _ := detectormodel.ByName("eiger500k")
	det, err := sim.Start(sim.Config{Profile: prof, NImages: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	viewer, err := adxv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	cfg := loopbackConfig(t, det, t.TempDir())
	cfg.Names.Detectors = append(cfg.Names.Detectors, "eiger500k")
	cfg.Pipeline.ExportPeriod = Duration(50 * time.Millisecond)
	cfg.Tracker.ADXVPort = viewer.Port()
	_, stop := startServer(t, cfg)
	defer stop()
	tctx, tcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer tcancel()

	// TINE: an EVENT link on each; on hearing a series-id, read nimages.
	tc, err := client.DialServer("127.0.0.1", cfg.TINE.PortOffset, client.Options{User: "TEST"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	addr := func(prop string) client.Address {
		return client.Address{Module: "TIOGA", Device: "tioga", Property: prop}
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := tc.Get(tctx, addr("status"), wire.Text, 64); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("server not answering over TINE: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	type seen struct {
		v    int64
		at   time.Time
		read int64 // TINE: nimages read on hearing series-id v
	}
	var mu sync.Mutex
	var tineIDs, tineN []seen
	idLink, err := tc.Attach(tctx, client.Request{Address: addr("series-id"), Format: wire.Int32, Size: 1}, wire.Event, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idLink.Close()
	nLink, err := tc.Attach(tctx, client.Request{Address: addr("nimages"), Format: wire.Int32, Size: 1}, wire.Event, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nLink.Close()
	first := func(d wire.Data) int64 {
		v, err := d.Ints()
		if err != nil || len(v) != 1 {
			return -1
		}
		return v[0]
	}
	go func() {
		for u := range idLink.C {
			if u.Err != nil {
				continue
			}
			s := seen{v: first(u.Data), at: u.Time, read: -1}
			if d, err := tc.Get(tctx, addr("nimages"), wire.Int32, 1); err == nil {
				s.read = first(d)
			}
			mu.Lock()
			tineIDs = append(tineIDs, s)
			mu.Unlock()
		}
	}()
	go func() {
		for u := range nLink.C {
			if u.Err == nil {
				mu.Lock()
				tineN = append(tineN, seen{v: first(u.Data), at: u.Time})
				mu.Unlock()
			}
		}
	}()

	// OPC UA: one subscription with both.
	var uc *opcua.Client
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// The OPC UA server may start after the TINE one.
		uc, err = opcua.NewClient(fmt.Sprintf("opc.tcp://127.0.0.1:%d", cfg.OPCUA.Port), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
		if err != nil {
			t.Fatal(err)
		}
		if err = uc.Connect(tctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OPC UA server not answering: %v", err)
		}
	}
	defer uc.Close(context.Background())
	ns, err := uc.FindNamespace(tctx, "urn:tioga:devices")
	if err != nil {
		t.Fatal(err)
	}
	notes := make(chan *opcua.PublishNotificationData, 1024)
	sub, err := uc.Subscribe(tctx, &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, notes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Monitor(tctx, ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(ua.NewStringNodeID(ns, "/P14/rideau/tioga/series-id"), ua.AttributeIDValue, 1),
		opcua.NewMonitoredItemCreateRequestWithDefaults(ua.NewStringNodeID(ns, "/P14/rideau/tioga/nimages"), ua.AttributeIDValue, 2)); err != nil {
		t.Fatal(err)
	}
	type message struct{ id, n *ua.DataValue }
	var msgs []message
	go func() {
		for note := range notes {
			dcn, ok := note.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			var m message
			for _, it := range dcn.MonitoredItems {
				if it.ClientHandle == 1 {
					m.id = it.Value
				} else {
					m.n = it.Value
				}
			}
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
		}
	}()

	// Short series, nimages cycling so that two in a row always differ.
	const series = 16
	nimages := map[int64]int64{}
	for k := 0; k < series; k++ {
		n := 1 + k%3
		if _, err := det.Server().Set("detector", "nimages", json.RawMessage(strconv.Itoa(n))); err != nil {
			t.Fatal(err)
		}
		id, err := det.RunSeries(tctx)
		if err != nil {
			t.Fatal(err)
		}
		nimages[int64(id)] = int64(n)
		waitUntil(t, "series "+strconv.Itoa(id)+" seen over TINE and OPC UA", func() bool {
			mu.Lock()
			defer mu.Unlock()
			idOK := len(tineIDs) > 0 && tineIDs[len(tineIDs)-1].v == int64(id)
			opcOK := false
			for i := len(msgs) - 1; i >= 0 && !opcOK; i-- {
				opcOK = msgs[i].id != nil && msgs[i].id.Value.Value() == int32(id)
			}
			return idOK && opcOK
		})
	}
	_ = sub.Cancel(tctx)
	idLink.Close()
	nLink.Close()
	mu.Lock()
	defer mu.Unlock()

	nAt := map[time.Time]int64{}
	for _, s := range tineN {
		nAt[s.at] = s.v
	}
	heard := map[int64]bool{} // heartbeats repeat a value: count series once
	for _, s := range tineIDs {
		want, ok := nimages[s.v]
		if !ok {
			continue // the value before the first series
		}
		firstHeard := !heard[s.v]
		heard[s.v] = true
		if got, ok := nAt[s.at]; !ok || got != want {
			t.Errorf("TINE: series-id %d at %v, nimages with that timestamp: %d (present %v), want %d", s.v, s.at, got, ok, want)
		}
		// The first time only: the next series starts once the test has
		// heard this one, so a repeat (heartbeat) may be read later.
		if firstHeard && s.read != want {
			t.Errorf("TINE: on hearing series-id %d, nimages read %d, want %d", s.v, s.read, want)
		}
	}
	if len(heard) != series {
		t.Errorf("TINE: series-id of %d series heard, want %d", len(heard), series)
	}
	checked := 0
	for _, m := range msgs {
		if m.id == nil {
			continue
		}
		id := int64(m.id.Value.Value().(int32))
		want, ok := nimages[id]
		if !ok {
			continue
		}
		checked++
		if m.n == nil {
			t.Errorf("OPC UA: series-id %d without nimages in its notification message", id)
			continue
		}
		if got := int64(m.n.Value.Value().(int32)); got != want || !m.n.SourceTimestamp.Equal(m.id.SourceTimestamp) {
			t.Errorf("OPC UA: series-id %d (at %v) with nimages %d (at %v), want %d", id, m.id.SourceTimestamp, got, m.n.SourceTimestamp, want)
		}
	}
	if checked == 0 {
		t.Error("OPC UA: no series-id notification")
	}
	t.Logf("%d series; TINE %d series-id, %d nimages updates; OPC UA %d messages", series, len(tineIDs), len(tineN), len(msgs))
}
