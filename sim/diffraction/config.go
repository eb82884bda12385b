package diffraction

import (
	"errors"
	"fmt"
	"math"

	"tioga/device/detectormodel"
)

// Config describes one simulated series. Geometry fields mirror the
// detector configuration a real EIGER reports (beam centre in pixels,
// distance in metres, wavelength in Å); the rest are the knobs of the
// synthetic sample. DefaultConfig gives values that look like a good
// macromolecular-crystallography experiment on the given detector.
type Config struct {
	// Profile is the detector as read out: for the 4M ROI mode of a 16M pass
	// the result of Profile.Mode("4M").
	Profile  detectormodel.Profile
	BitDepth int // 8, 16 or 32 bits per pixel

	BeamX, BeamY float64 // beam centre, pixels (pixel i centred on i)
	Distance     float64 // sample to detector, metres
	Wavelength   float64 // Å

	// Seed fixes everything: the crystal, the masked pixels and, with the
	// frame number, every pixel of every frame.
	Seed uint64

	// HitFraction is the probability that a frame of a serial series holds a
	// crystal. Ignored in raster mode, where the crystal region decides.
	HitFraction float64
	// MeanSpots is the mean number of reflections recorded on a hit frame;
	// the mosaic tolerance is calibrated per series to give it. 0 uses
	// Mosaic as given.
	MeanSpots float64
	// Mosaic is the excitation-error tolerance in Å⁻¹: a reflection is on a
	// still frame when its reciprocal-lattice point lies within Mosaic of
	// the Ewald sphere. Used only when MeanSpots is 0.
	Mosaic float64
	// MinSpots: a serial hit whose random orientation puts fewer reflections
	// than this on the detector is re-oriented (up to 16 tries), so that a
	// "hit" in the truth is a frame with diffraction on it.
	MinSpots int

	DCut          float64 // resolution cut-off, Å: no reflection with d < DCut is drawn
	WilsonB       float64 // Å²: intensities fall as exp(-B s²/2), s = 1/d
	SpotIntensity float64 // mean photons of a reflection at s = 0 (before Wilson falloff)
	CellMin       float64 // Å, shortest unit-cell axis drawn
	CellMax       float64 // Å, longest unit-cell axis drawn
	SigmaMin      float64 // px, narrowest spot profile
	SigmaMax      float64 // px, widest spot profile

	// Background is the mean count per pixel of air and solvent scatter at
	// low resolution; it falls as 1/(1+(s/0.3)²) times the cos³2θ
	// solid-angle factor.
	Background float64
	// WaterRing adds a ring at 3.7 Å whose peak is WaterRing x Background
	// counts (0 = off).
	WaterRing float64
	Beamstop  Beamstop
	// MaskedFraction of the sensitive pixels is dead or hot: sent as
	// all-ones like the gaps, fixed per series.
	MaskedFraction float64
	// Saturation is the largest count a pixel reports (0: all-ones minus
	// one, so a saturated pixel is never mistaken for a masked one).
	Saturation uint32

	// BackgroundPool chooses how background noise is made. 0 samples every
	// pixel of every frame afresh (exact Poisson, ~15 ms per 4M frame per
	// core). K > 0 pre-samples K full background frames at setup and builds
	// each frame row by row from them, picking the source of every row at
	// random: each pixel is still an exact Poisson sample of its mean and
	// rows are independent, but the same row content recurs across frames.
	// Use it for demos and throughput runs, not for judging the analysis.
	BackgroundPool int

	// Raster, when set, makes the series a grid scan over one crystal.
	Raster *Raster

	// Ice and Hot add what a crystal does not make (defects.go); both
	// zero by default.
	Ice Ice
	Hot Hot
}

// Beamstop is the shadow of the beamstop and its holder arm.
type Beamstop struct {
	Radius       float64 // px around the beam centre; 0 = no beamstop
	ArmWidth     float64 // px; 0 = no arm
	ArmAngle     float64 // degrees, direction of the arm from the centre (0 = +x, 90 = +y)
	Transmission float64 // fraction of the background left in the shadow
}

// Raster is a grid scan: Lines x FramesPerLine frames in one series, the
// crystal occupying an ellipse of the grid.
type Raster struct {
	Lines         int
	FramesPerLine int
	Serpentine    bool // odd lines run backwards (control-contract.md)
	// The crystal: an ellipse in grid coordinates (column, line) -- a cell
	// is a hit when its centre lies inside.
	CenterColumn, CenterLine   float64
	RadiusColumns, RadiusLines float64
	// EdgeStrength is the diffraction strength at the ellipse's edge (1 at
	// its centre, falling quadratically).
	EdgeStrength float64
	// Wobble is the largest rotation of the crystal between cells, degrees.
	Wobble float64
}

