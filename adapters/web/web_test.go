package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"tioga/device"
	"tioga/properties"
)

// testTree is a small tree with the contract's names for what the page
// reads: /P14/rideau/tioga, /P14/rideau/scan, /P14/image-tracker/img-tracker.
type testTree struct {
	tree                  *device.Tree
	stream, scan, tracker *device.Device
	spots                 map[int][]float32
}

func newTestTree(t *testing.T) *testTree {
	t.Helper()
	tt := &testTree{tree: device.NewTree(), spots: map[int][]float32{}}
	R, RW := properties.Read, properties.Read|properties.Write
	st := device.New("tioga", "stream")
	for _, s := range []properties.Spec{
		{Name: "dozor-pass", Elem: properties.Float32, Shape: properties.Records, Width: 4, MaxLen: 1_000_000, Access: R, Events: true},
		{Name: "frame-count", Elem: properties.Int32, Access: R, Units: "frames"},
		{Name: "series-id", Elem: properties.Int32, Access: R},
		{Name: "series-start", Elem: properties.Text, Access: R, MaxLen: 64},
		{Name: "status", Elem: properties.Text, Access: R, MaxLen: 256},
		{Name: "hit-rate", Elem: properties.Float32, Access: R, Units: "%"},
		{Name: "average-speed", Elem: properties.Float32, Access: R, Units: "Hz"},
		{Name: "writer-template", Elem: properties.Text, Access: R, MaxLen: 4096},
		{Name: "writer-first-image", Elem: properties.Int32, Access: RW},
		{Name: "hit-threshold", Elem: properties.Float64, Access: RW, Limits: &properties.Limits{Min: 0, Max: 1e9}},
		{Name: "frame-spots", Elem: properties.Float32, Shape: properties.Records, Width: 5, MaxLen: 1000, Access: R, Arg: properties.Int32},
		{Name: "abort", Elem: properties.Int32, Access: properties.Command},
	} {
		st.Add(s)
	}
	fs, _ := st.Property("frame-spots")
	fs.OnQuery(func(_ context.Context, arg properties.Value) (properties.Value, error) {
		sp, ok := tt.spots[arg.Int()]
		if !ok {
			return properties.Value{}, properties.ErrOutOfRange
		}
		return properties.Float32Records(5, sp), nil
	})
	sc := device.New("scan", "scan")
	for _, s := range []properties.Spec{
		{Name: "lines", Elem: properties.Int32, Access: RW},
		{Name: "frames-per-line", Elem: properties.Int32, Access: RW},
		{Name: "serpentine", Elem: properties.Bool, Access: RW},
		{Name: "score-grid", Elem: properties.Float32, Shape: properties.Array, MaxLen: 1_000_000, Access: R},
		{Name: "best-frame", Elem: properties.Int32, Access: R},
	} {
		sc.Add(s)
	}
	tr := device.New("img-tracker", "tracker")
	for _, s := range []properties.Spec{
		{Name: "queue", Elem: properties.Float32, Shape: properties.Records, Width: 4, MaxLen: 100, Access: R},
		{Name: "queue-paths", Elem: properties.Text, Access: R, MaxLen: 100000},
		{Name: "shown", Elem: properties.Text, Access: R, MaxLen: 4096},
	} {
		tr.Add(s)
	}
	rideau := device.NewServer("P14", "rideau", "TIOGA", "")
	rideau.MustAdd(st)
	rideau.MustAdd(sc)
	trk := device.NewServer("P14", "image-tracker", "IMGTRK", "")
	trk.MustAdd(tr)
	if err := tt.tree.Add(rideau); err != nil {
		t.Fatal(err)
	}
	if err := tt.tree.Add(trk); err != nil {
		t.Fatal(err)
	}
	tt.stream, tt.scan, tt.tracker = st, sc, tr
	return tt
}

func (tt *testTree) p(d *device.Device, name string) *properties.Property {
	p, ok := d.Property(name)
	if !ok {
		panic(name)
	}
	return p
}

