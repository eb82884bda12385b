package simplon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"tioga/device/detectormodel"
)

// fakeBackend records what the state machine asks of it.
type fakeBackend struct {
	mu        sync.Mutex
	events    []string
	frameTime time.Duration
	armErr    error
	acqErr    error
	started   chan struct{} // receives once per Acquire call
}

func (b *fakeBackend) log(format string, a ...any) {
	b.mu.Lock()
	b.events = append(b.events, fmt.Sprintf(format, a...))
	b.mu.Unlock()
}

func (b *fakeBackend) Events() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.events...)
}

func (b *fakeBackend) Arm(s *Series) error {
	if b.armErr != nil {
		return b.armErr
	}
	b.log("arm %d %s %dx%d n=%d t=%d", s.ID, s.Stream.Format, s.Profile.Width(), s.Profile.Height(), s.NImages, s.NTrigger)
	return nil
}

func (b *fakeBackend) Acquire(ctx context.Context, s *Series, first, n int) error {
	if b.started != nil {
		b.started <- struct{}{}
	}
	sent := 0
	for i := first; i < first+n; i++ {
		if ctx.Err() != nil {
			break
		}
		time.Sleep(b.frameTime)
		sent++
	}
	b.log("acquire %d from %d: %d of %d", s.ID, first, sent, n)
	return b.acqErr
}

func (b *fakeBackend) End(s *Series) error { b.log("end %d", s.ID); return nil }
func (b *fakeBackend) Dropped() uint64     { return 7 }

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (c client) ok(method, path, body string) string {
	c.t.Helper()
	code, out := c.do(method, path, body)
	if code != 200 {
		c.t.Fatalf("%s %s %s: %d %s", method, path, body, code, out)
	}
	return out
}

func (c client) put(key string, v any) string {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"value": v})
	return c.ok("PUT", "/detector/api/1.8.0/config/"+key, string(b))
}

func (c client) state() string {
	c.t.Helper()
	var v struct{ Value string }
	if err := json.Unmarshal([]byte(c.ok("GET", "/detector/api/1.8.0/status/state", "")), &v); err != nil {
		c.t.Fatal(err)
	}
	return v.Value
}

func (c client) command(cmd string) string {
	c.t.Helper()
	return c.ok("PUT", "/detector/api/1.8.0/command/"+cmd, "")
}

