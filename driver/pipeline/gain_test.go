package pipeline

import (
	"testing"

	"tioga/driver/stream"
)

// The analysis' gain = 0 takes the header's gain: a "gain" key of the
// configuration or of the user data; none, or nonsense, is 0 (then 1).
func TestHeaderGain(t *testing.T) {
	for _, c := range []struct {
		name string
		h    stream.Series
		want float64
	}{
		{"none", stream.Series{}, 0},
		{"config", stream.Series{Config: map[string]any{"gain": 2.0}}, 2},
		{"config integer", stream.Series{Config: map[string]any{"gain": uint64(3)}}, 3},
		{"user data", stream.Series{Appendix: stream.UserData{Value: map[string]any{"gain": 1.5}}}, 1.5},
		{"config wins", stream.Series{Config: map[string]any{"gain": 2.0}, Appendix: stream.UserData{Value: map[string]any{"gain": 4.0}}}, 2},
		{"negative", stream.Series{Config: map[string]any{"gain": -1.0}}, 0},
		{"text", stream.Series{Config: map[string]any{"gain": "high"}}, 0},
	} {
		if got := headerGain(&c.h); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
