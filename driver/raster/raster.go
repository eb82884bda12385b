// Package raster lays per-frame results out on the grid of a raster scan.
//
// A raster of L lines x F frames per line arrives as one series of L*F
// frames. Frame n lies on line n / F; on a serpentine scan odd lines run
// backwards, so its column is F-1-(n % F) there (control-contract.md,
// "Raster scans"). Beamline clients centre the crystal on the cell with the
// best score, so the mapping must be exactly theirs.
package raster

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
)

// Grid is the geometry of a raster scan.
type Grid struct {
	Lines         int
	FramesPerLine int
	Serpentine    bool
}

// Valid reports whether the grid describes a raster (both sizes positive).
func (g Grid) Valid() bool { return g.Lines > 0 && g.FramesPerLine > 0 }

// Frames is the number of frames of the grid.
func (g Grid) Frames() int { return g.Lines * g.FramesPerLine }

// Cell returns the line and column of frame n; ok is false when n lies
// outside the grid.
func (g Grid) Cell(n int) (line, col int, ok bool) {
	if !g.Valid() || n < 0 || n >= g.Frames() {
		return 0, 0, false
	}
	line, col = n/g.FramesPerLine, n%g.FramesPerLine
	if g.Serpentine && line%2 == 1 {
		col = g.FramesPerLine - 1 - col
	}
	return line, col, true
}

// Frame is the inverse of Cell.
func (g Grid) Frame(line, col int) (int, bool) {
	if !g.Valid() || line < 0 || line >= g.Lines || col < 0 || col >= g.FramesPerLine {
		return 0, false
	}
	if g.Serpentine && line%2 == 1 {
		col = g.FramesPerLine - 1 - col
	}
	return line*g.FramesPerLine + col, true
}

func (g Grid) String() string {
	kind := "raster"
	if g.Serpentine {
		kind = "serpentine raster"
	}
	return fmt.Sprintf("%d x %d %s", g.Lines, g.FramesPerLine, kind)
}

// ParseGeometry looks for a raster geometry in a series header appendix
// (JSON text). See GeometryFrom for the accepted spellings.
func ParseGeometry(raw []byte) (g Grid, found bool, err error) {
	if len(raw) == 0 {
		return Grid{}, false, nil
	}
	var top any
	if err := json.Unmarshal(raw, &top); err != nil {
		return Grid{}, false, nil // not JSON: an appendix may be anything
	}
	return GeometryFrom(top)
}

// GeometryFrom looks for a raster geometry in an already decoded appendix
// or user_data value: a JSON object (map[string]any) or a CBOR map (Stream
// V2 user_data; keys of any type, numbers of any integer or float type).
// Accepted spellings, at the top level or inside an object named "raster",
// "scan" or "grid":
//
//	lines | n_lines | nlines | num_lines
//	frames_per_line | nframes_per_line | frames-per-line | num_frames_per_line | images_per_line
//	serpentine | snake  (bool, or 0/1)
//
// found is false when the value holds no geometry; an error means it names
// a geometry that is unusable (e.g. zero or negative sizes).
func GeometryFrom(v any) (g Grid, found bool, err error) {
	top, ok := asMap(v)
	if !ok {
		return Grid{}, false, nil
	}
	for _, k := range []string{"raster", "scan", "grid"} {
		if sub, ok := asMap(top[k]); ok {
			if g, found, err := geometryFrom(sub); found || err != nil {
				return g, found, err
			}
		}
	}
	return geometryFrom(top)
}

// asMap normalises JSON and CBOR maps to map[string]any.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, x := range m {
			if ks, ok := k.(string); ok {
				out[ks] = x
			}
		}
		return out, true
	}
	return nil, false
}

func geometryFrom(m map[string]any) (Grid, bool, error) {
	lines, okL := number(m, "lines", "n_lines", "nlines", "num_lines")
	frames, okF := number(m, "frames_per_line", "nframes_per_line", "frames-per-line", "num_frames_per_line", "images_per_line")
	if !okL || !okF {
		return Grid{}, false, nil
	}
	if lines <= 0 || frames <= 0 || lines != math.Trunc(lines) || frames != math.Trunc(frames) || lines*frames > 1e9 {
		return Grid{}, true, fmt.Errorf("raster geometry %g x %g is not usable", lines, frames)
	}
	g := Grid{Lines: int(lines), FramesPerLine: int(frames)}
	for _, k := range []string{"serpentine", "snake"} {
		if b, ok := m[k].(bool); ok {
			g.Serpentine = b
		} else if f, ok := toFloat(m[k]); ok {
			g.Serpentine = f != 0
		}
	}
	return g, true, nil
}

func number(m map[string]any, keys ...string) (float64, bool) {
	for _, k := range keys {
		if f, ok := toFloat(m[k]); ok {
			return f, true
		}
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint32:
		return float64(x), true
	}
	return 0, false
}

// Unmeasured marks cells whose frame has not been processed yet.
const Unmeasured = -1

// Map is the score (and spot count) of every cell of a grid. It is safe for
// one writer and concurrent readers.
type Map struct {
	grid Grid

	mu        sync.RWMutex
	scores    []float32 // row-major by line, Unmeasured until set
	spots     []float32
	done      int
	bestFrame int
	bestScore float32
}

// NewMap returns a map of an all-unmeasured grid.
func NewMap(g Grid) *Map {
	m := &Map{grid: g, bestFrame: -1}
	if g.Valid() {
		m.scores = make([]float32, g.Frames())
		m.spots = make([]float32, g.Frames())
		for i := range m.scores {
			m.scores[i] = Unmeasured
			m.spots[i] = Unmeasured
		}
	}
	return m
}

// Grid returns the map's geometry.
func (m *Map) Grid() Grid { return m.grid }

// Set records the result of frame n; frames outside the grid are ignored
// (false).
func (m *Map) Set(n int, score float32, spots int) bool {
	line, col, ok := m.grid.Cell(n)
	if !ok {
		return false
	}
	i := line*m.grid.FramesPerLine + col
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.scores[i] == Unmeasured {
		m.done++
	}
	m.scores[i] = score
	m.spots[i] = float32(spots)
	if m.bestFrame < 0 || score > m.bestScore {
		m.bestFrame, m.bestScore = n, score
	}
	return true
}

// Done is the number of cells measured.
func (m *Map) Done() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.done
}

// Best returns the frame with the highest score so far (-1 when none).
func (m *Map) Best() (frame int, score float32) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.bestFrame, m.bestScore
}

// Scores returns a copy of the score grid, row-major by line.
func (m *Map) Scores() []float32 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]float32(nil), m.scores...)
}

// Spots returns a copy of the spot-count grid, row-major by line.
func (m *Map) Spots() []float32 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]float32(nil), m.spots...)
}