func newTestServer(t *testing.T, tt *testTree, mod func(*Config)) (*Server, *httptest.Server) {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", Tree: tt.tree, Stream: tt.stream, Scan: tt.scan, Tracker: tt.tracker, BatchPeriod: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	// httptest only for its client against the real listener.
	hs := &httptest.Server{URL: "http://" + s.Addr().String()}
	return s, hs
}

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !json.Valid(b) {
		t.Fatalf("%s: invalid JSON: %.300s", url, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

type stateMsg struct {
	Roles struct {
		Stream, Scan, Tracker string
	}
	AllowWrites, CanWrite bool
	Devices               []struct {
		Address string
		Props   []struct {
			Name, Address, Type, Shape, Units, Access string
			Value                                     json.RawMessage
			Time                                      int64
			Len                                       int
			Quality, Cause, Reason                    string
		}
	}
	Pass []float64
}

func (m stateMsg) value(addr string) (json.RawMessage, bool) {
	for _, d := range m.Devices {
		for _, p := range d.Props {
			if p.Address == addr {
				return p.Value, true
			}
		}
	}
	return nil, false
}

func TestStateReadsTheRegistry(t *testing.T) {
	tt := newTestTree(t)
	tt.p(tt.stream, "frame-count").SetInt32(42)
	tt.p(tt.stream, "status").SetText(`error: disk "full" <now>`)
	tt.p(tt.stream, "hit-rate").SetFloat(float64(float32(7.05)))
	big := make([]float32, 4000)
	_ = tt.p(tt.scan, "score-grid").Set(properties.Float32s(big))
	_, hs := newTestServer(t, tt, nil)

	var m stateMsg
	if code := getJSON(t, hs.URL+"/api/state", &m); code != 200 {
		t.Fatalf("status %d", code)
	}
	if m.Roles.Stream != "/P14/rideau/tioga" || m.Roles.Scan != "/P14/rideau/scan" || m.Roles.Tracker != "/P14/image-tracker/img-tracker" {
		t.Errorf("roles %+v", m.Roles)
	}
	if m.AllowWrites || m.CanWrite {
		t.Errorf("writes offered by default")
	}
	for addr, want := range map[string]string{
		"/P14/rideau/tioga/frame-count": `42`,
		"/P14/rideau/tioga/status":      `"error: disk \"full\" \u003cnow\u003e"`,
		"/P14/rideau/tioga/hit-rate":    `7.05`,
		"/P14/rideau/scan/score-grid":   `{"len":4000,"rows":4000}`,
	} {
		got, ok := m.value(addr)
		if !ok || string(got) != want {
			t.Errorf("%s = %s, want %s", addr, got, want)
		}
	}
	// The full value on request.
	var full struct{ Value []float64 }
	getJSON(t, hs.URL+"/api/value?address=/P14/rideau/scan/score-grid", &full)
	if len(full.Value) != 4000 {
		t.Errorf("full score-grid: %d values", len(full.Value))
	}
	if code := getJSON(t, hs.URL+"/api/value?address=/P14/rideau/tioga/nothing", nil); code != 404 {
		t.Errorf("unknown property: status %d", code)
	}
}

// sseReader reads events from the page's event stream.
type sseReader struct {
	resp *http.Response
	r    *bufio.Reader
}

func openEvents(t *testing.T, url string) *sseReader {
	t.Helper()
	resp, err := http.Get(url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sseReader{resp: resp, r: bufio.NewReaderSize(resp.Body, 1<<20)}
}

func (s *sseReader) next(t *testing.T) (string, []byte) {
	t.Helper()
	var name string
	var data []byte
	for {
		line, err := s.r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		l := strings.TrimRight(string(line), "\n")
		switch {
		case strings.HasPrefix(l, "event: "):
			name = l[7:]
		case strings.HasPrefix(l, "data: "):
			data = append(data, l[6:]...)
		case l == "":
			if name != "" {
				if !json.Valid(data) {
					t.Fatalf("event %s: invalid JSON %.300s", name, data)
				}
				return name, data
			}
		}
	}
}

type updateMsg struct {
	Values map[string]struct {
		Value                  json.RawMessage
		Time                   int64
		Len                    int
		Quality, Cause, Reason string
	}
	Pass      []float64
	PassReset bool
}

// nextUpdate reads updates until cond holds (the batches of the hub are
// synchronous with what the test set, but the first may still carry the
// subscriptions' initial values).
func (s *sseReader) nextUpdate(t *testing.T, cond func(updateMsg) bool) updateMsg {
	t.Helper()
	for i := 0; i < 50; i++ {
		name, data := s.next(t)
		if name != "update" {
			t.Fatalf("event %q, want update", name)
		}
		var u updateMsg
		if err := json.Unmarshal(data, &u); err != nil {
			t.Fatal(err)
		}
		if cond(u) {
			return u
		}
	}
	t.Fatal("no matching update in 50 events")
	return updateMsg{}
}

func TestEventsSnapshotThenBatches(t *testing.T) {
	tt := newTestTree(t)
	pass := tt.p(tt.stream, "dozor-pass")
	recs := []float32{0, 3, 0, 0, 1, 12, 55.5, 2.4}
	_ = pass.Set(properties.Float32Records(4, recs))
	tt.p(tt.stream, "series-id").SetInt32(7)
	s, hs := newTestServer(t, tt, nil)

	ev := openEvents(t, hs.URL)
	name, data := ev.next(t)
	if name != "snapshot" {
		t.Fatalf("first event %q", name)
	}
	var snap stateMsg
	if err := json.Unmarshal(data, &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Pass) != 8 || snap.Pass[6] != 55.5 {
		t.Errorf("snapshot pass %v", snap.Pass)
	}
	if v, _ := snap.value("/P14/rideau/tioga/series-id"); string(v) != "7" {
		t.Errorf("snapshot series-id %s", v)
	}
	if s.hub.clientCount() != 1 {
		t.Errorf("clients %d", s.hub.clientCount())
	}

	// The subscriptions' first values (series-id among them: the page
	// starts from the full records).
	ev.nextUpdate(t, func(u updateMsg) bool { return u.PassReset })

	// Many changes and two event batches within one period arrive as one
	// update with the last value and every record.
	s.hub.mu.Lock() // hold the tick so that everything lands in one batch
	for i := 1; i <= 100; i++ {
		tt.p(tt.stream, "frame-count").SetInt32(int32(i))
	}
	pass.Emit(properties.Float32Records(4, []float32{2, 0, 0, 0}))
	pass.Emit(properties.Float32Records(4, []float32{3, 40, 120, 1.9}))
	s.hub.mu.Unlock()
	u := ev.nextUpdate(t, func(u updateMsg) bool { return len(u.Pass) > 0 && !u.PassReset })
	if fc, ok := u.Values["/P14/rideau/tioga/frame-count"]; !ok || string(fc.Value) != "100" {
		t.Errorf("frame-count in the batch: %+v", u.Values["/P14/rideau/tioga/frame-count"])
	}
	if want := []float64{2, 0, 0, 0, 3, 40, 120, 1.9}; !floatsEqual(u.Pass, want) {
		t.Errorf("pass batch %v, want %v", u.Pass, want)
	}

	// A new series: the page gets that series' records from the start.
	_ = pass.Set(properties.Float32Records(4, []float32{0, 5, 9, 3}))
	tt.p(tt.stream, "series-id").SetInt32(8)
	u = ev.nextUpdate(t, func(u updateMsg) bool { return u.PassReset })
	if !floatsEqual(u.Pass, []float64{0, 5, 9, 3}) {
		t.Errorf("reset pass %v", u.Pass)
	}

	// The page leaves: the hub drops its subscriptions.
	ev.resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.hub.clientCount() != 0 && time.Now().Before(deadline) {
		tt.p(tt.stream, "frame-count").SetInt32(int32(time.Now().UnixNano() % 1000)) // the next write notices the closed stream
		time.Sleep(20 * time.Millisecond)
	}
	s.hub.mu.Lock()
	subs := s.hub.subs
	s.hub.mu.Unlock()
	if s.hub.clientCount() != 0 || subs != nil {
		t.Errorf("after the page left: %d clients, subscriptions %v", s.hub.clientCount(), subs != nil)
	}
}

func floatsEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-5 {
			return false
		}
	}
	return true
}

func TestEventsManyPages(t *testing.T) {
	tt := newTestTree(t)
	_, hs := newTestServer(t, tt, nil)
	var readers []*sseReader
	for i := 0; i < 5; i++ {
		ev := openEvents(t, hs.URL)
		if name, _ := ev.next(t); name != "snapshot" {
			t.Fatal(name)
		}
		readers = append(readers, ev)
	}
	tt.p(tt.stream, "status").SetText("receiving")
	var wg sync.WaitGroup
	for _, ev := range readers {
		wg.Add(1)
		go func(ev *sseReader) {
			defer wg.Done()
			ev.nextUpdate(t, func(u updateMsg) bool {
				v, ok := u.Values["/P14/rideau/tioga/status"]
				return ok && string(v.Value) == `"receiving"`
			})
		}(ev)
	}
	wg.Wait()
}

func postWrite(t *testing.T, url, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/write", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWritesFollowTheTINERules(t *testing.T) {
	body := `{"address":"/P14/rideau/tioga/hit-threshold","value":3.5}`
	t.Run("off by default", func(t *testing.T) {
		tt := newTestTree(t)
		_, hs := newTestServer(t, tt, nil)
		if code, msg := postWrite(t, hs.URL, body, nil); code != 403 || !strings.Contains(msg, "allow_writes") {
			t.Errorf("%d %s", code, msg)
		}
	})
	t.Run("network not listed", func(t *testing.T) {
		tt := newTestTree(t)
		_, hs := newTestServer(t, tt, func(c *Config) { c.AllowWrites = true; c.WriteNets = []string{"192.168.14.0/24"} })
		if code, _ := postWrite(t, hs.URL, body, nil); code != 403 {
			t.Errorf("status %d", code)
		}
		var m stateMsg
		getJSON(t, hs.URL+"/api/state", &m)
		if !m.AllowWrites || m.CanWrite {
			t.Errorf("allowWrites %v canWrite %v", m.AllowWrites, m.CanWrite)
		}
	})
	t.Run("user list", func(t *testing.T) {
		tt := newTestTree(t)
		_, hs := newTestServer(t, tt, func(c *Config) { c.AllowWrites = true; c.WriteUsers = []string{"p14user"} })
		if code, _ := postWrite(t, hs.URL, body, map[string]string{"X-Tioga-User": "somebody"}); code != 403 {
			t.Errorf("unlisted user: status %d", code)
		}
		if code, msg := postWrite(t, hs.URL, body, map[string]string{"X-Tioga-User": "P14USER"}); code != 200 {
			t.Errorf("listed user: %d %s", code, msg)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		tt := newTestTree(t)
		_, hs := newTestServer(t, tt, func(c *Config) { c.AllowWrites = true; c.WriteNets = []string{"127.0.0.0/8"} })
		if code, msg := postWrite(t, hs.URL, body, nil); code != 200 {
			t.Fatalf("%d %s", code, msg)
		}
		if v := tt.p(tt.stream, "hit-threshold").Value().Float(); v != 3.5 {
			t.Errorf("hit-threshold %g", v)
		}
		// Limits, read-only properties and other origins are refused.
		if code, msg := postWrite(t, hs.URL, `{"address":"/P14/rideau/tioga/hit-threshold","value":-1}`, nil); code != 400 || !strings.Contains(msg, "outside") {
			t.Errorf("out of range: %d %s", code, msg)
		}
		if code, _ := postWrite(t, hs.URL, `{"address":"/P14/rideau/tioga/frame-count","value":1}`, nil); code != 403 {
			t.Errorf("read-only: %d", code)
		}
		if code, _ := postWrite(t, hs.URL, body, map[string]string{"Origin": "http://evil.example"}); code != 403 {
			t.Errorf("cross-origin: %d", code)
		}
		var m stateMsg
		getJSON(t, hs.URL+"/api/state", &m)
		if !m.CanWrite {
			t.Error("canWrite false for an allowed client")
		}
	})
}

// fakeRenderer records what it was asked to draw.
type fakeRenderer struct {
	mu    sync.Mutex
	path  string
	opt   FrameOptions
	heat  HeatMap
	calls int
}

func (f *fakeRenderer) RenderFrame(_ context.Context, path string, opt FrameOptions) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.path, f.opt = path, opt
	f.calls++
	return []byte("\x89PNG fake"), nil
}

func (f *fakeRenderer) RenderHeatMap(_ context.Context, m HeatMap) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heat = m
	return []byte("\x89PNG heat"), nil
}

