// Package simplon serves the subset of DECTRIS' SIMPLON REST API that the
// streaming server and beamline scripts use (eiger-stream.md), with the
// detector's real state machine:
//
//	na --initialize--> idle --arm--> ready --trigger--> acquire --(frames)--> ready ... --(last trigger)--> idle
//	                          disarm: ready/acquire -> idle (end of series sent)
//	                          abort:  any -> idle at once (end of series sent)
//	                          cancel: acquire -> ready after the current frame (series stays open)
//
// There is no trigger input on a simulator: in the external trigger modes
// (exts, exte) the trigger command stands in for the hardware pulse.
//
// Values are SIMPLON's {"value": ..., "value_type": ..., "access_mode": ...}
// objects; PUT takes {"value": ...} and answers with the list of keys that
// changed (setting photon_energy changes wavelength and threshold_energy).
// Client mistakes get 4xx with a plain-text message: 404 unknown key or API
// version, 400 bad JSON, wrong type or value out of range, 405 wrong method
// or read-only key, 409 a command or change the current state forbids.
//
// What the detector does when armed and triggered is the Backend's job (the
// simulator's stream and frame generator): this package knows nothing of
// ZMQ or pixels.
package simplon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"tioga/device/detectormodel"
)

// State is the detector state (detector/api/<v>/status/state).
type State string

// Detector states as SIMPLON names them.
const (
	StateNA         State = "na"
	StateInitialize State = "initialize"
	StateIdle       State = "idle"
	StateReady      State = "ready"
	StateAcquire    State = "acquire"
	StateError      State = "error"
	StateConfigure  State = "configure" // while arm prepares the series
)

// APIVersions lists the versions accepted in the path, newest first.
var APIVersions = []string{"1.8.0", "1.6.0"}

// Stream formats and header details (stream/api/<v>/config/...).
const (
	FormatLegacy = "legacy" // Stream V1: multipart JSON + blobs
	FormatCBOR   = "cbor"   // Stream V2
)

// Series is everything the backend needs to run one armed series: a
// snapshot of the configuration taken at arm time, so that nothing changes
// under a running acquisition.
type Series struct {
	ID      int                   // sequence id returned by arm (series id in the stream)
	ArmTime time.Time             // when arm was called
	Profile detectormodel.Profile // the detector as read out (ROI mode applied)

	NImages, NTrigger    int
	CountTime, FrameTime float64 // seconds
	PhotonEnergy         float64 // eV
	ThresholdEnergy      float64 // eV
	Wavelength           float64 // Å
	BeamCenterX          float64 // pixels
	BeamCenterY          float64 // pixels
	DetectorDistance     float64 // metres
	OmegaStart           float64 // degrees
	OmegaIncrement       float64 // degrees
	BitDepth             int     // bits per pixel of the image
	Compression          string  // "bslz4", "lz4" or "none"
	TriggerMode          string  // ints, exts, inte, exte
	ROIMode              string  // "disabled" or a mode name such as "4M"
	Description          string
	DetectorNumber       string

	Stream StreamConfig

	// Config holds every detector configuration value by SIMPLON key, as a
	// Stream V1 header (part 2) carries it. The backend may add keys it
	// knows better (number_of_excluded_pixels, data_collection_date) in Arm.
	Config map[string]any
}

// Frames returns the number of frames of the whole series.
func (s *Series) Frames() int { return s.NImages * s.NTrigger }

// StreamConfig is the stream subsystem's configuration.
type StreamConfig struct {
	Enabled        bool
	Format         string // FormatLegacy or FormatCBOR
	HeaderDetail   string // all, basic, none
	HeaderAppendix string // passed through verbatim ("" = none)
	ImageAppendix  string // passed through verbatim ("" = none)
}

// Backend does the detector's work. The server calls it with its own lock
// released and never concurrently for the same series.
type Backend interface {
	// Arm prepares the series and sends the series header (V1) or start
	// message (V2). An error fails the arm; a *RequestError keeps the
	// detector idle (bad configuration), any other error puts it in state
	// error.
	Arm(s *Series) error
	// Acquire sends frames first .. first+n-1 of the series. It returns when
	// they are sent, or early (nil error) once ctx is done -- checked
	// between frames, so a frame is never cut in half.
	Acquire(ctx context.Context, s *Series, first, n int) error
	// End sends the end-of-series message.
	End(s *Series) error
	// Dropped returns the number of frames the stream could not deliver.
	Dropped() uint64
}

