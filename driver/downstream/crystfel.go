package downstream

import (
	"fmt"
	"os"
	"strings"

	"tioga/driver/cbf"
)

// writeCrystFELGeometry writes a CrystFEL geometry file (one panel, the
// whole image) for the detector of image, from its miniCBF header: the
// geometry the series was written with, including any fallback the server
// applied. Pixels written as -1 (gaps, masked pixels) are flagged bad.
//
// The axes follow the miniCBF convention (fast axis along +x, slow along
// +y, the beam centre at the corner offset); this file has not been tried
// with indexamajig here (CrystFEL is not packaged for Debian): check it
// with a site's CrystFEL before relying on it.
func writeCrystFELGeometry(path, image string) error {
	img, err := cbf.ReadFile(image)
	if err != nil {
		return fmt.Errorf("CrystFEL geometry: %w", err)
	}
	h := img.Header
	if h.PixelSizeX <= 0 || h.Distance <= 0 || h.Wavelength <= 0 {
		return fmt.Errorf("CrystFEL geometry: %s lacks pixel size, distance or wavelength", image)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "; CrystFEL geometry written by Tioga from the header of %s\n", image)
	fmt.Fprintf(&b, "wavelength = %.6f A\n", h.Wavelength)
	fmt.Fprintf(&b, "clen = %.6f\n", h.Distance)
	fmt.Fprintf(&b, "res = %.4f\n", 1/h.PixelSizeX)
	fmt.Fprintf(&b, "adu_per_photon = 1\n")
	if h.CountCutoff > 0 {
		fmt.Fprintf(&b, "max_adu = %d\n", h.CountCutoff)
	}
	fmt.Fprintf(&b, "flag_lessthan = 0\n\n")
	fmt.Fprintf(&b, "p0/min_fs = 0\np0/max_fs = %d\np0/min_ss = 0\np0/max_ss = %d\n", img.Width-1, img.Height-1)
	fmt.Fprintf(&b, "p0/corner_x = %.3f\np0/corner_y = %.3f\n", -h.BeamX, -h.BeamY)
	fmt.Fprintf(&b, "p0/fs = +1.0x\np0/ss = +1.0y\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// writeCrystFELCell writes a CrystFEL unit-cell file for a known cell,
// triclinic P (a site that knows its lattice type and centring gives its
// own file: cell_file).
func writeCrystFELCell(path string, c Cell) error {
	text := fmt.Sprintf("CrystFEL unit cell file version 1.0\n\nlattice_type = triclinic\ncentering = P\n\n"+
		"a = %.3f A\nb = %.3f A\nc = %.3f A\nal = %.3f deg\nbe = %.3f deg\nga = %.3f deg\n", c[0], c[1], c[2], c[3], c[4], c[5])
	return os.WriteFile(path, []byte(text), 0o644)
}
