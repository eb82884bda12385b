package opcua

import (
	"fmt"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"tioga/properties"
)

// TestBatchIsOneNotification: the pipeline publishes a series start as
// one batch (properties.Batch). A gopcua client watching two of its
// values receives them in the same notification message, with the same
// source timestamp, and never one without the other, over many batches
// (some back to back, some one per publishing interval).
func TestBatchIsOneNotification(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	ctx := ctxT(t)
	ch := make(chan *opcua.PublishNotificationData, 256)
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 10 * time.Millisecond}, ch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/frame-count"), ua.AttributeIDValue, 1),
		opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/status"), ua.AttributeIDValue, 2)); err != nil {
		t.Fatal(err)
	}
	tt := h.tt
	const batches = 120
	messages := 0
	last := int32(-1)
	// receive takes notification messages until frame-count want arrived,
	// checking each message.
	receive := func(want int32) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for last != want {
			select {
			case n := <-ch:
				if n.Error != nil {
					t.Fatal(n.Error)
				}
				dcn, ok := n.Value.(*ua.DataChangeNotification)
				if !ok {
					continue
				}
				var count *ua.DataValue
				var status *ua.DataValue
				for _, it := range dcn.MonitoredItems {
					switch it.ClientHandle {
					case 1:
						count = it.Value
					case 2:
						status = it.Value
					}
				}
				if count == nil || status == nil {
					t.Fatalf("message %d carries one value of a batch: frame-count %v, status %v", messages, count, status)
				}
				k := count.Value.Value().(int32)
				if s := status.Value.Value().(string); k > 0 && s != fmt.Sprintf("series %d", k) {
					t.Fatalf("mixed snapshot: frame-count %d with status %q", k, s)
				}
				if k > 0 && !count.SourceTimestamp.Equal(status.SourceTimestamp) {
					t.Fatalf("batch %d: source timestamps %v and %v", k, count.SourceTimestamp, status.SourceTimestamp)
				}
				messages++
				last = k
			case <-deadline:
				t.Fatalf("frame-count %d never arrived (last %d)", want, last)
			}
		}
	}
	tt.status.SetText("series 0")
	receive(0)
	for k := int32(1); k <= batches; k++ {
		properties.Batch(func() {
			tt.frameCount.SetInt32(k)
			tt.status.SetText(fmt.Sprintf("series %d", k))
		})
		if k%3 != 1 {
			receive(k) // else: the next batch follows at once
		}
	}
	receive(batches)
	t.Logf("%d messages for %d batches", messages, batches)
}

