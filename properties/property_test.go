package properties

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

func mustRecv(t *testing.T, s *Subscription) Update {
	t.Helper()
	select {
	case u, ok := <-s.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		return u
	case <-time.After(2 * time.Second):
		t.Fatal("no update")
	}
	return Update{}
}

func expectNothing(t *testing.T, s *Subscription) {
	t.Helper()
	select {
	case u := <-s.C:
		t.Fatalf("unexpected update %v", u.Value)
	default:
	}
}

func TestConvertFollowsTINECoercion(t *testing.T) {
	// docs/tine-protocol.md §8.1: INT32 16 -> 16.0, FLOAT 12.5 -> INT32 12.
	v, err := Int32Value(16).Convert(Float64)
	if err != nil || v.Float64s[0] != 16.0 {
		t.Fatalf("int32->float64: %v %v", v, err)
	}
	v, _ = Float32Value(12.5).Convert(Int32)
	if v.Int32s[0] != 12 {
		t.Fatalf("12.5 -> %d", v.Int32s[0])
	}
	v, _ = Float32Value(-12.9).Convert(Int32)
	if v.Int32s[0] != -12 {
		t.Fatalf("-12.9 -> %d (want truncation toward zero)", v.Int32s[0])
	}
	v, _ = Float64Value(1e12).Convert(Int32)
	if v.Int32s[0] != math.MaxInt32 {
		t.Fatalf("1e12 -> %d (want saturation)", v.Int32s[0])
	}
	v, _ = Float64Value(0.5).Convert(Float32)
	if v.Float32s[0] != 0.5 {
		t.Fatal("float64->float32")
	}
	rec := Float32Records(4, []float32{0, 1, 0, 1.5, 1, 11, 0.25, 2.5})
	d, _ := rec.Convert(Float64)
	if d.Width != 4 || d.Rows() != 2 || d.Float64s[5] != 11 {
		t.Fatalf("records -> float64: %+v", d)
	}
	if _, err := TextValue("abc").Convert(Int32); !errors.Is(err, ErrType) {
		t.Fatalf("text->int: %v", err)
	}
	v, _ = TextValue(" 2.75 ").Convert(Float64)
	if v.Float64s[0] != 2.75 {
		t.Fatal("text parse")
	}
	v, _ = Int32Value(3).Convert(Text)
	if v.Text != "3" {
		t.Fatalf("int -> text %q", v.Text)
	}
	v, _ = TextValue("true").Convert(Bool)
	if !v.Bools[0] {
		t.Fatal("text->bool")
	}
}

func TestWriteValidation(t *testing.T) {
	r := NewRegistry()
	thr := r.MustAdd(Spec{Name: "spot-level", Elem: Float64, Access: Read | Write, Units: "sigma", Limits: &Limits{Min: 1, Max: 100}})
	ro := r.MustAdd(Spec{Name: "frame-count", Elem: Int32, Access: Read})
	arr := r.MustAdd(Spec{Name: "beamstop", Elem: Int32, Shape: Array, MaxLen: 4, Access: Read | Write})

	if err := thr.Write(t.Context(), Float64Value(6)); err != nil {
		t.Fatal(err)
	}
	if got := thr.Value().Float(); got != 6 {
		t.Fatalf("value %g", got)
	}
	if err := thr.Write(t.Context(), Int32Value(7)); err != nil || thr.Value().Float64s[0] != 7 {
		t.Fatalf("int write to float64 property: %v", err)
	}
	err := thr.Write(t.Context(), Float64Value(0.5))
	if !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("out of range: %v", err)
	}
	if thr.Value().Float() != 7 {
		t.Fatal("refused write changed the value")
	}
	if err := thr.Write(t.Context(), TextValue("x")); !errors.Is(err, ErrType) {
		t.Fatalf("type: %v", err)
	}
	if err := ro.Write(t.Context(), Int32Value(3)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only: %v", err)
	}
	if err := arr.Write(t.Context(), Int32s([]int32{1, 2, 3, 4, 5})); !errors.Is(err, ErrSize) {
		t.Fatalf("size: %v", err)
	}
	if err := thr.Write(t.Context(), Float64s([]float64{1, 2})); !errors.Is(err, ErrSize) {
		t.Fatalf("scalar size: %v", err)
	}
	w, refused := thr.Stats()
	if w != 2 || refused != 3 {
		t.Fatalf("stats %d/%d", w, refused)
	}
}

