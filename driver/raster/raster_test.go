package raster

import (
	"bytes"
	"errors"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCellMappingOfTheContract(t *testing.T) {
	g := Grid{Lines: 37, FramesPerLine: 213, Serpentine: true}
	cases := []struct{ n, line, col int }{
		{0, 0, 0}, {212, 0, 212},
		{213, 1, 212}, {425, 1, 0}, // odd line runs backwards
		{426, 2, 0}, {7880, 36, 212},
	}
	for _, c := range cases {
		l, col, ok := g.Cell(c.n)
		if !ok || l != c.line || col != c.col {
			t.Errorf("serpentine frame %d -> (%d, %d, %v), want (%d, %d)", c.n, l, col, ok, c.line, c.col)
		}
		if n, ok := g.Frame(l, col); !ok || n != c.n {
			t.Errorf("Frame(%d, %d) = %d", l, col, n)
		}
	}
	g.Serpentine = false
	if l, col, _ := g.Cell(213); l != 1 || col != 0 {
		t.Errorf("plain raster frame 213 -> (%d, %d)", l, col)
	}
	if _, _, ok := g.Cell(7881); ok {
		t.Error("frame past the grid accepted")
	}
	if _, _, ok := (Grid{}).Cell(0); ok {
		t.Error("empty grid")
	}
}

func TestParseGeometry(t *testing.T) {
	cases := []struct {
		json  string
		want  Grid
		found bool
		err   bool
	}{
		{`{"raster": {"lines": 37, "frames_per_line": 213, "serpentine": true}}`, Grid{37, 213, true}, true, false},
		{`{"nlines": 5, "nframes_per_line": 10, "snake": 1}`, Grid{5, 10, true}, true, false},
		{`{"acqID": "test_1"}`, Grid{}, false, false},
		{`not json`, Grid{}, false, false},
		{`{"lines": 0, "frames_per_line": 3}`, Grid{}, true, true},
		{`{"scan": {"lines": 2.5, "frames_per_line": 3}}`, Grid{}, true, true},
	}
	for _, c := range cases {
		g, found, err := ParseGeometry([]byte(c.json))
		if found != c.found || (err != nil) != c.err || (err == nil && g != c.want) {
			t.Errorf("%s: %+v %v %v", c.json, g, found, err)
		}
	}
}

func TestGeometryFromCBORValue(t *testing.T) {
	// Stream V2 user_data decodes to CBOR maps with unsigned integers.
	v := map[any]any{"raster": map[any]any{"lines": uint64(37), "frames_per_line": uint64(213), "serpentine": true}}
	g, found, err := GeometryFrom(v)
	if err != nil || !found || g != (Grid{37, 213, true}) {
		t.Fatalf("%+v %v %v", g, found, err)
	}
	if _, found, _ := GeometryFrom("just text"); found {
		t.Fatal("text taken for a geometry")
	}
}

func TestMapAndHeatMap(t *testing.T) {
	g := Grid{Lines: 3, FramesPerLine: 4, Serpentine: true}
	m := NewMap(g)
	m.Set(0, 0, 0)
	m.Set(5, 10, 12) // line 1, column 2 (serpentine)
	m.Set(6, 100, 80)
	if m.Set(99, 1, 1) {
		t.Fatal("frame outside the grid recorded")
	}
	if m.Done() != 3 {
		t.Fatalf("done %d", m.Done())
	}
	s := m.Scores()
	if s[1*4+2] != 10 || s[1*4+1] != 100 || s[0] != 0 || s[11] != Unmeasured {
		t.Fatalf("scores %v", s)
	}
	if f, sc := m.Best(); f != 6 || sc != 100 {
		t.Fatalf("best %d %g", f, sc)
	}
	var buf bytes.Buffer
	if err := m.WritePNG(&buf, HeatMapOptions{CellSize: 4}); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 16 || b.Dy() != 12 {
		t.Fatalf("image %v", b)
	}
	// The best cell (line 1, column 1) is outlined in white, with its colour inside.
	if r, gg, b, _ := img.At(4, 4).RGBA(); r>>8 != 255 || gg>>8 != 255 || b>>8 != 255 {
		t.Fatal("best cell not outlined")
	}
	if r, gg, b, _ := img.At(5, 5).RGBA(); r>>8 != 252 || gg>>8 != 255 || b>>8 != 164 {
		t.Fatalf("best cell colour %d %d %d", r>>8, gg>>8, b>>8)
	}
	// An unmeasured cell is grey.
	if r, _, _, _ := img.At(13, 9).RGBA(); r>>8 != 96 {
		t.Fatal("unmeasured cell colour")
	}
	path := filepath.Join(t.TempDir(), "heat.png")
	if err := m.WritePNGFile(path, HeatMapOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		t.Fatal("heat map file", err)
	}
	// Readable by everyone, like every other output.
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("heat map mode %v, want 0644", fi.Mode().Perm())
	}
	// An earlier map under the same name is never replaced, and no
	// temporary is left.
	before, _ := os.ReadFile(path)
	m.Set(2, 1, 1)
	if err := m.WritePNGFile(path, HeatMapOptions{}); !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second map under the same name: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the earlier map was overwritten")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d entries", len(entries))
	}
}
