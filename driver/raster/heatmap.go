package raster

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// HeatMap options.
type HeatMapOptions struct {
	// CellSize is the side of one grid cell in image pixels (default: the
	// largest that keeps the image within 1600 px wide, at least 2).
	CellSize int
}

// WritePNG draws the score grid as a PNG heat map: one cell per frame, line
// by line from the top, colour from dark (score 0) through purple and
// orange to yellow (the best score), on a square-root scale: weak hits at a
// crystal's edge stay visible beside a strong centre, yet the centre still
// stands out (a log scale saturated whole crystals in yellow, hiding the
// gradient a person centres on). Unmeasured cells are
// grey, and the best cell is outlined in white, so a person sees at a
// glance where the crystal is.
func (m *Map) WritePNG(w io.Writer, opt HeatMapOptions) error {
	g := m.grid
	if !g.Valid() {
		return fmt.Errorf("heat map: no raster geometry")
	}
	cell := opt.CellSize
	if cell <= 0 {
		cell = 1600 / g.FramesPerLine
		if cell > 16 {
			cell = 16
		}
		if cell < 2 {
			cell = 2
		}
	}
	scores := m.Scores()
	best, _ := m.Best()
	max := float32(0)
	for _, s := range scores {
		if s > max {
			max = s
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, g.FramesPerLine*cell, g.Lines*cell))
	bestLine, bestCol, haveBest := g.Cell(best)
	for line := 0; line < g.Lines; line++ {
		for col := 0; col < g.FramesPerLine; col++ {
			s := scores[line*g.FramesPerLine+col]
			c := unmeasuredColour
			if s != Unmeasured {
				c = colourOf(s, max)
			}
			outline := haveBest && line == bestLine && col == bestCol
			for y := line * cell; y < (line+1)*cell; y++ {
				for x := col * cell; x < (col+1)*cell; x++ {
					if outline && cell >= 3 && (y == line*cell || y == (line+1)*cell-1 || x == col*cell || x == (col+1)*cell-1) {
						img.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
						continue
					}
					img.SetRGBA(x, y, c)
				}
			}
		}
	}
	return png.Encode(w, img)
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

var unmeasuredColour = color.RGBA{96, 96, 96, 255}

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