func start(t *testing.T, name string, b *fakeBackend) (*Server, client) {
	t.Helper()
	p, ok := detectormodel.ByName(name)
	if !ok {
		t.Fatal(name)
	}
	s, err := New(Options{Profile: p, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, client{t: t, base: hs.URL}
}

func waitState(t *testing.T, c client, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.state() != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %s, waited for %s", c.state(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStateMachine(t *testing.T) {
	b := &fakeBackend{}
	_, c := start(t, "eiger4m", b)

	if got := c.state(); got != "na" {
		t.Fatalf("initial state %s", got)
	}
	if code, msg := c.do("PUT", "/detector/api/1.8.0/command/arm", ""); code != 409 || !strings.Contains(msg, "not initialized") {
		t.Fatalf("arm in na: %d %s", code, msg)
	}
	c.command("initialize")
	if got := c.state(); got != "idle" {
		t.Fatalf("after initialize: %s", got)
	}
	if code, _ := c.do("PUT", "/detector/api/1.8.0/command/trigger", ""); code != 409 {
		t.Fatalf("trigger in idle: %d", code)
	}

	// Two triggers of three images.
	c.put("nimages", 3)
	c.put("ntrigger", 2)
	if got := c.command("arm"); got != `{"sequence id":1}` {
		t.Fatalf("arm returned %s", got)
	}
	if got := c.state(); got != "ready" {
		t.Fatalf("after arm: %s", got)
	}
	if code, msg := c.do("PUT", "/detector/api/1.8.0/config/nimages", `{"value": 5}`); code != 409 || !strings.Contains(msg, "disarm first") {
		t.Fatalf("config change while armed: %d %s", code, msg)
	}
	if code, _ := c.do("PUT", "/detector/api/1.8.0/command/arm", ""); code != 409 {
		t.Fatalf("second arm: %d", code)
	}
	c.command("trigger")
	if got := c.state(); got != "ready" {
		t.Fatalf("after first of two triggers: %s", got)
	}
	c.command("trigger")
	if got := c.state(); got != "idle" {
		t.Fatalf("after the last trigger: %s", got)
	}
	want := []string{"arm 1 legacy 2070x2167 n=3 t=2", "acquire 1 from 0: 3 of 3", "acquire 1 from 3: 3 of 3", "end 1"}
	if got := b.Events(); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q\nwant %q", got, want)
	}

	// arm + disarm ends the series without frames.
	if got := c.command("arm"); got != `{"sequence id":2}` {
		t.Fatalf("arm returned %s", got)
	}
	c.command("disarm")
	if got := c.state(); got != "idle" {
		t.Fatalf("after disarm: %s", got)
	}
	c.command("disarm") // defensive disarm in idle is fine
}

func TestAbortCancelDisarmDuringAcquisition(t *testing.T) {
	for _, how := range []string{"abort", "disarm", "cancel"} {
		t.Run(how, func(t *testing.T) {
			b := &fakeBackend{frameTime: 2 * time.Millisecond, started: make(chan struct{}, 4)}
			s, c := start(t, "eiger500k", b)
			s.opts.Initialized = true
			c.command("initialize")
			c.put("nimages", 100000)
			c.put("ntrigger", 2)
			c.command("arm")
			done := make(chan string, 1)
			go func() {
				code, out := c.do("PUT", "/detector/api/1.8.0/command/trigger", "")
				done <- fmt.Sprint(code, out)
			}()
			<-b.started
			waitState(t, c, "acquire")
			time.Sleep(10 * time.Millisecond)
			c.command(how)
			if got := <-done; got != "200" {
				t.Fatalf("trigger returned %q", got)
			}
			ev := b.Events()
			if len(ev) < 2 || !strings.HasPrefix(ev[1], "acquire 1 from 0: ") || strings.HasSuffix(ev[1], " 100000 of 100000") {
				t.Fatalf("events %q", ev)
			}
			switch how {
			case "cancel":
				// The series stays open: ready for the second trigger.
				if got := c.state(); got != "ready" {
					t.Fatalf("after cancel: %s", got)
				}
				if len(ev) != 2 {
					t.Fatalf("cancel sent the end: %q", ev)
				}
				c.command("disarm")
				if ev := b.Events(); len(ev) != 3 || ev[2] != "end 1" {
					t.Fatalf("disarm after cancel: %q", ev)
				}
			default:
				if got := c.state(); got != "idle" {
					t.Fatalf("after %s: %s", how, got)
				}
				if len(ev) != 3 || ev[2] != "end 1" {
					t.Fatalf("events %q", ev)
				}
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	b := &fakeBackend{}
	_, c := start(t, "eiger4m", b)
	cases := []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"GET", "/detector/api/1.8.0/config/no_such_key", "", 404, `no key "no_such_key"`},
		{"GET", "/detector/api/9.9.9/config/nimages", "", 404, "API version"},
		{"GET", "/nothing/here", "", 404, "not a SIMPLON path"},
		{"GET", "/detector/api/1.8.0/banana/nimages", "", 404, "no section"},
		{"PUT", "/detector/api/1.8.0/config/nimages", `{"value": "ten"}`, 400, "want a number"},
		{"PUT", "/detector/api/1.8.0/config/nimages", `{"value": 2.5}`, 400, "want an integer"},
		{"PUT", "/detector/api/1.8.0/config/nimages", `{"value": 0}`, 400, "out of range"},
		{"PUT", "/detector/api/1.8.0/config/nimages", `{"value": -3}`, 400, "unsigned"},
		{"PUT", "/detector/api/1.8.0/config/nimages", `{"valu": 3}`, 400, `{"value": ...}`},
		{"PUT", "/detector/api/1.8.0/config/nimages", `not json`, 400, `{"value": ...}`},
		{"PUT", "/detector/api/1.8.0/config/compression", `{"value": "gzip"}`, 400, `"gzip" is not one of bslz4, lz4, none`},
		{"PUT", "/detector/api/1.8.0/config/compression", `{"value": 3}`, 400, "want a string"},
		{"PUT", "/detector/api/1.8.0/config/bit_depth_image", `{"value": 8}`, 400, "8 is not one of 16, 32"},
		{"PUT", "/detector/api/1.8.0/config/frame_time", `{"value": 0.0001}`, 400, "out of range"},
		{"PUT", "/detector/api/1.8.0/config/x_pixels_in_detector", `{"value": 100}`, 405, "read-only"},
		{"PUT", "/detector/api/1.8.0/config/roi_mode", `{"value": "4M"}`, 405, "read-only"}, // a 4M has no ROI mode
		{"PUT", "/detector/api/1.8.0/status/state", `{"value": "idle"}`, 405, "read-only"},
		{"DELETE", "/detector/api/1.8.0/config/nimages", ``, 405, "not allowed"},
		{"GET", "/detector/api/1.8.0/command/arm", ``, 405, "commands are PUT"},
		{"PUT", "/detector/api/1.8.0/command/explode", ``, 404, `no command "explode"`},
		{"PUT", "/detector/api/1.8.0/command/disarm", ``, 409, "not initialized"},
		{"PUT", "/stream/api/1.8.0/config/format", `{"value": "hdf5"}`, 400, "not one of legacy, cbor"},
		{"GET", "/stream/api/1.8.0/status/nonsense", ``, 404, "no key"},
	}
	for _, tc := range cases {
		code, msg := c.do(tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s %s: %d %q, want %d containing %q", tc.method, tc.path, tc.body, code, msg, tc.code, tc.msg)
		}
	}
}

func TestValuesAndDependentKeys(t *testing.T) {
	b := &fakeBackend{}
	s, c := start(t, "eiger16m", b)
	// The value object.
	var v struct {
		Value         any      `json:"value"`
		ValueType     string   `json:"value_type"`
		AccessMode    string   `json:"access_mode"`
		AllowedValues []string `json:"allowed_values"`
		Min, Max      *float64
	}
	get := func(path string) {
		t.Helper()
		v.AllowedValues, v.Min, v.Max = nil, nil, nil
		if err := json.Unmarshal([]byte(c.ok("GET", path, "")), &v); err != nil {
			t.Fatal(err)
		}
	}
	get("/detector/api/1.6.0/config/x_pixels_in_detector")
	if v.Value != 4150.0 || v.ValueType != "uint" || v.AccessMode != "r" {
		t.Fatalf("x_pixels_in_detector: %+v", v)
	}
	get("/detector/api/1.8.0/config/roi_mode")
	if v.Value != "disabled" || v.AccessMode != "rw" || !reflect.DeepEqual(v.AllowedValues, []string{"disabled", "4M"}) {
		t.Fatalf("roi_mode: %+v", v)
	}
	get("/detector/api/1.8.0/config/frame_time")
	if v.ValueType != "float" || v.Min == nil || math.Abs(*v.Min-1.0/133) > 1e-12 {
		t.Fatalf("frame_time: %+v", v)
	}

	// Energy and wavelength move together; SIMPLON answers with the keys that changed.
	if got := c.put("photon_energy", 8047.78); got != `["photon_energy","wavelength","threshold_energy"]` {
		t.Fatalf("photon_energy changed %s", got)
	}
	get("/detector/api/1.8.0/config/wavelength")
	if math.Abs(v.Value.(float64)-1.54060) > 1e-4 {
		t.Fatalf("wavelength %v", v.Value)
	}
	// ROI mode shrinks the image and lifts the frame-rate limit.
	if code, _ := c.do("PUT", "/detector/api/1.8.0/config/frame_time", `{"value": 0.00134}`); code != 400 {
		t.Fatalf("750 Hz frame time accepted in 16M mode: %d", code)
	}
	if got := c.put("roi_mode", "4M"); got != `["roi_mode","x_pixels_in_detector","y_pixels_in_detector","number_of_excluded_pixels"]` {
		t.Fatalf("roi_mode changed %s", got)
	}
	if got := c.put("frame_time", 0.00134); got != `["frame_time","count_time"]` {
		t.Fatalf("frame_time changed %s", got)
	}
	get("/detector/api/1.8.0/config/count_time")
	if math.Abs(v.Value.(float64)-(0.00134-readoutTime)) > 1e-12 {
		t.Fatalf("count_time %v", v.Value)
	}
	get("/detector/api/1.8.0/config/y_pixels_in_detector")
	if v.Value != 2167.0 {
		t.Fatalf("y_pixels in 4M mode: %v", v.Value)
	}
	c.put("roi_mode", "disabled")
	get("/detector/api/1.8.0/config/frame_time")
	if math.Abs(v.Value.(float64)-1.0/133) > 1e-12 {
		t.Fatalf("frame_time after leaving ROI mode %v", v.Value)
	}

	// Stream config and status.
	c.ok("PUT", "/stream/api/1.8.0/config/format", `{"value": "cbor"}`)
	c.ok("PUT", "/stream/api/1.8.0/config/header_appendix", `{"value": "{\"user\": 1}"}`)
	get("/stream/api/1.8.0/config/header_appendix")
	if v.Value != `{"user": 1}` {
		t.Fatalf("header_appendix %v", v.Value)
	}
	get("/stream/api/1.8.0/status/dropped")
	if v.Value != 7.0 {
		t.Fatalf("dropped %v", v.Value)
	}
	s.SetEnvironment(31.5, 42)
	get("/detector/api/1.8.0/status/temperature")
	if v.Value != 31.5 {
		t.Fatalf("temperature %v", v.Value)
	}
	get("/detector/api/1.8.0/status/board_000/th0_humidity")
	if v.Value != 42.0 {
		t.Fatalf("humidity %v", v.Value)
	}
	get("/detector/api/version/")
	if v.Value != "1.8.0" {
		t.Fatalf("version %v", v.Value)
	}

	// The arm snapshot carries the configuration.
	c.command("initialize")
	c.put("roi_mode", "4M")
	c.command("arm")
	if ev := b.Events(); len(ev) != 1 || ev[0] != "arm 1 cbor 2070x2167 n=1 t=1" {
		t.Fatalf("events %q", ev)
	}
}

func TestBackendFailures(t *testing.T) {
	b := &fakeBackend{armErr: &RequestError{Status: 400, Msg: "resolution beyond the detector"}}
	_, c := start(t, "eiger1m", b)
	c.command("initialize")
	if code, msg := c.do("PUT", "/detector/api/1.8.0/command/arm", ""); code != 400 || msg != "resolution beyond the detector" {
		t.Fatalf("arm with a bad configuration: %d %s", code, msg)
	}
	if st := c.state(); st != "idle" {
		t.Fatalf("state after refused arm: %s", st)
	}
	b.armErr = errors.New("stream socket gone")
	if code, _ := c.do("PUT", "/detector/api/1.8.0/command/arm", ""); code != 500 {
		t.Fatalf("arm with a broken backend: %d", code)
	}
	if st := c.state(); st != "error" {
		t.Fatalf("state after failed arm: %s", st)
	}
	if got := c.ok("GET", "/detector/api/1.8.0/status/error", ""); !bytes.Contains([]byte(got), []byte("stream socket gone")) {
		t.Fatalf("status/error %s", got)
	}
	b.armErr = nil
	c.command("initialize")
	c.command("arm")
	b.acqErr = errors.New("send failed")
	if code, msg := c.do("PUT", "/detector/api/1.8.0/command/trigger", ""); code != 500 || !strings.Contains(msg, "send failed") {
		t.Fatalf("trigger with a failing backend: %d %s", code, msg)
	}
	if st := c.state(); st != "error" {
		t.Fatalf("state after failed acquisition: %s", st)
	}
}

// FuzzREST sends arbitrary method, path and body through the HTTP handler
// of an initialized detector: nothing may panic, and every answer is 200 or
// a 4xx with a message (never a 5xx: the fake backend does not fail).
func FuzzREST(f *testing.F) {
	f.Add("PUT", "/detector/api/1.8.0/config/nimages", `{"value": 10}`)
	f.Add("PUT", "/detector/api/1.8.0/config/photon_energy", `{"value": 1e300}`)
	f.Add("PUT", "/detector/api/1.6.0/config/compression", `{"value": "lz4"}`)
	f.Add("PUT", "/stream/api/1.8.0/config/header_appendix", `{"value": "{\"a\": [1, 2]}"}`)
	f.Add("GET", "/detector/api/1.8.0/status/board_000/th0_temp", ``)
	f.Add("PUT", "/detector/api/1.8.0/command/arm", ``)
	f.Add("PUT", "/detector/api/1.8.0/command/trigger", `{"value": 0.5}`)
	f.Add("PUT", "/detector/api/1.8.0/config/roi_mode", `{"value": null}`)
	p, _ := detectormodel.ByName("eiger16m")
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#?%") {
			return
		}
		s, err := New(Options{Profile: p, Backend: &fakeBackend{}, Initialized: true})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/", strings.NewReader(body))
		req.Method = method
		req.URL.Path = path
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 && (rec.Code < 400 || rec.Code > 499 || rec.Body.Len() == 0) {
			t.Fatalf("%s %s %q: %d %q", method, path, body, rec.Code, rec.Body.String())
		}
		// The server stays consistent: state and a config read still work.
		if _, err := s.Get("detector", "config", "nimages"); err != nil {
			t.Fatal(err)
		}
	})
}
