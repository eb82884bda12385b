package frameview

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"tioga/driver/cbf"
)

// writeTestFrame writes a 200 x 180 16-bit frame as a real .cbf.gz:
// background 2 counts, a masked block (0xFFFF) in the lower-left corner, a
// masked gap row, and one bright spot at pixel (60, 130).
func writeTestFrame(t *testing.T) (string, cbf.Header) {
	t.Helper()
	const w, h = 200, 180
	data := make([]byte, 2*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint16(2)
			switch {
			case x < 12 && y >= 160, y == 100:
				v = 0xFFFF
			case math.Abs(float64(x-60)) <= 1 && math.Abs(float64(y-130)) <= 1:
				v = 5000
			}
			binary.LittleEndian.PutUint16(data[2*(y*w+x):], v)
		}
	}
	hdr := cbf.Header{Detector: "Dectris EIGER X 500K", Serial: "E-test", PixelSizeX: 75e-6, PixelSizeY: 75e-6, Sensor: "Si",
		SensorThickness: 450e-6, ExposureTime: 0.01, ExposurePeriod: 0.01, CountCutoff: 65534, Wavelength: 1.0,
		Distance: 0.05, BeamX: 100, BeamY: 90}
	enc, err := cbf.NewEncoder(cbf.Options{Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	file, err := enc.Encode(&hdr, "test_1_00001", cbf.Pixels{Data: data, Width: w, Height: h, ElemSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "test_1_00001.cbf.gz")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, hdr
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the picture is not a PNG: %v", err)
	}
	return img
}

func rgba(img image.Image, x, y int) color.RGBA {
	return color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
}

func TestFrameViewFromFile(t *testing.T) {
	path, hdr := writeTestFrame(t)
	b, err := Renderer{}.RenderFile(context.Background(), path, Options{Spots: [][2]float64{{60, 130}}})
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, b)
	if img.Bounds() != image.Rect(0, 0, 200, 180) {
		t.Fatalf("size %v", img.Bounds())
	}
	// Masked pixels are grey, on the gap row too.
	for _, p := range []image.Point{{0, 179}, {11, 160}, {5, 170}, {40, 100}, {190, 100}} {
		if c := rgba(img, p.X, p.Y); c != MaskedColour {
			t.Errorf("masked pixel %v drawn %v", p, c)
		}
	}
	// The background is dark but not grey; the spot's pixels are bright
	// (white at the top of the scale).
	if c := rgba(img, 60, 30); c == MaskedColour || c.G > 100 {
		t.Errorf("background drawn %v", c)
	}
	if c := rgba(img, 60, 130); c.R != 255 || c.G != 255 {
		t.Errorf("spot centre drawn %v", c)
	}
	// The spot's circle: radius SpotRadius(1) around the pixel's centre.
	r := int(SpotRadius(1))
	for _, p := range []image.Point{{60 + r, 130}, {60 - r, 130}, {60, 130 + r}, {60, 130 - r}} {
		if c := rgba(img, p.X, p.Y); c != SpotColour {
			t.Errorf("circle pixel %v drawn %v", p, c)
		}
	}
	if c := rgba(img, 60+r/2, 130+r/2); c == SpotColour {
		t.Errorf("inside of the circle drawn as circle")
	}
	// Resolution rings from the file's own geometry.
	f := Frame{Width: 200, Height: 180, PixelSize: hdr.PixelSizeX, Distance: hdr.Distance, Wavelength: hdr.Wavelength, BeamX: hdr.BeamX, BeamY: hdr.BeamY}
	rings := Rings(f)
	if len(rings) < 2 {
		t.Fatalf("rings %v", rings)
	}
	for _, ring := range rings {
		// The ring lies where d is seen: 2θ = 2 asin(λ/2d), r = D tan 2θ / pixel.
		want := hdr.Distance * math.Tan(2*math.Asin(hdr.Wavelength/(2*ring.D))) / hdr.PixelSizeX
		if math.Abs(ring.Radius-want) > 1e-6 {
			t.Errorf("ring %g Å at %g px, want %g", ring.D, ring.Radius, want)
		}
		// The ring's pixel straight below the beam (no label there).
		y := int(hdr.BeamY + ring.Radius)
		if y < 180 && y != 100 {
			found := false
			for dy := -1; dy <= 1; dy++ {
				if y+dy < 180 && rgba(img, int(hdr.BeamX), y+dy) == RingColour {
					found = true
				}
			}
			if !found {
				t.Errorf("ring %g Å: no ring pixel at (%d, %d±1)", ring.D, int(hdr.BeamX), y)
			}
		}
	}
	// The first ring is labelled: its label's pixels (ring colour) lie
	// outside the ring itself.
	labelled := 0
	rr := rings[0].Radius
	for y := 0; y < 180; y++ {
		for x := 0; x < 200; x++ {
			d := math.Hypot(float64(x)+0.5-hdr.BeamX, float64(y)+0.5-hdr.BeamY)
			if rgba(img, x, y) == RingColour && d > rr+3 && d < rr+60 && x > int(hdr.BeamX)+5 {
				labelled++
			}
		}
	}
	if labelled < 10 {
		t.Errorf("the %g Å ring has no label (%d label pixels)", rings[0].D, labelled)
	}
}

func TestReductionKeepsSpots(t *testing.T) {
	f := Frame{Width: 4000, Height: 3000, Pixels: make([]int32, 4000*3000)}
	f.Pixels[1234*4000+2345] = 1000 // a one-pixel spot
	for x := 0; x < 4000; x++ {
		f.Pixels[2000*4000+x] = -1 // a masked row: rows of four with one valid row stay valid
	}
	img, err := Draw(f, Options{MaxSize: 1000, Scale: Sqrt})
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 1000, 750) {
		t.Fatalf("size %v", img.Bounds())
	}
	if c := img.RGBAAt(2345/4, 1234/4); c.R != 255 {
		t.Errorf("the one-pixel spot vanished in the reduction: %v", c)
	}
	if c := img.RGBAAt(10, 500); c == MaskedColour {
		t.Errorf("a block with valid pixels drawn masked")
	}
	if _, err := Draw(f, Options{Scale: "cubic"}); err == nil {
		t.Error("unknown scale accepted")
	}
}

func TestPercentileIgnoresMaskedAndHotPixels(t *testing.T) {
	px := make([]int32, 10000)
	for i := range px {
		px[i] = int32(i % 100)
	}
	px[0], px[1] = -1, 1<<30 // masked, hot
	if p := percentile(px, 0.999); p != 99 {
		t.Errorf("99.9th percentile %g, want 99", p)
	}
}
