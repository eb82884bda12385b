package pipeline

import (
	"context"
	"testing"
	"time"

	"tioga/device/detectormodel"
	"tioga/properties"
	"tioga/sim"
)

// TestStageTimingAfterSeries runs a real series through a real socket
// (simulator -> ZMQ -> receiver -> pipeline -> files) and checks the
// stage-timing properties: every stage took time, each [last, mean, max]
// is ordered (last and mean <= max), and the receive-to-committed latency
// is at least each stage, since it contains them.
func TestStageTimingAfterSeries(t *testing.T) {
	prof, _ := detectormodel.ByName("eiger500k")
	c := rasterSample(prof, 4, 10)
	c.Raster = nil
	c.HitFraction = 0.5
	h := newHarness(t, sim.Config{Profile: prof, Format: "legacy", Compression: "bslz4", NImages: 40, Sample: c}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, sum := h.runSeries(ctx)
	if sum.Processed != 40 || sum.Written != 40 {
		t.Fatalf("summary %+v", sum)
	}
	st := h.dev.Stream
	get := func(p *properties.Property) []float64 {
		v := p.Value().Float64s
		if len(v) != 3 {
			t.Fatalf("%s = %v, want [last, mean, max]", p.Name(), v)
		}
		return v
	}
	lat := get(st.TimingLatency)
	for _, p := range []*properties.Property{st.TimingDecode, st.TimingAnalyse, st.TimingWrite, st.TimingLatency} {
		v := get(p)
		t.Logf("%-15s last %.3f mean %.3f max %.3f ms", p.Name(), v[0], v[1], v[2])
		for i, x := range v {
			if !(x > 0) || x > 60e3 {
				t.Errorf("%s[%d] = %g ms: want a positive duration", p.Name(), i, x)
			}
		}
		if v[0] > v[2] || v[1] > v[2] {
			t.Errorf("%s = %v: last and mean must not exceed max", p.Name(), v)
		}
		if p == st.TimingLatency {
			continue
		}
		for i := range v {
			if lat[i] < v[i] {
				t.Errorf("latency %v below %s %v (index %d): latency contains every stage", lat, p.Name(), v, i)
			}
		}
	}
	if u := st.TimingWrite.Spec().Units; u != "ms" {
		t.Errorf("units %q", u)
	}
}
