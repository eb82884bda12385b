package client_test

import (
	"fmt"
	"testing"
	"time"

	"tioga/adapters/tine"
	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/properties"
)

// BenchmarkSyncRead measures synchronous reads (one SINGLE call of an
// INT32 at a time, client and server over loopback UDP).
func BenchmarkSyncRead(b *testing.B) {
	r := newRig(b, tine.Config{})
	c := r.dial(b, client.Options{Watchdog: -1})
	ctx := ctxT(b)
	r.frameCount.SetInt32(1)
	a := tioga("frame-count")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Get(ctx, a, wire.Int32, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

// BenchmarkEventLatency measures the time from a property event (Emit of a
// one-record dozor-pass batch) to its EVENT delivery at each subscriber (a
// client of its own, over loopback UDP): the mean over subscribers and the
// latest one.
func BenchmarkEventLatency(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			r := newRig(b, tine.Config{})
			ctx := ctxT(b)
			arrived := make(chan time.Time, n)
			for i := 0; i < n; i++ {
				c := r.dial(b, client.Options{Watchdog: -1})
				l, err := c.Attach(ctx, client.Request{Address: tioga("dozor-pass"), Format: wire.Float, Size: 4000}, wire.Event, 30*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				<-l.C // the attach delivery
				go func() {
					for range l.C {
						arrived <- time.Now()
					}
				}()
			}
			batch := properties.Float32Records(4, []float32{1, 2, 3, 4})
			var sum, worst time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				r.dozor.Emit(batch)
				var last time.Duration
				for k := 0; k < n; k++ {
					select {
					case at := <-arrived:
						d := at.Sub(t0)
						sum += d
						last = max(last, d)
					case <-time.After(5 * time.Second):
						b.Fatalf("event %d: %d of %d subscribers served", i, k, n)
					}
				}
				worst += last
			}
			b.ReportMetric(float64(sum.Microseconds())/float64(b.N*n), "µs/event")
			b.ReportMetric(float64(worst.Microseconds())/float64(b.N), "µs/last-subscriber")
		})
	}
}
