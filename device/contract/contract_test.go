package contract

import (
	"testing"

	"tioga/device"
	"tioga/properties"
)

// TestContractNames pins every name, type and access of
// shared/docs/control-contract.md: existing clients break if one changes.
func TestContractNames(t *testing.T) {
	d, err := Build(DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		addr   string
		elem   properties.Elem
		shape  properties.Shape
		width  int
		access properties.Access
	}
	R, RW, X := properties.Read, properties.Read|properties.Write, properties.Command
	for _, w := range []want{
		{"/P14/rideau/tioga/dozor-pass", properties.Float32, properties.Records, 4, R},
		{"/P14/rideau/tioga/dozor-pass-IS", properties.Float32, properties.Records, 2, R},
		{"/P14/rideau/tioga/frame-count", properties.Int32, properties.Scalar, 0, R},
		{"/P14/rideau/tioga/average-speed", properties.Float32, properties.Scalar, 0, R},
		{"/P14/rideau/tioga/dozor-average-i", properties.Float32, properties.Scalar, 0, R},
		{"/P14/rideau/tioga/status", properties.Text, properties.Scalar, 0, R},
		// the older name of the streaming server
		{"/P14/tioga/tioga/frame-count", properties.Int32, properties.Scalar, 0, R},
		{"/P14/image-tracker/img-tracker/load-state", properties.Bool, properties.Scalar, 0, RW},
		{"/P14/image-tracker/img-tracker/filter", properties.Bool, properties.Scalar, 0, RW},
		{"/P14/image-tracker/img-tracker/spot-list", properties.Bool, properties.Scalar, 0, RW},
		{"/P14/image-tracker/img-tracker/status", properties.Text, properties.Scalar, 0, R},
		{"/P14/image-tracker/img-tracker/load", properties.Text, properties.Scalar, 0, X},
		{"/P14/detector/eiger16m/status", properties.Text, properties.Scalar, 0, R},
		{"/P14/detector/eiger16m/detector-mode", properties.Text, properties.Scalar, 0, RW},
		{"/P14/detector/eiger16m/frame-rate", properties.Float32, properties.Scalar, 0, R},
		{"/P14/detector/eiger16m/beam-xy", properties.Float32, properties.Array, 0, R},
		{"/P14/detector/eiger16m/count-dropped", properties.Int32, properties.Scalar, 0, R},
		{"/P14/detector/eiger16m/temperature", properties.Float32, properties.Scalar, 0, R},
		{"/P14/detector/eiger16m/humidity", properties.Float32, properties.Scalar, 0, R},
		{"/P14/detector/eiger16m/initialize", properties.Int32, properties.Scalar, 0, X},
		{"/P14/detector/eiger4m/status", properties.Text, properties.Scalar, 0, R},
		{"/P14/detector/eiger16m-cdte/status", properties.Text, properties.Scalar, 0, R},
		{"/P14/detector/eiger4m-cdte/status", properties.Text, properties.Scalar, 0, R},
	} {
		a, err := device.ParseAddress(w.addr)
		if err != nil {
			t.Fatal(err)
		}
		p, err := d.Tree.Property(a)
		if err != nil {
			t.Errorf("%s: %v", w.addr, err)
			continue
		}
		s := p.Spec()
		if s.Elem != w.elem || s.Shape != w.shape || (w.width != 0 && s.Width != w.width) || s.Access != w.access {
			t.Errorf("%s: %s %s width %d access %s; want %s %s width %d access %s",
				w.addr, s.Elem, s.Shape, s.Width, s.Access, w.elem, w.shape, w.width, w.access)
		}
		if s.Description == "" {
			t.Errorf("%s: no description", w.addr)
		}
	}
	if s := d.Stream.DozorPass.Spec(); !s.Events || s.MaxLen != 1_000_000 {
		t.Errorf("dozor-pass must carry event batches of up to 1,000,000 records: %+v", s)
	}
	if got := d.Stream.Status.Value().Text; got != "idle" {
		t.Errorf("initial status %q", got)
	}
	if got := d.Tracker.Status.Value().Text; got != "unknown" {
		t.Errorf("initial tracker status %q", got)
	}
}