func TestWriteHookAndCommand(t *testing.T) {
	r := NewRegistry()
	var got string
	load := r.MustAdd(Spec{Name: "load", Elem: Text, Access: Command, MaxLen: 4096})
	load.OnWrite(func(_ context.Context, v Value) error { got = v.Text; return nil })
	if err := load.Write(t.Context(), TextValue("/data/x_00001.cbf")); err != nil || got != "/data/x_00001.cbf" {
		t.Fatalf("command: %v %q", err, got)
	}
	if _, err := load.Read(); !errors.Is(err, ErrWriteOnly) {
		t.Fatalf("command read: %v", err)
	}
	busy := r.MustAdd(Spec{Name: "nimages", Elem: Int32, Access: Read | Write})
	busy.OnWrite(func(context.Context, Value) error { return errors.New("a series is running") })
	err := busy.Write(t.Context(), Int32Value(3))
	if !errors.Is(err, ErrRejected) || busy.Value().Int() != 0 {
		t.Fatalf("hook rejection: %v", err)
	}
}

// TestWriteHookObservesCancellation: the hook gets the caller's context,
// sees it cancelled while it waits (as shutdown does to a write waiting on
// the detector), and the client gets the cancellation, not a success; a
// write whose context is already done never reaches the hook.
func TestWriteHookObservesCancellation(t *testing.T) {
	r := NewRegistry()
	init := r.MustAdd(Spec{Name: "initialize", Elem: Int32, Access: Command})
	entered := make(chan struct{})
	hookErr := make(chan error, 1)
	init.OnWrite(func(ctx context.Context, _ Value) error {
		close(entered)
		<-ctx.Done()
		hookErr <- ctx.Err()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- init.Write(ctx, Int32Value(0)) }()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("write returned %v, want context.Canceled", err)
	}
	if err := <-hookErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("hook saw %v", err)
	}
	if _, refused := init.Stats(); refused != 1 {
		t.Fatalf("refused = %d, want 1", refused)
	}

	calls := 0
	mode := r.MustAdd(Spec{Name: "mode", Elem: Text, Access: Read | Write, MaxLen: 8})
	mode.OnWrite(func(context.Context, Value) error { calls++; return nil })
	expired, cancel2 := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancel2()
	if err := mode.Write(expired, TextValue("4M")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired write: %v", err)
	}
	if calls != 0 || mode.Value().Text != "" {
		t.Fatalf("expired write reached the hook (%d calls) or was stored (%q)", calls, mode.Value().Text)
	}
}

func TestRegistryCaseInsensitive(t *testing.T) {
	r := NewRegistry()
	r.MustAdd(Spec{Name: "dozor-pass-IS", Elem: Float32, Shape: Records, Width: 2, MaxLen: 10, Access: Read})
	if _, ok := r.Get("DOZOR-PASS-is"); !ok {
		t.Fatal("case-insensitive lookup")
	}
	if _, err := r.Add(Spec{Name: "Dozor-Pass-IS", Elem: Int32, Access: Read}); err == nil {
		t.Fatal("duplicate accepted")
	}
	if _, err := r.Lookup("nope"); !errors.Is(err, ErrUnknown) {
		t.Fatal(err)
	}
	for _, bad := range []Spec{
		{Name: "", Elem: Int32, Access: Read},
		{Name: "a/b", Elem: Int32, Access: Read},
		{Name: "x", Elem: 0, Access: Read},
		{Name: "x", Elem: Int32, Shape: Records, MaxLen: 3, Access: Read},
		{Name: "x", Elem: Int32},
	} {
		if _, err := r.Add(bad); err == nil {
			t.Errorf("invalid spec accepted: %+v", bad)
		}
	}
}

func TestDataChangeTolerance(t *testing.T) {
	r := NewRegistry()
	p := r.MustAdd(Spec{Name: "average-speed", Elem: Float32, Access: Read})
	s := p.Subscribe(SubscribeOptions{Mode: OnChange, Tolerance: 0.5})
	defer s.Close()
	if u := mustRecv(t, s); u.Value.Float() != 0 {
		t.Fatalf("initial %v", u.Value)
	}
	p.SetFloat(0.4) // within tolerance of 0
	expectNothing(t, s)
	p.SetFloat(0.6)
	if u := mustRecv(t, s); math.Abs(u.Value.Float()-0.6) > 1e-6 {
		t.Fatalf("got %v", u.Value)
	}
	p.SetFloat(1.0) // 0.4 from the last delivered value 0.6
	expectNothing(t, s)
	p.SetFloat(1.2)
	mustRecv(t, s)
}

