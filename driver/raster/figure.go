package raster

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	imgdraw "image/draw"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	gpalette "gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Figure is the heat-map figure of a raster: line and column axes with
// ticks, the score colour bar, the best cell ringed, cells not measured in
// grey (score 0 is the darkest colour of the scale, a different thing), and
// a title with prefix, run, series and date. Drawn with gonum/plot.
//
// Colour is the square root of score / best score through a perceptual
// ramp (black, purple, orange, yellow): weak hits at a crystal's edge stay
// visible beside a strong centre, yet the centre still stands out (a log
// scale saturated whole crystals in yellow, hiding the gradient a person
// centres on). The live web page draws its raster with the same scale.
type Figure struct {
	Grid Grid
	// Scores are laid out lines x frames-per-line, row-major by line
	// (serpentine undone); Unmeasured (or any negative value) = not measured.
	Scores    []float32
	BestFrame int // -1: none
	HeatMapOptions
}

// DPI of the PNG.
const figureDPI = 96

// UnmeasuredColour is the colour of cells not measured yet.
var UnmeasuredColour = color.RGBA{150, 150, 150, 255}

// BestColour rings the best cell.
var BestColour = color.RGBA{0, 229, 255, 255}

// Layout says where the cells landed in the picture, in pixels.
type Layout struct {
	Width, Height int
	// Cell returns the pixel rectangle of a cell.
	Cell func(line, col int) image.Rectangle
}

