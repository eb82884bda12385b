package simplon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDCU answers the SIMPLON subset with fixed values and records PUTs.
type fakeDCU struct {
	mu   sync.Mutex
	puts []string
	keys map[string]any
}

func (f *fakeDCU) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		v, ok := f.keys[r.URL.Path]
		if !ok {
			http.Error(w, "no such key", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"value": v, "value_type": "string", "access_mode": "r"})
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		f.puts = append(f.puts, r.URL.Path+" "+strings.TrimSpace(string(body)))
		if strings.HasSuffix(r.URL.Path, "/command/arm") {
			w.Write([]byte(`{"sequence id": 7}`))
			return
		}
		if strings.HasSuffix(r.URL.Path, "/config/roi_mode") && !strings.Contains(string(body), `"4M"`) && !strings.Contains(string(body), `"disabled"`) {
			http.Error(w, "roi_mode: value not allowed", http.StatusBadRequest)
			return
		}
		w.Write([]byte("[]"))
	}
}

func TestStatusCommandsAndErrors(t *testing.T) {
	dcu := &fakeDCU{keys: map[string]any{
		"/detector/api/1.8.0/status/state":                  "idle",
		"/detector/api/1.8.0/status/board_000/th0_temp":     31.5,
		"/detector/api/1.8.0/status/board_000/th0_humidity": 12.25,
		"/stream/api/1.8.0/status/state":                    "ready",
		"/stream/api/1.8.0/status/dropped":                  3.0,
	}}
	srv := httptest.NewServer(dcu)
	defer srv.Close()
	c, err := New(srv.URL, "", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "idle" || st.Temperature != 31.5 || st.Humidity != 12.25 || st.StreamState != "ready" || st.Dropped != 3 {
		t.Fatalf("status %+v", st)
	}
	id, err := c.Arm(ctx)
	if err != nil || id != 7 {
		t.Fatalf("arm: %d %v", id, err)
	}
	if err := c.SetROIMode(ctx, "4M"); err != nil {
		t.Fatal(err)
	}
	err = c.SetROIMode(ctx, "2M")
	var he *Error
	if !errors.As(err, &he) || he.Code != 400 || !strings.Contains(he.Error(), "not allowed") {
		t.Fatalf("bad ROI mode: %v", err)
	}
	if _, err := c.Command(ctx, "initialize"); err != nil {
		t.Fatal(err)
	}
	dcu.mu.Lock()
	puts := strings.Join(dcu.puts, "\n")
	dcu.mu.Unlock()
	for _, want := range []string{
		"/detector/api/1.8.0/command/arm",
		`/detector/api/1.8.0/config/roi_mode {"value":"4M"}`,
		"/detector/api/1.8.0/command/initialize",
	} {
		if !strings.Contains(puts, want) {
			t.Errorf("PUT %q not seen in\n%s", want, puts)
		}
	}
}

func TestStatusWithoutOptionalKeys(t *testing.T) {
	srv := httptest.NewServer(&fakeDCU{keys: map[string]any{"/detector/api/1.6.0/status/state": "acquire"}})
	defer srv.Close()
	c, _ := New(srv.URL, "1.6.0", time.Second)
	st, err := c.Status(context.Background())
	if err != nil || st.State != "acquire" || !math.IsNaN(st.Temperature) || !math.IsNaN(st.Humidity) {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestUnreachableAndBadAddress(t *testing.T) {
	if _, err := New("dcu-without-scheme", "", 0); err == nil {
		t.Fatal("bad address accepted")
	}
	c, _ := New("http://127.0.0.1:1", "", 200*time.Millisecond)
	if _, err := c.Status(context.Background()); err == nil {
		t.Fatal("unreachable DCU gave no error")
	}
}