// Options configure a Server.
type Options struct {
	// Profile is the detector model; its ROI modes become roi_mode's
	// allowed values.
	Profile detectormodel.Profile
	// BitDepths overrides the bit depths bit_depth_image accepts (default:
	// the profile's). A simulator may offer 8 bits on any model so that
	// every encoding can be exercised.
	BitDepths []int
	Backend   Backend
	Logger    zerolog.Logger
	// InitializeDelay is how long initialize takes (state "initialize"
	// meanwhile); a real DCU takes tens of seconds, tests want 0.
	InitializeDelay time.Duration
	// Initialized starts the detector idle instead of na, as if initialize
	// had been called.
	Initialized bool
	// DetectorNumber is the serial number reported (default "E-SIM-<name>").
	DetectorNumber string
}

// Server is the simulated DCU's REST face and state machine. Use it as an
// http.Handler, or call Set/Get/Command directly in-process.
type Server struct {
	opts    Options
	backend Backend
	log     zerolog.Logger

	mu          sync.Mutex
	state       State
	errors      []string
	det, stream store
	status      store // detector status (besides state)
	seq         int   // last sequence id handed out
	series      *Series
	triggers    int          // triggers completed in the current series
	acq         *acquisition // the running trigger, if any
}

type acquisition struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once the trigger has finished its transition
	stop   string        // why it was stopped early: "", "abort", "disarm", "cancel"
	err    error
}

// New returns a server in state na (or idle with Options.Initialized).
func New(opts Options) (*Server, error) {
	if opts.Profile.Width() <= 0 {
		return nil, errors.New("simplon: no detector profile")
	}
	if opts.Backend == nil {
		return nil, errors.New("simplon: no backend")
	}
	if opts.BitDepths == nil {
		opts.BitDepths = opts.Profile.BitDepths
	}
	if opts.DetectorNumber == "" {
		opts.DetectorNumber = "E-SIM-" + opts.Profile.Name
	}
	s := &Server{opts: opts, backend: opts.Backend, log: opts.Logger, state: StateNA}
	s.defineParams()
	if opts.Initialized {
		s.state = StateIdle
	}
	return s, nil
}

// State returns the detector state.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// SetEnvironment sets the temperature (°C) and relative humidity (%) the
// detector status reports, e.g. to test alarms.
func (s *Server) SetEnvironment(temperature, humidity float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.get("temperature").value = temperature
	s.status.get("humidity").value = humidity
	s.status.get("board_000/th0_temp").value = temperature
	s.status.get("board_000/th0_humidity").value = humidity
}

const (
	readoutTime = 3e-6 // s, EIGER X dead time between frames
	hcKeVA      = 12398.4198
)

