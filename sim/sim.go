// Package sim is the whole simulated EIGER detector in one value: the
// SIMPLON REST server (tioga/sim/simplon) with its state machine, the two
// ZeroMQ PUSH streams (Stream V1 on one endpoint, V2 on the other, as a DCU
// has them), the synthetic diffraction generator (tioga/sim/diffraction)
// and the ground-truth file (tioga/sim/truth).
//
// Tests and the demo start it in-process on loopback with free ports:
//
//	d, err := sim.Start(sim.Config{Profile: p})
//	defer d.Close()
//	// REST at d.RESTURL(), frames at d.StreamEndpoint()
//
// and drive it over HTTP like a real detector, or in-process with
// d.RunSeries. Arm takes the geometry (beam centre, distance, wavelength,
// bit depth, ROI mode) from the SIMPLON configuration, so what a client
// configures is what the frames show; the sample (crystal, hits,
// background) comes from Config.Sample.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/rs/zerolog"

	"tioga/device/detectormodel"
	"tioga/driver/codec"
	"tioga/driver/raster"
	"tioga/driver/stream"
	"tioga/sim/diffraction"
	"tioga/sim/simplon"
	"tioga/sim/streamer"
	"tioga/sim/truth"
)

// Config describes a simulated detector. Zero values take the defaults in
// brackets.
type Config struct {
	Profile detectormodel.Profile // the model (required)
	ROIMode string                // "" / "disabled", or a mode such as "4M"

	// Initial SIMPLON configuration; clients may change it over REST.
	Format         string  // stream format: "legacy" (V1) or "cbor" (V2) [legacy]
	Compression    string  // bslz4, lz4 or none [bslz4]
	HeaderDetail   string  // all, basic or none [basic]
	HeaderAppendix string  // passed through verbatim
	ImageAppendix  string  // passed through verbatim
	BitDepth       int     // 8, 16 or 32 [16]
	NImages        int     // [1]
	NTrigger       int     // [1]
	FrameTime      float64 // seconds [1/max frame rate of the mode]
	// Geometry. Zero: beam near the centre, 1 Å, the distance at which the
	// detector's inscribed circle reaches 0.9 x Sample.DCut. The beam
	// centre is SIMPLON's: pixels from the first pixel's outer edge.
	BeamX, BeamY, Distance, Wavelength float64

	// Sample holds the crystal, hit and background knobs (seed, hit
	// fraction, spots, d_cut, Wilson B, background, water ring, beamstop,
	// raster...). Its geometry fields are ignored: at arm time they are
	// taken from the SIMPLON configuration. Zero value: diffraction's
	// DefaultConfig.
	Sample *diffraction.Config
	// BitDepths offered by bit_depth_image [8, 16 and 32 whatever the
	// model, so that every encoding can be exercised].
	BitDepths []int
	// Headerless sends Stream V1 bslz4 without the 12-byte header, as some
	// simulators do.
	Headerless bool

	Stream     streamer.Options
	RESTAddr   string // [127.0.0.1:0]
	V1Endpoint string // [tcp://127.0.0.1:*]
	V2Endpoint string // [tcp://127.0.0.1:*]
	// TruthPath, if set, receives each series' ground truth as JSON lines;
	// a "%d" in it is replaced by the series id, else each series
	// overwrites the file.
	TruthPath string
	// Uninitialized starts the detector in state na (a client must send
	// initialize), as a freshly booted DCU; by default it starts idle.
	Uninitialized bool
	// OnFrame, if set, is called in frame order for every frame sent or
	// dropped (progress bars, tests). It must be quick.
	OnFrame func(series int, t *truth.Frame, dropped bool)
	Logger  zerolog.Logger
}

// Detector is a running simulated detector.
type Detector struct {
	cfg     Config
	log     zerolog.Logger
	srv     *simplon.Server
	httpSrv *http.Server
	httpLn  net.Listener
	v1, v2  *streamer.Streamer

	mu       sync.Mutex
	series   map[int]*seriesState
	ended    map[int]chan struct{}
	gen      *diffraction.Generator // cached: building one costs ~0.5 s for a 4M
	genCfg   diffraction.Config
	lastID   int
	httpDone chan error
}

