// Package frameview draws a diffraction frame as a picture a person reads at
// a glance: counts on a log or square-root scale, masked and gap pixels
// grey, the spots the analysis found circled, and resolution rings
// labelled in Å. The live web page shows frames through it, from the files
// the writer put on disk (miniCBF, gzipped or not; TIFF without rings, as
// the TIFF files carry no geometry).
//
// Large frames are reduced by an integer factor keeping the brightest
// pixel of each block, so that a single-pixel spot never vanishes from a
// 4M frame shown 1024 pixels wide; a block with no valid pixel is masked.
package frameview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"tioga/driver/cbf"
	"tioga/driver/tiff"
)

// Colours of the picture: a test reads them back.
var (
	MaskedColour = color.RGBA{128, 128, 128, 255} // masked and gap pixels (< 0 in the file)
	SpotColour   = color.RGBA{0, 255, 255, 255}   // circles around spots
	RingColour   = color.RGBA{80, 220, 80, 255}   // resolution rings and labels
)

// Scale maps counts to brightness.
type Scale string

// Scales.
const (
	Log  Scale = "log"
	Sqrt Scale = "sqrt"
)

// Options say how to draw a frame.
type Options struct {
	Scale   Scale // default Log
	MaxSize int   // longest side of the picture; 0 = full size
	// Max is the count drawn white; 0 = sixteen times the 99.9th percentile
	// of the frame's valid pixels, at least 32 (a few hot pixels do not
	// darken the rest, and a flat background stays dark).
	Max float64
	// Spots are the centroids to circle, in pixel indices of the frame
	// (x = 3 is the centre of the fourth column).
	Spots [][2]float64
}

// Frame is a frame's pixels with the geometry the rings need (zero values
// when unknown: no rings).
type Frame struct {
	Width, Height int
	Pixels        []int32 // row-major; < 0 = masked or gap
	PixelSize     float64 // m
	Distance      float64 // m
	Wavelength    float64 // Å
	BeamX, BeamY  float64 // pixels
}

// ReadFile reads a miniCBF (.cbf or .cbf.gz) or TIFF file.
func ReadFile(path string) (Frame, error) {
	switch {
	case strings.HasSuffix(path, ".tif"), strings.HasSuffix(path, ".tiff"):
		img, err := tiff.ReadFile(path)
		if err != nil {
			return Frame{}, err
		}
		return Frame{Width: img.Width, Height: img.Height, Pixels: img.Pixels}, nil
	}
	img, err := cbf.ReadFile(path)
	if err != nil {
		return Frame{}, err
	}
	h := img.Header
	return Frame{Width: img.Width, Height: img.Height, Pixels: img.Pixels, PixelSize: h.PixelSizeX,
		Distance: h.Distance, Wavelength: h.Wavelength, BeamX: h.BeamX, BeamY: h.BeamY}, nil
}

// Renderer draws files as PNG.
type Renderer struct{}