func (s *Server) defineParams() {
	p := s.opts.Profile
	full := p.MaxFrameRate // of the full-frame mode; roi_mode raises the limit
	unbounded := func(name string, typ valueType, writable bool, unit string, v any) *param {
		return &param{name: name, typ: typ, writable: writable, unit: unit, min: 1, max: 0, value: v}
	}
	num := func(name string, typ valueType, unit string, lo, hi float64, v any) *param {
		return &param{name: name, typ: typ, writable: true, unit: unit, min: lo, max: hi, value: v}
	}
	str := func(name string, writable bool, allowed []string, v string) *param {
		return &param{name: name, typ: typeString, writable: writable, allowed: allowed, value: v}
	}
	depths := make([]string, 0, len(s.opts.BitDepths))
	for _, d := range s.opts.BitDepths {
		depths = append(depths, strconv.Itoa(d))
	}
	maxDepth := slices.Max(s.opts.BitDepths)
	minDepth := slices.Min(s.opts.BitDepths)
	roiModes := []string{"disabled"}
	for _, m := range p.ROIModes {
		roiModes = append(roiModes, m.Name)
	}
	energy := hcKeVA // eV for 1 Å
	d := &s.det
	d.add(num("nimages", typeUint, "", 1, 2_000_000_000, int64(1)))
	d.add(num("ntrigger", typeUint, "", 1, 1_000_000, int64(1)))
	d.add(num("frame_time", typeFloat, "s", 1/full, 3600, 0.1))
	d.add(num("count_time", typeFloat, "s", 1/full-readoutTime, 3600, 0.1-readoutTime))
	d.add(num("photon_energy", typeFloat, "eV", 2000, 100000, energy))
	d.add(num("wavelength", typeFloat, "Å", hcKeVA/100000, hcKeVA/2000, 1.0))
	d.add(num("threshold_energy", typeFloat, "eV", 1000, 100000, energy/2))
	d.add(num("beam_center_x", typeFloat, "pixel", -1e5, 1e5, float64(p.Width())/2))
	d.add(num("beam_center_y", typeFloat, "pixel", -1e5, 1e5, float64(p.Height())/2))
	d.add(num("detector_distance", typeFloat, "m", 0.01, 100, 0.2))
	d.add(num("omega_start", typeFloat, "degree", -1e6, 1e6, 0.0))
	d.add(num("omega_increment", typeFloat, "degree", -1e3, 1e3, 0.0))
	for _, ax := range []string{"phi", "chi", "kappa", "two_theta"} {
		d.add(num(ax+"_start", typeFloat, "degree", -1e6, 1e6, 0.0))
		d.add(num(ax+"_increment", typeFloat, "degree", -1e3, 1e3, 0.0))
	}
	d.add(&param{name: "bit_depth_image", typ: typeUint, writable: true, allowed: depths,
		min: float64(minDepth), max: float64(maxDepth), value: int64(16)})
	d.add(unbounded("bit_depth_readout", typeUint, false, "", int64(12)))
	d.add(str("compression", true, []string{"bslz4", "lz4", "none"}, "bslz4"))
	d.add(str("trigger_mode", true, []string{"ints", "exts", "inte", "exte"}, "ints"))
	d.add(str("roi_mode", len(p.ROIModes) > 0, roiModes, "disabled"))
	d.add(unbounded("x_pixels_in_detector", typeUint, false, "pixel", int64(p.Width())))
	d.add(unbounded("y_pixels_in_detector", typeUint, false, "pixel", int64(p.Height())))
	d.add(unbounded("x_pixel_size", typeFloat, false, "m", p.PixelSize))
	d.add(unbounded("y_pixel_size", typeFloat, false, "m", p.PixelSize))
	// The simulated spots have no parallax (sim/truth): say so where
	// every reader of the files sees it, the detector line.
	d.add(str("description", false, nil, "Dectris "+p.Model+" (simulated, no parallax)"))
	d.add(str("detector_number", false, nil, s.opts.DetectorNumber))
	d.add(str("sensor_material", false, nil, p.Sensor))
	d.add(unbounded("sensor_thickness", typeFloat, false, "m", p.SensorThickness))
	d.add(unbounded("detector_readout_time", typeFloat, false, "s", readoutTime))
	d.add(unbounded("number_of_excluded_pixels", typeUint, false, "", int64(p.GapPixels())))
	d.add(str("software_version", false, nil, "1.8.0-sim"))
	d.add(str("calibration_type", false, nil, "standard"))
	d.add(str("countrate_correction_bunch_mode", false, nil, "continuous"))
	d.add(str("element", true, nil, ""))
	d.add(unbounded("auto_summation", typeBool, true, "", true))
	for _, k := range []string{"countrate_correction_applied", "flatfield_correction_applied",
		"pixel_mask_applied", "virtual_pixel_correction_applied", "efficiency_correction_applied"} {
		d.add(unbounded(k, typeBool, true, "", k != "efficiency_correction_applied"))
	}
	d.add(&param{name: "detector_orientation", typ: typeList, value: []any{-1, 0, 0, 0, -1, 0}})
	d.add(&param{name: "detector_translation", typ: typeList, value: []any{0.0, 0.0, 0.0}})

	st := &s.stream
	st.add(str("mode", true, []string{"enabled", "disabled"}, "enabled"))
	st.add(str("format", true, []string{FormatLegacy, FormatCBOR}, FormatLegacy))
	st.add(str("header_detail", true, []string{"all", "basic", "none"}, "basic"))
	st.add(str("header_appendix", true, nil, ""))
	st.add(str("image_appendix", true, nil, ""))

	ss := &s.status
	ss.add(unbounded("temperature", typeFloat, false, "degree Celsius", 24.7))
	ss.add(unbounded("humidity", typeFloat, false, "%", 9.3))
	ss.add(unbounded("board_000/th0_temp", typeFloat, false, "degree Celsius", 24.7))
	ss.add(unbounded("board_000/th0_humidity", typeFloat, false, "%", 9.3))
}

