package raster

import (
	"bufio"
	"errors"
	"fmt"
	"image/color"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"
)

// HeatMapOptions say what the figure's title says.
type HeatMapOptions struct {
	Prefix string    // file prefix of the series
	Run    int       // run number
	Series int64     // series id
	Date   time.Time // when the series started (zero: not shown)
}

// WritePNG draws the score grid as a figure a person can read on its own
// and paste into a logbook (see Figure).
func (m *Map) WritePNG(w io.Writer, opt HeatMapOptions) error {
	best, _ := m.Best()
	return Figure{Grid: m.grid, Scores: m.Scores(), BestFrame: best, HeatMapOptions: opt}.WritePNG(w)
}

// WritePNGFile writes the heat map atomically (temporary file, then rename).
func (m *Map) WritePNGFile(path string, opt HeatMapOptions) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("heat map %s: %w", path, err)
	}
	bw := bufio.NewWriter(tmp)
	err = m.WritePNG(bw, opt)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		// CreateTemp makes 0600 files; every other output is 0644.
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = publishNew(tmp.Name(), path)
	}
	os.Remove(tmp.Name())
	if err != nil {
		return fmt.Errorf("heat map %s: %w", path, err)
	}
	return nil
}

// publishNew gives tmp the name path unless path exists: an earlier run's
// map is never replaced. link(2) does that atomically; where the file
// system cannot link, a check before the rename does it nearly so.
func publishNew(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		if err != nil {
			return fmt.Errorf("%w (the earlier map is kept)", fs.ErrExist)
		}
		return nil
	}
	if _, serr := os.Lstat(path); serr == nil {
		return fmt.Errorf("%w (the earlier map is kept)", fs.ErrExist)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return nil
}

// palette: a perceptually ordered ramp (black, purple, red-orange, yellow).
var palette = []color.RGBA{
	{0, 0, 4, 255},
	{40, 11, 84, 255},
	{101, 21, 110, 255},
	{159, 42, 99, 255},
	{212, 72, 66, 255},
	{245, 125, 21, 255},
	{250, 193, 39, 255},
	{252, 255, 164, 255},
}

func colourOf(score, max float32) color.RGBA {
	if score <= 0 || max <= 0 {
		return palette[0]
	}
	t := math.Sqrt(float64(score) / float64(max))
	if t > 1 {
		t = 1
	}
	pos := t * float64(len(palette)-1)
	i := int(pos)
	if i >= len(palette)-1 {
		return palette[len(palette)-1]
	}
	f := pos - float64(i)
	a, b := palette[i], palette[i+1]
	lerp := func(x, y uint8) uint8 { return uint8(float64(x) + f*(float64(y)-float64(x)) + 0.5) }
	return color.RGBA{lerp(a.R, b.R), lerp(a.G, b.G), lerp(a.B, b.B), 255}
}

// ScoreColour is the colour of a cell with this score when the best score
// is best (the figure's and the web page's scale).
func ScoreColour(score, best float32) color.RGBA { return colourOf(score, best) }
