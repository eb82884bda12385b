package properties

import (
	"sync"
	"testing"
)

func TestBatchDeliversOnceWithOneTimestamp(t *testing.T) {
	r := NewRegistry()
	id := r.MustAdd(Spec{Name: "series-id", Elem: Int32, Access: Read})
	n := r.MustAdd(Spec{Name: "nimages", Elem: Int32, Access: Read})
	sid := id.Subscribe(SubscribeOptions{})
	sn := n.Subscribe(SubscribeOptions{})
	mustRecv(t, sid)
	mustRecv(t, sn)
	r.Batch(func() {
		id.SetInt32(7)
		n.SetInt32(1)
		n.SetInt32(700) // only the last value of the batch is delivered
		if got := n.Value().Int32s[0]; got != 700 {
			t.Errorf("the server's read inside the batch: %d, want the value just set", got)
		}
		if v, _ := id.Read(); v.Int32s[0] != 0 {
			t.Errorf("a client's read inside the batch: %d, want the value before it", v.Int32s[0])
		}
		expectNothing(t, sid)
		expectNothing(t, sn)
	})
	if v, _ := id.Read(); v.Int32s[0] != 7 {
		t.Errorf("a client's read after the batch: %d", v.Int32s[0])
	}
	a, b := mustRecv(t, sid), mustRecv(t, sn)
	if a.Value.Int32s[0] != 7 || b.Value.Int32s[0] != 700 {
		t.Fatalf("delivered %v, %v", a.Value, b.Value)
	}
	if !a.Value.Time.Equal(b.Value.Time) {
		t.Fatalf("timestamps %v and %v differ", a.Value.Time, b.Value.Time)
	}
	expectNothing(t, sn)
}

func TestBatchNestsAndKeepsEventOrder(t *testing.T) {
	r := NewRegistry()
	ev := r.MustAdd(Spec{Name: "pass", Elem: Float32, Shape: Records, Width: 2, MaxLen: 100, Access: Read, Events: true})
	s := ev.Subscribe(SubscribeOptions{Mode: OnEvent})
	Batch(func() {
		ev.Emit(Float32Records(2, []float32{1, 1}))
		Batch(func() { ev.Emit(Float32Records(2, []float32{2, 2})) })
		expectNothing(t, s) // the inner batch does not flush
	})
	if u := mustRecv(t, s); !u.Event || u.Value.Float32s[0] != 1 {
		t.Fatalf("first batch %v", u.Value)
	}
	if u := mustRecv(t, s); u.Value.Float32s[0] != 2 {
		t.Fatalf("second batch %v", u.Value)
	}
}

// A callback subscriber that records into its own store, read inside
// Settle, sees all of a batch or nothing of it, over many batches.
func TestSettleSeesWholeBatches(t *testing.T) {
	r := NewRegistry()
	a := r.MustAdd(Spec{Name: "a", Elem: Int32, Access: Read})
	b := r.MustAdd(Spec{Name: "b", Elem: Int32, Access: Read})
	var mu sync.Mutex
	seen := map[string]int32{}
	rec := func(name string) func(Update) {
		return func(u Update) { mu.Lock(); seen[name] = u.Value.Int32s[0]; mu.Unlock() }
	}
	sa := a.Subscribe(SubscribeOptions{Func: rec("a")})
	sb := b.Subscribe(SubscribeOptions{Func: rec("b")})
	defer sa.Close()
	defer sb.Close()
	if sa.C != nil {
		t.Fatal("a callback subscription has a channel")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int32(1); i <= 2000; i++ {
			Batch(func() { a.SetInt32(i); b.SetInt32(-i) })
		}
	}()
	checks := 0
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		Settle(func() {
			mu.Lock()
			if seen["a"] != -seen["b"] {
				t.Errorf("mixed batch: a=%d b=%d", seen["a"], seen["b"])
			}
			mu.Unlock()
		})
		checks++
	}
	if seen["a"] != 2000 {
		t.Fatalf("last delivered %d", seen["a"])
	}
	t.Logf("%d checks", checks)
}

func TestQuality(t *testing.T) {
	r := NewRegistry()
	p := r.MustAdd(Spec{Name: "temperature", Elem: Float64, Access: Read})
	p.SetFloat(21.5)
	s := p.Subscribe(SubscribeOptions{})
	if u := mustRecv(t, s); !u.Value.Quality.IsGood() {
		t.Fatalf("first value %v", u.Value.Quality)
	}
	before := p.Value().Time
	p.SetQuality(NoCommunication("SIMPLON unreachable"))
	u := mustRecv(t, s)
	if u.Value.Float64s[0] != 21.5 || u.Value.Quality.Level != Bad || u.Value.Quality.Cause != CauseNoCommunication || u.Value.Quality.Reason != "SIMPLON unreachable" {
		t.Fatalf("bad: %+v", u.Value)
	}
	if u.Value.Time.Before(before) {
		t.Fatal("a quality change keeps the old timestamp")
	}
	p.SetQuality(NoCommunication("SIMPLON unreachable"))
	expectNothing(t, s)
	p.SetFloat(21.5) // the source answers again: a plain Set is good
	if u := mustRecv(t, s); !u.Value.Quality.IsGood() {
		t.Fatalf("after Set: %v", u.Value.Quality)
	}
	if got := NoValueYet("not fed").String(); got != "bad (no value yet): not fed" {
		t.Fatal(got)
	}
	v, _ := TextValue("3").WithQuality(Quality{Level: Uncertain}).Convert(Int32)
	if v.Quality.Level != Uncertain {
		t.Fatal("Convert drops the quality")
	}
}

// Reads never see part of a batch, and a client's write inside one is
// read back at once.
func TestReadsSeeWholeBatches(t *testing.T) {
	r := NewRegistry()
	a := r.MustAdd(Spec{Name: "a", Elem: Int32, Access: Read})
	b := r.MustAdd(Spec{Name: "b", Elem: Int32, Access: Read})
	w := r.MustAdd(Spec{Name: "w", Elem: Int32, Access: Read | Write})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int32(1); i <= 3000; i++ {
			Batch(func() { a.SetInt32(i); b.SetInt32(-i) })
		}
	}()
	reads := 0
	for finished := false; !finished; reads++ {
		select {
		case <-done:
			finished = true
		default:
		}
		va, _ := a.Read()
		vb, _ := b.Read()
		// b is read after a: it may be of a later batch, never an earlier.
		if -vb.Int32s[0] < va.Int32s[0] {
			t.Fatalf("read a=%d then b=%d: part of a batch", va.Int32s[0], vb.Int32s[0])
		}
	}
	Batch(func() {
		if err := w.Write(t.Context(), Int32Value(5)); err != nil {
			t.Fatal(err)
		}
		if v, _ := w.Read(); v.Int32s[0] != 5 {
			t.Fatalf("write read back inside a batch: %d", v.Int32s[0])
		}
	})
	t.Logf("%d reads", reads)
}