// RenderFile reads path and draws it as a PNG.
func (Renderer) RenderFile(ctx context.Context, path string, opt Options) ([]byte, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	img, err := Draw(f, opt)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Reduction is the factor by which a frame of w x h pixels is reduced to
// fit maxSize.
func Reduction(w, h, maxSize int) int {
	if maxSize <= 0 {
		return 1
	}
	f := (max(w, h) + maxSize - 1) / maxSize
	return max(f, 1)
}

// Draw renders a frame.
func Draw(f Frame, opt Options) (*image.RGBA, error) {
	if f.Width <= 0 || f.Height <= 0 || len(f.Pixels) != f.Width*f.Height {
		return nil, errors.New("frameview: frame size does not match its pixels")
	}
	if opt.Scale == "" {
		opt.Scale = Log
	}
	if opt.Scale != Log && opt.Scale != Sqrt {
		return nil, fmt.Errorf("frameview: scale %q: log or sqrt", opt.Scale)
	}
	k := Reduction(f.Width, f.Height, opt.MaxSize)
	w, h := (f.Width+k-1)/k, (f.Height+k-1)/k
	red := make([]int32, w*h)
	for i := range red {
		red[i] = -1
	}
	for y := 0; y < f.Height; y++ {
		row := f.Pixels[y*f.Width : (y+1)*f.Width]
		out := red[(y/k)*w : (y/k+1)*w]
		for x, v := range row {
			if v > out[x/k] {
				out[x/k] = v
			}
		}
	}
	vmax := opt.Max
	if vmax <= 0 {
		// Sixteen times the 99.9th percentile: the background's tail sits
		// low on the scale, spots reach the top.
		vmax = math.Max(16*percentile(f.Pixels, 0.999), 32)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	var lut [256]color.RGBA
	for i := range lut {
		lut[i] = hot(float64(i) / 255)
	}
	logMax := math.Log1p(vmax)
	for i, v := range red {
		c := MaskedColour
		if v >= 0 {
			var t float64
			if opt.Scale == Log {
				t = math.Log1p(float64(v)) / logMax
			} else {
				t = math.Sqrt(float64(v) / vmax)
			}
			c = lut[int(math.Min(t, 1)*255+0.5)]
		}
		o := 4 * i
		img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = c.R, c.G, c.B, 255
	}
	drawRings(img, f, k)
	r := SpotRadius(k)
	for _, s := range opt.Spots {
		// A centroid of pixel indices: pixel x spans [x, x+1).
		circle(img, (s[0]+0.5)/float64(k), (s[1]+0.5)/float64(k), r, 1.2, SpotColour)
	}
	return img, nil
}

// SpotRadius is the radius of the circle drawn around a spot in a picture
// reduced by factor k.
func SpotRadius(k int) float64 { return math.Max(5, 6/float64(k)*2) }

// percentile returns the p-quantile of the valid (>= 0) pixels, by a
// histogram of exact counts below 65536 and a coarse one above.
func percentile(px []int32, p float64) float64 {
	const exact = 1 << 16
	hist := make([]int, exact+64)
	n := 0
	for _, v := range px {
		if v < 0 {
			continue
		}
		n++
		if v < exact {
			hist[v]++
		} else {
			hist[exact+min(63, int(math.Log2(float64(v)))-16)]++
		}
	}
	if n == 0 {
		return 1
	}
	want := int(math.Ceil(p * float64(n)))
	seen := 0
	for i, c := range hist {
		seen += c
		if seen >= want {
			if i < exact {
				return float64(i)
			}
			return math.Exp2(float64(i-exact+16) + 1)
		}
	}
	return exact
}

// hot maps t in [0, 1] to black, red, yellow, white.
func hot(t float64) color.RGBA {
	c := func(x float64) uint8 { return uint8(math.Max(0, math.Min(1, x))*255 + 0.5) }
	return color.RGBA{c(3 * t), c(3*t - 1), c(3*t - 2), 255}
}

// circle draws a ring of radius r and half-width hw around (cx, cy).
func circle(img *image.RGBA, cx, cy, r, hw float64, c color.RGBA) {
	b := img.Bounds()
	x0, x1 := int(math.Floor(cx-r-hw)), int(math.Ceil(cx+r+hw))
	y0, y1 := int(math.Floor(cy-r-hw)), int(math.Ceil(cy+r+hw))
	for y := max(y0, b.Min.Y); y <= min(y1, b.Max.Y-1); y++ {
		for x := max(x0, b.Min.X); x <= min(x1, b.Max.X-1); x++ {
			d := math.Hypot(float64(x)+0.5-cx, float64(y)+0.5-cy)
			if math.Abs(d-r) <= hw {
				img.SetRGBA(x, y, c)
			}
		}
	}
}

// Ring is one resolution ring: its d spacing and radius in frame pixels.
type Ring struct {
	D      float64 // Å
	Radius float64 // pixels of the frame
}

// Rings chooses up to four resolution rings at round d spacings, spread
// from the beam to the frame's farthest edge; none without geometry.
func Rings(f Frame) []Ring {
	if f.PixelSize <= 0 || f.Distance <= 0 || f.Wavelength <= 0 {
		return nil
	}
	// The farthest point of the frame from the beam bounds the rings.
	rmax := 0.0
	for _, c := range [][2]float64{{0, 0}, {float64(f.Width), 0}, {0, float64(f.Height)}, {float64(f.Width), float64(f.Height)}} {
		rmax = math.Max(rmax, math.Hypot(c[0]-f.BeamX, c[1]-f.BeamY))
	}
	// Rings at fractions of the distance to the nearest edge (whole rings
	// inside the frame), and one beyond when there is room.
	edge := math.Min(math.Min(f.BeamX, float64(f.Width)-f.BeamX), math.Min(f.BeamY, float64(f.Height)-f.BeamY))
	if edge < 0.1*rmax {
		edge = 0.5 * rmax
	}
	var out []Ring
	for _, frac := range []float64{0.3, 0.6, 0.95, 1.3} {
		d := round2(dSpacing(f, frac*edge))
		r := radius(f, d)
		if r <= 0 || r >= rmax || (len(out) > 0 && r-out[len(out)-1].Radius < 0.1*edge) {
			continue
		}
		out = append(out, Ring{D: d, Radius: r})
	}
	return out
}

// dSpacing is the resolution at r pixels from the beam.
func dSpacing(f Frame, r float64) float64 {
	twoTheta := math.Atan(r * f.PixelSize / f.Distance)
	return f.Wavelength / (2 * math.Sin(twoTheta/2))
}

// radius is the distance from the beam in pixels at which d is seen.
func radius(f Frame, d float64) float64 {
	s := f.Wavelength / (2 * d)
	if s >= 1 {
		return -1
	}
	twoTheta := 2 * math.Asin(s)
	if twoTheta >= math.Pi/2 {
		return -1
	}
	return f.Distance * math.Tan(twoTheta) / f.PixelSize
}

// round2 rounds to two significant digits (3.47 -> 3.5, 12.3 -> 12).
func round2(d float64) float64 {
	if d <= 0 {
		return d
	}
	m := math.Pow(10, math.Floor(math.Log10(d))-1)
	return math.Round(d/m) * m
}

var labelFace font.Face

func init() {
	f, err := opentype.Parse(gobold.TTF)
	if err == nil {
		labelFace, _ = opentype.NewFace(f, &opentype.FaceOptions{Size: 13, DPI: 72, Hinting: font.HintingFull})
	}
}

// drawRings draws the resolution rings with their labels on a picture
// reduced by factor k.
func drawRings(img *image.RGBA, f Frame, k int) {
	b := img.Bounds()
	for _, r := range Rings(f) {
		cx, cy, rr := f.BeamX/float64(k), f.BeamY/float64(k), r.Radius/float64(k)
		circle(img, cx, cy, rr, 0.6, RingColour)
		if labelFace == nil {
			continue
		}
		label := strconv.FormatFloat(r.D, 'g', 2, 64) + " Å"
		adv := font.MeasureString(labelFace, label).Ceil()
		// The first of these directions where the label lies inside.
		for _, deg := range []float64{-45, -135, 45, 135, -90, 90, 0, 180} {
			a := deg * math.Pi / 180
			x := int(cx+rr*math.Cos(a)) + 3
			y := int(cy+rr*math.Sin(a)) - 3
			box := image.Rect(x-2, y-12, x+adv+2, y+4)
			if !box.In(b) {
				continue
			}
			draw.Draw(img, box, &image.Uniform{color.RGBA{0, 0, 0, 200}}, image.Point{}, draw.Over)
			d := font.Drawer{Dst: img, Src: image.NewUniform(RingColour), Face: labelFace, Dot: fixed.P(x, y)}
			d.DrawString(label)
			break
		}
	}
	// The beam centre: a small cross.
	if f.PixelSize > 0 {
		cx, cy := int(f.BeamX/float64(k)), int(f.BeamY/float64(k))
		for d := -4; d <= 4; d++ {
			if image.Pt(cx+d, cy).In(b) {
				img.SetRGBA(cx+d, cy, RingColour)
			}
			if image.Pt(cx, cy+d).In(b) {
				img.SetRGBA(cx, cy+d, RingColour)
			}
		}
	}
}