func TestFrameResolution(t *testing.T) {
	tt := newTestTree(t)
	tt.p(tt.stream, "writer-template").SetText("/data/p14/lyso_3_%05d.cbf.gz")
	tt.p(tt.stream, "writer-first-image").SetInt32(1)
	tt.p(tt.stream, "series-id").SetInt32(12)
	tt.p(tt.stream, "series-start").SetText("2026-12-02T17:40:00Z")
	_ = tt.p(tt.stream, "dozor-pass").Set(properties.Float32Records(4, []float32{0, 0, 0, 0, 1, 30, 80, 2.1, 2, 50, 150, 1.8}))
	tt.spots[2] = []float32{100.5, 200.25, 50, 5, 2.0, 300, 40, 20, 4, 3.1}
	// The tracker shows frame 1 (its queue has 2 then 1).
	_ = tt.p(tt.tracker, "queue").Set(properties.Float32Records(4, []float32{2, 150, 50, 1.8, 1, 80, 30, 2.1}))
	tt.p(tt.tracker, "queue-paths").SetText("/data/p14/lyso_3_00003.cbf.gz\n/data/p14/lyso_3_00002.cbf.gz")
	tt.p(tt.tracker, "shown").SetText("/data/p14/lyso_3_00002.cbf.gz")
	tt.p(tt.scan, "best-frame").SetInt32(2)
	r := &fakeRenderer{}
	_, hs := newTestServer(t, tt, func(c *Config) { c.Frames = r; c.HeatMap = r })

	type info struct {
		Frame                 int
		Path, File, SpotsNote string
		Known, Render         bool
		Score, Resolution     float64
		Spots, SpotsDrawn     int
	}
	var fi info
	getJSON(t, hs.URL+"/api/frame?frame=best", &fi)
	if fi.Frame != 1 || fi.Path != "/data/p14/lyso_3_00002.cbf.gz" || fi.Score != 80 || fi.Spots != 30 || fi.Resolution != 2.1 || !fi.Known {
		t.Errorf("best = %+v", fi)
	}
	if fi.SpotsNote == "" {
		t.Error("frame 1's spots are not held, and the page is not told")
	}
	getJSON(t, hs.URL+"/api/frame?frame=2", &fi)
	if fi.Frame != 2 || fi.File != "lyso_3_00003.cbf.gz" || fi.SpotsDrawn != 2 || !fi.Render {
		t.Errorf("frame 2 = %+v", fi)
	}
	getJSON(t, hs.URL+"/api/frame?frame=7", &fi) // not in the tracker's queue: the template
	if fi.Path != "/data/p14/lyso_3_00008.cbf.gz" || fi.Known {
		t.Errorf("frame 7 = %+v", fi)
	}
	if code := getJSON(t, hs.URL+"/api/frame?frame=-3", nil); code != 404 {
		t.Errorf("frame -3: %d", code)
	}

	resp, err := http.Get(hs.URL + "/api/frame.png?frame=2&scale=sqrt&size=0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("frame.png: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if r.path != "/data/p14/lyso_3_00003.cbf.gz" || r.opt.Scale != "sqrt" || r.opt.MaxSize != 0 ||
		len(r.opt.Spots) != 2 || r.opt.Spots[0] != (Spot{100.5, 200.25}) || r.opt.Spots[1] != (Spot{300, 40}) {
		t.Errorf("renderer asked for %q %+v", r.path, r.opt)
	}
	if code := getJSON(t, hs.URL+"/api/frame.png?frame=2&scale=cubic", nil); code != 400 {
		t.Errorf("bad scale: %d", code)
	}

	// The heat-map figure gets the grid and the title's facts.
	if code := getJSON(t, hs.URL+"/api/heatmap.png", nil); code != 404 {
		t.Errorf("heat map without geometry: %d", code)
	}
	tt.p(tt.scan, "lines").SetInt32(2)
	tt.p(tt.scan, "frames-per-line").SetInt32(2)
	tt.p(tt.scan, "serpentine").SetBool(true)
	_ = tt.p(tt.scan, "score-grid").Set(properties.Float32s([]float32{0, 80, -1, 150}))
	resp, err = http.Get(hs.URL + "/api/heatmap.png")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := r.heat
	if resp.StatusCode != 200 || h.Lines != 2 || h.FramesPerLine != 2 || !h.Serpentine || len(h.Scores) != 4 || h.BestFrame != 2 ||
		h.Prefix != "lyso" || h.Run != 3 || h.Series != 12 || !h.Date.Equal(time.Date(2026, 12, 2, 17, 40, 0, 0, time.UTC)) {
		t.Errorf("heat map %d %+v", resp.StatusCode, h)
	}
}

func TestEncodeValues(t *testing.T) {
	for _, c := range []struct {
		v    properties.Value
		spec properties.Spec
		want string
	}{
		{properties.Float64Value(math.NaN()), properties.Spec{}, `null`},
		{properties.Float32Value(0.1), properties.Spec{}, `0.1`},
		{properties.BoolValue(true), properties.Spec{}, `true`},
		{properties.TextValue("a\x01\"\u2028é"), properties.Spec{}, `"a\u0001\"\u2028é"`},
		{properties.Int32s([]int32{1, 2}), properties.Spec{Shape: properties.Array}, `[1,2]`},
		{properties.Float32Records(2, []float32{1, 2, 3, float32(math.Inf(1))}), properties.Spec{Shape: properties.Records}, `[[1,2],[3,null]]`},
		{properties.Float32s(make([]float32, 300)), properties.Spec{Shape: properties.Array}, `{"len":300,"rows":300}`},
	} {
		got := string(appendValue(nil, c.v, c.spec))
		if got != c.want {
			t.Errorf("%v: %s, want %s", c.v, got, c.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s is not JSON", got)
		}
	}
	long := strings.Repeat("é", 5000)
	got := appendValue(nil, properties.TextValue(long), properties.Spec{})
	var s string
	if err := json.Unmarshal(got, &s); err != nil || !strings.HasSuffix(s, "…") || len(s) > maxInlineText+8 {
		t.Errorf("long text: %v, %d bytes", err, len(s))
	}
}

func TestPageIsEmbedded(t *testing.T) {
	tt := newTestTree(t)
	_, hs := newTestServer(t, tt, nil)
	for path, want := range map[string]string{"/": "<title>Tioga</title>", "/app.js": "new EventSource", "/style.css": ".cards"} {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d, %q not found", path, resp.StatusCode, want)
		}
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("%s refers to another site (the page must work offline)", path)
		}
	}
}

