//go:build readers

package writer

// The opt-in check of `make check-readers` (go test -tags readers): DIALS'
// image library dxtbx (Debian package dials, hundreds of MB, hence not in
// the default test run) must recognise our files as EIGER miniCBF with the
// geometry of the header, and read identical pixels.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"tioga/driver/cbf"
	"tioga/driver/cbf/cbftest"
)

const dxtbxScript = `
import json, sys
import dxtbx
img = dxtbx.load(sys.argv[1])
d, b, s = img.get_detector(), img.get_beam(), img.get_scan()
p = d[0]
raw = img.get_raw_data()
if isinstance(raw, tuple):
    raw = raw[0]
open(sys.argv[2], "wb").write(raw.as_numpy_array().astype("<i4").tobytes())
print(json.dumps({
    "format": type(img).__name__,
    "pixel_size": p.get_pixel_size(),
    "image_size": p.get_image_size(),
    "distance": p.get_distance(),
    "wavelength": b.get_wavelength(),
    "beam_px": p.get_beam_centre_px(b.get_s0()),
    "trusted": p.get_trusted_range(),
    "material": p.get_material(),
    "thickness": p.get_thickness(),
    "oscillation": s.get_oscillation(),
    "exposure": s.get_exposure_times()[0],
}))
`

type dxtbxInfo struct {
	Format      string     `json:"format"`
	PixelSize   [2]float64 `json:"pixel_size"`
	ImageSize   [2]int     `json:"image_size"`
	Distance    float64    `json:"distance"`
	Wavelength  float64    `json:"wavelength"`
	BeamPx      [2]float64 `json:"beam_px"`
	Trusted     [2]float64 `json:"trusted"`
	Material    string     `json:"material"`
	Thickness   float64    `json:"thickness"`
	Oscillation [2]float64 `json:"oscillation"`
	Exposure    float64    `json:"exposure"`
}

func near(a, b float64) bool { d := a - b; return d < 1e-6 && d > -1e-6 }

func TestDxtbxRecognisesEIGER(t *testing.T) {
	dir := t.TempDir()
	p4m := cbftest.EIGER4M.Pixels()
	small := cbftest.Frame{Width: 512, Height: 512, ElemSize: 2, Background: 2, Spots: 5, Seed: 3}.Pixels()
	h := cbftest.Header()
	for _, c := range []struct {
		prefix string
		format Format
		p      cbf.Pixels
		class  string
	}{
		{"gz4m", FormatCBFGzip, p4m, "FormatCBFMiniEiger"},
		{"plain4m", FormatCBF, p4m, "FormatCBFMiniEiger"},
		// A non-EIGER size must not claim EIGER (dxtbx would build a
		// module mask from it) and still load.
		{"roi", FormatCBF, small, "FormatCBFMini"},
	} {
		s, err := Open(Config{Directory: dir, Prefix: c.prefix, Run: 1, Format: c.format, MinFreeBytes: -1}, h)
		if err != nil {
			t.Fatal(err)
		}
		var sc Scratch
		path, err := s.Write(&sc, 2, c.p)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		raw := filepath.Join(dir, "raw")
		out := cbftest.Python(t, dxtbxScript, path, raw)
		var got dxtbxInfo
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v: %s", path, err, out)
		}
		t.Logf("%s: %+v", filepath.Base(path), got)
		if got.Format != c.class {
			t.Errorf("%s: dxtbx format class %s, want %s", path, got.Format, c.class)
		}
		if got.PixelSize != [2]float64{0.075, 0.075} || got.ImageSize != [2]int{c.p.Width, c.p.Height} ||
			!near(got.Distance, 200) || !near(got.Wavelength, 0.97626) ||
			!near(got.BeamPx[0], h.BeamX) || !near(got.BeamPx[1], h.BeamY) ||
			got.Trusted != [2]float64{-1, 65535} || got.Material != "Si" || !near(got.Thickness, 0.45) ||
			!near(got.Oscillation[0], h.StartAngle+2*h.AngleIncrement) || !near(got.Oscillation[1], h.AngleIncrement) ||
			!near(got.Exposure, h.ExposurePeriod) {
			t.Errorf("%s: dxtbx model %+v", path, got)
		}
		pix, err := os.ReadFile(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pix, cbftest.Int32LE(c.p)) {
			t.Errorf("%s: dxtbx pixels differ from ours", path)
		}
	}
}
