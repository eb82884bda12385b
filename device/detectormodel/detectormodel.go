// Package detectormodel holds the fixed facts of the EIGER detector models: the
// module grid and its gaps, pixel size, sensor, bit depths and the maximum
// frame rate per readout (ROI) mode.
//
// These facts are needed in three places that must agree: the simulator
// draws gaps as all-ones pixels, the analysis masks them, and the detector
// devices publish them as properties. Keeping them in one table here is what
// makes them agree. It is a leaf (standard library only) under device/, so
// that the device contract can publish the facts without importing driver/.
package detectormodel

import (
	"fmt"
	"sort"
	"strings"
)

// ROIMode is a readout mode that uses only the central part of the module
// grid, e.g. the 4M mode of an EIGER 16M, which runs faster.
type ROIMode struct {
	Name         string  // as the detector calls it: "4M"
	ModulesX     int     // module columns read out
	ModulesY     int     // module rows read out
	MaxFrameRate float64 // Hz
}

// Profile describes one detector model.
type Profile struct {
	Name            string  // device name used in the control contract: "eiger16m"
	Model           string  // human name: "EIGER X 16M"
	Generation      int     // 1 = EIGER, 2 = EIGER2
	ModulesX        int     // module columns
	ModulesY        int     // module rows
	ModuleWidth     int     // pixels per module, fast axis
	ModuleHeight    int     // pixels per module, slow axis
	GapX            int     // gap pixels between module columns
	GapY            int     // gap pixels between module rows
	PixelSize       float64 // metres (square pixels)
	Sensor          string  // "Si" or "CdTe"
	SensorThickness float64 // metres
	BitDepths       []int   // image bit depths the detector can send
	MaxFrameRate    float64 // Hz, full-frame mode
	FullModeName    string  // name of the full-frame mode: "16M"
	ROIModes        []ROIMode
}

// Width is the number of pixels along the fast axis, gaps included.
func (p Profile) Width() int { return p.ModulesX*p.ModuleWidth + (p.ModulesX-1)*p.GapX }

// Height is the number of pixels along the slow axis, gaps included.
func (p Profile) Height() int { return p.ModulesY*p.ModuleHeight + (p.ModulesY-1)*p.GapY }

// Pixels is Width*Height.
func (p Profile) Pixels() int { return p.Width() * p.Height() }

// Modes lists the readout modes by name, the full-frame mode first.
func (p Profile) Modes() []string {
	names := []string{p.FullModeName}
	for _, m := range p.ROIModes {
		names = append(names, m.Name)
	}
	return names
}

// Mode returns the profile as read out in the named mode: the full-frame
// mode returns p itself, an ROI mode a profile with the reduced module grid
// and that mode's frame rate.
func (p Profile) Mode(name string) (Profile, error) {
	if strings.EqualFold(name, p.FullModeName) || name == "" || strings.EqualFold(name, "disabled") {
		return p, nil
	}
	for _, m := range p.ROIModes {
		if strings.EqualFold(m.Name, name) {
			q := p
			q.ModulesX, q.ModulesY = m.ModulesX, m.ModulesY
			q.MaxFrameRate = m.MaxFrameRate
			q.FullModeName = m.Name
			q.ROIModes = nil
			return q, nil
		}
	}
	return Profile{}, fmt.Errorf("detector %s has no mode %q (modes: %s)", p.Name, name, strings.Join(p.Modes(), ", "))
}

// MaxFrameRateOf returns the maximum frame rate of the named mode.
func (p Profile) MaxFrameRateOf(mode string) (float64, error) {
	q, err := p.Mode(mode)
	if err != nil {
		return 0, err
	}
	return q.MaxFrameRate, nil
}

// IsGapColumn reports whether pixel column x lies in a gap between modules.
func (p Profile) IsGapColumn(x int) bool {
	return x%(p.ModuleWidth+p.GapX) >= p.ModuleWidth
}

// IsGapRow reports whether pixel row y lies in a gap between modules.
func (p Profile) IsGapRow(y int) bool {
	return y%(p.ModuleHeight+p.GapY) >= p.ModuleHeight
}