// Get returns the JSON view of a parameter: subsystem "detector" or
// "stream", section "config" or "status".
func (s *Server) Get(subsystem, section, key string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case subsystem == "detector" && section == "config", subsystem == "stream" && section == "config":
		p := s.configStore(subsystem).get(key)
		if p == nil {
			return nil, &RequestError{Status: 404, Msg: fmt.Sprintf("%s config has no key %q", subsystem, key)}
		}
		return p.view(), nil
	case subsystem == "detector" && section == "status":
		switch key {
		case "state":
			return view{Value: string(s.state), ValueType: string(typeString), AccessMode: "r",
				AllowedValues: []string{"na", "idle", "ready", "acquire", "configure", "initialize", "error"}}, nil
		case "error":
			return view{Value: slices.Clone(s.errors), ValueType: string(typeList), AccessMode: "r"}, nil
		case "time":
			return view{Value: time.Now().UTC().Format(time.RFC3339Nano), ValueType: string(typeString), AccessMode: "r"}, nil
		case "series_id", "sequence_id":
			return view{Value: s.seq, ValueType: string(typeUint), AccessMode: "r"}, nil
		}
		if p := s.status.get(key); p != nil {
			return p.view(), nil
		}
	case subsystem == "stream" && section == "status":
		switch key {
		case "state":
			st := "ready"
			switch {
			case s.stream.str("mode") != "enabled":
				st = "disabled"
			case s.state == StateAcquire:
				st = "acquire"
			}
			return view{Value: st, ValueType: string(typeString), AccessMode: "r",
				AllowedValues: []string{"disabled", "ready", "acquire", "error"}}, nil
		case "dropped":
			return view{Value: s.backend.Dropped(), ValueType: string(typeUint), AccessMode: "r"}, nil
		}
	default:
		return nil, &RequestError{Status: 404, Msg: fmt.Sprintf("no section %s/%s", subsystem, section)}
	}
	return nil, &RequestError{Status: 404, Msg: fmt.Sprintf("%s status has no key %q", subsystem, key)}
}

// Value returns the current value of a configuration key of subsystem
// "detector" or "stream" (float64, int64, string, bool or []any).
func (s *Server) Value(subsystem, key string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.configStore(subsystem).get(key)
	if p == nil {
		return nil, &RequestError{Status: 404, Msg: fmt.Sprintf("%s config has no key %q", subsystem, key)}
	}
	return p.value, nil
}

func (s *Server) configStore(subsystem string) *store {
	if subsystem == "stream" {
		return &s.stream
	}
	return &s.det
}

