package dcu

import (
	"errors"
	"testing"

	"tioga/device/contract"
	"tioga/device/detectormodel"
	"tioga/driver/pipeline"
	"tioga/driver/stream"
	"tioga/properties"
	"tioga/sim"
)

func TestLinkFollowsTheSimulatedDCU(t *testing.T) {
	prof, _ := detectormodel.ByName("eiger16m")
	det, err := sim.Start(sim.Config{Profile: prof, Uninitialized: true})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	det.Server().SetEnvironment(27.5, 8.25)

	dev, err := contract.Build(contract.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Config{URL: det.RESTURL(), Detector: "eiger16m"}, dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := dev.Detector("eiger16m")
	if !d.Active.Value().Bool() {
		t.Fatal("configured detector not active")
	}
	if other, _ := dev.Detector("eiger4m"); other.Active.Value().Bool() {
		t.Fatal("another detector marked active")
	}

	l.Poll(t.Context())
	if got := d.Status.Value().Text; got != "na" {
		t.Fatalf("status of an uninitialised DCU %q", got)
	}
	if d.Temperature.Value().Float() != 27.5 || d.Humidity.Value().Float() != 8.25 {
		t.Fatalf("environment %v %v", d.Temperature.Value(), d.Humidity.Value())
	}

	// initialize goes to the DCU and its state follows.
	if err := d.Initialize.Write(t.Context(), properties.Int32Value(0)); err != nil {
		t.Fatal(err)
	}
	l.Poll(t.Context())
	if got := d.Status.Value().Text; got != "idle" {
		t.Fatalf("status after initialize %q", got)
	}

	// detector-mode: 4M ROI goes to the DCU as roi_mode and the facts follow.
	if err := d.DetectorMode.Write(t.Context(), properties.TextValue("4M")); err != nil {
		t.Fatal(err)
	}
	if v, err := det.Server().Value("detector", "roi_mode"); err != nil || v != "4M" {
		t.Fatalf("DCU roi_mode %v %v", v, err)
	}
	if d.FrameRate.Value().Float() != 750 || d.Size.Value().Int32s[0] != 2070 {
		t.Fatalf("4M facts: %v %v", d.FrameRate.Value(), d.Size.Value())
	}
	if err := d.DetectorMode.Write(t.Context(), properties.TextValue("16M")); err != nil {
		t.Fatal(err)
	}
	if v, _ := det.Server().Value("detector", "roi_mode"); v != "disabled" {
		t.Fatalf("DCU roi_mode after 16M: %v", v)
	}
	if err := d.DetectorMode.Write(t.Context(), properties.TextValue("2M")); !errors.Is(err, properties.ErrOutOfRange) {
		t.Fatalf("unknown mode: %v", err)
	}

	// The series header gives the beam centre in mm; lost frames add up.
	l.SeriesStarted(&stream.Series{BeamCenterX: 2000, BeamCenterY: 2100, PixelSizeX: 75e-6, SerialNumber: "E-32-0117"}, 4150, 4371)
	if v := d.BeamXY.Value().Float32s; v[0] != 150 || v[1] != 157.5 {
		t.Fatalf("beam-xy %v mm", v)
	}
	if d.Serial.Value().Text != "E-32-0117" {
		t.Fatal("serial number")
	}
	l.SeriesEnded(pipeline.Summary{Dropped: 3})
	if d.CountDropped.Value().Int() != 3 {
		t.Fatalf("count-dropped %d", d.CountDropped.Value().Int())
	}
	// The DCU's own dropped counter and the stream's gaps are the same
	// frames: 34 lost read 34, not 68.
	l.mu.Lock()
	l.dropped, l.dcuDrop = 0, 34
	l.mu.Unlock()
	l.SeriesEnded(pipeline.Summary{Dropped: 34})
	if got := d.CountDropped.Value().Int(); got != 34 {
		t.Fatalf("count-dropped %d after 34 frames lost, seen by the DCU and the stream", got)
	}
	l.Poll(t.Context()) // the simulated DCU dropped nothing itself
	if got := d.CountDropped.Value().Int(); got != 34 {
		t.Fatalf("count-dropped %d after a poll", got)
	}
}

func TestLinkWithoutDCUInfersStateAndPicksDetectorBySize(t *testing.T) {
	dev, _ := contract.Build(contract.DefaultNames())
	l, err := New(Config{}, dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A 4M-sized stream: the 4M device (full frame) becomes active.
	l.SeriesStarted(&stream.Series{BeamCenterX: 1000, BeamCenterY: 1000}, 2070, 2167)
	d4, _ := dev.Detector("eiger4m")
	if !d4.Active.Value().Bool() || d4.Status.Value().Text != "acquire" {
		t.Fatalf("4M device active %v status %q", d4.Active.Value(), d4.Status.Value().Text)
	}
	l.SeriesEnded(pipeline.Summary{})
	if d4.Status.Value().Text != "idle" {
		t.Fatal("state after the series")
	}
	if err := d4.Initialize.Write(t.Context(), properties.Int32Value(0)); err == nil {
		t.Fatal("initialize without a DCU accepted")
	}
	if _, err := New(Config{Detector: "pilatus"}, dev, nil); err == nil {
		t.Fatal("unknown detector accepted")
	}
}
