package analysis

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"tioga/driver/codec"
	"tioga/driver/stream"
	"tioga/sim/fixtures"
)

// fixtureFrame is one real detector frame, decoded, with the geometry the
// regression test analyses it with.
type fixtureFrame struct {
	name     string
	geom     Geometry
	pixels   []byte
	elemSize int
}

func decodeImage(tb testing.TB, im *stream.Image) []byte {
	tb.Helper()
	dst := make([]byte, im.DecodedSize())
	if _, err := codec.NewDecoder().Decode(dst, im.Data, im.Encoding, im.ElemSize); err != nil {
		tb.Fatalf("decode image %d: %v", im.Number, err)
	}
	return dst
}

// eiger4MFixture returns frame n (0..2) of the real EIGER 4M Stream V1
// capture. Its header states beam centre 0/0 and distance 0 (the capture
// was not a diffraction experiment setup), so the geometry is chosen:
// beam at the detector centre, 0.1 m, and the header's 1.5406 Å and 75 µm.
// The diffraction rings in the frame are centred near the detector centre.
func eiger4MFixture(tb testing.TB, n int) fixtureFrame {
	tb.Helper()
	var parts [][]byte
	for k := 0; k < 4; k++ {
		parts = append(parts, fixtures.Read(tb, "eiger-stream-v1", "eiger4m-bs16", fmt.Sprintf("streamfile_%d", 10+4*n+k)))
	}
	hdr, err := stream.ParseV1([][]byte{
		fixtures.Read(tb, "eiger-stream-v1", "eiger4m-bs16", "streamfile_1"),
		fixtures.Read(tb, "eiger-stream-v1", "eiger4m-bs16", "streamfile_2"),
	})
	if err != nil || hdr.Series == nil {
		tb.Fatalf("4M series header: %v", err)
	}
	m, err := stream.ParseV1(parts)
	if err != nil || m.Image == nil {
		tb.Fatalf("4M frame %d: %v", n, err)
	}
	im, s := m.Image, hdr.Series
	return fixtureFrame{
		name: fmt.Sprintf("EIGER 4M V1 frame %d", im.Number),
		geom: Geometry{Width: im.Width, Height: im.Height, BeamX: float64(im.Width) / 2, BeamY: float64(im.Height) / 2,
			Distance: 0.1, Wavelength: s.Wavelength, PixelSize: s.PixelSizeX},
		pixels: decodeImage(tb, im), elemSize: im.ElemSize,
	}
}

// eiger2_500KFixture returns image n (1..10) of one of DECTRIS's EIGER2 R
// 500K Stream V2 captures. Their start messages are not included, so the
// geometry is chosen: beam at the detector centre, 0.1 m, 1 Å, 75 µm.
func eiger2_500KFixture(tb testing.TB, dir string, n int) fixtureFrame {
	tb.Helper()
	m, err := stream.ParseV2(fixtures.Read(tb, "eiger-stream-v2", dir, fmt.Sprintf("%06d.cbor", n)))
	if err != nil || m.Image == nil {
		tb.Fatalf("%s/%06d.cbor: %v", dir, n, err)
	}
	im := m.Image
	return fixtureFrame{
		name: fmt.Sprintf("EIGER2 500K %s image %d", strings.TrimPrefix(dir, "dectris-r500k_bm_"), im.Number),
		geom: Geometry{Width: im.Width, Height: im.Height, BeamX: float64(im.Width) / 2, BeamY: float64(im.Height) / 2,
			Distance: 0.1, Wavelength: 1, PixelSize: 75e-6},
		pixels: decodeImage(tb, im), elemSize: im.ElemSize,
	}
}