func TestDetectorFacts(t *testing.T) {
	d, err := Build(DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	x, ok := d.Detector("eiger16m")
	if !ok {
		t.Fatal("no eiger16m")
	}
	if v := x.Size.Value(); v.Int32s[0] != 4150 || v.Int32s[1] != 4371 {
		t.Fatalf("16M size %v", v)
	}
	if x.FrameRate.Value().Float() != 133 || x.Modes.Value().Text != "16M,4M" {
		t.Fatalf("16M rate %v modes %v", x.FrameRate.Value(), x.Modes.Value())
	}
	if err := x.SetMode("4M"); err != nil {
		t.Fatal(err)
	}
	if v := x.Size.Value(); v.Int32s[0] != 2070 || v.Int32s[1] != 2167 || x.FrameRate.Value().Float() != 750 {
		t.Fatalf("4M ROI: size %v rate %v", v, x.FrameRate.Value())
	}
	if v := x.GapSize.Value(); v.Int32s[0] != 10 || v.Int32s[1] != 37 {
		t.Fatalf("gaps %v", v)
	}
	if err := x.SetMode("2M"); err == nil {
		t.Fatal("unknown mode accepted")
	}
	if _, err := Build(Names{Context: "P14", StreamServer: "a", TrackerServer: "b", DetectorServer: "c", Detectors: []string{"pilatus"}}); err == nil {
		t.Fatal("unknown detector profile accepted")
	}
}

// TestStageTiming pins the stage-timing properties that monitoring (web
// page, Prometheus) reads: float64 [last, mean, max] in ms, read-only,
// zero before the first frame.
func TestStageTiming(t *testing.T) {
	d, err := Build(DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"timing-decode", "timing-analyse", "timing-write", "timing-latency"} {
		a, err := device.ParseAddress("/P14/rideau/tioga/" + name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := d.Tree.Property(a)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		s := p.Spec()
		if s.Elem != properties.Float64 || s.Shape != properties.Array || s.MaxLen != TimingLen || TimingLen != 3 ||
			s.Access != properties.Read || s.Units != "ms" || s.Description == "" {
			t.Errorf("%s: %+v; want a read-only float64 array of 3 in ms with a description", name, s)
		}
		if v := p.Value().Float64s; len(v) != 3 || v[0] != 0 || v[1] != 0 || v[2] != 0 {
			t.Errorf("%s: initial value %v, want [0 0 0]", name, v)
		}
	}
}

// TestDownstreamNames pins the downstream-processing device proposed for
// issue 18 (/P14/rideau/downstream): names, types and access that TINE,
// OPC UA and web clients will be written against.
func TestDownstreamNames(t *testing.T) {
	d, err := Build(DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	R, RW, X := properties.Read, properties.Read|properties.Write, properties.Command
	for _, w := range []struct {
		name   string
		elem   properties.Elem
		shape  properties.Shape
		maxLen int
		access properties.Access
	}{
		{"executor", properties.Text, properties.Scalar, 0, R},
		{"status", properties.Text, properties.Scalar, 0, R},
		{"series-id", properties.Int32, properties.Scalar, 0, R},
		{"hits", properties.Int32, properties.Scalar, 0, R},
		{"hits-submitted", properties.Int32, properties.Scalar, 0, R},
		{"hits-processed", properties.Int32, properties.Scalar, 0, R},
		{"indexed-frames", properties.Int32, properties.Scalar, 0, R},
		{"indexing-rate", properties.Float32, properties.Scalar, 0, R},
		{"unit-cell", properties.Float64, properties.Array, 6, R},
		{"unit-cell-spread", properties.Float64, properties.Array, 6, R},
		{"jobs-queued", properties.Int32, properties.Scalar, 0, R},
		{"jobs-running", properties.Int32, properties.Scalar, 0, R},
		{"jobs-done", properties.Int32, properties.Scalar, 0, R},
		{"jobs-failed", properties.Int32, properties.Scalar, 0, R},
		{"jobs-retried", properties.Int32, properties.Scalar, 0, R},
		{"count-chunks-dropped", properties.Int32, properties.Scalar, 0, R},
		{"count-hits-dropped", properties.Int32, properties.Scalar, 0, R},
		{"last-failure", properties.Text, properties.Scalar, 0, R},
		{"latency", properties.Float64, properties.Array, 3, R},
		{"indexed-file", properties.Text, properties.Scalar, 0, R},
		{"work-dir", properties.Text, properties.Scalar, 0, R},
		{"chunk-hits", properties.Int32, properties.Scalar, 0, RW},
		{"chunk-period", properties.Float64, properties.Scalar, 0, RW},
		{"cancel", properties.Int32, properties.Scalar, 0, X},
	} {
		for _, server := range []string{"rideau", "tioga"} {
			addr := "/P14/" + server + "/downstream/" + w.name
			a, err := device.ParseAddress(addr)
			if err != nil {
				t.Fatal(err)
			}
			p, err := d.Tree.Property(a)
			if err != nil {
				t.Errorf("%s: %v", addr, err)
				continue
			}
			s := p.Spec()
			if s.Elem != w.elem || s.Shape != w.shape || (w.maxLen != 0 && s.MaxLen != w.maxLen) || s.Access != w.access || s.Description == "" {
				t.Errorf("%s: %s %s max %d access %s; want %s %s max %d access %s, with a description",
					addr, s.Elem, s.Shape, s.MaxLen, s.Access, w.elem, w.shape, w.maxLen, w.access)
			}
		}
	}
	if got := d.Downstream.Executor.Value().Text; got != "disabled" {
		t.Errorf("initial executor %q", got)
	}
}