type seriesState struct {
	ss        *streamer.Series
	st        *streamer.Streamer
	gen       *diffraction.Generator
	truthFile *os.File
	truthW    *truth.Writer
	truthErr  error
	enabled   bool
}

// Start starts the REST server and binds both streams.
func Start(cfg Config) (*Detector, error) {
	if cfg.Profile.Width() <= 0 {
		return nil, errors.New("sim: no detector profile")
	}
	if cfg.RESTAddr == "" {
		cfg.RESTAddr = "127.0.0.1:0"
	}
	if cfg.V1Endpoint == "" {
		cfg.V1Endpoint = "tcp://127.0.0.1:*"
	}
	if cfg.V2Endpoint == "" {
		cfg.V2Endpoint = "tcp://127.0.0.1:*"
	}
	if cfg.BitDepths == nil {
		cfg.BitDepths = []int{8, 16, 32}
	}
	if cfg.Sample == nil {
		def := diffraction.DefaultConfig(cfg.Profile)
		cfg.Sample = &def
	}
	d := &Detector{cfg: cfg, log: cfg.Logger, series: map[int]*seriesState{}, ended: map[int]chan struct{}{}}
	var err error
	cfg.Stream.Logger = cfg.Logger
	if d.v1, err = streamer.New(cfg.V1Endpoint, cfg.Stream); err != nil {
		return nil, fmt.Errorf("sim: stream V1: %w", err)
	}
	if d.v2, err = streamer.New(cfg.V2Endpoint, cfg.Stream); err != nil {
		d.v1.Close()
		return nil, fmt.Errorf("sim: stream V2: %w", err)
	}
	d.srv, err = simplon.New(simplon.Options{
		Profile: cfg.Profile, BitDepths: cfg.BitDepths, Backend: (*backend)(d),
		Logger: cfg.Logger, Initialized: !cfg.Uninitialized,
	})
	if err == nil {
		err = d.configure()
	}
	if err != nil {
		d.v1.Close()
		d.v2.Close()
		return nil, fmt.Errorf("sim: %w", err)
	}
	d.httpLn, err = net.Listen("tcp", cfg.RESTAddr)
	if err != nil {
		d.v1.Close()
		d.v2.Close()
		return nil, fmt.Errorf("sim: REST listen: %w", err)
	}
	d.httpSrv = &http.Server{Handler: d.srv, ReadHeaderTimeout: 10 * time.Second}
	d.httpDone = make(chan error, 1)
	go func() { d.httpDone <- d.httpSrv.Serve(d.httpLn) }()
	d.log.Info().Str("rest", d.RESTURL()).Str("v1", d.v1.Endpoint()).Str("v2", d.v2.Endpoint()).
		Str("detector", cfg.Profile.Model).Msg("simulated detector up")
	return d, nil
}

// configure writes the initial SIMPLON configuration through the same
// validation a REST client gets.
func (d *Detector) configure() error {
	c := d.cfg
	prof, err := c.Profile.Mode(c.ROIMode)
	if err != nil {
		return err
	}
	sample := *c.Sample
	def := diffraction.DefaultConfig(prof)
	bx, by, wl := c.BeamX, c.BeamY, c.Wavelength
	if bx == 0 && by == 0 {
		// The generator's centre (pixel i centred on i) in the detector's
		// convention (pixels from the first pixel's outer edge).
		bx, by = def.BeamX+stream.PixelCentre, def.BeamY+stream.PixelCentre
	}
	if wl == 0 {
		wl = 1.0
	}
	dist := c.Distance
	if dist == 0 {
		dcut := sample.DCut
		if dcut <= 0 {
			dcut = def.DCut
		}
		dist = diffraction.DistanceFor(prof, bx, by, wl, 0.9*dcut)
	}
	type kv struct {
		sub, key string
		v        any
	}
	var set []kv
	add := func(sub, key string, v any, cond bool) {
		if cond {
			set = append(set, kv{sub, key, v})
		}
	}
	// Mode returns the ROI mode's profile under the mode's own name.
	add("detector", "roi_mode", prof.FullModeName, prof.FullModeName != c.Profile.FullModeName)
	add("detector", "wavelength", wl, true)
	add("detector", "beam_center_x", bx, true)
	add("detector", "beam_center_y", by, true)
	add("detector", "detector_distance", dist, true)
	add("detector", "bit_depth_image", c.BitDepth, c.BitDepth != 0)
	add("detector", "compression", c.Compression, c.Compression != "")
	add("detector", "nimages", c.NImages, c.NImages != 0)
	add("detector", "ntrigger", c.NTrigger, c.NTrigger != 0)
	ft := c.FrameTime
	if ft == 0 {
		ft = 1 / prof.MaxFrameRate
	}
	add("detector", "frame_time", ft, true)
	add("stream", "format", c.Format, c.Format != "")
	add("stream", "header_detail", c.HeaderDetail, c.HeaderDetail != "")
	add("stream", "header_appendix", c.HeaderAppendix, c.HeaderAppendix != "")
	add("stream", "image_appendix", c.ImageAppendix, c.ImageAppendix != "")
	for _, s := range set {
		b, _ := json.Marshal(s.v)
		if _, err := d.srv.Set(s.sub, s.key, b); err != nil {
			return fmt.Errorf("initial %s config %s: %w", s.sub, s.key, err)
		}
	}
	return nil
}

