package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"tioga/adapters/tine"
	"tioga/device"
	"tioga/properties"
)

type ctlRig struct {
	offset     int
	threshold  *properties.Property
	frameCount *properties.Property
	dozor      *properties.Property
}

// newCtlRig serves /P14/rideau/tioga and /P14/image-tracker/img-tracker
// over TINE on a loopback port; offset is that port minus 9003.
func newCtlRig(t *testing.T) *ctlRig {
	t.Helper()
	r := &ctlRig{}
	tree := device.NewTree()
	rs := device.NewServer("P14", "rideau", "", "Tioga streaming server")
	d := rs.MustAdd(device.New("tioga", "analysis"))
	r.frameCount = d.Add(properties.Spec{Name: "frame-count", Description: "frames so far", Elem: properties.Int32, Access: properties.Read})
	r.threshold = d.Add(properties.Spec{Name: "threshold", Description: "detection threshold", Elem: properties.Float64,
		Access: properties.Read | properties.Write, Units: "sigma", Limits: &properties.Limits{Min: 0, Max: 10}})
	st := d.Add(properties.Spec{Name: "status", Description: "state", Elem: properties.Text, MaxLen: 64, Access: properties.Read})
	r.dozor = d.Add(properties.Spec{Name: "dozor-pass", Description: "[frame, spots, score, resolution]", Elem: properties.Float32,
		Shape: properties.Records, Width: 4, MaxLen: 1_000_000, Access: properties.Read, Events: true, Units: "Å"})
	d.Add(properties.Spec{Name: "spot-list", Description: "spots of a frame", Elem: properties.Float32, Shape: properties.Records, Width: 2,
		MaxLen: 10, Access: properties.Read, Arg: properties.Int32}).
		OnQuery(func(_ context.Context, a properties.Value) (properties.Value, error) {
			return properties.Float32Records(2, []float32{float32(a.Int()), 5}), nil
		})
	ts := device.NewServer("P14", "image-tracker", "IMGTRK", "image tracker")
	ts.MustAdd(device.New("img-tracker", "tracker"))
	for _, s := range []*device.Server{rs, ts} {
		if err := tree.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	st.SetText("processing")
	r.threshold.SetFloat(0.5)
	r.frameCount.SetInt32(41)
	_ = r.dozor.Set(properties.Float32Records(4, []float32{0, 12, 3.5, 2.1, 1, 0, 0, 0}))
	srv, err := tine.NewServer(tree, tine.Config{Listen: "127.0.0.1", UDPPort: -1, FECName: "TIOGAX", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r.offset = srv.Addr().(*net.UDPAddr).Port - 9003
	return r
}

func (r *ctlRig) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--host", "127.0.0.1", "--port-offset", fmt.Sprint(r.offset))
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestCommands(t *testing.T) {
	r := newCtlRig(t)
	for _, tc := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"get", "/P14/rideau/tioga/frame-count"}, "41\n", 0},
		{[]string{"get", "/P14/rideau/tioga/frame-count", "--format", "double"}, "41\n", 0},
		{[]string{"get", "/P14/rideau/tioga/status"}, "processing\n", 0},
		{[]string{"get", "--size", "4", "/P14/rideau/tioga/status"}, "proc\n", 0},
		{[]string{"get", "/P14/rideau/tioga/dozor-pass"}, "0 12 3.5 2.1\n1 0 0 0\n", 0},
		{[]string{"get", "/P14/rideau/tioga/spot-list", "--input", "-3"}, "-3 5\n", 0},
		{[]string{"get", "/P14/rideau/tioga/threshold.EGU", "--format", "text"}, "sigma\n", 0},
		{[]string{"get", "/P14/rideau/tioga/NPROPS"}, "5\n", 0}, // unknown to PROPS: read as text
		{[]string{"set", "/P14/rideau/tioga/threshold", "2.75"}, "", 0},
		{[]string{"get", "/P14/rideau/tioga/threshold"}, "2.75\n", 0},
		{[]string{"set", "/P14/rideau/tioga/threshold", "-1"}, "", exitTINE},
		{[]string{"get", "/P14/rideau/tioga/nothing"}, "", exitTINE},
		{[]string{"devices", "/P14/image-tracker"}, "img-tracker\n", 0},
		{[]string{"props", "/P14/rideau/tioga"}, "" +
			"dozor-pass               r  FLOAT[1000000x4] A  [frame, spots, score, resolution]\n" +
			"frame-count              r  INT32[1]  frames so far\n" +
			"spot-list                r  FLOAT[10x2] in=INT32[1]  spots of a frame\n" +
			"status                   r  TEXT[64]  state\n" +
			"threshold                rw DOUBLE[1] sigma in=DOUBLE[1]  detection threshold\n", 0},
		{[]string{"get", "/P14/rideau"}, "", 1},
		{[]string{"frobnicate", "/P14/rideau/tioga/x"}, "", 1},
	} {
		out, errs, code := r.run(t, tc.args...)
		if out != tc.out || code != tc.code {
			t.Errorf("%v: exit %d, out %q (stderr %q); want %d, %q", tc.args, code, out, errs, tc.code, tc.out)
		}
	}
	if r.threshold.Value().Float() != 2.75 {
		t.Errorf("threshold %v", r.threshold.Value())
	}
	_, errs, _ := r.run(t, "set", "/P14/rideau/tioga/threshold", "20")
	if !strings.Contains(errs, "out of range") {
		t.Errorf("stderr %q", errs)
	}
}