func TestEventBatches(t *testing.T) {
	r := NewRegistry()
	var mu sync.Mutex
	all := []float32{}
	p := r.MustAdd(Spec{Name: "dozor-pass", Elem: Float32, Shape: Records, Width: 4, MaxLen: 1000000, Access: Read, Events: true})
	p.Compute(func() Value {
		mu.Lock()
		defer mu.Unlock()
		return Float32Records(4, all)
	})
	ev := p.Subscribe(SubscribeOptions{Mode: OnEvent})
	dc := p.Subscribe(SubscribeOptions{Mode: OnChange})
	defer ev.Close()
	defer dc.Close()
	mustRecv(t, dc) // initial full value (empty)
	expectNothing(t, ev)

	batch := []float32{0, 3, 1.5, 2.1, 1, 0, 0, 0}
	mu.Lock()
	all = append(all, batch...)
	mu.Unlock()
	p.Emit(Float32Records(4, batch))
	u := mustRecv(t, ev)
	if !u.Event || u.Value.Rows() != 2 || u.Value.Float32s[1] != 3 {
		t.Fatalf("event batch %+v", u)
	}
	u = mustRecv(t, dc)
	if u.Event || u.Value.Rows() != 2 {
		t.Fatalf("data-change full value %+v", u)
	}
	if v, _ := p.Read(); v.Rows() != 2 {
		t.Fatal("read after emit")
	}
}

func TestEventSubscriberOfPlainPropertyGetsEachChange(t *testing.T) {
	r := NewRegistry()
	p := r.MustAdd(Spec{Name: "frame-count", Elem: Int32, Access: Read})
	s := p.Subscribe(SubscribeOptions{Mode: OnEvent})
	defer s.Close()
	mustRecv(t, s)
	for i := int32(1); i <= 3; i++ {
		p.SetInt32(i)
		if u := mustRecv(t, s); u.Value.Int() != int(i) {
			t.Fatalf("got %v", u.Value)
		}
	}
	p.SetInt32(3)
	expectNothing(t, s)
}

func TestSlowSubscriberDropsAndNeverBlocks(t *testing.T) {
	r := NewRegistry()
	p := r.MustAdd(Spec{Name: "frame-count", Elem: Int32, Access: Read})
	s := p.Subscribe(SubscribeOptions{Mode: OnChange, Buffer: 2})
	defer s.Close()
	done := make(chan struct{})
	go func() {
		for i := int32(1); i <= 100; i++ {
			p.SetInt32(i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("producer blocked by a slow subscriber")
	}
	if s.Dropped() == 0 {
		t.Fatal("no drops counted")
	}
	// Drain, then the next change arrives with the newest value.
	for len(s.C) > 0 {
		<-s.C
	}
	p.SetInt32(101)
	if u := mustRecv(t, s); u.Value.Int() != 101 {
		t.Fatalf("after drain got %v", u.Value)
	}
}

func TestQuery(t *testing.T) {
	r := NewRegistry()
	p := r.MustAdd(Spec{Name: "spots", Elem: Float32, Shape: Records, Width: 5, MaxLen: 10000, Access: Read, Arg: Int32})
	p.OnQuery(func(_ context.Context, arg Value) (Value, error) {
		return Float32Records(5, []float32{float32(arg.Int()), 1, 2, 3, 4}), nil
	})
	v, err := p.Query(t.Context(), Float64Value(7))
	if err != nil || v.Float32s[0] != 7 {
		t.Fatalf("query: %v %v", v, err)
	}
	q := r.MustAdd(Spec{Name: "plain", Elem: Int32, Access: Read})
	if _, err := q.Query(t.Context(), Int32Value(1)); !errors.Is(err, ErrNoQuery) {
		t.Fatal(err)
	}
}

func TestCloseStopsDelivery(t *testing.T) {
	r := NewRegistry()
	p := r.MustAdd(Spec{Name: "status", Elem: Text, Access: Read})
	s := p.Subscribe(SubscribeOptions{})
	mustRecv(t, s)
	s.Close()
	p.SetText("receiving")
	if _, ok := <-s.C; ok {
		t.Fatal("update after close")
	}
	s.Close() // idempotent
}
