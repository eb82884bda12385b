package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/device/detectormodel"
	"tioga/sim"
)

// TestDetectorUnreachableIsBadQuality runs the assembled server with its
// SIMPLON address behind a gate: while the gate drops every connection,
// the detector's temperature reaches a TINE client as data stale (156)
// with the reason and an OPC UA client as BadCommunicationError; when the
// detector answers again, both see it good. beam-xy of a detector that
// never streamed is "not initialized" / BadWaitingForInitialData.
func TestDetectorUnreachableIsBadQuality(t *testing.T) {
	prof, _ := detectormodel.ByName("eiger500k")
	det, err := sim.Start(sim.Config{Profile: prof, NImages: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	det.Server().SetEnvironment(27.5, 8.25)
	target, _ := url.Parse(det.RESTURL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var down atomic.Bool
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer gate.Close()

	cfg := loopbackConfig(t, det, t.TempDir())
	cfg.Detector.SimplonURL = gate.URL
	cfg.Detector.Name = "eiger500k"
	cfg.Detector.PollInterval = Duration(50 * time.Millisecond)
	cfg.Names.Detectors = append(cfg.Names.Detectors, "eiger500k")
	_, stop := startServer(t, cfg)
	defer stop()
	tctx, tcancel := context.WithTimeout(context.Background(), time.Minute)
	defer tcancel()

	tc, err := client.DialServer("127.0.0.1", cfg.TINE.PortOffset, client.Options{User: "TEST"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	temp := client.Address{Module: "EIGER", Device: "eiger500k", Property: "temperature"}
	beam := client.Address{Module: "EIGER", Device: "eiger500k", Property: "beam-xy"}
	// tineRead returns the completion code, status text and first number.
	tineRead := func(a client.Address) (wire.CompCode, string, float64) {
		t.Helper()
		rep, err := tc.Call(tctx, client.Request{Address: a, Format: wire.Float, Size: 2})
		var te *client.Error
		if err != nil && !errors.As(err, &te) {
			return 0xFFF, err.Error(), 0
		}
		v, _ := rep.Data.Floats()
		if len(v) == 0 {
			v = []float64{0}
		}
		return rep.Code.Code(), rep.Status, v[0]
	}
	var uc *opcua.Client
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		uc, err = opcua.NewClient(fmt.Sprintf("opc.tcp://127.0.0.1:%d", cfg.OPCUA.Port), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
		if err != nil {
			t.Fatal(err)
		}
		if err = uc.Connect(tctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OPC UA server not answering: %v", err)
		}
	}
	defer uc.Close(context.Background())
	ns, err := uc.FindNamespace(tctx, "urn:tioga:devices")
	if err != nil {
		t.Fatal(err)
	}
	opcRead := func(addr string) *ua.DataValue {
		t.Helper()
		resp, err := uc.Read(tctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.NewStringNodeID(ns, addr), AttributeID: ua.AttributeIDValue}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Results[0]
	}
	waitUntil(t, "the first temperature reading", func() bool {
		code, _, v := tineRead(temp)
		return code == wire.OK && v == 27.5
	})
	if dv := opcRead("/P14/detector/eiger500k/temperature"); dv.Status != ua.StatusOK {
		t.Fatalf("OPC UA temperature: %v", dv.Status)
	}
	if code, status, _ := tineRead(beam); code != wire.NotInitialized || !strings.Contains(status, "no series header") {
		t.Fatalf("TINE beam-xy of an unfed detector: code %d %q", code, status)
	}
	if dv := opcRead("/P14/detector/eiger500k/beam-xy"); dv.Status != ua.StatusBadWaitingForInitialData {
		t.Fatalf("OPC UA beam-xy of an unfed detector: %v", dv.Status)
	}

	down.Store(true)
	waitUntil(t, "temperature bad over TINE", func() bool {
		code, status, v := tineRead(temp)
		return code == wire.DataStale && strings.Contains(status, "not answering") && v == 27.5
	})
	if dv := opcRead("/P14/detector/eiger500k/temperature"); dv.Status != ua.StatusBadCommunicationError {
		t.Fatalf("OPC UA temperature with the DCU unreachable: %v", dv.Status)
	}

	down.Store(false)
	det.Server().SetEnvironment(28, 9)
	waitUntil(t, "temperature good again over TINE", func() bool {
		code, _, v := tineRead(temp)
		return code == wire.OK && v == 28
	})
	if dv := opcRead("/P14/detector/eiger500k/temperature"); dv.Status != ua.StatusOK || dv.Value.Value() != float32(28) {
		t.Fatalf("OPC UA temperature after the DCU answers again: %v %v", dv.Status, dv.Value)
	}
}
