package contract

import (
	"strings"

	"tioga/device"
	"tioga/device/detectormodel"
	"tioga/properties"
)

// Detector is one detector device, /P14/detector/<profile>: the model's
// fixed facts and the detector's live state.
type Detector struct {
	Device  *device.Device
	Profile detectormodel.Profile

	// Contract.
	Status       *properties.Property
	DetectorMode *properties.Property // 16M or 4M (ROI)
	FrameRate    *properties.Property // maximum frame rate of the active mode
	BeamXY       *properties.Property // [x, y] mm
	CountDropped *properties.Property
	Temperature  *properties.Property
	Humidity     *properties.Property
	Initialize   *properties.Property

	// Profile facts.
	Model           *properties.Property
	Size            *properties.Property // [width, height] of the active mode
	PixelSize       *properties.Property
	ModuleGrid      *properties.Property
	ModuleSize      *properties.Property
	GapSize         *properties.Property
	BitDepths       *properties.Property
	Sensor          *properties.Property
	SensorThickness *properties.Property
	Modes           *properties.Property
	MaxFrameRates   *properties.Property
	Serial          *properties.Property
	Active          *properties.Property // this detector sends the current stream
}

func (d *Detector) String() string { return d.Profile.Name }

// FormatModes lists mode names separated by commas.
func FormatModes(modes []string) string { return strings.Join(modes, ",") }

// NewDetector declares the device of one detector model and fills in its
// fixed facts.
func NewDetector(p detectormodel.Profile) *Detector {
	d := device.New(p.Name, p.Model+" detector")
	x := &Detector{Device: d, Profile: p}
	r, w := properties.Read, properties.Read|properties.Write
	x.Status = d.Add(text("status", r, 64, "detector state: na, idle, ready, acquire, error, initialize, ... (from SIMPLON when configured)"))
	x.Status.SetText("na")
	x.DetectorMode = d.Add(text("detector-mode", w, 16, "readout mode: "+FormatModes(p.Modes())+" (ROI modes read out the central modules only)"))
	x.DetectorMode.SetText(p.FullModeName)
	x.FrameRate = d.Add(ro("frame-rate", properties.Float32, "Hz", "maximum frame rate of the active mode"))
	x.FrameRate.SetFloat(p.MaxFrameRate)
	x.BeamXY = d.Add(array("beam-xy", properties.Float32, 2, r, "mm", "beam centre [x, y] in mm (pixels x pixel size); [0, 0] until the first series header"))
	// Two elements from the start: an unfed detector answers [0, 0], not
	// an empty array that reads as a successful result.
	// Its quality says the zeros mean nothing yet (the first header sets
	// a good value).
	_ = x.BeamXY.Set(properties.Float32s([]float32{0, 0}).WithQuality(properties.NoValueYet("no series header from this detector yet")))
	x.CountDropped = d.Add(ro("count-dropped", properties.Int32, "frames", "frames lost between detector and server (> 0 is an error)"))
	x.Temperature = d.Add(ro("temperature", properties.Float32, "°C", "detector temperature (from SIMPLON status)"))
	x.Humidity = d.Add(ro("humidity", properties.Float32, "%", "detector humidity (from SIMPLON status)"))
	// Until SIMPLON answers: bad, no value yet; bad, no communication,
	// while it does not answer (driver/dcu).
	x.Temperature.SetQuality(properties.NoValueYet("not read from the detector control unit yet"))
	x.Humidity.SetQuality(properties.NoValueYet("not read from the detector control unit yet"))
	x.Initialize = d.Add(cmd("initialize", properties.Int32, "re-initialise the detector connection", "0"))

	x.Model = d.Add(text("model", r, 64, "detector model"))
	x.Model.SetText(p.Model)
	x.Size = d.Add(array("size", properties.Int32, 2, r, "px", "[width, height] of the active mode, gaps included"))
	x.PixelSize = d.Add(ro("pixel-size", properties.Float64, "m", "pixel size (square pixels)"))
	x.PixelSize.SetFloat(p.PixelSize)
	x.ModuleGrid = d.Add(array("module-grid", properties.Int32, 2, r, "modules", "[columns, rows] of modules in the full frame"))
	_ = x.ModuleGrid.Set(properties.Int32s([]int32{int32(p.ModulesX), int32(p.ModulesY)}))
	x.ModuleSize = d.Add(array("module-size", properties.Int32, 2, r, "px", "[width, height] of one module"))
	_ = x.ModuleSize.Set(properties.Int32s([]int32{int32(p.ModuleWidth), int32(p.ModuleHeight)}))
	x.GapSize = d.Add(array("gap-size", properties.Int32, 2, r, "px", "[between module columns, between module rows]; gap pixels read all-ones"))
	_ = x.GapSize.Set(properties.Int32s([]int32{int32(p.GapX), int32(p.GapY)}))
	x.BitDepths = d.Add(array("bit-depths", properties.Int32, 4, r, "bit", "image bit depths the detector sends"))
	depths := make([]int32, len(p.BitDepths))
	for i, b := range p.BitDepths {
		depths[i] = int32(b)
	}
	_ = x.BitDepths.Set(properties.Int32s(depths))
	x.Sensor = d.Add(text("sensor", r, 16, "sensor material"))
	x.Sensor.SetText(p.Sensor)
	x.SensorThickness = d.Add(ro("sensor-thickness", properties.Float64, "m", "sensor thickness"))
	x.SensorThickness.SetFloat(p.SensorThickness)
	x.Modes = d.Add(text("modes", r, 64, "readout modes, comma separated, full frame first"))
	x.Modes.SetText(FormatModes(p.Modes()))
	x.MaxFrameRates = d.Add(array("max-frame-rates", properties.Float32, 4, r, "Hz", "maximum frame rate per mode, in the order of modes"))
	rates := []float32{float32(p.MaxFrameRate)}
	for _, m := range p.ROIModes {
		rates = append(rates, float32(m.MaxFrameRate))
	}
	_ = x.MaxFrameRates.Set(properties.Float32s(rates))
	x.Serial = d.Add(text("serial-number", r, 64, "serial number from the last series header"))
	x.Active = d.Add(ro("active", properties.Bool, "", "this detector sends the current stream"))
	x.SetMode(p.FullModeName)
	return x
}

// SetMode publishes the facts of a readout mode (size and frame rate).
func (x *Detector) SetMode(mode string) error {
	q, err := x.Profile.Mode(mode)
	if err != nil {
		return err
	}
	x.DetectorMode.SetText(q.FullModeName)
	x.FrameRate.SetFloat(q.MaxFrameRate)
	return x.Size.Set(properties.Int32s([]int32{int32(q.Width()), int32(q.Height())}))
}
