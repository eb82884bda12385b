package cbf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"tioga/device/detectormodel"
)

// Header holds the experiment facts written into the PILATUS_1.2 header of
// every frame (the "# ..." lines that XDS, DIALS/dxtbx, CrystFEL and ADXV
// read geometry and exposure from). The pipeline fills it once per series
// from the detector's series header; the writer sets the per-frame fields
// (StartAngle, Timestamp) for each frame.
//
// Units are those of the file format, not of the stream: metres for the
// pixel size, sensor thickness and distance, seconds, eV, Å, pixels for the
// beam centre, degrees.
type Header struct {
	// Detector is the detector description, e.g. "Dectris EIGER X 4M".
	// See DetectorLine for how it is written (EIGER claims are checked
	// against the image size).
	Detector string
	// Serial is the detector serial number, e.g. "E-08-0106".
	Serial string

	PixelSizeX, PixelSizeY float64 // m
	// Sensor is the sensor material: "Si" (written "Silicon", the word
	// dxtbx looks for) or "CdTe".
	Sensor          string
	SensorThickness float64 // m

	ExposureTime   float64 // s, counting time per frame
	ExposurePeriod float64 // s, frame period
	Tau            float64 // s, dead-time constant (0: corrected in the detector)
	// CountCutoff is the saturation value, the highest trusted count
	// (EIGER's countrate_correction_count_cutoff).
	CountCutoff int64
	Threshold   float64 // eV, photon energy threshold
	Wavelength  float64 // Å
	Distance    float64 // m, sample to detector
	BeamX       float64 // pixels, fast axis (from 0 at the first pixel's edge, as the detector reports it)
	BeamY       float64 // pixels, slow axis

	StartAngle     float64 // deg, goniometer angle at the start of this frame
	AngleIncrement float64 // deg per frame (0 for stills and serial work)
	// OscillationAxis names the rotation axis, "X.CW" when empty.
	OscillationAxis string
	// NOscillations is the number of oscillations per frame, 1 when zero.
	NOscillations int

	// Timestamp is when the frame was recorded. It is written in its own
	// location without a zone suffix, as PILATUS does
	// ("2026-11-23T12:00:00.000"); pass UTC or local time consistently.
	Timestamp time.Time
}

// ErrHeader is wrapped by header validation and parsing errors.
var ErrHeader = errors.New("cbf: bad header")

// Validate checks that the header can be written as a PILATUS_1.2 header
// that readers will parse: finite, non-negative physical values, text
// without line breaks or non-ASCII characters.
func (h *Header) Validate() error {
	for _, f := range []struct {
		name string
		v    string
	}{{"detector", h.Detector}, {"serial", h.Serial}, {"sensor", h.Sensor}, {"oscillation axis", h.OscillationAxis}} {
		if err := checkText(f.v); err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrHeader, f.name, f.v, err)
		}
	}
	if strings.Contains(h.OscillationAxis, " ") || strings.Contains(h.Sensor, " ") {
		return fmt.Errorf("%w: sensor %q and oscillation axis %q must be single words", ErrHeader, h.Sensor, h.OscillationAxis)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"pixel size x", h.PixelSizeX}, {"pixel size y", h.PixelSizeY},
		{"sensor thickness", h.SensorThickness},
		{"exposure time", h.ExposureTime}, {"exposure period", h.ExposurePeriod}, {"tau", h.Tau},
		{"threshold", h.Threshold}, {"wavelength", h.Wavelength}, {"distance", h.Distance},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return fmt.Errorf("%w: %s %v must be a finite non-negative number", ErrHeader, f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"beam x", h.BeamX}, {"beam y", h.BeamY}, {"start angle", h.StartAngle}, {"angle increment", h.AngleIncrement}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%w: %s %v must be finite", ErrHeader, f.name, f.v)
		}
	}
	if h.PixelSizeX == 0 || h.PixelSizeY == 0 {
		return fmt.Errorf("%w: pixel size must be set", ErrHeader)
	}
	if h.CountCutoff < 0 {
		return fmt.Errorf("%w: count cutoff %d is negative", ErrHeader, h.CountCutoff)
	}
	if h.NOscillations < 0 {
		return fmt.Errorf("%w: N_oscillations %d is negative", ErrHeader, h.NOscillations)
	}
	if y := h.Timestamp.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%w: timestamp year %d out of range", ErrHeader, y)
	}
	return nil
}

