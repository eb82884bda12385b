// Package dcu keeps the detector devices (/P14/detector/<model>) in step
// with the detector: the series header says which detector is streaming,
// in which readout mode, and where the beam is; the detector control unit's
// SIMPLON REST status, when an address is configured, says its state,
// temperature, humidity and the frames its stream dropped; and the devices'
// commands (initialize, detector-mode) go back to it.
//
// Without a SIMPLON address the state is inferred from the stream (ready
// when a series is armed, acquire while frames flow, idle after the end),
// and the commands answer that no detector control unit is configured.
package dcu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/rs/zerolog"

	"tioga/device/contract"
	"tioga/device/detectormodel"
	"tioga/driver/pipeline"
	"tioga/driver/simplon"
	"tioga/driver/stream"
	"tioga/properties"
)

// Config configures the link.
type Config struct {
	// URL of the DCU's SIMPLON API, e.g. "http://10.0.0.5"; "" = none.
	URL     string
	Version string // API version in the path; "" = 1.8.0
	// PollInterval is how often the status is read (default 2 s).
	PollInterval time.Duration
	// Timeout bounds each REST request (default 2 s).
	Timeout time.Duration
	// Detector names the device of the detector that streams to this
	// server ("eiger16m"); "" picks it from the frame size of each series.
	Detector string
	// Logger is the process's logger; the link adds its component field.
	// The zero value logs nothing.
	Logger zerolog.Logger
}

// Link follows one detector.
type Link struct {
	cfg    Config
	dev    *contract.Devices
	client *simplon.Client
	log    zerolog.Logger

	mu      sync.Mutex
	active  *contract.Detector
	dropped int // frames lost in the stream, summed over series
	dcuDrop int // the DCU's own dropped counter
}

