package pipeline

import (
	"math"
	"strings"
	"testing"

	"tioga/device/contract"
	"tioga/driver/stream"
	"tioga/sim/fixtures"
)

func newTestPipeline(t testing.TB, cfg Config) *Pipeline {
	t.Helper()
	dev, err := contract.Build(contract.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, dev, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Item 5: what the files say comes from the header, in one pixel
// convention, and a fallback says it is one.
func TestHeaderMetadataInFiles(t *testing.T) {
	p := newTestPipeline(t, Config{DefaultDistance: 0.2})

	// V2: the real EIGER2 16M start message has no detector_distance but a
	// detector_translation whose z is minus the distance.
	v2, err := stream.ParseV2(fixtures.Read(t, "eiger-stream-v2", "eiger2-16m", "start.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	h := v2.Series
	g := p.geometry(h, h.Width, h.Height)
	if math.Abs(g.Distance-0.23716) > 1e-5 || p.distanceSource != "header" {
		t.Errorf("V2 distance %v from %q, want 0.23716 m from the header", g.Distance, p.distanceSource)
	}
	// One pixel convention: the header and Beam_xy count from the first
	// pixel's outer edge (as dxtbx reads Beam_xy), the analysis centres
	// pixel i on i.
	if g.BeamX != h.BeamCenterX-0.5 || g.BeamY != h.BeamCenterY-0.5 {
		t.Errorf("analysis beam %v %v, header %v %v", g.BeamX, g.BeamY, h.BeamCenterX, h.BeamCenterY)
	}
	ch := cbfHeader(h, g, 2)
	if ch.BeamX != h.BeamCenterX || ch.BeamY != h.BeamCenterY || ch.Distance != g.Distance {
		t.Errorf("CBF beam %v %v distance %v", ch.BeamX, ch.BeamY, ch.Distance)
	}
	if !ch.Timestamp.Equal(h.ArmDate) {
		t.Errorf("V2 timestamp %v, arm date %v", ch.Timestamp, h.ArmDate)
	}
	// 32-bit counts are signed and clipped at MaxInt32 in the files: the
	// cut-off agrees.
	if c := cbfHeader(&stream.Series{}, g, 4).CountCutoff; c != math.MaxInt32 {
		t.Errorf("32-bit Count_cutoff %d", c)
	}
	if c := cbfHeader(&stream.Series{}, g, 2).CountCutoff; c != 65534 {
		t.Errorf("16-bit Count_cutoff %d", c)
	}

	// V1: the real EIGER2 dump is stamped with its data_collection_date.
	v1, err := stream.ParseV1(fixtures.MessageParts(t, "real-frames", "eiger2-16m-roi4m-thaumatin-v1dump", "header"))
	if err != nil {
		t.Fatal(err)
	}
	h = v1.Series
	ch = cbfHeader(h, p.geometry(h, h.Width, h.Height), 2)
	if got := ch.Timestamp.Format("2006-01-02T15:04:05.000-07:00"); got != "2020-09-07T21:46:54.965+02:00" {
		t.Errorf("V1 timestamp %s", got)
	}
	if ch.Distance != 0.337 || ch.BeamX != h.BeamCenterX {
		t.Errorf("V1 distance %v beam %v", ch.Distance, ch.BeamX)
	}

	// No distance anywhere in the header: the configured one, said so.
	h = &stream.Series{ID: 9, Width: 100, Height: 100}
	if g := p.geometry(h, 100, 100); g.Distance != 0.2 || !strings.HasPrefix(p.distanceSource, "configuration") {
		t.Errorf("fallback distance %v from %q", g.Distance, p.distanceSource)
	}
}

// The distance source is published with the series' geometry.
func TestDistanceSourcePublished(t *testing.T) {
	p := newTestPipeline(t, Config{DefaultDistance: 0.2, WriterEnabled: false})
	s := &series{header: &stream.Series{ID: 1, Width: 64, Height: 64, ElemSize: 2}}
	p.prepare(s, 64, 64, 2)
	st := p.dev.Stream
	if st.Distance.Value().Float() != 0.2 || !strings.HasPrefix(st.DistanceSource.Value().Text, "configuration") {
		t.Errorf("distance %v source %q", st.Distance.Value(), st.DistanceSource.Value().Text)
	}
}