// TestQualityReachesStatusCode: a value's quality is its DataValue's
// StatusCode in reads and notifications of a gopcua client; the reason is
// the operation's DiagnosticInfo when asked for; good again clears it.
func TestQualityReachesStatusCode(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	ctx := ctxT(t)
	tt := h.tt
	tt.beamXY.SetQuality(properties.NoValueYet("no series received yet"))

	// read reads one value with the gopcua client, and the reason through
	// the Read service with operation diagnostics asked for (the gopcua
	// client sets the request header itself, ReturnDiagnostics 0, so the
	// handler is called directly for it).
	read := func(addr string) (*ua.DataValue, string) {
		t.Helper()
		req := &ua.ReadRequest{
			NodesToRead:        []*ua.ReadValueID{{NodeID: h.nodeID(addr), AttributeID: ua.AttributeIDValue}},
			TimestampsToReturn: ua.TimestampsToReturnBoth,
		}
		resp, err := c.Read(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		req.RequestHeader = &ua.RequestHeader{ReturnDiagnostics: 0x80} // operation-level additional info
		r, code := h.srv.read(nil, &session{}, req, 0)
		if code != ua.StatusOK {
			t.Fatal(code)
		}
		direct := r.(*ua.ReadResponse)
		if direct.Results[0].Status != resp.Results[0].Status {
			t.Fatalf("%s: %v through the client, %v from the handler", addr, resp.Results[0].Status, direct.Results[0].Status)
		}
		why := ""
		if len(direct.DiagnosticInfos) == 1 && direct.DiagnosticInfos[0] != nil {
			why = direct.DiagnosticInfos[0].AdditionalInfo
		}
		return resp.Results[0], why
	}
	dv, why := read("/P14/rideau/tioga/beam-xy")
	if dv.Status != ua.StatusBadWaitingForInitialData || dv.EncodingMask&ua.DataValueValue != 0 || why != "no series received yet" {
		t.Fatalf("beam-xy without a value: %v value %v reason %q", dv.Status, dv.Value, why)
	}

	ch := make(chan *opcua.PublishNotificationData, 64)
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 10 * time.Millisecond}, ch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/spot-level"), ua.AttributeIDValue, 1)); err != nil {
		t.Fatal(err)
	}
	next := func() *ua.DataValue {
		t.Helper()
		for {
			select {
			case n := <-ch:
				if n.Error != nil {
					t.Fatal(n.Error)
				}
				if dcn, ok := n.Value.(*ua.DataChangeNotification); ok && len(dcn.MonitoredItems) > 0 {
					return dcn.MonitoredItems[len(dcn.MonitoredItems)-1].Value
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no notification")
			}
		}
	}
	if dv := next(); dv.Status != ua.StatusOK || dv.Value.Value() != 3.0 {
		t.Fatalf("first: %v %v", dv.Status, dv.Value)
	}
	tt.spotLevel.SetQuality(properties.NoCommunication("SIMPLON http://det unreachable"))
	if dv := next(); dv.Status != ua.StatusBadCommunicationError || dv.EncodingMask&ua.DataValueValue != 0 {
		t.Fatalf("source lost: %v %v", dv.Status, dv.Value)
	}
	if _, why := read("/P14/rideau/tioga/spot-level"); why != "SIMPLON http://det unreachable" {
		t.Fatalf("reason %q", why)
	}
	tt.spotLevel.SetQuality(properties.Quality{Level: properties.Uncertain, Cause: properties.CauseNoCommunication, Reason: "late"})
	if dv := next(); dv.Status != ua.StatusUncertainNoCommunicationLastUsableValue || dv.Value.Value() != 3.0 {
		t.Fatalf("uncertain: %v %v", dv.Status, dv.Value)
	}
	tt.spotLevel.SetFloat(4)
	if dv := next(); dv.Status != ua.StatusOK || dv.Value.Value() != 4.0 {
		t.Fatalf("good again: %v %v", dv.Status, dv.Value)
	}
	if dv, why := read("/P14/rideau/tioga/spot-level"); dv.Status != ua.StatusOK || why != "" {
		t.Fatalf("read when good: %v %q", dv.Status, why)
	}
}

// TestReadOfManyNodesIsOneMoment: one Read of two values that batches
// change together returns both from the same batch, while batches are
// published as fast as they can be.
func TestReadOfManyNodesIsOneMoment(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	ctx := ctxT(t)
	tt := h.tt
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := int32(1); ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			properties.Batch(func() {
				tt.frameCount.SetInt32(k)
				tt.status.SetText(fmt.Sprintf("series %d", k))
			})
		}
	}()
	defer func() { close(stop); <-done }()
	req := &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: h.nodeID("/P14/rideau/tioga/frame-count"), AttributeID: ua.AttributeIDValue},
		{NodeID: h.nodeID("/P14/rideau/tioga/status"), AttributeID: ua.AttributeIDValue},
	}, TimestampsToReturn: ua.TimestampsToReturnSource}
	for i := 0; i < 300; i++ {
		resp, err := c.Read(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		k := resp.Results[0].Value.Value().(int32)
		if s := resp.Results[1].Value.Value().(string); k > 0 && s != fmt.Sprintf("series %d", k) {
			t.Fatalf("one Read: frame-count %d with status %q", k, s)
		}
	}
}