// Set writes a configuration parameter from its JSON value and returns the
// keys that changed (the key itself and any it depends on).
func (s *Server) Set(subsystem, key string, value json.RawMessage) ([]string, error) {
	if subsystem != "detector" && subsystem != "stream" {
		return nil, &RequestError{Status: 404, Msg: fmt.Sprintf("no subsystem %q", subsystem)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.configStore(subsystem)
	p := st.get(key)
	if p == nil {
		return nil, &RequestError{Status: 404, Msg: fmt.Sprintf("%s config has no key %q", subsystem, key)}
	}
	if !p.writable {
		return nil, &RequestError{Status: 405, Msg: fmt.Sprintf("%s is read-only", key)}
	}
	if s.state == StateReady || s.state == StateAcquire || s.state == StateInitialize || s.state == StateConfigure {
		return nil, &RequestError{Status: 409, Msg: fmt.Sprintf("cannot change %s while the detector is %s (disarm first)", key, s.state)}
	}
	v, err := p.coerce(value)
	if err != nil {
		return nil, err
	}
	changed := []string{key}
	set := func(k string, v any) {
		q := st.get(k)
		if q.value != v {
			q.value = v
			if !slices.Contains(changed, k) {
				changed = append(changed, k)
			}
		}
	}
	p.value = v
	if subsystem == "detector" {
		switch key {
		case "photon_energy":
			set("wavelength", hcKeVA/v.(float64))
			set("threshold_energy", v.(float64)/2)
		case "wavelength":
			set("photon_energy", hcKeVA/v.(float64))
			set("threshold_energy", hcKeVA/v.(float64)/2)
		case "frame_time":
			if ct := st.float("count_time"); ct > v.(float64)-readoutTime {
				set("count_time", v.(float64)-readoutTime)
			}
		case "count_time":
			if ft := st.float("frame_time"); ft < v.(float64)+readoutTime {
				set("frame_time", v.(float64)+readoutTime)
			}
		case "roi_mode":
			q, err := s.opts.Profile.Mode(v.(string))
			if err != nil { // cannot happen: allowed values come from the profile
				return nil, badRequest("%v", err)
			}
			set("x_pixels_in_detector", int64(q.Width()))
			set("y_pixels_in_detector", int64(q.Height()))
			set("number_of_excluded_pixels", int64(q.GapPixels()))
			// The mode's maximum rate bounds frame_time.
			ft := st.get("frame_time")
			ft.min = 1 / q.MaxFrameRate
			st.get("count_time").min = ft.min - readoutTime
			if st.float("frame_time") < ft.min {
				set("frame_time", ft.min)
				set("count_time", ft.min-readoutTime)
			}
		}
	}
	s.log.Debug().Str("key", key).RawJSON("value", value).Strs("changed", changed).Msg("simplon config set")
	return changed, nil
}

// Command runs a detector command (initialize, arm, trigger, disarm,
// abort, cancel). arm returns map{"sequence id": N}; others return nil.
// trigger blocks until its frames are sent, as on the real DCU.
func (s *Server) Command(name string, value json.RawMessage) (any, error) {
	switch name {
	case "initialize":
		return nil, s.initialize()
	case "arm":
		return s.arm()
	case "trigger":
		return nil, s.trigger(value)
	case "disarm":
		return nil, s.stop("disarm")
	case "abort":
		return nil, s.stop("abort")
	case "cancel":
		return nil, s.stop("cancel")
	case "status_update", "check_connections":
		return nil, nil
	}
	return nil, &RequestError{Status: 404, Msg: fmt.Sprintf("no command %q (commands: initialize, arm, trigger, disarm, abort, cancel)", name)}
}

func conflict(format string, a ...any) error {
	return &RequestError{Status: 409, Msg: fmt.Sprintf(format, a...)}
}

func (s *Server) initialize() error {
	if err := s.stop("abort"); err != nil {
		return err
	}
	s.mu.Lock()
	if s.state == StateInitialize {
		s.mu.Unlock()
		return conflict("initialize already in progress")
	}
	s.state = StateInitialize
	s.errors = nil
	s.mu.Unlock()
	if s.opts.InitializeDelay > 0 {
		time.Sleep(s.opts.InitializeDelay)
	}
	s.mu.Lock()
	s.state = StateIdle
	s.mu.Unlock()
	s.log.Info().Msg("detector initialized")
	return nil
}

func (s *Server) arm() (any, error) {
	s.mu.Lock()
	switch s.state {
	case StateIdle:
	case StateNA:
		s.mu.Unlock()
		return nil, conflict("cannot arm: detector not initialized (state na)")
	case StateError:
		s.mu.Unlock()
		return nil, conflict("cannot arm: detector in error (initialize first)")
	default:
		s.mu.Unlock()
		return nil, conflict("cannot arm: detector is %s", s.state)
	}
	series, err := s.snapshot()
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.seq++
	series.ID = s.seq
	// The DCU reports "configure" while it arms; the state also keeps a
	// second arm or a config change out until the backend is done.
	s.state = StateConfigure
	s.mu.Unlock()

	err = s.backend.Arm(series)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			s.state = StateIdle
			return nil, err
		}
		s.fail(fmt.Sprintf("arm failed: %v", err))
		return nil, err
	}
	s.series, s.triggers, s.state = series, 0, StateReady
	s.log.Info().Int("series", series.ID).Int("nimages", series.NImages).Int("ntrigger", series.NTrigger).
		Str("format", series.Stream.Format).Str("compression", series.Compression).Msg("armed")
	return map[string]int{"sequence id": series.ID}, nil
}