// RESTURL is the base URL of the SIMPLON API ("http://127.0.0.1:port").
func (d *Detector) RESTURL() string { return "http://" + d.httpLn.Addr().String() }

// StreamEndpoint is where a receiver connects for the configured stream
// format (V1 for legacy, V2 for cbor).
func (d *Detector) StreamEndpoint() string {
	if v, _ := d.srv.Value("stream", "format"); v == simplon.FormatCBOR {
		return d.v2.ConnectEndpoint()
	}
	return d.v1.ConnectEndpoint()
}

// StreamEndpoints returns the connect endpoints of Stream V1 and V2.
func (d *Detector) StreamEndpoints() (v1, v2 string) {
	return d.v1.ConnectEndpoint(), d.v2.ConnectEndpoint()
}

// Server is the SIMPLON server, for in-process configuration and commands.
func (d *Detector) Server() *simplon.Server { return d.srv }

// Generator returns the frame generator of a series armed earlier (nil if
// unknown): tests regenerate a frame's pixels from it to compare with what
// a receiver got.
func (d *Detector) Generator(series int) *diffraction.Generator {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.series[series]; s != nil {
		return s.gen
	}
	return nil
}

// Dropped is the number of frames the streams dropped (Stream DropAfter).
func (d *Detector) Dropped() uint64 { return d.v1.Dropped() + d.v2.Dropped() }

// endedChan returns the channel closed when the series has ended.
func (d *Detector) endedChan(id int) chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := d.ended[id]
	if ch == nil {
		ch = make(chan struct{})
		d.ended[id] = ch
	}
	return ch
}

// WaitEnd blocks until series id has ended (its end message sent) or ctx
// is done.
func (d *Detector) WaitEnd(ctx context.Context, id int) error {
	select {
	case <-d.endedChan(id):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sim: waiting for the end of series %d: %w", id, ctx.Err())
	}
}

// RunSeries runs one complete series in-process, as a client would over
// REST: initialize when needed, arm, then every trigger. It returns the
// series id once the end message is sent. ctx aborts the series.
func (d *Detector) RunSeries(ctx context.Context) (int, error) {
	if d.srv.State() == simplon.StateNA || d.srv.State() == simplon.StateError {
		if _, err := d.srv.Command("initialize", nil); err != nil {
			return 0, err
		}
	}
	out, err := d.srv.Command("arm", nil)
	if err != nil {
		return 0, err
	}
	id := out.(map[string]int)["sequence id"]
	stop := context.AfterFunc(ctx, func() { d.srv.Command("abort", nil) })
	defer stop()
	for d.srv.State() == simplon.StateReady {
		if _, err := d.srv.Command("trigger", nil); err != nil {
			return id, err
		}
	}
	if err := d.WaitEnd(ctx, id); err != nil {
		return id, err
	}
	return id, ctx.Err()
}