// checkText accepts printable ASCII only: the header is a CIF text field,
// where a line break would end the "# key value" line and a line starting
// with ';' would end the field itself.
func checkText(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("byte 0x%02x at %d is not printable ASCII", c, i)
		}
	}
	return nil
}

// containsFold reports whether s contains the upper-case ASCII word sub,
// case-insensitively, without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for ; j < len(sub); j++ {
			c := s[i+j]
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// AppendDetectorLine appends the value of the "# Detector:" line for an
// image of width x height pixels.
//
// dxtbx treats a miniCBF whose Detector line contains "EIGER" (in any case)
// as an EIGER image and builds the module-gap mask from the image size; an
// image of any other size makes it fail. So the line may claim EIGER only
// when the size is a real EIGER geometry (a profile of tioga/driver/detector
// in full-frame or ROI mode):
//
//   - EIGER geometry, description mentions EIGER: written as given;
//   - EIGER geometry, description does not mention EIGER (or is empty):
//     "Dectris <model>" from the profile, followed by the description in
//     parentheses when there is one;
//   - any other size (a cropped or binned image): "Dectris detector,
//     non-standard geometry <w>x<h>", deliberately without the word EIGER,
//     so that dxtbx opens it as a generic miniCBF (see HeaderConvention).
//
// The serial number follows as ", S/N <serial>" when set.
func AppendDetectorLine(dst []byte, desc, serial string, width, height int) []byte {
	if p, ok := detectormodel.BySize(width, height); ok {
		if containsFold(desc, "EIGER") {
			dst = append(dst, desc...)
		} else {
			dst = append(dst, "Dectris "...)
			dst = append(dst, p.Model...)
			if desc != "" {
				dst = append(dst, " ("...)
				dst = append(dst, desc...)
				dst = append(dst, ')')
			}
		}
	} else {
		dst = append(dst, "Dectris detector, non-standard geometry "...)
		dst = strconv.AppendInt(dst, int64(width), 10)
		dst = append(dst, 'x')
		dst = strconv.AppendInt(dst, int64(height), 10)
	}
	if serial != "" {
		dst = append(dst, ", S/N "...)
		dst = append(dst, serial...)
	}
	return dst
}

// HeaderConvention is the value of _array_data.header_convention for an
// image of width x height pixels: "PILATUS_1.2" for real EIGER geometries,
// "GENERIC_MINI" otherwise. The header lines are the same; the convention
// only steers dxtbx, which builds a PILATUS module mask from the image size
// for "PILATUS" files that do not claim EIGER, and fails on other sizes;
// "GENERIC_MINI" is its convention for pixel arrays of any size.
func HeaderConvention(width, height int) string {
	if _, ok := detectormodel.BySize(width, height); ok {
		return "PILATUS_1.2"
	}
	return "GENERIC_MINI"
}

// sensorWord is the word that starts the sensor line: dxtbx recognises
// "Silicon" and "CdTe".
func sensorWord(s string) string {
	switch {
	case s == "" || strings.EqualFold(s, "si") || strings.EqualFold(s, "silicon"):
		return "Silicon"
	case strings.EqualFold(s, "cdte"):
		return "CdTe"
	}
	return s
}

const timestampLayout = "2006-01-02T15:04:05.000"