// Frames returns Lines * FramesPerLine.
func (r Raster) Frames() int { return r.Lines * r.FramesPerLine }

// Cell maps frame n of the series to its grid cell as control-contract.md
// says clients reshape score arrays: line n / F, column n % F, or
// F-1-(n % F) on odd lines of a serpentine scan.
func (r Raster) Cell(n int) (line, column int) {
	line, column = n/r.FramesPerLine, n%r.FramesPerLine
	if r.Serpentine && line%2 == 1 {
		column = r.FramesPerLine - 1 - column
	}
	return line, column
}

// Strength returns the crystal's diffraction strength in the cell (0 outside).
func (r Raster) Strength(line, column int) float64 {
	if r.RadiusColumns <= 0 || r.RadiusLines <= 0 {
		return 0
	}
	dx := (float64(column) - r.CenterColumn) / r.RadiusColumns
	dy := (float64(line) - r.CenterLine) / r.RadiusLines
	q := dx*dx + dy*dy
	if q > 1 {
		return 0
	}
	return r.EdgeStrength + (1-r.EdgeStrength)*(1-q)
}

// DefaultRaster is the standard 37 x 213 grid (1.34 ms per frame on the
// beamline) with a crystal a fifth of the grid wide in its middle.
func DefaultRaster() Raster {
	return Raster{
		Lines: 37, FramesPerLine: 213, Serpentine: true,
		CenterColumn: 120.3, CenterLine: 17.6, RadiusColumns: 22, RadiusLines: 8,
		EdgeStrength: 0.3, Wobble: 0.3,
	}
}

// DefaultConfig returns a realistic series for the profile: beam near the
// centre, 1 Å X-rays, the detector distance chosen so that the inscribed
// circle of the detector reaches 0.9 x DCut (spots stop visibly inside the
// detector, so the resolution cut-off can be measured), 100 spots per hit.
func DefaultConfig(p detectormodel.Profile) Config {
	c := Config{
		Profile:  p,
		BitDepth: 16,
		// Off the central gaps, as a beamline would place it.
		BeamX: float64(p.Width())/2 + 41.7, BeamY: float64(p.Height())/2 + 60.4,
		Wavelength:  1.0,
		Seed:        1,
		HitFraction: 0.3, MeanSpots: 100, MinSpots: 10,
		DCut: 2.5, WilsonB: 20, SpotIntensity: 1000,
		CellMin: 30, CellMax: 150, SigmaMin: 0.6, SigmaMax: 1.0,
		Background: 1.0, WaterRing: 0.6,
		Beamstop:       Beamstop{Radius: 30, ArmWidth: 16, ArmAngle: 0, Transmission: 0.02},
		MaskedFraction: 2e-4,
	}
	c.Distance = DistanceFor(p, c.BeamX, c.BeamY, c.Wavelength, 0.9*c.DCut)
	return c
}

// DistanceFor returns the detector distance (m) at which the largest circle
// around the beam that fits on the detector reaches resolution d (Å).
func DistanceFor(p detectormodel.Profile, beamX, beamY, wavelength, d float64) float64 {
	r := math.Min(math.Min(beamX, float64(p.Width())-beamX), math.Min(beamY, float64(p.Height())-beamY))
	twoTheta := 2 * math.Asin(wavelength/(2*d))
	return r * p.PixelSize / math.Tan(twoTheta)
}

// maxBackground bounds the mean background count per pixel: the sampler
// builds one table per 1 % bucket of mean up to it.
const maxBackground = 5000

