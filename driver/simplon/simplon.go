// Package simplon is a client of the detector control unit's SIMPLON REST
// API (the subset in shared/docs/eiger-stream.md): detector and stream
// status, configuration keys, and commands.
//
// The server uses it to feed the detector devices (state, temperature,
// humidity, frames dropped by the stream) and to carry out their commands
// (initialize, ROI mode). The DCU answers every GET with a JSON object
// {"value": ..., "value_type": ..., ...} and takes PUT {"value": ...}.
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
	"net/url"
	"strings"
	"time"
)

// DefaultVersion is the API version in the path.
const DefaultVersion = "1.8.0"

// Client talks to one DCU.
type Client struct {
	base    *url.URL
	version string
	http    *http.Client
}

// New returns a client of the DCU at baseURL (e.g. http://10.0.0.5 or
// http://127.0.0.1:8080). version "" means DefaultVersion.
func New(baseURL, version string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("SIMPLON address %q: want http://host[:port]", baseURL)
	}
	if version == "" {
		version = DefaultVersion
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Client{base: u, version: version, http: &http.Client{Timeout: timeout}}, nil
}

// Error is a non-2xx answer of the DCU.
type Error struct {
	Method, Path string
	Code         int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("SIMPLON %s %s: HTTP %d: %s", e.Method, e.Path, e.Code, e.Message)
}

func (c *Client) url(subsystem, kind, key string) string {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + subsystem + "/api/" + c.version + "/" + kind + "/" + key
	return u.String()
}

func (c *Client) do(ctx context.Context, method, subsystem, kind, key string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.url(subsystem, kind, key)
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("SIMPLON %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("SIMPLON %s %s: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &Error{Method: method, Path: req.URL.Path, Code: resp.StatusCode, Message: strings.TrimSpace(string(data))}
	}
	return data, nil
}

// value extracts "value" from a SIMPLON value object.
func value(data []byte) (any, error) {
	var obj struct {
		Value any `json:"value"`
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("SIMPLON answer is not a value object: %w", err)
	}
	return obj.Value, nil
}

// Get reads a key, e.g. Get(ctx, "detector", "status", "state").
func (c *Client) Get(ctx context.Context, subsystem, kind, key string) (any, error) {
	data, err := c.do(ctx, http.MethodGet, subsystem, kind, key, nil)
	if err != nil {
		return nil, err
	}
	return value(data)
}

// SetConfig writes a detector configuration key.
func (c *Client) SetConfig(ctx context.Context, key string, v any) error {
	_, err := c.do(ctx, http.MethodPut, "detector", "config", key, map[string]any{"value": v})
	return err
}

// SetStreamConfig writes a stream configuration key.
func (c *Client) SetStreamConfig(ctx context.Context, key string, v any) error {
	_, err := c.do(ctx, http.MethodPut, "stream", "config", key, map[string]any{"value": v})
	return err
}

// Command runs a detector command (initialize, arm, trigger, disarm, abort,
// cancel) and returns its JSON answer (arm: {"sequence id": N}).
func (c *Client) Command(ctx context.Context, name string) (json.RawMessage, error) {
	data, err := c.do(ctx, http.MethodPut, "detector", "command", name, nil)
	return json.RawMessage(data), err
}

// Arm arms the detector and returns the series (sequence) id.
func (c *Client) Arm(ctx context.Context) (int, error) {
	data, err := c.Command(ctx, "arm")
	if err != nil {
		return 0, err
	}
	var a struct {
		ID *int `json:"sequence id"`
	}
	if err := json.Unmarshal(data, &a); err != nil || a.ID == nil {
		return 0, fmt.Errorf("SIMPLON arm: no sequence id in %q", data)
	}
	return *a.ID, nil
}

// Status is what the detector devices publish.
type Status struct {
	State       string  // na, idle, ready, acquire, error, initialize, ...
	Temperature float64 // °C, NaN when the DCU does not say
	Humidity    float64 // %, NaN when the DCU does not say
	StreamState string
	Dropped     int // frames the stream dropped (stream/status/dropped)
}

// Status reads the detector state, environment and stream status. Only the
// state is required; the other keys are optional on real DCUs (their names
// differ between firmware versions: both spellings are tried).
func (c *Client) Status(ctx context.Context) (Status, error) {
	st := Status{Temperature: math.NaN(), Humidity: math.NaN()}
	v, err := c.Get(ctx, "detector", "status", "state")
	if err != nil {
		return st, err
	}
	s, ok := v.(string)
	if !ok {
		return st, fmt.Errorf("SIMPLON detector state is %T, not text", v)
	}
	st.State = s
	st.Temperature = c.firstNumber(ctx, "detector", "status", "temperature", "board_000/th0_temp")
	st.Humidity = c.firstNumber(ctx, "detector", "status", "humidity", "board_000/th0_humidity")
	if v, err := c.Get(ctx, "stream", "status", "state"); err == nil {
		st.StreamState, _ = v.(string)
	}
	if d := c.firstNumber(ctx, "stream", "status", "dropped"); !math.IsNaN(d) {
		st.Dropped = int(d)
	}
	return st, nil
}

func (c *Client) firstNumber(ctx context.Context, subsystem, kind string, keys ...string) float64 {
	for _, k := range keys {
		v, err := c.Get(ctx, subsystem, kind, k)
		if err != nil {
			var he *Error
			if errors.As(err, &he) && he.Code == http.StatusNotFound {
				continue
			}
			return math.NaN()
		}
		if f, ok := v.(float64); ok {
			return f
		}
	}
	return math.NaN()
}

// SetROIMode selects the readout mode: "disabled" (full frame) or "4M".
func (c *Client) SetROIMode(ctx context.Context, mode string) error {
	return c.SetConfig(ctx, "roi_mode", mode)
}
