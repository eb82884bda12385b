package raster

import (
	"bytes"
	"errors"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	// The figure: every cell where the layout says, in its colour.
	best, _ := m.Best()
	fig := Figure{Grid: g, Scores: m.Scores(), BestFrame: best, HeatMapOptions: HeatMapOptions{Prefix: "lyso", Run: 3, Series: 12,
		Date: time.Date(2026, 12, 2, 17, 40, 0, 0, time.UTC)}}
	if got := fig.Title(); got != "lyso run 3 · series 12 · 2026-12-02 17:40 UTC" {
		t.Errorf("title %q", got)
	}
	img, lay, err := fig.Render()
	if err != nil {
		t.Fatal(err)
	}
	centre := func(line, col int) color.RGBA {
		r := lay.Cell(line, col)
		return color.RGBAModel.Convert(img.At((r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/2)).(color.RGBA)
	}
	near := func(a, b color.RGBA) bool {
		d := func(x, y uint8) int { return max(int(x)-int(y), int(y)-int(x)) }
		return d(a.R, b.R) <= 3 && d(a.G, b.G) <= 3 && d(a.B, b.B) <= 3
	}
	if c := centre(0, 0); !near(c, palette[0]) { // score 0: the darkest colour
		t.Errorf("score-0 cell %v, want %v", c, palette[0])
	}
	if c := centre(2, 3); !near(c, UnmeasuredColour) { // not measured: grey, not the score-0 colour
		t.Errorf("unmeasured cell %v", c)
	}
	if c := centre(1, 1); !near(c, palette[len(palette)-1]) { // frame 6, the best: the top colour
		t.Errorf("best cell %v", c)
	}
	if c, want := centre(1, 2), colourOf(10, 100); !near(c, want) { // frame 5, serpentine undone
		t.Errorf("frame 5's cell %v, want %v", c, want)
	}
	// The best cell is ringed: ring pixels just outside its edges.
	r := lay.Cell(1, 1)
	ringed := 0
	for x := r.Min.X - 8; x <= r.Max.X+8; x++ {
		for y := r.Min.Y - 8; y <= r.Max.Y+8; y++ {
			if near(color.RGBAModel.Convert(img.At(x, y)).(color.RGBA), BestColour) {
				ringed++
			}
		}
	}
	if ringed < 20 {
		t.Errorf("best cell not ringed (%d ring pixels)", ringed)
	}
	// Axes, ticks and the colour bar make the figure larger than the cells.
	if cells := lay.Cell(2, 3).Max; lay.Width < cells.X+80 || lay.Height < cells.Y+40 {
		t.Errorf("figure %dx%d, cells end at %v: no room for axes and colour bar", lay.Width, lay.Height, cells)
	}
	var buf bytes.Buffer
	if err := m.WritePNG(&buf, HeatMapOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
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