func TestGetJSON(t *testing.T) {
	r := newCtlRig(t)
	out, errs, code := r.run(t, "get", "/P14/rideau/tioga/dozor-pass", "--json")
	if code != 0 {
		t.Fatal(errs)
	}
	var res Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Format != "FLOAT" || res.RowSize != 4 || len(res.Numbers) != 8 || res.Numbers[1] != 12 || res.Address != "/P14/rideau/tioga/dozor-pass" {
		t.Errorf("%+v", res)
	}
}

func TestWatch(t *testing.T) {
	r := newCtlRig(t)
	out, errs, code := r.run(t, "watch", "/P14/rideau/tioga/frame-count", "--mode", "poll", "--interval", "20ms", "--count", "3")
	if code != 0 {
		t.Fatal(errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[2], " 41") {
		t.Fatalf("%q", out)
	}
	go func() {
		for i := 0; i < 3; i++ {
			time.Sleep(100 * time.Millisecond)
			r.dozor.Emit(properties.Float32Records(4, []float32{float32(2 + i), 7, 1.5, 3}))
		}
	}()
	out, errs, code = r.run(t, "watch", "/P14/rideau/tioga/dozor-pass", "--mode", "event", "--json", "--count", "3", "--for", "10s")
	if code != 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var res Result
		if err := json.Unmarshal([]byte(l), &res); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(res.Reason, res.Numbers))
	}
	if strings.Join(got, "|") != "attach[0 12 3.5 2.1 1 0 0 0]|changed[2 7 1.5 3]|changed[3 7 1.5 3]" {
		t.Errorf("event updates %v", got)
	}
}