// TestQualityInStateAndUpdates: the devices table's quality column reads
// the registry's quality: in the state (good values carry none), in
// /api/value, and in the live updates, bad with its cause and reason,
// then good again.
func TestQualityInStateAndUpdates(t *testing.T) {
	tt := newTestTree(t)
	speed := tt.p(tt.stream, "average-speed")
	speed.SetFloat(12.5)
	speed.SetQuality(properties.NoCommunication("detector control unit not answering: EOF"))
	s, hs := newTestServer(t, tt, nil)

	var m stateMsg
	getJSON(t, hs.URL+"/api/state", &m)
	found := false
	for _, d := range m.Devices {
		for _, p := range d.Props {
			switch p.Address {
			case "/P14/rideau/tioga/average-speed":
				found = true
				if p.Quality != "bad" || p.Cause != "no communication" || p.Reason != "detector control unit not answering: EOF" || string(p.Value) != "12.5" {
					t.Errorf("average-speed in the state: %+v", p)
				}
			case "/P14/rideau/tioga/frame-count":
				if p.Quality != "" || p.Reason != "" {
					t.Errorf("a good value with a quality: %+v", p)
				}
			}
		}
	}
	if !found {
		t.Fatal("average-speed not in the state")
	}
	var one struct {
		Value           float64
		Quality, Reason string
	}
	getJSON(t, hs.URL+"/api/value?address=/P14/rideau/tioga/average-speed", &one)
	if one.Value != 12.5 || one.Quality != "bad" || one.Reason == "" {
		t.Errorf("/api/value: %+v", one)
	}

	ev := openEvents(t, hs.URL)
	if name, _ := ev.next(t); name != "snapshot" {
		t.Fatalf("first event %q", name)
	}
	s.hub.mu.Lock() // both changes in one update
	speed.SetQuality(properties.NoValueYet("no series yet"))
	tt.p(tt.stream, "frame-count").SetInt32(5)
	s.hub.mu.Unlock()
	u := ev.nextUpdate(t, func(u updateMsg) bool { return u.Values["/P14/rideau/tioga/average-speed"].Cause == "no value yet" })
	if e := u.Values["/P14/rideau/tioga/average-speed"]; e.Quality != "bad" || e.Reason != "no series yet" {
		t.Errorf("update: %+v", e)
	}
	speed.SetFloat(13) // good again
	u = ev.nextUpdate(t, func(u updateMsg) bool { return string(u.Values["/P14/rideau/tioga/average-speed"].Value) == "13" })
	if e := u.Values["/P14/rideau/tioga/average-speed"]; e.Quality != "" || e.Reason != "" {
		t.Errorf("good again: %+v", e)
	}
}
