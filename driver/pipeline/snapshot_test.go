package pipeline

import (
	"sync"
	"testing"
	"time"

	"tioga/properties"
)

// A subscriber never sees a mixed snapshot: across many series starts
// (each with its own nimages), whenever series-id and nimages are read
// together between deliveries (properties.Settle) they belong to the same
// series, and the two values of one start carry the same timestamp.
func TestSeriesStartIsOneSnapshot(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	st := srv.dev.Stream

	var mu sync.Mutex
	var id, n int32
	// Each delivery pokes the checker, which then looks at both values
	// between deliveries.
	poke := make(chan struct{}, 1)
	nudge := func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	idTimes := map[int32]time.Time{}
	nTimes := map[int32]time.Time{}
	sid := st.SeriesID.Subscribe(properties.SubscribeOptions{Func: func(u properties.Update) {
		mu.Lock()
		id = u.Value.Int32s[0]
		idTimes[id] = u.Value.Time
		mu.Unlock()
		nudge()
	}})
	defer sid.Close()
	sn := st.NImages.Subscribe(properties.SubscribeOptions{Func: func(u properties.Update) {
		mu.Lock()
		n = u.Value.Int32s[0]
		nTimes[n] = u.Value.Time
		mu.Unlock()
		nudge()
	}})
	defer sn.Close()

	const series = 25
	nimages := func(id int32) int32 { return 2 + id%3 + 3*id } // distinct per series
	stop := make(chan struct{})
	checked := make(chan int)
	go func() {
		checks := 0
		defer func() { checked <- checks }()
		for {
			select {
			case <-stop:
				return
			case <-poke:
			}
			properties.Settle(func() {
				mu.Lock()
				if id > 0 && n != nimages(id) {
					t.Errorf("mixed snapshot: series-id %d with nimages %d (want %d)", id, n, nimages(id))
				}
				mu.Unlock()
			})
			checks++
		}
	}()
	for k := int32(1); k <= series; k++ {
		det.header(uint64(k), int(nimages(k)))
		det.image(uint64(k), 0)
		det.end(uint64(k))
		waitFor(t, "the series' end", func() bool { sum, ok := srv.pipe.LastSummary(); return ok && sum.SeriesID == uint64(k) })
	}
	close(stop)
	t.Logf("%d checks", <-checked)
	mu.Lock()
	defer mu.Unlock()
	for k := int32(1); k <= series; k++ {
		ti, ok := idTimes[k]
		if !ok {
			t.Fatalf("series-id %d never delivered", k)
		}
		if tn := nTimes[nimages(k)]; !tn.Equal(ti) {
			t.Errorf("series %d: series-id at %v, nimages at %v: not one timestamp", k, ti, tn)
		}
	}
}
