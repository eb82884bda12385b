// Command eiger-sim is a simulated DECTRIS EIGER detector: the SIMPLON REST
// API with the detector's state machine, Stream V1 and V2 on ZeroMQ PUSH
// sockets, synthetic diffraction frames (serial crystallography or a raster
// scan over one crystal) and their ground truth as JSON lines. Run
// `eiger-sim -h` for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"

	"tioga/device/detectormodel"
	"tioga/sim"
	"tioga/sim/adxv"
	"tioga/sim/diffraction"
	"tioga/sim/streamer"
	"tioga/sim/truth"
)

const usage = `eiger-sim: a simulated DECTRIS EIGER detector (SIMPLON REST + Stream V1/V2 + synthetic diffraction).

Usage:
  eiger-sim [flags]                    serve: wait for a client to configure, arm and trigger over REST
  eiger-sim --arm-and-trigger [flags]  run one series at once (no REST client needed), then exit

The REST API is SIMPLON's subset of shared/docs/eiger-stream.md (API 1.8.0 and
1.6.0): detector/api/<v>/{config,status,command}/<key>, stream/api/<v>/{config,
status}/<key>. Stream V1 ("legacy") is pushed on --v1, Stream V2 ("cbor") on
--v2; the stream/api format key (initially --format) picks one per series.
A receiver must connect before arm: the header is sent at arm time (the
simulator waits for the first receiver to connect).

Examples:
  # A 37 x 213 serpentine raster over a 4M, Stream V1 bslz4, at the detector's pace:
  eiger-sim --profile eiger4m --raster 37x213 --arm-and-trigger --truth /tmp/truth.jsonl

  # Serial crystallography on a 16M in 4M ROI mode, Stream V2, 30 % hits, as fast as possible:
  eiger-sim --profile eiger16m --roi 4M --format cbor --nimages 1000 --hit-fraction 0.3 --rate -1 --arm-and-trigger

  # Serve SIMPLON on port 8080 for a control system; frames on the standard ports:
  eiger-sim --profile eiger9m --rest :8080

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type options struct {
	profile, roi, format, compression, headerDetail string
	headerAppendix, imageAppendix                   string
	bitDepth, nimages, ntrigger                     int
	raster                                          string
	serpentine                                      bool
	frameTime                                       float64
	beamX, beamY, distance, wavelength              float64
	seed                                            uint64
	hitFraction, spots, dcut, wilsonB               float64
	intensity, background, waterRing                float64
	beamstop                                        float64
	pool, reuse, workers                            int
	headerless                                      bool
	rate                                            float64
	dropAfter, drainTimeout                         time.Duration
	rest, v1, v2, adxvAddr, truthPath               string
	armAndTrigger, quiet                            bool
	logLevel                                        string
}

func run(args []string, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("eiger-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var models []string
	for _, p := range detectormodel.Profiles() {
		models = append(models, p.Name)
	}
	fs.StringVar(&o.profile, "profile", "eiger4m", "detector model: "+strings.Join(models, ", "))
	fs.StringVar(&o.roi, "roi", "disabled", "ROI mode (e.g. 4M on an eiger9m/eiger16m), or disabled")
	fs.StringVar(&o.format, "format", "legacy", "stream format: legacy (Stream V1) or cbor (Stream V2)")
	fs.StringVar(&o.compression, "compression", "bslz4", "pixel encoding: bslz4, lz4 or none")
	fs.BoolVar(&o.headerless, "headerless", false, "send V1 bslz4 without its 12-byte header (as some simulators do)")
	fs.StringVar(&o.headerDetail, "header-detail", "basic", "series header detail: all (with flatfield, mask, count-rate table), basic or none")
	fs.StringVar(&o.headerAppendix, "header-appendix", "", "header appendix passed through verbatim")
	fs.StringVar(&o.imageAppendix, "image-appendix", "", "image appendix passed through verbatim")
	fs.IntVar(&o.bitDepth, "bit-depth", 16, "bits per pixel: 8, 16 or 32")
	fs.IntVar(&o.nimages, "nimages", 100, "images per trigger (a raster sets lines x frames)")
	fs.IntVar(&o.ntrigger, "ntrigger", 1, "triggers per series")
	fs.StringVar(&o.raster, "raster", "", "raster scan LINESxFRAMES (e.g. 37x213): the crystal occupies an ellipse of the grid")
	fs.BoolVar(&o.serpentine, "serpentine", true, "raster: odd lines run backwards")
	fs.Float64Var(&o.frameTime, "frame-time", 0, "frame time in s (default: 1.34 ms for a raster, else the mode's maximum rate)")
	fs.Float64Var(&o.beamX, "beam-x", 0, "beam centre x in pixels (default: near the centre, off the gaps)")
	fs.Float64Var(&o.beamY, "beam-y", 0, "beam centre y in pixels")
	fs.Float64Var(&o.distance, "distance", 0, "detector distance in m (default: the resolution cut-off at 0.9 of the inscribed circle)")
	fs.Float64Var(&o.wavelength, "wavelength", 1.0, "wavelength in Å")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed gives the same crystal, frames and truth")
	fs.Float64Var(&o.hitFraction, "hit-fraction", 0.3, "fraction of hit frames (serial mode)")
	fs.Float64Var(&o.spots, "spots", 100, "mean Bragg spots per hit")
	fs.Float64Var(&o.dcut, "dcut", 2.5, "resolution cut-off in Å: no spot beyond it")
	fs.Float64Var(&o.wilsonB, "wilson-b", 20, "Wilson B factor in Å²")
	fs.Float64Var(&o.intensity, "spot-intensity", 1000, "mean photons of a low-resolution spot")
	fs.Float64Var(&o.background, "background", 1.0, "mean background counts per pixel at low resolution")
	fs.Float64Var(&o.waterRing, "water-ring", 0.6, "water ring at 3.7 Å, peak relative to the background (0 = off)")
	fs.Float64Var(&o.beamstop, "beamstop", 30, "beamstop shadow radius in pixels (0 = none)")
	fs.IntVar(&o.pool, "pool", 0, "build the background from K pre-sampled frames (fast; 0 = fresh Poisson per frame)")
	fs.IntVar(&o.reuse, "reuse", 0, "send only K pre-generated frames, cyclically (throughput runs)")
	fs.IntVar(&o.workers, "workers", 0, "frame generator workers (default: one per CPU)")
	fs.Float64Var(&o.rate, "rate", 0, "frames per second; 0 = the frame time, -1 = as fast as the receiver takes them")
	fs.DurationVar(&o.dropAfter, "drop-after", 0, "drop a frame the receiver does not take within this time (0 = wait)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "--arm-and-trigger: how long to wait at the end for a lagging receiver to take the queued frames and the end message")
	fs.StringVar(&o.rest, "rest", "127.0.0.1:8080", "SIMPLON REST listen address")
	fs.StringVar(&o.v1, "v1", streamer.DefaultV1Endpoint, "Stream V1 PUSH endpoint")
	fs.StringVar(&o.v2, "v2", streamer.DefaultV2Endpoint, "Stream V2 PUSH endpoint")
	fs.StringVar(&o.adxvAddr, "adxv", "", "also run a fake ADXV socket listener on this address (e.g. :8100) and log its commands")
	fs.StringVar(&o.truthPath, "truth", "", "write the ground truth as JSON lines here (%d = series id)")
	fs.BoolVar(&o.armAndTrigger, "arm-and-trigger", false, "run one series now, then exit")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "eiger-sim: unexpected arguments %q\n", fs.Args())
		return 2
	}
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "eiger-sim: %v\n", err)
		return 2
	}
	// Colours only for the real terminal; logs captured to a file or a
	// buffer stay plain text.
	noColor := stderr != io.Writer(os.Stderr)
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice == 0 {
		noColor = true
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05.000", NoColor: noColor}).Level(level).With().Timestamp().Logger()
	if err := serve(o, log, stderr); err != nil {
		log.Error().Err(err).Msg("eiger-sim failed")
		return 1
	}
	return 0
}

func serve(o options, log zerolog.Logger, stderr io.Writer) error {
	prof, ok := detectormodel.ByName(o.profile)
	if !ok {
		return fmt.Errorf("unknown detector profile %q", o.profile)
	}
	mode, err := prof.Mode(o.roi)
	if err != nil {
		return err
	}
	sample := diffraction.DefaultConfig(mode)
	sample.Seed = o.seed
	sample.HitFraction = o.hitFraction
	sample.MeanSpots = o.spots
	sample.DCut = o.dcut
	sample.WilsonB = o.wilsonB
	sample.SpotIntensity = o.intensity
	sample.Background = o.background
	sample.WaterRing = o.waterRing
	sample.Beamstop.Radius = o.beamstop
	if o.beamstop == 0 {
		sample.Beamstop.ArmWidth = 0
	}
	sample.BackgroundPool = o.pool
	nimages, frameTime := o.nimages, o.frameTime
	if o.raster != "" {
		lines, perLine, err := parseRaster(o.raster)
		if err != nil {
			return err
		}
		r := diffraction.DefaultRaster()
		// Keep the crystal where DefaultRaster puts it on the 37 x 213 grid,
		// scaled to this grid.
		sx, sy := float64(perLine)/213, float64(lines)/37
		r.CenterColumn, r.RadiusColumns = r.CenterColumn*sx, r.RadiusColumns*sx
		r.CenterLine, r.RadiusLines = r.CenterLine*sy, r.RadiusLines*sy
		r.Lines, r.FramesPerLine, r.Serpentine = lines, perLine, o.serpentine
		sample.Raster = &r
		nimages = lines * perLine / o.ntrigger
		if nimages*o.ntrigger != lines*perLine {
			return fmt.Errorf("raster of %d frames does not split into %d triggers", lines*perLine, o.ntrigger)
		}
		if frameTime == 0 {
			frameTime = 0.00134
		}
	}

	// The progress counts frames and hits for the summary; it draws a bar
	// only when not quiet.
	bar := &progress{out: stderr, quiet: o.quiet}
	cfg := sim.Config{
		Profile: prof, ROIMode: o.roi, Format: o.format, Compression: o.compression,
		HeaderDetail: o.headerDetail, HeaderAppendix: o.headerAppendix, ImageAppendix: o.imageAppendix,
		BitDepth: o.bitDepth, NImages: nimages, NTrigger: o.ntrigger, FrameTime: frameTime,
		BeamX: o.beamX, BeamY: o.beamY, Distance: o.distance, Wavelength: o.wavelength,
		Sample: &sample, Headerless: o.headerless,
		Stream:   streamer.Options{Workers: o.workers, FPS: o.rate, Reuse: o.reuse, DropAfter: o.dropAfter, Logger: log},
		RESTAddr: o.rest, V1Endpoint: o.v1, V2Endpoint: o.v2, TruthPath: o.truthPath,
		Logger: log,
	}
	var d *sim.Detector
	cfg.OnFrame = func(series int, t *truth.Frame, dropped bool) { bar.frame(d, series, t) }
	d, err = sim.Start(cfg)
	if err != nil {
		return err
	}
	defer d.Close()

	if o.adxvAddr != "" {
		l, err := adxv.Listen(o.adxvAddr)
		if err != nil {
			return err
		}
		defer l.Close()
		go logADXV(l, log)
		log.Info().Str("addr", l.Addr()).Msg("fake ADXV listening")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// On a signal, sends that wait for a receiver give up: a detector
	// blocked on a message nobody takes (no receiver connected, or one that
	// stopped reading) must still stop. A series running is aborted
	// (RunSeries), its end message sent if ZeroMQ can still queue it.
	stopInterrupt := context.AfterFunc(ctx, func() {
		log.Warn().Msg("signal received: stopping; sends waiting for a receiver give up")
		d.Interrupt()
	})
	defer stopInterrupt() // runs before stop(): a normal exit is no signal
	v1, v2 := d.StreamEndpoints()
	log.Info().Str("rest", d.RESTURL()).Str("v1", v1).Str("v2", v2).Msg("ready")
	if !o.armAndTrigger {
		<-ctx.Done()
		log.Info().Msg("shutting down")
		return nil
	}
	start := time.Now()
	id, err := d.RunSeries(ctx)
	bar.finish()
	if err != nil {
		if ctx.Err() != nil {
			// Say what the stop discarded of a series under way.
			var u *streamer.Undelivered
			if derr := d.Drain(context.Background(), 0); errors.As(derr, &u) {
				log.Warn().Int("series", id).Int("frames_discarded", u.Frames).Bool("exact", u.Exact).Bool("end_discarded", u.End).Msg(u.Error())
			}
			return fmt.Errorf("interrupted by a signal: %w", err)
		}
		return err
	}
	n, hits := bar.counts()
	elapsed := time.Since(start)
	// The series is sent when ZeroMQ has queued it, not when the receiver
	// has it: wait for a lagging receiver to take the rest (closing at
	// once would discard the last frames and the end message).
	log.Info().Int("series", id).Dur("timeout", o.drainTimeout).Msg("draining: waiting for the receiver to take the queued frames and the end message")
	if err := d.Drain(ctx, o.drainTimeout); err != nil {
		var u *streamer.Undelivered
		if errors.As(err, &u) {
			log.Error().Int("series", id).Int("frames_sent", n).Int("frames_discarded", u.Frames).Bool("exact", u.Exact).
				Bool("end_discarded", u.End).Msg(u.Error())
			return fmt.Errorf("series %d not fully delivered", id)
		}
		return err
	}
	log.Info().Int("series", id).Int("frames", n).Int("hits", hits).Dur("elapsed", elapsed).
		Float64("frames_per_s", float64(n)/elapsed.Seconds()).Uint64("dropped", d.Dropped()).Dur("drained", time.Since(start)-elapsed).Msg("series done")
	return nil
}

func parseRaster(s string) (lines, perLine int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		lines, err = strconv.Atoi(a)
		if err == nil {
			perLine, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || lines <= 0 || perLine <= 0 {
		return 0, 0, fmt.Errorf("--raster %q: want LINESxFRAMES, e.g. 37x213", s)
	}
	return lines, perLine, nil
}

func logADXV(l *adxv.Listener, log zerolog.Logger) {
	seen := 0
	for {
		err := l.WaitFor(context.Background(), func(c []adxv.Command) bool { return len(c) > seen })
		if err != nil {
			return
		}
		cmds := l.Commands()
		for _, c := range cmds[seen:] {
			log.Info().Int("conn", c.Conn).Str("line", c.Line).Msg("adxv")
		}
		seen = len(cmds)
	}
}

// progress draws one progress bar per series on stderr.
type progress struct {
	out    io.Writer
	quiet  bool
	mu     sync.Mutex
	bar    *progressbar.ProgressBar
	series int
	n      int
	hits   int
}

func (p *progress) frame(d *sim.Detector, series int, t *truth.Frame) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if series != p.series {
		p.series, p.n, p.hits = series, 0, 0
		if p.bar != nil {
			p.bar.Finish()
			p.bar = nil
		}
		if !p.quiet {
			p.bar = p.newBar(d, series)
		}
	}
	p.n++
	if t.Hit {
		p.hits++
	}
	if p.bar != nil {
		p.bar.Add(1)
	}
}

// newBar sizes the bar from the armed configuration (nimages x ntrigger);
// the configuration cannot change while a series runs.
func (p *progress) newBar(d *sim.Detector, series int) *progressbar.ProgressBar {
	total := -1
	ni, _ := d.Server().Value("detector", "nimages")
	nt, _ := d.Server().Value("detector", "ntrigger")
	if a, ok := ni.(int64); ok {
		if b, ok := nt.(int64); ok {
			total = int(a * b)
		}
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.out),
		progressbar.OptionSetDescription(fmt.Sprintf("series %d", series)),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("frames"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
	}
}

func (p *progress) counts() (frames, hits int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.hits
}