// AppendText appends the PILATUS_1.2 header lines ("# Detector: ..." to
// "# N_oscillations ...") for an image of width x height pixels, each line
// ended by CR LF, in exactly the formats of the PILATUS convention. The TIFF
// writer puts the same text into ImageDescription. It does not allocate
// when dst has room.
func (h *Header) AppendText(dst []byte, width, height int) []byte {
	dst = append(dst, "# Detector: "...)
	dst = AppendDetectorLine(dst, h.Detector, h.Serial, width, height)
	dst = append(dst, "\r\n# "...)
	dst = h.Timestamp.AppendFormat(dst, timestampLayout)
	dst = append(dst, "\r\n# Pixel_size "...)
	dst = appendMicrons(dst, h.PixelSizeX)
	dst = append(dst, " m x "...)
	dst = appendMicrons(dst, h.PixelSizeY)
	dst = append(dst, " m\r\n# "...)
	dst = append(dst, sensorWord(h.Sensor)...)
	dst = append(dst, " sensor, thickness "...)
	dst = strconv.AppendFloat(dst, h.SensorThickness, 'f', 6, 64)
	dst = append(dst, " m\r\n# Exposure_time "...)
	dst = strconv.AppendFloat(dst, h.ExposureTime, 'f', 7, 64)
	dst = append(dst, " s\r\n# Exposure_period "...)
	dst = strconv.AppendFloat(dst, h.ExposurePeriod, 'f', 7, 64)
	dst = append(dst, " s\r\n# Tau = "...)
	dst = strconv.AppendFloat(dst, h.Tau, 'g', -1, 64)
	dst = append(dst, " s\r\n# Count_cutoff "...)
	dst = strconv.AppendInt(dst, h.CountCutoff, 10)
	dst = append(dst, " counts\r\n# Threshold_setting: "...)
	dst = strconv.AppendFloat(dst, h.Threshold, 'f', 0, 64)
	dst = append(dst, " eV\r\n# Wavelength "...)
	dst = strconv.AppendFloat(dst, h.Wavelength, 'f', 5, 64)
	dst = append(dst, " A\r\n# Detector_distance "...)
	dst = strconv.AppendFloat(dst, h.Distance, 'f', 5, 64)
	dst = append(dst, " m\r\n# Beam_xy ("...)
	dst = strconv.AppendFloat(dst, h.BeamX, 'f', 2, 64)
	dst = append(dst, ", "...)
	dst = strconv.AppendFloat(dst, h.BeamY, 'f', 2, 64)
	dst = append(dst, ") pixels\r\n# Start_angle "...)
	dst = strconv.AppendFloat(dst, h.StartAngle, 'f', 4, 64)
	dst = append(dst, " deg.\r\n# Angle_increment "...)
	dst = strconv.AppendFloat(dst, h.AngleIncrement, 'f', 4, 64)
	dst = append(dst, " deg.\r\n# Phi "...)
	dst = strconv.AppendFloat(dst, h.StartAngle, 'f', 4, 64)
	dst = append(dst, " deg.\r\n# Oscillation_axis "...)
	if h.OscillationAxis == "" {
		dst = append(dst, "X.CW"...)
	} else {
		dst = append(dst, h.OscillationAxis...)
	}
	dst = append(dst, "\r\n# N_oscillations "...)
	nosc := h.NOscillations
	if nosc == 0 {
		nosc = 1
	}
	dst = strconv.AppendInt(dst, int64(nosc), 10)
	dst = append(dst, "\r\n"...)
	return dst
}

// appendMicrons writes a length in metres the PILATUS way, as micrometres
// with an "e-6" exponent ("75e-6"), rounded to 1e-4 µm so that the binary
// representation of 75e-6 does not print as 74.99999999999999e-6.
func appendMicrons(dst []byte, m float64) []byte {
	um := math.Round(m*1e10) / 1e4
	dst = strconv.AppendFloat(dst, um, 'f', -1, 64)
	return append(dst, "e-6"...)
}

// ParseText parses PILATUS_1.2 header lines (as written by AppendText, with
// CR LF or LF line ends) into a Header. Lines it does not know are ignored,
// as every miniCBF reader does; a known line whose value does not parse is
// an error wrapping ErrHeader. The Detector field receives the whole
// "# Detector:" value without the ", S/N ..." part, which goes to Serial.
func ParseText(text string) (Header, error) {
	var h Header
	for len(text) > 0 {
		var line string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, ""
		}
		line = strings.TrimRight(line, "\r")
		if !strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSpace(line[1:])
		if err := h.parseLine(line); err != nil {
			return h, fmt.Errorf("%w: line %q: %v", ErrHeader, line, err)
		}
	}
	return h, nil
}

