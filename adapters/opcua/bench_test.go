package opcua

import (
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// BenchmarkRead measures Read round trips of one scalar (frame-count) by
// the gopcua client over loopback, in a None session: what a polling
// client costs. Reported as reads/s (one client, sequential requests).
func BenchmarkRead(b *testing.B) {
	h := startHarness(b, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	req := &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: h.nodeID("/P14/rideau/tioga/frame-count"), AttributeID: ua.AttributeIDValue}}, TimestampsToReturn: ua.TimestampsToReturnBoth}
	ctx := ctxT(b)
	h.tt.frameCount.SetInt32(1234)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		resp, err := c.Read(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.Results[0].Value.Value() != int32(1234) {
			b.Fatal("wrong value")
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
}

// BenchmarkNotificationLatency measures the time from a property Set to
// the gopcua client's receipt of the data-change notification, over
// loopback, with a 20 ms publishing interval and changes spaced further
// apart than that (the case of a client watching frame-count or status).
func BenchmarkNotificationLatency(b *testing.B) {
	h := startHarness(b, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	ctx := ctxT(b)
	ch := make(chan *opcua.PublishNotificationData, 16)
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, ch)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, opcua.NewMonitoredItemCreateRequestWithDefaults(h.nodeID("/P14/rideau/tioga/frame-count"), ua.AttributeIDValue, 1)); err != nil {
		b.Fatal(err)
	}
	wait := func(want int32) {
		for {
			select {
			case n := <-ch:
				if dcn, ok := n.Value.(*ua.DataChangeNotification); ok {
					for _, it := range dcn.MonitoredItems {
						if it.Value.Value.Value() == want {
							return
						}
					}
				}
			case <-time.After(5 * time.Second):
				b.Fatalf("no notification of %d", want)
			}
		}
	}
	wait(0)
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		time.Sleep(25 * time.Millisecond) // let the publishing interval pass
		b.StartTimer()
		t0 := time.Now()
		h.tt.frameCount.SetInt32(int32(i + 1))
		wait(int32(i + 1))
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/notification")
}