// eiger2_16MFixture returns the EIGER2 16M Stream V2 image with the
// geometry of its start message, fed to the analysis as the pipeline feeds
// it: the beam centre converted from the detector's convention (pixels from
// the first pixel's outer edge) to the analysis' (pixel i centred on i),
// the distance from detector_translation (z = -0.23716 m).
func eiger2_16MFixture(tb testing.TB) fixtureFrame {
	tb.Helper()
	sm, err := stream.ParseV2(fixtures.Read(tb, "eiger-stream-v2", "eiger2-16m", "start.cbor"))
	if err != nil || sm.Series == nil {
		tb.Fatalf("16M start: %v", err)
	}
	m, err := stream.ParseV2(fixtures.Read(tb, "eiger-stream-v2", "eiger2-16m", "image.cbor"))
	if err != nil || m.Image == nil {
		tb.Fatalf("16M image: %v", err)
	}
	s, im := sm.Series, m.Image
	if s.Width != im.Width || s.Height != im.Height {
		tb.Fatalf("16M image %dx%d, start message %dx%d", im.Width, im.Height, s.Width, s.Height)
	}
	if math.Abs(s.DetectorDistance-0.23716) > 1e-5 {
		tb.Fatalf("16M start message: distance %g m, want 0.23716 from detector_translation", s.DetectorDistance)
	}
	return fixtureFrame{
		name: "EIGER2 16M V2 image",
		geom: Geometry{Width: s.Width, Height: s.Height,
			BeamX: s.BeamCenterX - stream.PixelCentre, BeamY: s.BeamCenterY - stream.PixelCentre,
			Distance: s.DetectorDistance, Wavelength: s.Wavelength, PixelSize: s.PixelSizeX},
		pixels: decodeImage(tb, im), elemSize: im.ElemSize,
	}
}

// pinned is a regression value: the numbers of one fixture frame.
type pinned struct {
	name       string
	method     Method
	spots      int
	score      float64
	resolution float64
	is         float64
	background float64
	strong     int
}

func (p pinned) String() string {
	return fmt.Sprintf("{%q, %s, %d, %.6g, %.6g, %.6g, %.6g, %d},", p.name, map[Method]string{Threshold: "Threshold", Dispersion: "Dispersion"}[p.method],
		p.spots, p.score, p.resolution, p.is, p.background, p.strong)
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-5*math.Max(math.Abs(want), 1e-3) }

// TestRealFixtures pins the analysis of the real detector frames. They are
// judged plausible as follows: the EIGER 4M frame shows a powder-like
// protein pattern with hundreds of Bragg spots to about 2.5 Å at the chosen
// geometry; the EIGER2 500K frames are flat, nearly uniform noise (a few
// counts per pixel: no diffraction, so no spots and score 0); the EIGER2 16M
// frame is almost empty (0.001 counts per pixel: score 0).
func TestRealFixtures(t *testing.T) {
	var frames []fixtureFrame
	for n := 0; n < 3; n++ {
		frames = append(frames, eiger4MFixture(t, n))
	}
	for _, dir := range []string{"dectris-r500k_bm_bslz4_8bit", "dectris-r500k_bm_bslz4_16bit", "dectris-r500k_bm_bslz4_32bit", "dectris-r500k_bm_lz4_16bit"} {
		for n := 1; n <= 10; n++ {
			frames = append(frames, eiger2_500KFixture(t, dir, n))
		}
	}
	frames = append(frames, eiger2_16MFixture(t))

	want := map[string]pinned{}
	for _, p := range pinnedFixtures {
		want[fmt.Sprint(p.name, p.method)] = p
	}
	var table strings.Builder
	fmt.Fprintf(&table, "| frame | method | spots | score | resolution (Å) | IS | background |\n|---|---|---|---|---|---|---|\n")
	for _, f := range frames {
		for _, m := range []Method{Threshold, Dispersion} {
			p := DefaultParams()
			p.Method = m
			tab, err := NewTables(f.geom, p, Masks{})
			if err != nil {
				t.Fatalf("%s: %v", f.name, err)
			}
			var res Result
			if err := NewAnalyser(tab).Analyse(f.pixels, f.elemSize, &res); err != nil {
				t.Fatalf("%s: %v", f.name, err)
			}
			got := pinned{f.name, m, res.Spots, res.Score, res.Resolution, res.IS, res.Background, res.StrongPixels}
			fmt.Fprintf(&table, "| %s | %s | %d | %.1f | %.2f | %.0f | %.3f |\n", f.name, m, res.Spots, res.Score, res.Resolution, res.IS, res.Background)
			w, ok := want[fmt.Sprint(f.name, m)]
			if !ok {
				t.Errorf("no pinned values for %s (%s); got\n\t%s", f.name, m, got)
				continue
			}
			if got.spots != w.spots || got.strong != w.strong || !near(got.score, w.score) || !near(got.resolution, w.resolution) ||
				!near(got.is, w.is) || !near(got.background, w.background) {
				t.Errorf("%s (%s) changed:\n\tgot  %s\n\twant %s", f.name, m, got, w)
			}
		}
	}
	t.Log("\n" + table.String())
}