func (h *Header) parseLine(line string) error {
	key, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	var err error
	switch key {
	case "Detector:":
		h.Detector = rest
		if i := strings.LastIndex(rest, ", S/N "); i >= 0 {
			h.Detector, h.Serial = rest[:i], rest[i+len(", S/N "):]
		}
	case "Pixel_size":
		// "75e-6 m x 75e-6 m"
		f := strings.Fields(rest)
		if len(f) != 5 || f[1] != "m" || f[2] != "x" || f[4] != "m" {
			return errors.New("want '<x> m x <y> m'")
		}
		if h.PixelSizeX, err = parseFloat(f[0]); err == nil {
			h.PixelSizeY, err = parseFloat(f[3])
		}
	case "Exposure_time":
		h.ExposureTime, err = parseUnit(rest, "s")
	case "Exposure_period":
		h.ExposurePeriod, err = parseUnit(rest, "s")
	case "Tau":
		h.Tau, err = parseUnit(strings.TrimPrefix(rest, "= "), "s")
	case "Count_cutoff":
		var v float64
		if v, err = parseUnit(rest, "counts"); err == nil {
			if v != math.Trunc(v) || v < 0 || v > math.MaxInt64/2 {
				return errors.New("count cutoff must be a non-negative integer")
			}
			h.CountCutoff = int64(v)
		}
	case "Threshold_setting:":
		h.Threshold, err = parseUnit(rest, "eV")
	case "Wavelength":
		h.Wavelength, err = parseUnit(rest, "A")
	case "Detector_distance":
		h.Distance, err = parseUnit(rest, "m")
	case "Beam_xy":
		// "(2075.50, 2185.50) pixels"
		inner, ok := strings.CutPrefix(rest, "(")
		var tail string
		if ok {
			inner, tail, ok = strings.Cut(inner, ")")
		}
		xs, ys, ok2 := strings.Cut(inner, ",")
		if !ok || !ok2 || strings.TrimSpace(tail) != "pixels" {
			return errors.New("want '(<x>, <y>) pixels'")
		}
		if h.BeamX, err = parseFloat(strings.TrimSpace(xs)); err == nil {
			h.BeamY, err = parseFloat(strings.TrimSpace(ys))
		}
	case "Start_angle":
		h.StartAngle, err = parseUnit(rest, "deg.")
	case "Angle_increment":
		h.AngleIncrement, err = parseUnit(rest, "deg.")
	case "Oscillation_axis":
		h.OscillationAxis = rest
	case "N_oscillations":
		var n int64
		n, err = strconv.ParseInt(rest, 10, 32)
		h.NOscillations = int(n)
	default:
		switch {
		case strings.HasPrefix(rest, "sensor, thickness "):
			// "Silicon sensor, thickness 0.000450 m"
			h.Sensor = key
			if h.Sensor == "Silicon" {
				h.Sensor = "Si"
			}
			t, ok := strings.CutPrefix(rest, "sensor, thickness ")
			if !ok {
				return errors.New("want '<material> sensor, thickness <t> m'")
			}
			h.SensorThickness, err = parseUnit(t, "m")
		case rest == "" && len(key) >= len("2006-01-02T15:04:05") && key[4] == '-' && key[10] == 'T':
			h.Timestamp, err = time.Parse(timestampLayout, key)
			if err != nil {
				h.Timestamp, err = time.Parse("2006-01-02T15:04:05", key)
			}
		}
	}
	return err
}

// parseUnit parses "<number> <unit>".
func parseUnit(s, unit string) (float64, error) {
	num, u, ok := strings.Cut(s, " ")
	if !ok || strings.TrimSpace(u) != unit {
		return 0, fmt.Errorf("want '<number> %s'", unit)
	}
	return parseFloat(num)
}

func parseFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return v, nil
}
