package opcua

import (
	"slices"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"tioga/properties"
)

// simulateSeries plays a series of n frames the way the pipeline publishes
// it: frame-count after every frame, dozor-pass batches every batch frames
// (Emit of the new records, Set of all records so far), status at the ends.
func simulateSeries(tt *testTree, n, batch int, pause time.Duration) {
	tt.status.SetText("receiving")
	var all []float32
	var pending []float32
	for f := 0; f < n; f++ {
		rec := []float32{float32(f), float32(f % 7), float32(f%7) * 1.5, 2.5}
		all = append(all, rec...)
		pending = append(pending, rec...)
		tt.frameCount.SetInt32(int32(f + 1))
		if len(pending) == batch*4 || f == n-1 {
			_ = tt.dozorPass.Set(properties.Float32Records(4, slices.Clone(all)))
			tt.dozorPass.Emit(properties.Float32Records(4, pending))
			pending = nil
		}
		time.Sleep(pause)
	}
	tt.status.SetText("done")
}

// TestSubscribeFrameCount subscribes to frame-count, dozor-pass and status
// with the gopcua client while a goroutine simulates a 60-frame series, and
// checks the updates: frame-count only grows and ends at 60, dozor-pass
// ends as the full 60 x 4 array, status ends "done".
func TestSubscribeFrameCount(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	ctx := ctxT(t)
	ch := make(chan *opcua.PublishNotificationData, 256)
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, ch)
	if err != nil {
		t.Fatal(err)
	}
	items := []*ua.MonitoredItemCreateRequest{
		opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/frame-count"), ua.AttributeIDValue, 1),
		opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/dozor-pass"), ua.AttributeIDValue, 2),
		opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/status"), ua.AttributeIDValue, 3),
		opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/nope"), ua.AttributeIDValue, 4),
	}
	items[0].RequestedParameters.QueueSize = 100
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, items...)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []ua.StatusCode{ua.StatusOK, ua.StatusOK, ua.StatusOK, ua.StatusBadNodeIDUnknown} {
		if res.Results[i].StatusCode != want {
			t.Fatalf("monitored item %d: %v, want %v", i, res.Results[i].StatusCode, want)
		}
	}
	if res.Results[0].RevisedQueueSize != 100 {
		t.Fatalf("revised queue size %d", res.Results[0].RevisedQueueSize)
	}

	const frames = 60
	go simulateSeries(h.tt, frames, 10, 2*time.Millisecond)

	var counts []int32
	var lastRows [][]float32
	var status string
	deadline := time.After(15 * time.Second)
	for !(len(counts) > 0 && counts[len(counts)-1] == frames && len(lastRows) == frames && status == "done") {
		select {
		case n := <-ch:
			if n.Error != nil {
				t.Fatal(n.Error)
			}
			dcn, ok := n.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			for _, it := range dcn.MonitoredItems {
				if it.Value.Status != ua.StatusOK {
					t.Fatalf("item %d: %v", it.ClientHandle, it.Value.Status)
				}
				if it.Value.SourceTimestamp.IsZero() {
					t.Fatalf("item %d without source timestamp", it.ClientHandle)
				}
				switch it.ClientHandle {
				case 1:
					counts = append(counts, it.Value.Value.Value().(int32))
				case 2:
					if rows, ok := it.Value.Value.Value().([][]float32); ok {
						lastRows = rows
					}
				case 3:
					status = it.Value.Value.Value().(string)
				}
			}
		case <-deadline:
			t.Fatalf("after 15 s: frame-counts %v, %d dozor-pass rows, status %q", counts, len(lastRows), status)
		}
	}
	if counts[0] != 0 {
		t.Fatalf("first frame-count notification %d, want the initial 0", counts[0])
	}
	for i := 1; i < len(counts); i++ {
		if counts[i] <= counts[i-1] {
			t.Fatalf("frame-count went %d -> %d: %v", counts[i-1], counts[i], counts)
		}
	}
	if len(counts) < 10 {
		t.Fatalf("only %d frame-count notifications for %d frames: %v", len(counts), frames, counts)
	}
	for f, row := range lastRows {
		want := []float32{float32(f), float32(f % 7), float32(f%7) * 1.5, 2.5}
		if !slices.Equal(row, want) {
			t.Fatalf("dozor-pass row %d = %v, want %v", f, row, want)
		}
	}
	if err := sub.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if st := h.srv.Stats(); st.Notifications == 0 || st.MonitoredItems != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSubscriptionDeadband checks that an absolute deadband filter becomes
// the registry subscription's tolerance.
func TestSubscriptionDeadband(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	ctx := ctxT(t)
	ch := make(chan *opcua.PublishNotificationData, 64)
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, ch)
	if err != nil {
		t.Fatal(err)
	}
	item := opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/spot-level"), ua.AttributeIDValue, 9)
	item.RequestedParameters.QueueSize = 10
	item.RequestedParameters.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValue, DeadbandType: 1, DeadbandValue: 1.0})
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnSource, item)
	if err != nil || res.Results[0].StatusCode != ua.StatusOK {
		t.Fatalf("monitor: %v %v", err, res)
	}
	var got []float64
	want := []float64{3, 4.5, 6}
	go func() {
		time.Sleep(50 * time.Millisecond)
		for _, v := range []float64{3.5, 4.5, 4.9, 5.2, 6} { // 3.5, 4.9 and 5.2 are within 1 of the last sent
			h.tt.spotLevel.SetFloat(v)
			time.Sleep(30 * time.Millisecond)
		}
	}()
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case n := <-ch:
			if dcn, ok := n.Value.(*ua.DataChangeNotification); ok {
				for _, it := range dcn.MonitoredItems {
					got = append(got, it.Value.Value.Value().(float64))
				}
			}
		case <-timeout:
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// A deadband on text is refused.
	bad := opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/status"), ua.AttributeIDValue, 10)
	bad.RequestedParameters.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValue, DeadbandType: 1, DeadbandValue: 1.0})
	res, err = sub.Monitor(ctx, ua.TimestampsToReturnSource, bad)
	if err != nil || res.Results[0].StatusCode != ua.StatusBadFilterNotAllowed {
		t.Fatalf("deadband on text: %v %v", err, res.Results[0].StatusCode)
	}
}
