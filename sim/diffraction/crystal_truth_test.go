package diffraction

import (
	"math"
	"testing"

	"tioga/sim/truth"
)

// TestTruthCarriesCellAndOrientation: every hit's truth holds the series'
// cell and an orientation from which each of its spots is recomputed from
// h, k, l alone (as the truth's documentation says: s = U (h a* + k b* +
// l c*), pixel = beam + distance/pixel (s_x, s_y) / (1/λ + s_z)); blank
// frames hold neither. Serial and raster alike.
func TestTruthCarriesCellAndOrientation(t *testing.T) {
	serial := small500k(t)
	raster := small500k(t)
	r := DefaultRaster()
	r.Lines, r.FramesPerLine, r.CenterColumn, r.CenterLine, r.RadiusColumns, r.RadiusLines = 3, 6, 2.5, 1, 3, 2
	raster.Raster = &r
	for name, c := range map[string]Config{"serial": serial, "raster": raster} {
		g := newGen(t, c)
		cell := g.Cell()
		_, recip, _ := cell.basis()
		buf := make([]byte, g.FrameBytes())
		var tr truth.Frame
		hits := 0
		for i := 0; i < 12; i++ {
			if err := g.Frame(i, buf, &tr); err != nil {
				t.Fatal(err)
			}
			if !tr.Hit {
				if len(tr.Cell) != 0 || len(tr.U) != 0 {
					t.Fatalf("%s frame %d: blank frame with a crystal %v %v", name, i, tr.Cell, tr.U)
				}
				continue
			}
			hits++
			want := []float64{cell.A, cell.B, cell.C, cell.Alpha, cell.Beta, cell.Gamma}
			if len(tr.Cell) != 6 || len(tr.U) != 9 {
				t.Fatalf("%s frame %d: cell %v u %v", name, i, tr.Cell, tr.U)
			}
			for k := range want {
				if tr.Cell[k] != want[k] {
					t.Fatalf("%s frame %d: cell %v, want %v", name, i, tr.Cell, want)
				}
			}
			k0 := 1 / c.Wavelength
			scale := c.Distance / c.Profile.PixelSize
			for _, sp := range tr.Spots {
				var sc vec3
				for a := 0; a < 3; a++ {
					sc[a] = float64(sp.H)*recip[0][a] + float64(sp.K)*recip[1][a] + float64(sp.L)*recip[2][a]
				}
				var s vec3
				for a := 0; a < 3; a++ {
					s[a] = tr.U[3*a]*sc[0] + tr.U[3*a+1]*sc[1] + tr.U[3*a+2]*sc[2]
				}
				x := c.BeamX + scale*s[0]/(k0+s[2])
				y := c.BeamY + scale*s[1]/(k0+s[2])
				if math.Abs(x-sp.X) > 1e-6 || math.Abs(y-sp.Y) > 1e-6 {
					t.Fatalf("%s frame %d spot %d %d %d at (%.3f, %.3f); from cell and U (%.3f, %.3f)", name, i, sp.H, sp.K, sp.L, sp.X, sp.Y, x, y)
				}
			}
		}
		if hits == 0 {
			t.Fatalf("%s: no hits to check", name)
		}
	}
}