func (c *Config) validate() error {
	p := c.Profile
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.Width() <= 0 || p.Height() <= 0 || p.PixelSize <= 0 {
		bad("detector profile %q has no geometry", p.Name)
	}
	switch c.BitDepth {
	case 8, 16, 32:
	default:
		bad("bit depth %d: want 8, 16 or 32", c.BitDepth)
	}
	finite := func(name string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad("%s is %v", name, v)
			return false
		}
		return true
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"beam centre x", c.BeamX}, {"beam centre y", c.BeamY}, {"wilson B", c.WilsonB}} {
		finite(f.name, f.v)
	}
	positive := func(name string, v float64) {
		if finite(name, v) && v <= 0 {
			bad("%s must be > 0, got %v", name, v)
		}
	}
	positive("distance", c.Distance)
	positive("wavelength", c.Wavelength)
	positive("resolution cut-off", c.DCut)
	positive("minimum cell axis", c.CellMin)
	positive("minimum spot sigma", c.SigmaMin)
	nonNegative := func(name string, v float64) {
		if finite(name, v) && v < 0 {
			bad("%s must be >= 0, got %v", name, v)
		}
	}
	nonNegative("background", c.Background)
	nonNegative("water ring", c.WaterRing)
	nonNegative("spot intensity", c.SpotIntensity)
	nonNegative("mean spots", c.MeanSpots)
	nonNegative("mosaic", c.Mosaic)
	nonNegative("beamstop radius", c.Beamstop.Radius)
	nonNegative("beamstop arm width", c.Beamstop.ArmWidth)
	finite("beamstop arm angle", c.Beamstop.ArmAngle)
	if c.Background*(1+c.WaterRing) > maxBackground {
		bad("background %v counts per pixel (water ring included) is beyond what the sampler tabulates (max %v)", c.Background*(1+c.WaterRing), maxBackground)
	}
	if c.Wavelength > 0 && c.DCut > 0 && c.DCut < c.Wavelength/2 {
		bad("resolution cut-off %v Å is beyond the Ewald limit λ/2 = %v Å", c.DCut, c.Wavelength/2)
	}
	if c.CellMax < c.CellMin {
		bad("cell axes: max %v < min %v", c.CellMax, c.CellMin)
	}
	if c.CellMax > 1000 {
		bad("cell axis up to %v Å: the reflection list would not fit in memory (max 1000 Å)", c.CellMax)
	}
	if c.SigmaMax < c.SigmaMin || c.SigmaMax > 4 {
		bad("spot sigma range [%v, %v] px: want min <= max <= 4", c.SigmaMin, c.SigmaMax)
	}
	if c.HitFraction < 0 || c.HitFraction > 1 || math.IsNaN(c.HitFraction) {
		bad("hit fraction %v: want 0..1", c.HitFraction)
	}
	if c.MeanSpots == 0 && c.Mosaic == 0 {
		bad("give either mean spots per hit or a mosaic tolerance")
	}
	if c.Beamstop.Transmission < 0 || c.Beamstop.Transmission > 1 {
		bad("beamstop transmission %v: want 0..1", c.Beamstop.Transmission)
	}
	if c.MaskedFraction < 0 || c.MaskedFraction > 0.5 {
		bad("masked fraction %v: want 0..0.5", c.MaskedFraction)
	}
	if c.MinSpots < 0 {
		bad("minimum spots %d < 0", c.MinSpots)
	}
	if c.BackgroundPool < 0 || c.BackgroundPool > 64 {
		bad("background pool of %d frames: want 0..64", c.BackgroundPool)
	}
	if c.Ice.Fraction < 0 || c.Ice.Fraction > 1 || math.IsNaN(c.Ice.Fraction) {
		bad("ice fraction %v: want 0..1", c.Ice.Fraction)
	}
	nonNegative("ice spots", c.Ice.Spots)
	nonNegative("ice spot intensity", c.Ice.SpotIntensity)
	nonNegative("ice ring", c.Ice.Ring)
	nonNegative("hot pixel counts", c.Hot.Counts)
	if c.Hot.Pixels < 0 || c.Hot.Clusters < 0 || c.Hot.Column < 0 || c.Hot.Pixels+3*c.Hot.Clusters+c.Hot.Column > 100_000 {
		bad("hot pixels %d, clusters %d, column %d: want 0..100000 pixels in all", c.Hot.Pixels, c.Hot.Clusters, c.Hot.Column)
	}
	if c.Hot.Column >= p.Height() && c.Hot.Column > 0 {
		bad("hot column of %d px does not fit the %d rows", c.Hot.Column, p.Height())
	}
	if r := c.Raster; r != nil {
		if r.Lines <= 0 || r.FramesPerLine <= 0 {
			bad("raster %d x %d: want positive lines and frames per line", r.Lines, r.FramesPerLine)
		}
		if r.EdgeStrength < 0 || r.EdgeStrength > 1 {
			bad("raster edge strength %v: want 0..1", r.EdgeStrength)
		}
		if r.Wobble < 0 || r.Wobble > 45 {
			bad("raster wobble %v degrees: want 0..45", r.Wobble)
		}
	}
	if c.BitDepth != 0 {
		maxv := uint64(1)<<uint(c.BitDepth) - 1
		if uint64(c.Saturation) >= maxv {
			bad("saturation %d must be below the masked value %d", c.Saturation, maxv)
		}
	}
	return errors.Join(errs...)
}