// Interrupt makes the streams give up sends that wait for a receiver
// (streamer.Interrupt): on SIGTERM a detector blocked on a header, frame or
// end message nobody takes must stop, not hang. Safe from any goroutine.
func (d *Detector) Interrupt() {
	d.v1.Interrupt()
	d.v2.Interrupt()
}

// Drain stops the REST server and closes both streams once the receiver
// has taken everything they queue, waiting up to timeout (streamer.Drain);
// Close afterwards only releases what is left. The error says what may not
// have been delivered.
func (d *Detector) Drain(ctx context.Context, timeout time.Duration) error {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d.httpSrv.Shutdown(sctx)
	errs := make(chan error, 2)
	for _, st := range []*streamer.Streamer{d.v1, d.v2} {
		go func() { errs <- st.Drain(ctx, timeout) }()
	}
	return errors.Join(<-errs, <-errs)
}

// Close aborts any series, stops the REST server and closes the streams.
func (d *Detector) Close() error {
	d.srv.Command("abort", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := d.httpSrv.Shutdown(ctx)
	return errors.Join(err, d.v1.Close(), d.v2.Close())
}

// backend is the Detector seen by the SIMPLON server.
type backend Detector

func badConfig(format string, a ...any) error {
	return &simplon.RequestError{Status: 400, Msg: fmt.Sprintf(format, a...)}
}

// encoding maps SIMPLON compression and stream format to a wire encoding.
func (d *Detector) encoding(compression, format string) (codec.Encoding, error) {
	switch compression {
	case "none":
		return codec.Raw, nil
	case "lz4":
		if format == simplon.FormatCBOR {
			return codec.HDF5LZ4, nil
		}
		return codec.LZ4Block, nil
	case "bslz4":
		if d.cfg.Headerless {
			if format == simplon.FormatCBOR {
				return 0, badConfig("headerless bslz4 exists only in Stream V1 (format legacy)")
			}
			return codec.BSLZ4NoHeader, nil
		}
		return codec.BSLZ4, nil
	}
	return 0, badConfig("compression %q", compression)
}

func (b *backend) Arm(s *simplon.Series) error {
	d := (*Detector)(b)
	dc := *d.cfg.Sample
	dc.Profile, dc.BitDepth = s.Profile, s.BitDepth
	// SIMPLON's beam centre counts from the first pixel's outer edge; the
	// generator centres pixel i on i.
	dc.BeamX, dc.BeamY = s.BeamCenterX-stream.PixelCentre, s.BeamCenterY-stream.PixelCentre
	dc.Distance, dc.Wavelength = s.DetectorDistance, s.Wavelength
	if r := dc.Raster; r != nil && s.Frames() > r.Frames() {
		return badConfig("raster %d x %d has %d frames but nimages x ntrigger = %d", r.Lines, r.FramesPerLine, r.Frames(), s.Frames())
	}
	enc, err := d.encoding(s.Compression, s.Stream.Format)
	if err != nil {
		return err
	}
	gen, err := d.generator(dc)
	if err != nil {
		return badConfig("%v", err)
	}
	st := &seriesState{gen: gen, enabled: s.Stream.Enabled, st: d.v1}
	version := 1
	if s.Stream.Format == simplon.FormatCBOR {
		version, st.st = 2, d.v2
	}
	hdr, err := d.header(s, gen, version)
	if err != nil {
		return err
	}
	ticks := func(sec float64) uint64 { return uint64(math.Round(sec * streamer.TickRate)) }
	st.ss = &streamer.Series{
		Header: hdr, Encoding: enc, Generator: gen,
		CountTicks: ticks(s.CountTime), FrameTicks: ticks(s.FrameTime),
		ReadoutTicks: ticks(s.FrameTime - s.CountTime),
	}
	if s.Stream.ImageAppendix != "" {
		if version == 1 {
			st.ss.ImageAppendix = []byte(s.Stream.ImageAppendix)
		} else if st.ss.ImageAppendix, err = cbor.Marshal(s.Stream.ImageAppendix); err != nil {
			return err
		}
	}
	if d.cfg.TruthPath != "" {
		path := d.cfg.TruthPath
		if strings.Contains(path, "%d") {
			path = fmt.Sprintf(path, s.ID)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("truth file: %w", err)
		}
		if st.truthFile, err = os.Create(path); err != nil {
			return fmt.Errorf("truth file: %w", err)
		}
		st.truthW = truth.NewWriter(st.truthFile)
	}
	id := s.ID
	st.ss.Sent = func(t *truth.Frame, dropped bool) {
		if st.truthW != nil && st.truthErr == nil {
			st.truthErr = st.truthW.Write(t)
		}
		if d.cfg.OnFrame != nil {
			d.cfg.OnFrame(id, t, dropped)
		}
	}
	if st.enabled {
		if err := st.st.Header(st.ss); err != nil {
			if st.truthFile != nil {
				st.truthFile.Close()
			}
			return err
		}
	}
	d.mu.Lock()
	d.series[s.ID] = st
	d.lastID = s.ID
	d.mu.Unlock()
	d.log.Info().Int("series", s.ID).Int("version", version).Str("encoding", enc.String()).
		Int("frames", s.Frames()).Str("cell", fmt.Sprintf("%.1f %.1f %.1f", gen.Cell().A, gen.Cell().B, gen.Cell().C)).
		Msg("series armed")
	return nil
}

// generator returns a generator for dc, reusing the previous one when the
// configuration is the same.
func (d *Detector) generator(dc diffraction.Config) (*diffraction.Generator, error) {
	d.mu.Lock()
	if d.gen != nil && reflect.DeepEqual(d.genCfg, dc) {
		g := d.gen
		d.mu.Unlock()
		return g, nil
	}
	d.mu.Unlock()
	g, err := diffraction.New(dc)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.gen, d.genCfg = g, dc
	d.mu.Unlock()
	return g, nil
}

// header builds the series header / start message content.
func (d *Detector) header(s *simplon.Series, gen *diffraction.Generator, version int) (*stream.Series, error) {
	p := s.Profile
	h := &stream.Series{
		Version: version, ID: uint64(s.ID), HeaderDetail: s.Stream.HeaderDetail,
		Description: s.Description, SerialNumber: s.DetectorNumber,
		Width: gen.Width(), Height: gen.Height(), PixelSizeX: p.PixelSize, PixelSizeY: p.PixelSize,
		BeamCenterX: s.BeamCenterX, BeamCenterY: s.BeamCenterY, DetectorDistance: s.DetectorDistance,
		Wavelength: s.Wavelength, PhotonEnergy: s.PhotonEnergy, ThresholdEnergy: s.ThresholdEnergy,
		CountTime: s.CountTime, FrameTime: s.FrameTime, NumberOfImages: uint64(s.Frames()),
		BitDepth: s.BitDepth, ElemSize: gen.ElemSize(), SaturationValue: uint64(gen.Saturation()),
		SensorMaterial: p.Sensor, SensorThickness: p.SensorThickness,
		Goniometer: map[string]stream.Axis{"omega": {Start: s.OmegaStart, Increment: s.OmegaIncrement}},
		ArmDate:    s.ArmTime.UTC(),
	}
	excluded := p.GapPixels() + gen.MaskedPixels()
	if version == 1 {
		h.Config = s.Config
		h.Config["number_of_excluded_pixels"] = excluded
		h.Config["data_collection_date"] = s.ArmTime.Format("2006-01-02T15:04:05.000000")
		h.Config["frame_count_time"] = s.CountTime
		h.Config["frame_period"] = s.FrameTime
		h.ArmDate = time.Time{}
	} else {
		h.UniqueID = fmt.Sprintf("%s-%d-%d", s.DetectorNumber, s.ArmTime.Unix(), s.ID)
		h.Channels = []string{"threshold_1"}
		h.ChannelThresholds = map[string]float64{"threshold_1": s.ThresholdEnergy}
		h.Config = map[string]any{
			"countrate_correction_enabled":        true,
			"flatfield_enabled":                   true,
			"pixel_mask_enabled":                  true,
			"virtual_pixel_interpolation_enabled": false,
			"detector_translation":                []any{0.0, 0.0, -s.DetectorDistance},
		}
	}
	h.Appendix = d.headerAppendix(s.Stream.HeaderAppendix, gen.Config().Raster)
	if s.Stream.HeaderDetail == "all" {
		n := gen.Width() * gen.Height()
		channel := ""
		if version == 2 {
			channel = "threshold_1"
		}
		flat := make([]float32, n)
		for i := range flat {
			flat[i] = 1
		}
		mask := make([]uint32, n)
		if err := gen.PixelMask(mask); err != nil {
			return nil, err
		}
		h.Flatfield = []stream.Table{{Channel: channel, Width: gen.Width(), Height: gen.Height(), Float32: flat}}
		h.PixelMask = []stream.Table{{Channel: channel, Width: gen.Width(), Height: gen.Height(), Uint32: mask}}
		h.CountRateTable = countRateTable()
	}
	return h, nil
}

// headerAppendix is the header appendix (V1) / user_data (V2): the
// client's header_appendix verbatim, and for a raster the grid geometry
// under "raster" in the spelling the server reads (driver/raster's
// GeometryFrom), so a simulated raster gets its heat map without the
// geometry set by hand, as at a beamline whose control system puts it
// there. A client appendix that is a JSON object gets the "raster" key
// added (its own geometry, if it has one, wins); one that is not an
// object is sent verbatim, without the geometry (logged).
func (d *Detector) headerAppendix(client string, r *diffraction.Raster) stream.UserData {
	if r == nil {
		if client == "" {
			return stream.UserData{}
		}
		return stream.UserData{Raw: []byte(client)}
	}
	geometry := map[string]any{"lines": r.Lines, "frames_per_line": r.FramesPerLine, "serpentine": r.Serpentine}
	if client == "" {
		return stream.UserData{Value: map[string]any{"raster": geometry}}
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(client), &obj); err != nil || obj == nil {
		d.log.Warn().Msg("header appendix is not a JSON object: sent verbatim, without the raster geometry")
		return stream.UserData{Raw: []byte(client)}
	}
	if _, found, _ := raster.GeometryFrom(obj); found {
		return stream.UserData{Raw: []byte(client)}
	}
	if _, taken := obj["raster"]; taken {
		d.log.Warn().Msg(`header appendix has a "raster" key without a geometry: sent verbatim, without the raster geometry`)
		return stream.UserData{Raw: []byte(client)}
	}
	obj["raster"] = geometry
	return stream.UserData{Value: obj}
}

// countRateTable is a paralysable-detector count-rate correction table
// (true rate vs measured rate, dead time 382 ns like an EIGER X) of the
// [2, 1000] shape the detector sends.
func countRateTable() *stream.Table {
	const n, tau = 1000, 382e-9
	t := &stream.Table{Width: 2, Height: n, Float32: make([]float32, 2*n)}
	for i := 0; i < n; i++ {
		trueRate := float64(i) * 2e3 // counts/s
		t.Float32[2*i] = float32(trueRate)
		t.Float32[2*i+1] = float32(trueRate * math.Exp(-trueRate*tau))
	}
	return t
}

func (b *backend) state(id int) (*seriesState, error) {
	d := (*Detector)(b)
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.series[id]
	if st == nil {
		return nil, fmt.Errorf("series %d was not armed", id)
	}
	return st, nil
}

func (b *backend) Acquire(ctx context.Context, s *simplon.Series, first, n int) error {
	st, err := b.state(s.ID)
	if err != nil {
		return err
	}
	if !st.enabled {
		return nil
	}
	return st.st.Frames(ctx, st.ss, first, n)
}

func (b *backend) End(s *simplon.Series) error {
	d := (*Detector)(b)
	st, err := b.state(s.ID)
	if err != nil {
		return err
	}
	if st.enabled {
		err = st.st.End(st.ss)
	}
	if st.truthW != nil {
		err = errors.Join(err, st.truthErr, st.truthW.Flush(), st.truthFile.Close())
	}
	close(d.endedChan(s.ID))
	d.log.Info().Int("series", s.ID).Msg("series ended")
	return err
}

func (b *backend) Dropped() uint64 { return (*Detector)(b).Dropped() }