func (s *Server) fail(msg string) {
	s.state = StateError
	s.errors = append(s.errors, msg)
	s.log.Error().Msg(msg)
}

// snapshot builds the Series from the current configuration (lock held).
func (s *Server) snapshot() (*Series, error) {
	d := &s.det
	roi := d.str("roi_mode")
	prof, err := s.opts.Profile.Mode(roi)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	cfg := d.values()
	return &Series{
		ArmTime: time.Now(), Profile: prof,
		NImages: d.int("nimages"), NTrigger: d.int("ntrigger"),
		CountTime: d.float("count_time"), FrameTime: d.float("frame_time"),
		PhotonEnergy: d.float("photon_energy"), ThresholdEnergy: d.float("threshold_energy"),
		Wavelength:  d.float("wavelength"),
		BeamCenterX: d.float("beam_center_x"), BeamCenterY: d.float("beam_center_y"),
		DetectorDistance: d.float("detector_distance"),
		OmegaStart:       d.float("omega_start"), OmegaIncrement: d.float("omega_increment"),
		BitDepth:    d.int("bit_depth_image"),
		Compression: d.str("compression"), TriggerMode: d.str("trigger_mode"), ROIMode: roi,
		Description: d.str("description"), DetectorNumber: d.str("detector_number"),
		Stream: StreamConfig{
			Enabled:        s.stream.str("mode") == "enabled",
			Format:         s.stream.str("format"),
			HeaderDetail:   s.stream.str("header_detail"),
			HeaderAppendix: s.stream.str("header_appendix"),
			ImageAppendix:  s.stream.str("image_appendix"),
		},
		Config: cfg,
	}, nil
}

