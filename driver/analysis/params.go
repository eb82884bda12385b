package analysis

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Method selects the strong-pixel test.
type Method int

const (
	// Threshold compares each pixel with the robust background of its
	// resolution shell: v > mean + spot-level*sigma and v > mean + 1. It is
	// the default because it is the fastest (two streaming passes) and its
	// background is estimated from tens of thousands of pixels per shell.
	Threshold Method = iota
	// Dispersion is DIALS' "dispersion" test (dials.find_spots
	// threshold.algorithm=dispersion): a pixel is strong when the index of
	// dispersion of its local box says "not background" and the pixel stands
	// sigma-strong local standard deviations above the local mean. It is
	// offered for comparison with DIALS; it costs several times more.
	Dispersion
)

var methodNames = []string{"threshold", "dispersion"}

// String returns the method's parameter spelling.
func (m Method) String() string {
	if m >= 0 && int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ParseMethod returns the method spelled s ("threshold" or "dispersion").
func ParseMethod(s string) (Method, error) {
	for i, n := range methodNames {
		if strings.EqualFold(s, n) {
			return Method(i), nil
		}
	}
	return 0, fmt.Errorf("analysis: unknown method %q (want %s)", s, strings.Join(methodNames, " or "))
}

// Rect is an inclusive pixel rectangle, DOZOR's beamstop keywords
// ix_min ix_max iy_min iy_max. It is empty (off) when XMax < XMin or
// YMax < YMin; NoRect is the conventional empty value.
type Rect struct {
	XMin, XMax, YMin, YMax int
}

// NoRect is the empty rectangle: no beamstop.
var NoRect = Rect{XMin: 0, XMax: -1, YMin: 0, YMax: -1}

// Empty reports whether the rectangle covers no pixel.
func (r Rect) Empty() bool { return r.XMax < r.XMin || r.YMax < r.YMin }

// Contains reports whether pixel (x, y) lies in the rectangle.
func (r Rect) Contains(x, y int) bool {
	return x >= r.XMin && x <= r.XMax && y >= r.YMin && y <= r.YMax
}

// Params are the parameters of spot-finding.md. Every field is published as
// a writable property by the pipeline through ParamTable, Get and Set, so
// the table in params.go is the single description of names, units, limits
// and defaults.
type Params struct {
	Method Method

	// Threshold method.
	SpotLevel float64 // σ above the shell background for a strong pixel
	GrowLevel float64 // σ above the shell background for a pixel next to a spot to join it; 0 = off

	// Spot acceptance (both methods).
	SpotSize    int     // fewest pixels of a spot
	MaxSpotSize int     // most pixels of a spot (larger: ice, streaks, shadows)
	MinSNR      float64 // smallest I/σ of a spot
	// MaxSeparation: a spot whose peak pixel lies further than this from
	// its centroid is not a Bragg spot (a streak, a diffuse blob): DIALS'
	// peak-centroid filter (max_separation).
	MaxSeparation float64
	// PoissonBackground: on a background of at most this many photons per
	// pixel a spot is also accepted by the photon-counting test (its
	// Poisson tail against the background as unlikely as min-snr's
	// Gaussian tail); 0 turns the test off.
	PoissonBackground float64

	// MaxStrongFraction: a frame with more strong pixels than this fraction
	// of its analysed pixels is overloaded, not analysed for spots
	// (Result.Overloaded; DIALS' max_strong_pixel_fraction).
	MaxStrongFraction float64

	// Frame verdict.
	MinSpots           int     // fewer accepted spots: no diffraction (score 0, resolution 0, no hit)
	HitThreshold       float64 // a frame with score >= HitThreshold (and > 0) is a hit
	ResolutionQuantile float64 // order statistic of the spots' 1/d² the resolution limit is extrapolated from (package doc)

	// Geometry of what is analysed (fixed per series: part of Tables).
	DMax     float64 // Å, lowest resolution analysed; 0 = no limit
	DMin     float64 // Å, highest resolution analysed; 0 = no limit
	Beamstop Rect    // pixels excluded (beamstop and arm); NoRect = none
	Shells   int     // resolution shells, equally spaced in 1/d²

	// Ice rings (ice.go).
	IceRings     IceMode // auto: exclude the rings detected per frame; exclude: always; off
	IceRingWidth float64 // Å⁻²: full width in 1/d² of an ice band (0: no bands)

	// Hot pixels (hot.go): frames a pixel must be strong on (and on half
	// of all frames seen) to join the hot-pixel map; 0 turns the map off.
	HotPixelFrames int

	// Dispersion method (DIALS' names and defaults).
	KernelSize      int     // half-width of the local box: 3 gives 7 x 7
	SigmaBackground float64 // index-of-dispersion threshold, σ
	SigmaStrong     float64 // σ above the local mean
	Gain            float64 // detector gain, counts per photon, both methods; 0: the series header's, else 1 (EffectiveGain)
	MinLocal        int     // fewest valid pixels in the box
	GlobalThreshold float64 // counts a strong pixel must exceed
}

// EffectiveGain is the gain the analysis uses: Gain, or 1 when Gain is 0
// (the pipeline puts the series header's gain into Gain when it gives
// one).
func (p *Params) EffectiveGain() float64 {
	if p.Gain <= 0 {
		return 1
	}
	return p.Gain
}

// DefaultParams returns the defaults of spot-finding.md (DOZOR's
// spot_size 3, max_spot_size 1000, spot_level 6, min_snr 5) and of
// dials.find_spots for the dispersion test.
func DefaultParams() Params {
	p := Params{}
	for _, e := range paramTable {
		e.set(&p, e.Default)
	}
	return p
}

// ParamInfo describes one parameter for the property layer.
type ParamInfo struct {
	Name        string   // lower-case-with-dashes: "spot-level"
	Description string   // one sentence for the property's help text
	Units       string   // "Å", "px", "σ", "" for pure numbers
	Min, Max    float64  // inclusive limits
	Default     float64  // value of DefaultParams
	Integer     bool     // only whole numbers are valid
	Choices     []string // enumerations: the value is an index into Choices
	// Series is true when the parameter shapes the per-series tables
	// (geometry masks, shells): changing it takes effect with the next
	// NewTables, not with Tables.WithParams.
	Series bool
}

type paramEntry struct {
	ParamInfo
	get func(*Params) float64
	set func(*Params, float64)
}

func intField(f func(*Params) *int) (func(*Params) float64, func(*Params, float64)) {
	return func(p *Params) float64 { return float64(*f(p)) },
		func(p *Params, v float64) { *f(p) = int(v) }
}

func floatField(f func(*Params) *float64) (func(*Params) float64, func(*Params, float64)) {
	return func(p *Params) float64 { return *f(p) },
		func(p *Params, v float64) { *f(p) = v }
}

func entry(info ParamInfo, get func(*Params) float64, set func(*Params, float64)) paramEntry {
	return paramEntry{ParamInfo: info, get: get, set: set}
}

// maxPixelCoord bounds beamstop coordinates: larger than any detector.
const maxPixelCoord = 1 << 20

// maxShells: shell indices are bytes and 255 marks excluded pixels.
const maxShells = 254

var paramTable = func() []paramEntry {
	i := func(name, desc, units string, min, max, def float64, series bool, f func(*Params) *int) paramEntry {
		g, s := intField(f)
		return entry(ParamInfo{Name: name, Description: desc, Units: units, Min: min, Max: max, Default: def, Integer: true, Series: series}, g, s)
	}
	fl := func(name, desc, units string, min, max, def float64, series bool, f func(*Params) *float64) paramEntry {
		g, s := floatField(f)
		return entry(ParamInfo{Name: name, Description: desc, Units: units, Min: min, Max: max, Default: def, Series: series}, g, s)
	}
	return []paramEntry{
		entry(ParamInfo{Name: "method", Description: "strong-pixel test: threshold (per-shell background, fast) or dispersion (DIALS' local index of dispersion)",
			Min: 0, Max: float64(len(methodNames) - 1), Default: 0, Integer: true, Choices: methodNames},
			func(p *Params) float64 { return float64(p.Method) }, func(p *Params, v float64) { p.Method = Method(v) }),
		fl("spot-level", "a pixel is strong when it exceeds its shell's background by this many standard deviations (threshold method)", "σ", 1, 100, 6, false, func(p *Params) *float64 { return &p.SpotLevel }),
		fl("grow-level", "a pixel connected to a strong pixel joins its spot when it exceeds its shell's background by this many standard deviations (threshold method; 0 = off)", "σ", 0, 100, 2.5, false, func(p *Params) *float64 { return &p.GrowLevel }),
		i("spot-size", "fewest connected strong pixels that make a spot", "px", 1, 10000, 3, false, func(p *Params) *int { return &p.SpotSize }),
		i("max-spot-size", "most connected strong pixels that make a spot; larger blobs (ice, streaks, shadows) are rejected", "px", 1, 1e6, 1000, false, func(p *Params) *int { return &p.MaxSpotSize }),
		fl("min-snr", "smallest integrated I/σ of an accepted spot", "", 0, 1000, 5, false, func(p *Params) *float64 { return &p.MinSNR }),
		fl("max-separation", "a spot whose peak pixel lies further than this from its centroid is rejected as a streak or diffuse blob (DIALS' peak-centroid filter)", "px", 0, 1000, 2, false, func(p *Params) *float64 { return &p.MaxSeparation }),
		fl("poisson-background", "on a background of at most this many photons per pixel a spot is also accepted when its photon count is as unlikely under Poisson noise as min-snr under Gaussian noise (0 = off)", "photons", 0, 100, 0.02, false, func(p *Params) *float64 { return &p.PoissonBackground }),
		fl("max-strong-fraction", "a frame with more strong pixels than this fraction of its analysed pixels is flagged overloaded and gets no spots", "", 0.001, 1, 0.25, false, func(p *Params) *float64 { return &p.MaxStrongFraction }),
		i("min-spots", "fewest accepted spots for a frame to count as diffraction; below it score and resolution are 0", "spots", 1, 10000, 5, false, func(p *Params) *int { return &p.MinSpots }),
		fl("hit-threshold", "a frame whose score reaches this value is a hit", "", 0, 1e9, 2, false, func(p *Params) *float64 { return &p.HitThreshold }),
		fl("resolution-quantile", "order statistic (as a fraction of the spot count) of the accepted spots' 1/d² from which the resolution limit is extrapolated", "", 0.5, 1, 0.95, false, func(p *Params) *float64 { return &p.ResolutionQuantile }),
		fl("d-max", "lowest resolution analysed; pixels nearer the beam are excluded (0 = no limit)", "Å", 0, 1e4, 0, true, func(p *Params) *float64 { return &p.DMax }),
		fl("d-min", "highest resolution analysed; pixels further out are excluded (0 = no limit)", "Å", 0, 1e4, 0, true, func(p *Params) *float64 { return &p.DMin }),
		i("ix-min", "beamstop rectangle, first excluded column (off while ix-max < ix-min)", "px", -1, maxPixelCoord, 0, true, func(p *Params) *int { return &p.Beamstop.XMin }),
		i("ix-max", "beamstop rectangle, last excluded column", "px", -1, maxPixelCoord, -1, true, func(p *Params) *int { return &p.Beamstop.XMax }),
		i("iy-min", "beamstop rectangle, first excluded row (off while iy-max < iy-min)", "px", -1, maxPixelCoord, 0, true, func(p *Params) *int { return &p.Beamstop.YMin }),
		i("iy-max", "beamstop rectangle, last excluded row", "px", -1, maxPixelCoord, -1, true, func(p *Params) *int { return &p.Beamstop.YMax }),
		i("shells", "resolution shells for the background, equally spaced in 1/d²", "", 8, maxShells, 128, true, func(p *Params) *int { return &p.Shells }),
		entry(ParamInfo{Name: "ice-rings", Description: "ice rings: auto excludes the spots of the rings detected on a frame, exclude always excludes the ice resolution bands, off does neither",
			Min: 0, Max: float64(len(iceModeNames) - 1), Default: 0, Integer: true, Choices: iceModeNames},
			func(p *Params) float64 { return float64(p.IceRings) }, func(p *Params, v float64) { p.IceRings = IceMode(v) }),
		fl("ice-ring-width", "full width in 1/d² of the resolution band around each ice ring, analysed as a shell of its own (DIALS' ice_rings.width); 0 = no bands", "Å⁻²", 0, 0.02, 0.002, true, func(p *Params) *float64 { return &p.IceRingWidth }),
		i("hot-pixel-frames", "a pixel strong on at least this many frames, and on half of all frames since the hot-pixel map was reset, is hot: masked from then on (0 = no map)", "frames", 0, 1e6, 10, false, func(p *Params) *int { return &p.HotPixelFrames }),
		i("kernel-size", "half-width of the local box of the dispersion test (3: 7 x 7)", "px", 1, 15, 3, false, func(p *Params) *int { return &p.KernelSize }),
		fl("sigma-background", "index-of-dispersion threshold of the dispersion test", "σ", 0, 100, 6, false, func(p *Params) *float64 { return &p.SigmaBackground }),
		fl("sigma-strong", "a pixel is strong when it exceeds the local mean by this many Poisson σ (dispersion test)", "σ", 0, 100, 3, false, func(p *Params) *float64 { return &p.SigmaStrong }),
		fl("gain", "detector gain in counts per photon, used by both methods (the spots' shot noise, the Poisson test, the dispersion test); 0 = the series header's gain where it gives one, else 1 (photon counting)", "", 0, 100, 0, false, func(p *Params) *float64 { return &p.Gain }),
		i("min-local", "fewest valid pixels in the local box of the dispersion test", "px", 2, 961, 2, false, func(p *Params) *int { return &p.MinLocal }),
		fl("global-threshold", "counts a pixel must exceed to be strong (dispersion test)", "counts", 0, 1e9, 0, false, func(p *Params) *float64 { return &p.GlobalThreshold }),
	}
}()

// ParamTable describes every parameter, in a stable order, so that the
// property layer can publish them without knowing the fields of Params.
func ParamTable() []ParamInfo {
	out := make([]ParamInfo, len(paramTable))
	for i, e := range paramTable {
		out[i] = e.ParamInfo
		out[i].Choices = append([]string(nil), e.Choices...)
	}
	return out
}

func lookup(name string) (*paramEntry, error) {
	for i := range paramTable {
		if paramTable[i].Name == name {
			return &paramTable[i], nil
		}
	}
	return nil, fmt.Errorf("analysis: unknown parameter %q", name)
}

// Get returns the named parameter (enumerations as their index).
func (p Params) Get(name string) (float64, error) {
	e, err := lookup(name)
	if err != nil {
		return 0, err
	}
	return e.get(&p), nil
}

// Set changes the named parameter after checking it against the table's
// limits (and integrality). Cross-parameter rules (d-min < d-max,
// spot-size <= max-spot-size) are checked by Validate, because a user
// changing two limits one after the other passes through states that are
// only transiently inconsistent.
func (p *Params) Set(name string, v float64) error {
	e, err := lookup(name)
	if err != nil {
		return err
	}
	if err := e.check(v); err != nil {
		return err
	}
	e.set(p, v)
	return nil
}

func (e *paramEntry) check(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("analysis: %s = %v is not a number", e.Name, v)
	}
	if v < e.Min || v > e.Max {
		return fmt.Errorf("analysis: %s = %v out of range [%v, %v]%s", e.Name, v, e.Min, e.Max, unitSuffix(e.Units))
	}
	if e.Integer && v != math.Trunc(v) {
		return fmt.Errorf("analysis: %s = %v must be a whole number", e.Name, v)
	}
	return nil
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

// Validate checks every parameter against its limits and the rules that
// tie parameters together. It returns all problems at once.
func (p Params) Validate() error {
	var errs []error
	for i := range paramTable {
		e := &paramTable[i]
		if err := e.check(e.get(&p)); err != nil {
			errs = append(errs, err)
		}
	}
	if p.SpotSize > p.MaxSpotSize {
		errs = append(errs, fmt.Errorf("analysis: spot-size %d > max-spot-size %d", p.SpotSize, p.MaxSpotSize))
	}
	if p.DMin > 0 && p.DMax > 0 && p.DMin >= p.DMax {
		errs = append(errs, fmt.Errorf("analysis: d-min %v Å must be below d-max %v Å", p.DMin, p.DMax))
	}
	if box := (2*p.KernelSize + 1) * (2*p.KernelSize + 1); p.MinLocal > box {
		errs = append(errs, fmt.Errorf("analysis: min-local %d exceeds the %d pixels of the %dx%d box", p.MinLocal, box, 2*p.KernelSize+1, 2*p.KernelSize+1))
	}
	return errors.Join(errs...)
}

// seriesEqual reports whether p and q build the same per-series tables.
func (p Params) seriesEqual(q Params) bool {
	for i := range paramTable {
		e := &paramTable[i]
		if e.Series && e.get(&p) != e.get(&q) {
			return false
		}
	}
	return true
}
