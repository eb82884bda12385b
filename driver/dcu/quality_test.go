package dcu

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"tioga/device/contract"
	"tioga/device/detectormodel"
	"tioga/driver/stream"
	"tioga/properties"
	"tioga/sim"
)

// With the detector control unit not answering, the values SIMPLON gives
// (temperature, humidity) keep their last reading marked bad (no
// communication) with the reason, and turn good when it answers again. A
// detector that never streamed has beam-xy "no value yet".
func TestDCUUnreachableMarksValuesBad(t *testing.T) {
	prof, _ := detectormodel.ByName("eiger16m")
	det, err := sim.Start(sim.Config{Profile: prof})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	det.Server().SetEnvironment(27.5, 8.25)
	// A gate in front of the simulated DCU: closed, it drops every
	// connection unanswered, as an unreachable DCU's network does.
	target, _ := url.Parse(det.RESTURL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var down atomic.Bool
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer gate.Close()

	dev, err := contract.Build(contract.DefaultNames())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := dev.Detector("eiger16m")
	if q := d.Temperature.Quality(); q.Level != properties.Bad || q.Cause != properties.CauseNoValue {
		t.Fatalf("temperature before any reading: %v", q)
	}
	if q := d.BeamXY.Quality(); q.Level != properties.Bad || q.Cause != properties.CauseNoValue || q.Reason == "" {
		t.Fatalf("beam-xy of an unfed detector: %v", q)
	}
	l, err := New(Config{URL: gate.URL, Detector: "eiger16m"}, dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Poll(t.Context())
	if v := d.Temperature.Value(); !v.Quality.IsGood() || v.Float() != 27.5 {
		t.Fatalf("temperature read: %v %v", v, v.Quality)
	}

	down.Store(true)
	l.Poll(t.Context())
	for _, p := range []*properties.Property{d.Temperature, d.Humidity} {
		v := p.Value()
		if v.Quality.Level != properties.Bad || v.Quality.Cause != properties.CauseNoCommunication ||
			!strings.Contains(v.Quality.Reason, "not answering") {
			t.Fatalf("%s with the DCU unreachable: %v", p.Name(), v.Quality)
		}
	}
	if d.Temperature.Value().Float() != 27.5 || d.Status.Value().Text != "error" {
		t.Fatalf("last reading %v, status %q", d.Temperature.Value(), d.Status.Value().Text)
	}

	down.Store(false)
	det.Server().SetEnvironment(28, 9)
	l.Poll(t.Context())
	if v := d.Temperature.Value(); !v.Quality.IsGood() || v.Float() != 28 {
		t.Fatalf("temperature after the DCU answers again: %v %v", v, v.Quality)
	}

	l.SeriesStarted(&stream.Series{BeamCenterX: 2000, BeamCenterY: 2100, PixelSizeX: 75e-6}, 4150, 4371)
	if q := d.BeamXY.Quality(); !q.IsGood() {
		t.Fatalf("beam-xy after a header: %v", q)
	}

	// Without a DCU configured, the SIMPLON values say so.
	dev2, _ := contract.Build(contract.DefaultNames())
	if _, err := New(Config{}, dev2, nil); err != nil {
		t.Fatal(err)
	}
	d2, _ := dev2.Detector("eiger4m")
	if q := d2.Temperature.Quality(); q.Level != properties.Bad || !strings.Contains(q.Reason, "no detector control unit") {
		t.Fatalf("temperature without a DCU: %v", q)
	}
}
