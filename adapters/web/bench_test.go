package web

import (
	"fmt"
	"testing"
	"time"

	"tioga/properties"
)

// BenchmarkExport measures what an open page costs the server: one export
// period's publication (40 counters set, a 100-record dozor-pass batch) on
// a tree of about 250 properties, without a page and with one page open
// (the hub's subscriptions deliver, and its tick drains them and encodes the
// batch). The frame path itself never meets the page: only the export does,
// every 300 ms.
func BenchmarkExport(b *testing.B) {
	for _, open := range []bool{false, true} {
		name := "no-page"
		if open {
			name = "page-open"
		}
		b.Run(name, func(b *testing.B) {
			tt := newTestTree(&testing.T{})
			var counters []*properties.Property
			for i := 0; i < 230; i++ {
				p := tt.stream.Add(properties.Spec{Name: fmt.Sprintf("extra-%d", i), Elem: properties.Int32, Access: properties.Read})
				if i < 40 {
					counters = append(counters, p)
				}
			}
			s, err := New(Config{Listen: "127.0.0.1:0", Tree: tt.tree, Stream: tt.stream, Scan: tt.scan, Tracker: tt.tracker, BatchPeriod: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var c *client
			if open {
				c, _, _ = s.hub.join(false)
			}
			pass, _ := tt.stream.Property(propDozorPass)
			batch := make([]float32, 400)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, p := range counters {
					p.SetInt32(int32(i))
				}
				for j := 0; j < 100; j++ {
					batch[4*j] = float32(100*i + j)
				}
				pass.Emit(properties.Float32Records(4, batch))
				if open {
					s.hub.tick()
					select {
					case <-c.ch:
					default:
					}
				}
			}
			b.StopTimer()
			if open {
				s.hub.leave(c)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(DefaultBatchPeriod.Nanoseconds())*100, "%core")
		})
	}
}
