package results

import (
	"math"
	"runtime"
	"testing"
	"time"
)

func TestStoreExportsEachRecordOnce(t *testing.T) {
	s := NewStore(10, 1000)
	for i := 0; i < 5; i++ {
		s.Add(Record{Frame: i, Spots: i * 2, Score: float32(i), Resolution: 2.5, IS: float32(10 * i), Hit: i >= 3, MeanI: 100})
	}
	pass, is := s.TakeNew()
	if len(pass) != 5*PassWidth || len(is) != 5*ISWidth {
		t.Fatalf("first batch %d %d", len(pass), len(is))
	}
	if pass[4*4+0] != 4 || pass[4*4+1] != 8 || pass[4*4+2] != 4 || pass[4*4+3] != 2.5 || is[4*2+1] != 40 {
		t.Fatalf("records %v %v", pass, is)
	}
	view := s.Pass()
	s.Add(Record{Frame: 5, Spots: 1, MeanI: 100})
	pass, _ = s.TakeNew()
	if len(pass) != PassWidth || pass[0] != 5 {
		t.Fatalf("second batch %v", pass)
	}
	if len(view) != 5*PassWidth || view[0] != 0 {
		t.Fatal("an earlier view changed")
	}
	if p, _ := s.TakeNew(); len(p) != 0 {
		t.Fatal("nothing new, yet a batch")
	}
	sum := s.Summary()
	if sum.Records != 6 || sum.Hits != 2 || math.Abs(sum.MeanSpotI-100) > 1e-9 || sum.LastFrame != 5 {
		t.Fatalf("summary %+v", sum)
	}
}

func TestStoreLimit(t *testing.T) {
	s := NewStore(100, 3)
	for i := 0; i < 5; i++ {
		s.Add(Record{Frame: i, Hit: true})
	}
	if s.Len() != 3 || s.Summary().Overflow != 2 || s.Summary().Hits != 5 {
		t.Fatalf("len %d summary %+v", s.Len(), s.Summary())
	}
}

// A million-frame series costs 24 bytes per frame and no heap object per
// frame.
func TestStoreMillionFramesIsCompact(t *testing.T) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := NewStore(1_000_000, 1_000_000)
	for i := 0; i < 1_000_000; i++ {
		s.Add(Record{Frame: i, Spots: 3, Score: 1, Resolution: 2})
	}
	runtime.ReadMemStats(&after)
	if objs := after.Mallocs - before.Mallocs; objs > 100 {
		t.Fatalf("%d allocations for 1,000,000 records", objs)
	}
	if grown := after.HeapAlloc - before.HeapAlloc; grown > 30<<20 {
		t.Fatalf("heap grew by %d MB", grown>>20)
	}
	if s.Len() != 1_000_000 {
		t.Fatal(s.Len())
	}
}

func TestSSX(t *testing.T) {
	var x SSX
	x.Add(Record{Hit: true, Spots: 30, Resolution: 2})
	x.Add(Record{Hit: true, Spots: 10, Resolution: 0})
	x.Add(Record{Hit: false, Spots: 1})
	x.Add(Record{Hit: true, Spots: 20, Resolution: 3})
	st := x.Stats()
	if st.Frames != 4 || st.Hits != 3 || st.HitRate != 75 || st.MeanResolution != 2.5 || st.SpotsPerHit != 20 {
		t.Fatalf("%+v", st)
	}
	x.Reset()
	if st := x.Stats(); st.Frames != 0 || st.HitRate != 0 {
		t.Fatalf("after reset %+v", st)
	}
}

func TestSpotRingBounds(t *testing.T) {
	r := NewSpotRing(3, 10)
	r.Put(0, make([]float32, 4*SpotWidth))
	r.Put(1, make([]float32, 4*SpotWidth))
	r.Put(2, make([]float32, 3*SpotWidth))
	if _, ok := r.Get(0); ok {
		t.Fatal("spot budget of 10 exceeded: frame 0 should be gone")
	}
	r.Put(3, nil)
	r.Put(4, []float32{1, 2, 3, 4, 5})
	if _, ok := r.Get(1); ok {
		t.Fatal("frame budget of 3 exceeded")
	}
	if s, ok := r.Get(4); !ok || s[2] != 3 {
		t.Fatal("newest frame missing")
	}
}

func TestSpotRingReusesStorage(t *testing.T) {
	r := NewSpotRing(4, 1000)
	spots := make([]float32, 10*SpotWidth)
	for i := 0; i < 8; i++ {
		r.Put(i, spots) // warm up: the ring fills
	}
	allocs := testing.AllocsPerRun(100, func() {
		r.Put(int(r.order[len(r.order)-1])+1, spots)
	})
	if allocs > 0 {
		t.Fatalf("%.1f allocations per Put once the ring is full", allocs)
	}
	if len(r.spots) != 4 {
		t.Fatalf("%d frames held", len(r.spots))
	}
}

func TestSpeedOverTheLastSecond(t *testing.T) {
	s := NewSpeed(time.Second)
	t0 := time.Unix(1000, 0)
	if r := s.Observe(t0, 0); r != 0 {
		t.Fatal(r)
	}
	for i := 1; i <= 10; i++ {
		s.Observe(t0.Add(time.Duration(i)*300*time.Millisecond), i*30)
	}
	// 100 frames/s throughout.
	if r := s.Observe(t0.Add(3300*time.Millisecond), 330); math.Abs(r-100) > 1e-6 {
		t.Fatalf("rate %g", r)
	}
	// Stopped for a while: the rate decays to 0 once the window passes.
	if r := s.Observe(t0.Add(5*time.Second), 330); r != 0 {
		t.Fatalf("rate after stop %g", r)
	}
}