// IsGap reports whether pixel (x, y) lies in a module gap. Gap pixels carry
// no sensor: the detector sends them as all-ones.
func (p Profile) IsGap(x, y int) bool { return p.IsGapColumn(x) || p.IsGapRow(y) }

// GapPixels returns the number of gap pixels in a full frame.
func (p Profile) GapPixels() int {
	sensorPixels := p.ModulesX * p.ModuleWidth * p.ModulesY * p.ModuleHeight
	return p.Pixels() - sensorPixels
}

var (
	eigerBitDepths  = []int{16, 32}
	eiger2BitDepths = []int{8, 16, 32}
)

func eiger1(name, model string, mx, my int, rate float64, full string, rois ...ROIMode) Profile {
	return Profile{
		Name: name, Model: model, Generation: 1,
		ModulesX: mx, ModulesY: my, ModuleWidth: 1030, ModuleHeight: 514, GapX: 10, GapY: 37,
		PixelSize: 75e-6, Sensor: "Si", SensorThickness: 450e-6,
		BitDepths: eigerBitDepths, MaxFrameRate: rate, FullModeName: full, ROIModes: rois,
	}
}

func eiger2CdTe(name, model string, mx, my int, rate float64, full string, rois ...ROIMode) Profile {
	return Profile{
		Name: name, Model: model, Generation: 2,
		ModulesX: mx, ModulesY: my, ModuleWidth: 1028, ModuleHeight: 512, GapX: 12, GapY: 38,
		PixelSize: 75e-6, Sensor: "CdTe", SensorThickness: 750e-6,
		BitDepths: eiger2BitDepths, MaxFrameRate: rate, FullModeName: full, ROIModes: rois,
	}
}

// profiles is the table of known models. EIGER X frame rates are the
// manufacturer's maxima at 16-bit; the CdTe models at P14 are EIGER2 X CdTe
// (module 1028 x 512, gaps 12 and 38 pixels).
var profiles = []Profile{
	eiger1("eiger500k", "EIGER X 500K", 1, 1, 3000, "500K"),
	eiger1("eiger1m", "EIGER X 1M", 1, 2, 3000, "1M"),
	eiger1("eiger4m", "EIGER X 4M", 2, 4, 750, "4M"),
	eiger1("eiger9m", "EIGER X 9M", 3, 6, 238, "9M", ROIModes4M(750)...),
	eiger1("eiger16m", "EIGER X 16M", 4, 8, 133, "16M", ROIModes4M(750)...),
	eiger2CdTe("eiger4m-cdte", "EIGER2 X CdTe 4M", 2, 4, 560, "4M"),
	eiger2CdTe("eiger16m-cdte", "EIGER2 X CdTe 16M", 4, 8, 133, "16M", ROIModes4M(560)...),
}

// ROIModes4M returns the "4M" ROI mode (the central 2 x 4 modules) at the
// given rate, as offered by the 9M and 16M models.
func ROIModes4M(rate float64) []ROIMode {
	return []ROIMode{{Name: "4M", ModulesX: 2, ModulesY: 4, MaxFrameRate: rate}}
}

// Profiles returns every known model, sorted by name.
func Profiles() []Profile {
	out := append([]Profile(nil), profiles...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ByName returns the model with the given device name ("eiger16m"),
// case-insensitively.
func ByName(name string) (Profile, bool) {
	for _, p := range profiles {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return Profile{}, false
}

// BySize returns a profile (and mode) whose geometry is width x height, so
// that a stream header can be matched to a module layout. Full-frame modes
// are preferred to ROI modes, and EIGER (Si) to EIGER2 CdTe.
func BySize(width, height int) (Profile, bool) {
	for _, p := range profiles {
		if p.Width() == width && p.Height() == height {
			return p, true
		}
	}
	for _, p := range profiles {
		for _, m := range p.ROIModes {
			q, _ := p.Mode(m.Name)
			if q.Width() == width && q.Height() == height {
				return q, true
			}
		}
	}
	return Profile{}, false
}