// Title is the figure's first title line.
func (f Figure) Title() string {
	var parts []string
	name := f.Prefix
	if f.Run > 0 || name != "" {
		name = strings.TrimSpace(fmt.Sprintf("%s run %d", f.Prefix, f.Run))
	}
	if name != "" {
		parts = append(parts, name)
	}
	parts = append(parts, "series "+strconv.FormatInt(f.Series, 10))
	if !f.Date.IsZero() {
		parts = append(parts, f.Date.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return strings.Join(parts, " · ")
}

// WritePNG writes the figure as a PNG.
func (f Figure) WritePNG(w io.Writer) error {
	img, _, err := f.Render()
	if err != nil {
		return err
	}
	return png.Encode(w, img)
}

// Render draws the figure.
func (f Figure) Render() (image.Image, Layout, error) {
	g := f.Grid
	if !g.Valid() {
		return nil, Layout{}, errors.New("heat map: no raster geometry")
	}
	if len(f.Scores) != g.Frames() {
		return nil, Layout{}, fmt.Errorf("heat map: %d scores for a %s", len(f.Scores), g)
	}
	max := float32(0)
	measured := 0
	for _, s := range f.Scores {
		if s >= 0 {
			measured++
			if s > max {
				max = s
			}
		}
	}
	// Cell size in pixels: the figure stays within about 1600 px wide.
	cell := math.Min(24, math.Max(3, math.Floor(1300/float64(g.FramesPerLine))))
	cell = math.Min(cell, math.Max(3, math.Floor(900/float64(g.Lines))))
	px := func(n float64) vg.Length { return vg.Length(n * 72 / figureDPI) }
	const left, right, top, bottom = 70.0, 150.0, 70.0, 70.0
	wpx := math.Round(left + right + cell*float64(g.FramesPerLine))
	hpx := math.Round(top + bottom + cell*float64(g.Lines))
	wpx, hpx = math.Max(wpx, 820), math.Max(hpx, 320) // room for the title lines

	p := plot.New()
	p.Title.Text = f.Title() + "\n" + f.subtitle(max, measured)
	p.Title.TextStyle.Font.Size = px(15)
	p.X.Label.Text = "column (frame in line)"
	p.Y.Label.Text = "line"
	// Line 0 at the top, as the scan runs: plotted at y = lines-1-line
	// and labelled with the line (gonum's rasterized heat map does not
	// follow an inverted axis, and drawn cell by cell it shows seams).
	p.X.Tick.Marker = intTicks{}
	p.Y.Tick.Marker = intTicks{flip: g.Lines - 1}
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = px(13)
		a.Tick.Label.Font.Size = px(12)
	}
	smax := math.Sqrt(float64(max))
	if smax <= 0 {
		smax = 1
	}
	p.X.Min, p.X.Max = -0.5, float64(g.FramesPerLine)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(g.Lines)-0.5

	bar := plot.New()
	cb := &plotter.ColorBar{ColorMap: &ramp{n: 256, max: smax}, Vertical: true}
	bar.Add(cb)
	bar.HideX()
	bar.Y.Padding = 0
	bar.Y.Label.Text = "score (square-root scale)"
	bar.Y.Label.TextStyle.Font.Size = px(13)
	bar.Y.Tick.Label.Font.Size = px(12)
	bar.Y.Tick.Marker = sqrtTicks{}
	bar.Title.Text = " "
	bar.Title.TextStyle.Font.Size = px(15)

	c := vgimg.NewWith(vgimg.UseWH(px(wpx), px(hpx)), vgimg.UseDPI(figureDPI))
	dc := draw.New(c)
	barW := px(110)
	main := draw.Crop(dc, 0, -barW, 0, 0)
	p.Draw(main)
	// The bar beside the data area, as tall as the cells (top part when
	// the grid is tall), with the legend of grey and ring under it.
	da := p.DataCanvas(main)
	side := draw.Crop(dc, dc.Max.X-barW+px(8), 0, 0, 0)
	side.Min.Y, side.Max.Y = da.Min.Y+px(70), da.Max.Y+px(40)
	if side.Max.Y-side.Min.Y > px(320) {
		side.Min.Y = side.Max.Y - px(320)
	}
	bar.Draw(draw.Crop(side, 0, -px(60), 0, 0))
	legend := draw.Crop(dc, dc.Max.X-barW+px(8), 0, 0, 0)
	sty := draw.TextStyle{Color: color.Black, Font: p.X.Label.TextStyle.Font, Handler: p.X.Label.TextStyle.Handler}
	sty.Font.Size = px(12)
	y := side.Min.Y - px(22)
	box := vg.Rectangle{Min: vg.Point{X: legend.Min.X, Y: y}, Max: vg.Point{X: legend.Min.X + px(14), Y: y + px(14)}}
	legend.FillPolygon(UnmeasuredColour, []vg.Point{box.Min, {X: box.Max.X, Y: box.Min.Y}, box.Max, {X: box.Min.X, Y: box.Max.Y}})
	legend.FillText(sty, vg.Point{X: box.Max.X + px(5), Y: y + px(2)}, "not measured")
	y -= px(24)
	legend.SetColor(BestColour)
	legend.SetLineWidth(px(3))
	ring := vg.Path{}
	ring.Move(vg.Point{X: box.Min.X + px(14), Y: y + px(7)})
	ring.Arc(vg.Point{X: box.Min.X + px(7), Y: y + px(7)}, px(7), 0, 2*math.Pi)
	ring.Close()
	legend.Stroke(ring)
	legend.FillText(sty, vg.Point{X: box.Max.X + px(5), Y: y + px(2)}, "best cell")

	img := c.Image()
	// The cells, painted pixel by pixel into the data area (gonum's heat
	// map interpolates a rasterized grid, and drawn cell by cell it shows
	// seams). vg's origin is at the bottom left, the image's at the top left.
	scale := float64(figureDPI) / 72
	x0, x1 := float64(da.Min.X)*scale, float64(da.Max.X)*scale
	yTop := hpx - float64(da.Max.Y)*scale
	yBot := hpx - float64(da.Min.Y)*scale
	cw := (x1 - x0) / float64(g.FramesPerLine)
	ch := (yBot - yTop) / float64(g.Lines)
	cellRect := func(line, col int) image.Rectangle {
		return image.Rect(int(math.Round(x0+float64(col)*cw)), int(math.Round(yTop+float64(line)*ch)),
			int(math.Round(x0+float64(col+1)*cw)), int(math.Round(yTop+float64(line+1)*ch)))
	}
	for line := 0; line < g.Lines; line++ {
		for col := 0; col < g.FramesPerLine; col++ {
			v := f.Scores[cellIndex(g, line, col)]
			c := UnmeasuredColour
			if v >= 0 {
				c = colourOf(v, max)
			}
			imgdraw.Draw(img, cellRect(line, col), image.NewUniform(c), image.Point{}, imgdraw.Src)
		}
	}
	// The best cell's ring, over the cells.
	if line, col, ok := g.Cell(f.BestFrame); ok && f.Scores[cellIndex(g, line, col)] >= 0 {
		w := math.Max(2, cell/6)
		ctr := vg.Point{X: da.Min.X + vg.Length((float64(col)+0.5)/float64(g.FramesPerLine))*(da.Max.X-da.Min.X),
			Y: da.Max.Y - vg.Length((float64(line)+0.5)/float64(g.Lines))*(da.Max.Y-da.Min.Y)}
		thickRing{width: px(w)}.DrawGlyph(&dc, draw.GlyphStyle{Color: BestColour, Radius: px(cell*0.5 + w)}, ctr)
	}
	lay := Layout{Width: img.Bounds().Dx(), Height: img.Bounds().Dy(), Cell: cellRect}
	return img, lay, nil
}

func (f Figure) subtitle(max float32, measured int) string {
	g := f.Grid
	s := fmt.Sprintf("%d lines × %d frames", g.Lines, g.FramesPerLine)
	if g.Serpentine {
		s += ", serpentine"
	}
	s += fmt.Sprintf(" · %d of %d measured", measured, g.Frames())
	if line, col, ok := g.Cell(f.BestFrame); ok && max > 0 {
		s += fmt.Sprintf(" · best %.1f at frame %d (line %d, column %d)", max, f.BestFrame, line, col)
	}
	return s
}

func cellIndex(g Grid, line, col int) int { return line*g.FramesPerLine + col }

// ramp is the heat map's colour scale as a gonum palette and colour map
// (over [0, max] of square-rooted scores).
type ramp struct {
	n        int
	min, max float64
}

func (r ramp) Colors() []color.Color {
	out := make([]color.Color, r.n)
	for i := range out {
		t := float64(i) / float64(r.n-1)
		out[i] = colourOf(float32(t*t), 1)
	}
	out[0] = palette[0]
	return out
}

func (r *ramp) At(v float64) (color.Color, error) {
	if r.max <= r.min {
		return palette[0], nil
	}
	t := (v - r.min) / (r.max - r.min)
	t = math.Max(0, math.Min(1, t))
	return colourOf(float32(t*t), 1), nil
}
func (r *ramp) Max() float64                   { return r.max }
func (r *ramp) SetMax(v float64)               { r.max = v }
func (r *ramp) Min() float64                   { return r.min }
func (r *ramp) SetMin(v float64)               { r.min = v }
func (r *ramp) Alpha() float64                 { return 1 }
func (r *ramp) SetAlpha(float64)               {}
func (r *ramp) Palette(n int) gpalette.Palette { return ramp{n: n, min: r.min, max: r.max} }

// intTicks marks whole cells only, about ten of them, at round labels;
// flip > 0 labels value v as flip - v (line 0 at the top).
type intTicks struct{ flip int }

func (it intTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	if hi < lo {
		return nil
	}
	step := math.Max(1, niceStep((hi-lo)/10))
	var out []plot.Tick
	for l := 0.0; l <= hi-lo; l += step {
		v := lo + l
		label := int(v)
		if it.flip > 0 {
			v = float64(it.flip) - l
			label = int(l)
		}
		out = append(out, plot.Tick{Value: v, Label: strconv.Itoa(label)})
	}
	return out
}

// sqrtTicks labels the colour bar (square roots of scores) with scores.
type sqrtTicks struct{}

func (sqrtTicks) Ticks(min, max float64) []plot.Tick {
	top := max * max
	if top <= 0 {
		return []plot.Tick{{Value: 0, Label: "0"}}
	}
	step := niceStep(top / 5)
	var out []plot.Tick
	for s := 0.0; s <= top*1.0001; s += step {
		out = append(out, plot.Tick{Value: math.Sqrt(s), Label: strconv.FormatFloat(s, 'g', 4, 64)})
	}
	return out
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// thickRing is a ring glyph with a line width of its own.
type thickRing struct{ width vg.Length }

func (r thickRing) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: r.width})
	var p vg.Path
	rad := sty.Radius - r.width/2
	p.Move(vg.Point{X: pt.X + rad, Y: pt.Y})
	p.Arc(pt, rad, 0, 2*math.Pi)
	p.Close()
	c.Stroke(p)
}