// TestCSVAndAddressDatabase: csv prints the rows a TINE client needs; with
// them in a database directory, commands find the server with no --host.
func TestCSVAndAddressDatabase(t *testing.T) {
	r := newCtlRig(t)
	out, errs, code := r.run(t, "csv")
	if code != 0 {
		t.Fatal(errs)
	}
	want := fmt.Sprintf(`# eqpdbase.csv
NAME,EQPMODULE,FECNAME,CONTEXT,SUBSYSTEM,DESCRIPTION
rideau,RIDEAU,TIOGAX,P14,TIOGA,Tioga streaming server
image-tracker,IMGTRK,TIOGAX,P14,TIOGA,image tracker

# fecaddr.csv
FEC_NAME,IP_ADDR,PORT_OFFSET
TIOGAX,127.0.0.1,%d
`, r.offset)
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "# cshosts.csv") {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	dir := t.TempDir()
	parts := strings.Split(out, "\n\n")
	for i, name := range []string{"eqpdbase.csv", "fecaddr.csv"} {
		body := strings.SplitN(parts[i], "\n", 2)[1] + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var o, e bytes.Buffer
	if code := run([]string{"get", "/P14/image-tracker/img-tracker/NDEVICES", "--db", dir, "--format", "int32"}, &o, &e); code != 0 || o.String() != "1\n" {
		t.Fatalf("via the database: %d %q %q", code, o.String(), e.String())
	}
	if code := run([]string{"get", "/P14/nowhere/x/y", "--db", dir}, &o, &e); code == 0 {
		t.Error("unknown server resolved")
	}
	// csv --dir writes the files where tine.jar reads them, in its cache
	// layout, keeping other servers' rows; commands read them back.
	cache := filepath.Join(t.TempDir(), "tine", "cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	other := "NAME,EQPMODULE,FECNAME,CONTEXT\nOTHER,OTHEQM,OTHFEC,P14\n"
	if err := os.WriteFile(filepath.Join(cache, "eqpdbase.csv"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "fecaddr.csv"), []byte("FEC_NAME,IP_ADDR,PORT_OFFSET\nOTHFEC,10.0.0.1,3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := r.run(t, "csv", "--dir", cache); code != 0 {
		t.Fatal(errs)
	}
	fa, _ := os.ReadFile(filepath.Join(cache, "fecaddr.csv"))
	wantFA := fmt.Sprintf("FecName,FecNetwork,FecNode,IPAddr,PortOffset,TineProtocol,McastRules\nTIOGAX,00000000,000000000000,127.0.0.1,%d,6,0\nOTHFEC,00000000,000000000000,10.0.0.1,3,6,0\n", r.offset)
	if string(fa) != wantFA {
		t.Errorf("fecaddr.csv:\n%s\nwant\n%s", fa, wantFA)
	}
	eq, _ := os.ReadFile(filepath.Join(cache, "eqpdbase.csv"))
	if !strings.Contains(string(eq), "rideau,RIDEAU,TIOGAX,P14") || !strings.Contains(string(eq), "OTHER,OTHEQM,OTHFEC,P14") {
		t.Errorf("eqpdbase.csv:\n%s", eq)
	}
	if _, err := os.Stat(filepath.Join(cache, "cshosts.csv")); err != nil {
		t.Error("no cshosts.csv written")
	}
	o.Reset()
	if code := run([]string{"get", "/P14/image-tracker/img-tracker/NDEVICES", "--db", cache, "--format", "int32"}, &o, &e); code != 0 || o.String() != "1\n" {
		t.Fatalf("via the written cache: %d %q %q", code, o.String(), e.String())
	}
}

// TestAddressingAndErrors: a context or server name the Tioga at --host
// does not serve is refused, naming what it serves; a server that does not
// answer is named in the error; props --json shows limits only for
// writable properties and the true number of rows of a records property.
func TestAddressingAndErrors(t *testing.T) {
	r := newCtlRig(t)
	for _, addr := range []string{"/P15/rideau/tioga/frame-count", "/P14/nosuch/tioga/frame-count"} {
		_, errs, code := r.run(t, "get", addr)
		if code == 0 || !strings.Contains(errs, "is not served there (it serves /P14/rideau") {
			t.Errorf("%s: exit %d, %q", addr, code, errs)
		}
	}
	// No server on this offset.
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := l.LocalAddr().(*net.UDPAddr).Port
	defer l.Close()
	// --timeout bounds the whole command, all attempts (it was per
	// attempt: 3 x); with and without the module lookup.
	for _, extra := range [][]string{{"--module", "RIDEAU"}, nil} {
		var o, e bytes.Buffer
		t0 := time.Now()
		code := run(append([]string{"get", "/P14/rideau/tioga/frame-count", "--host", "127.0.0.1", "--port-offset", fmt.Sprint(silent - 9003),
			"--timeout", "300ms"}, extra...), &o, &e)
		took := time.Since(t0)
		if code == 0 || !strings.Contains(e.String(), fmt.Sprintf("UDP 127.0.0.1:%d (port offset %d), within 300ms", silent, silent-9003)) {
			t.Errorf("silent server %v: exit %d, %q", extra, code, e.String())
		}
		if took < 250*time.Millisecond || took > 2*time.Second { // it took 3.3 s
			t.Errorf("silent server %v: --timeout 300ms took %v", extra, took)
		}
	}
	out, errs, code := r.run(t, "props", "/P14/rideau/tioga", "--json")
	if code != 0 {
		t.Fatal(errs)
	}
	var props []PropInfo
	if err := json.Unmarshal([]byte(out), &props); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, p := range props {
		switch p.Name {
		case "frame-count":
			if p.Min != nil || p.Max != nil {
				t.Errorf("read-only frame-count shows limits %v %v", *p.Min, *p.Max)
			}
		case "threshold":
			if p.Min == nil || p.Max == nil {
				t.Error("writable threshold shows no limits")
			}
		case "dozor-pass":
			if p.Rows != r.dozor.Spec().MaxLen || p.RowSize != 4 {
				t.Errorf("dozor-pass rows %d x %d, want %d x 4", p.Rows, p.RowSize, r.dozor.Spec().MaxLen)
			}
		}
	}
}
