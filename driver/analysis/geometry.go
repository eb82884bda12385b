package analysis

import (
	"errors"
	"fmt"
	"math"
)

// Geometry is the experiment as the detector header states it.
type Geometry struct {
	Width, Height int     // pixels, fast and slow axis
	BeamX, BeamY  float64 // beam centre, pixels (pixel i is centred on i)
	Distance      float64 // sample to detector, metres
	Wavelength    float64 // Å
	PixelSize     float64 // metres, square pixels
}

// maxPixels bounds the frame size: pixel indices are int32 in the scratch
// of the analyser, and no detector comes near it (an EIGER2 16M has 18 M).
const maxPixels = 1 << 30

// Validate reports geometry a frame could not be analysed with.
func (g Geometry) Validate() error {
	var errs []error
	if g.Width <= 0 || g.Height <= 0 {
		errs = append(errs, fmt.Errorf("analysis: frame size %d x %d", g.Width, g.Height))
	} else if int64(g.Width)*int64(g.Height) > maxPixels {
		errs = append(errs, fmt.Errorf("analysis: frame %d x %d exceeds %d pixels", g.Width, g.Height, maxPixels))
	}
	finite := func(name string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("analysis: %s is %v", name, v))
			return false
		}
		return true
	}
	positive := func(name, units string, v float64) {
		if finite(name, v) && v <= 0 {
			errs = append(errs, fmt.Errorf("analysis: %s must be > 0 %s, got %v", name, units, v))
		}
	}
	// A beam centre off the detector is legitimate (offset detectors), but
	// not absurdly far: it would make every pixel the same resolution.
	if finite("beam centre x", g.BeamX) && math.Abs(g.BeamX) > maxPixelCoord {
		errs = append(errs, fmt.Errorf("analysis: beam centre x %v px is implausible", g.BeamX))
	}
	if finite("beam centre y", g.BeamY) && math.Abs(g.BeamY) > maxPixelCoord {
		errs = append(errs, fmt.Errorf("analysis: beam centre y %v px is implausible", g.BeamY))
	}
	positive("detector distance", "m", g.Distance)
	positive("wavelength", "Å", g.Wavelength)
	positive("pixel size", "m", g.PixelSize)
	return errors.Join(errs...)
}

// InvD2 returns 1/d² (Å⁻²) at pixel coordinates (x, y), by the formula of
// spot-finding.md: 2θ = atan(r/D), d = λ / (2 sin θ). It is written as
// 1/d² = 2 r² / (L (L + D) λ²) with L = sqrt(D² + r²), which is the same
// quantity without the cancellation of 1 - cos 2θ near the beam.
func (g Geometry) InvD2(x, y float64) float64 {
	dx := (x - g.BeamX) * g.PixelSize
	dy := (y - g.BeamY) * g.PixelSize
	r2 := dx*dx + dy*dy
	l := math.Sqrt(g.Distance*g.Distance + r2)
	return 2 * r2 / (l * (l + g.Distance) * g.Wavelength * g.Wavelength)
}

// Resolution returns d (Å) at pixel coordinates (x, y); +Inf at the beam.
func (g Geometry) Resolution(x, y float64) float64 {
	q := g.InvD2(x, y)
	if q <= 0 {
		return math.Inf(1)
	}
	return 1 / math.Sqrt(q)
}