func (s *Server) trigger(value json.RawMessage) error {
	s.mu.Lock()
	if s.state != StateReady {
		st := s.state
		s.mu.Unlock()
		if st == StateAcquire {
			return conflict("cannot trigger: acquisition of the previous trigger still running")
		}
		return conflict("cannot trigger: detector is %s, not armed", st)
	}
	series := s.series
	if s.triggers >= series.NTrigger {
		s.mu.Unlock()
		return conflict("cannot trigger: all %d triggers of series %d done", series.NTrigger, series.ID)
	}
	if len(value) > 0 && series.TriggerMode == "inte" {
		// inte: the trigger's value is the count time of this trigger.
		var v struct {
			Value float64 `json:"value"`
		}
		if err := json.Unmarshal(value, &v); err != nil || v.Value <= 0 {
			s.mu.Unlock()
			return badRequest("trigger: inte wants {\"value\": <count time in s>}")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &acquisition{cancel: cancel, done: make(chan struct{})}
	s.acq = a
	s.state = StateAcquire
	first := s.triggers * series.NImages
	s.mu.Unlock()

	go func() {
		err := s.backend.Acquire(ctx, series, first, series.NImages)
		cancel()
		s.finishTrigger(a, series, err)
	}()
	<-a.done
	return a.err
}

// finishTrigger makes the state transition after a trigger's frames were
// sent or the acquisition was stopped.
func (s *Server) finishTrigger(a *acquisition, series *Series, err error) {
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		close(a.done)
	}()
	s.acq = nil
	s.triggers++
	switch {
	case err != nil:
		a.err = fmt.Errorf("acquisition of series %d failed: %w", series.ID, err)
		s.fail(a.err.Error())
		s.endSeries(series)
	case a.stop == "cancel":
		s.state = StateReady
	case a.stop != "":
		s.endSeries(series)
	case s.triggers >= series.NTrigger:
		s.endSeries(series)
	default:
		s.state = StateReady
	}
}

// endSeries sends the end message and returns to idle (lock held; the
// backend's End only queues a message).
func (s *Server) endSeries(series *Series) {
	if err := s.backend.End(series); err != nil {
		s.fail(fmt.Sprintf("end of series %d: %v", series.ID, err))
	} else if s.state != StateError {
		s.state = StateIdle
	}
	s.series = nil
	s.log.Info().Int("series", series.ID).Msg("series ended")
}

// stop implements disarm, abort and cancel.
func (s *Server) stop(how string) error {
	s.mu.Lock()
	switch s.state {
	case StateAcquire:
		a := s.acq
		if a.stop == "" || how == "abort" {
			a.stop = how
		}
		a.cancel()
		s.mu.Unlock()
		<-a.done
		if how == "disarm" {
			// cancel-then-disarm races aside, a disarm always ends the series.
			return s.stop("disarm")
		}
		return nil
	case StateReady:
		if how == "cancel" {
			s.mu.Unlock()
			return nil
		}
		s.endSeries(s.series)
		s.mu.Unlock()
		return nil
	case StateNA:
		s.mu.Unlock()
		if how == "abort" {
			return nil
		}
		return conflict("cannot %s: detector not initialized (state na)", how)
	case StateError:
		if how == "abort" || how == "disarm" {
			if s.series != nil {
				s.endSeries(s.series)
			}
		}
		s.mu.Unlock()
		return nil
	default: // idle, initialize: nothing armed, nothing to do (clients disarm defensively)
		s.mu.Unlock()
		return nil
	}
}

// ServeHTTP routes /{detector|stream}/api/{version}/{config|status|command}/{key}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.Trim(r.URL.Path, "/"), "/", 5)
	if len(parts) == 4 && parts[1] == "api" && parts[2] == "version" && parts[3] == "" || len(parts) == 3 && parts[1] == "api" && parts[2] == "version" {
		writeJSON(w, view{Value: APIVersions[0], ValueType: string(typeString), AccessMode: "r"})
		return
	}
	if len(parts) < 5 || parts[1] != "api" || (parts[0] != "detector" && parts[0] != "stream") {
		httpError(w, &RequestError{Status: 404, Msg: "not a SIMPLON path: want /{detector|stream}/api/<version>/{config|status|command}/<key>"})
		return
	}
	subsystem, version, section, key := parts[0], parts[2], parts[3], strings.TrimSuffix(parts[4], "/")
	if !slices.Contains(APIVersions, version) {
		httpError(w, &RequestError{Status: 404, Msg: fmt.Sprintf("API version %q not supported (supported: %s)", version, strings.Join(APIVersions, ", "))})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		httpError(w, badRequest("request body: %v", err))
		return
	}
	switch {
	case section == "command" && subsystem == "detector":
		if r.Method != http.MethodPut && r.Method != http.MethodPost {
			w.Header().Set("Allow", "PUT")
			httpError(w, &RequestError{Status: 405, Msg: "commands are PUT"})
			return
		}
		s.log.Debug().Str("command", key).Msg("simplon command")
		out, err := s.Command(key, body)
		if err != nil {
			httpError(w, err)
			return
		}
		if out == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		writeJSON(w, out)
	case section == "config" || section == "status":
		switch r.Method {
		case http.MethodGet:
			v, err := s.Get(subsystem, section, key)
			if err != nil {
				httpError(w, err)
				return
			}
			writeJSON(w, v)
		case http.MethodPut:
			if section == "status" {
				w.Header().Set("Allow", "GET")
				httpError(w, &RequestError{Status: 405, Msg: "status is read-only"})
				return
			}
			var req struct {
				Value json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(body, &req); err != nil {
				httpError(w, badRequest("%s: body must be {\"value\": ...}: %v", key, err))
				return
			}
			if req.Value == nil {
				httpError(w, badRequest("%s: body must be {\"value\": ...}", key))
				return
			}
			changed, err := s.Set(subsystem, key, req.Value)
			if err != nil {
				httpError(w, err)
				return
			}
			writeJSON(w, changed)
		default:
			w.Header().Set("Allow", "GET, PUT")
			httpError(w, &RequestError{Status: 405, Msg: r.Method + " not allowed"})
		}
	default:
		httpError(w, &RequestError{Status: 404, Msg: fmt.Sprintf("no section %s/%s", subsystem, section)})
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(b)
}

func httpError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var re *RequestError
	if errors.As(err, &re) {
		status = re.Status
	}
	http.Error(w, err.Error(), status)
}
