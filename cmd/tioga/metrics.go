package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"tioga/adapters/opcua"
	"tioga/adapters/tine"
	"tioga/adapters/web"
)

// protocolCollectors exports the protocol servers' own counters (requests,
// clients, errors), which are not properties: the servers count them
// themselves. A nil server exports nothing.
func protocolCollectors(ts *tine.Server, us *opcua.Server, ws *web.Server) []prometheus.Collector {
	var out []prometheus.Collector
	counter := func(name, help string, fn func() float64) {
		out = append(out, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
	}
	gauge := func(name, help string, fn func() float64) {
		out = append(out, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	if ts != nil {
		counter("tioga_tine_requests_total", "TINE requests processed (SINGLE, attach, renewal, cancel).", func() float64 { return float64(ts.Stats().Requests) })
		counter("tioga_tine_errors_total", "TINE requests answered with an error (completion code != 0).", func() float64 { return float64(ts.Stats().Errors) })
		counter("tioga_tine_malformed_datagrams_total", "TINE datagrams that did not parse.", func() float64 { return float64(ts.Stats().Malformed) })
		counter("tioga_tine_writes_total", "TINE writes and commands applied.", func() float64 { return float64(ts.Stats().Writes) })
		counter("tioga_tine_writes_refused_total", "TINE writes refused by the access lists.", func() float64 { return float64(ts.Stats().WritesRefused) })
		counter("tioga_tine_busy_total", "TINE datagrams dropped: too many clients, or a client's queue full.", func() float64 { return float64(ts.Stats().Busy) })
		gauge("tioga_tine_clients", "TINE client endpoints with state.", func() float64 { return float64(ts.Stats().Clients) })
		gauge("tioga_tine_links", "TINE links attached now.", func() float64 { return float64(ts.Stats().Links) })
	}
	if us != nil {
		counter("tioga_opcua_requests_total", "OPC UA service requests handled.", func() float64 { return float64(us.Stats().Requests) })
		counter("tioga_opcua_faults_total", "OPC UA requests answered with a ServiceFault.", func() float64 { return float64(us.Stats().Faults) })
		counter("tioga_opcua_writes_total", "OPC UA values written.", func() float64 { return float64(us.Stats().Writes) })
		counter("tioga_opcua_writes_refused_total", "OPC UA writes refused.", func() float64 { return float64(us.Stats().WritesRefused) })
		gauge("tioga_opcua_sessions", "OPC UA sessions open now.", func() float64 { return float64(us.Stats().SessionsOpen) })
	}
	if ws != nil {
		gauge("tioga_web_pages_open", "Web pages following the live event stream now.", func() float64 { return float64(ws.OpenPages()) })
	}
	return out
}