// New builds the link, installs the detector devices' command hooks and,
// with a SIMPLON address, schedules the status poll on sched.
func New(cfg Config, dev *contract.Devices, sched gocron.Scheduler) (*Link, error) {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	l := &Link{cfg: cfg, dev: dev, log: cfg.Logger.With().Str("component", "dcu").Logger()}
	if cfg.Detector != "" {
		d, ok := dev.Detector(cfg.Detector)
		if !ok {
			return nil, fmt.Errorf("detector %q: no such detector device (devices: %s)", cfg.Detector, names(dev))
		}
		l.setActive(d)
	}
	if cfg.URL == "" {
		for _, d := range dev.Detectors {
			d.Temperature.SetQuality(properties.NoValueYet(errNoDCU.Error()))
			d.Humidity.SetQuality(properties.NoValueYet(errNoDCU.Error()))
		}
	}
	if cfg.URL != "" {
		c, err := simplon.New(cfg.URL, cfg.Version, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		l.client = c
		if sched != nil {
			if _, err := sched.NewJob(gocron.DurationJob(cfg.PollInterval), gocron.NewTask(l.Poll),
				gocron.WithSingletonMode(gocron.LimitModeReschedule), gocron.WithName("detector status"),
				gocron.WithStartAt(gocron.WithStartImmediately())); err != nil {
				return nil, err
			}
		}
	}
	for _, d := range dev.Detectors {
		d := d
		d.Initialize.OnWrite(func(ctx context.Context, _ properties.Value) error { return l.initialize(ctx, d) })
		d.DetectorMode.OnWrite(func(ctx context.Context, v properties.Value) error { return l.setMode(ctx, d, v.Text) })
	}
	return l, nil
}

func names(dev *contract.Devices) string {
	var n []string
	for _, d := range dev.Detectors {
		n = append(n, d.Profile.Name)
	}
	return strings.Join(n, ", ")
}

func (l *Link) setActive(d *contract.Detector) {
	l.mu.Lock()
	l.active = d
	l.mu.Unlock()
	for _, x := range l.dev.Detectors {
		x.Active.SetBool(x == d)
	}
}

// Active returns the detector device that streams, if known.
func (l *Link) Active() *contract.Detector {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

// SeriesStarted (pipeline.SeriesObserver) publishes the header's facts on
// the streaming detector's device.
func (l *Link) SeriesStarted(s *stream.Series, width, height int) {
	d := l.Active()
	if l.cfg.Detector == "" {
		if prof, ok := detectormodel.BySize(width, height); ok {
			if x, ok := l.dev.Detector(prof.Name); ok {
				d = x
				l.setActive(x)
				if err := x.SetMode(prof.FullModeName); err != nil {
					l.log.Warn().Err(err).Msg("readout mode of the stream")
				}
			}
		}
	}
	if d == nil {
		l.log.Warn().Int("width", width).Int("height", height).Msg("no detector device matches the stream's frame size")
		return
	}
	px := s.PixelSizeX
	if px == 0 {
		px = d.Profile.PixelSize
	}
	_ = d.BeamXY.Set(properties.Float64s([]float64{s.BeamCenterX * px * 1000, s.BeamCenterY * px * 1000}))
	if s.SerialNumber != "" {
		d.Serial.SetText(s.SerialNumber)
	}
	if l.client == nil {
		d.Status.SetText("acquire")
	}
}

// SeriesEnded (pipeline.SeriesObserver) adds the series' lost frames to
// count-dropped.
func (l *Link) SeriesEnded(sum pipeline.Summary) {
	d := l.Active()
	if d == nil {
		return
	}
	l.mu.Lock()
	l.dropped += sum.Dropped
	total := l.droppedLocked()
	l.mu.Unlock()
	d.CountDropped.SetInt32(int32(min(total, math.MaxInt32)))
	if l.client == nil {
		d.Status.SetText("idle")
	}
}

// Poll reads the DCU's status once into the active detector's device. It is
// the scheduler's job (ctx: cancelled at shutdown), and initialize calls it
// with the request's context; each request is also bounded by the
// configured timeout.
func (l *Link) Poll(ctx context.Context) {
	d := l.Active()
	if l.client == nil || d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	st, err := l.client.Status(ctx)
	// One batch per poll: a client sees the state and the environment of
	// the same reading.
	properties.Batch(func() {
		if err != nil {
			// The values SIMPLON gives keep their last reading, marked
			// bad with the reason, until it answers again.
			lost := properties.NoCommunication("detector control unit not answering: " + err.Error())
			d.Status.SetText("error")
			d.Temperature.SetQuality(lost)
			d.Humidity.SetQuality(lost)
			return
		}
		d.Status.SetText(st.State)
		setReading(d.Temperature, st.Temperature, "temperature")
		setReading(d.Humidity, st.Humidity, "humidity")
		l.mu.Lock()
		l.dcuDrop = st.Dropped
		total := l.droppedLocked()
		l.mu.Unlock()
		d.CountDropped.SetInt32(int32(min(total, math.MaxInt32)))
	})
	if err != nil {
		l.log.Warn().Err(err).Msg("detector status")
	}
}

// setReading publishes one number of the DCU's status (good), or when the
// status does not carry it (NaN), marks the last value bad saying so.
func setReading(p *properties.Property, v float64, what string) {
	if math.IsNaN(v) {
		p.SetQuality(properties.Quality{Level: properties.Bad, Reason: "the detector control unit's status does not report the " + what})
		return
	}
	p.SetFloat(v)
}

// droppedLocked is count-dropped: the frames the DCU says it dropped and
// the frames the stream found missing are the same frames seen from its two
// ends, so the count is the larger of the two, never their sum.
func (l *Link) droppedLocked() int { return max(l.dropped, l.dcuDrop) }

var errNoDCU = errors.New("no detector control unit (SIMPLON URL) is configured")

// initialize sends the initialize command and reads the status it leaves
// before answering. It takes as long as the DCU does (minutes on a real
// one): ctx is the client's request, whose deadline the client chose.
func (l *Link) initialize(ctx context.Context, d *contract.Detector) error {
	if l.client == nil {
		return errNoDCU
	}
	l.log.Info().Str("detector", d.Profile.Name).Msg("initialize")
	if _, err := l.client.Command(ctx, "initialize"); err != nil {
		return err
	}
	l.mu.Lock()
	l.dropped = 0
	l.mu.Unlock()
	l.Poll(ctx)
	return nil
}

// setMode validates a readout mode against the model, sends it to the DCU
// (roi_mode "disabled" for the full frame) and publishes its facts.
func (l *Link) setMode(ctx context.Context, d *contract.Detector, mode string) error {
	q, err := d.Profile.Mode(strings.TrimSpace(mode))
	if err != nil {
		return fmt.Errorf("%w: %v", properties.ErrOutOfRange, err)
	}
	if l.client != nil {
		roi := "disabled"
		if q.FullModeName != d.Profile.FullModeName {
			roi = q.FullModeName
		}
		ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
		defer cancel()
		if err := l.client.SetROIMode(ctx, roi); err != nil {
			return err
		}
	}
	return d.SetMode(q.FullModeName)
}
