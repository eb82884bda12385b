// Package pipeline is the server's assembly line: stream messages in,
// per-frame work across N workers (decode, analyse, write), results out in
// frame order, published as device properties.
//
//	receiver ──▶ dispatcher ──▶ bounded queue ──▶ N workers ──▶ committer
//	(messages)   (series        (QueueDepth       decode         (arrival order:
//	              lifecycle)     frames)          analyse        store, files,
//	                                              write file     statistics, grid,
//	                                                             tracker)
//	                          gocron, every ExportPeriod: batches ──▶ properties
//
// Back-pressure is explicit: when the queue is full the dispatcher waits (so
// the receiver stops reading, libzmq's high-water mark fills, and finally
// the detector's own buffer), counts it and says so in queue-state; memory
// never grows without bound. A frame accepted into the queue is always
// committed, also when it cannot be decoded (then with zero results and a
// counter), so clients waiting for N records are never left hanging.
//
// Frames are committed in the order they arrived, which is frame order for
// a detector's PUSH socket; committing by arrival (not by frame number)
// means a frame lost upstream never stalls the ones behind it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/rs/zerolog"

	"tioga/device/contract"
	"tioga/driver/analysis"
	"tioga/driver/cbf"
	"tioga/driver/raster"
	"tioga/driver/results"
	"tioga/driver/stream"
	"tioga/driver/writer"
)

// Config tunes the pipeline. Zero values take the documented defaults.
type Config struct {
	// Workers is the number of frame workers (default: one per core).
	Workers int
	// QueueDepth bounds the frames waiting for a worker (default 4 per
	// worker). With EIGER 4M frames of about 1 MB compressed this is a few
	// MB: the queue only smooths jitter, the detector buffers bursts.
	QueueDepth int
	// ExportPeriod is how often results are published (default 300 ms, the
	// period clients expect dozor-pass batches at).
	ExportPeriod time.Duration
	// ResultsLimit is the number of frames per series whose results are kept
	// in memory (default 1,000,000).
	ResultsLimit int
	// SpotRingFrames and SpotRingSpots bound the recent spot lists kept for
	// the frame-spots property (defaults 1000 frames, 200,000 spots).
	SpotRingFrames, SpotRingSpots int

	// Geometry fallbacks for headers that lack them (V2 has no distance;
	// some V1 headers send 0): used when the header's value is 0.
	DefaultDistance   float64 // m
	DefaultBeamX      float64 // px
	DefaultBeamY      float64 // px
	DefaultWavelength float64 // Å

	// Channel is the V2 channel to score ("" = the receiver's choice).
	Channel string

	// Writer is the initial writer configuration; writer-* properties
	// change it from the next series. WriterEnabled false runs analysis
	// only.
	Writer        writer.Config
	WriterEnabled bool

	// Analysis holds the initial analysis parameters (published as
	// properties, which change them at once).
	Analysis analysis.Params

	// Scan is the initial raster geometry (the scan device's properties);
	// a geometry in the series header takes precedence.
	Scan raster.Grid

	// AccumulateSSX keeps SSX statistics across series until ssx-reset;
	// by default each series starts them afresh.
	AccumulateSSX bool

	// HeatMap writes <prefix>_<run>_heatmap.png beside the images at the
	// end of a raster series (default on; see DisableHeatMap).
	DisableHeatMap bool

	// Logger is the process's logger; the pipeline adds its component
	// field. The zero value logs nothing.
	Logger zerolog.Logger
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.QueueDepth <= 0 {
		c.QueueDepth = 4 * c.Workers
	}
	if c.ExportPeriod <= 0 {
		c.ExportPeriod = 300 * time.Millisecond
	}
	if c.ResultsLimit <= 0 {
		c.ResultsLimit = contract.MaxFrames
	}
	if c.SpotRingFrames <= 0 {
		c.SpotRingFrames = 1000
	}
	if c.SpotRingSpots <= 0 {
		c.SpotRingSpots = 200_000
	}
	if c.Analysis == (analysis.Params{}) {
		c.Analysis = analysis.DefaultParams()
	}
}

// Receiver is what the pipeline needs of the stream receiver
// (*stream.Receiver) besides its messages: counters to publish and the
// abort command.
type Receiver interface {
	Stats() stream.Stats
	Abort()
}

// FrameSink hears of every frame that is on disk, in frame order (the image
// tracker). Calls must return at once.
type FrameSink interface {
	SeriesStarted(id uint64)
	FrameWritten(f WrittenFrame)
	SeriesEnded(id uint64)
}

// WrittenFrame is a frame on disk with its analysis.
type WrittenFrame struct {
	Series     uint64
	Index      int
	Path       string
	Score      float32
	Resolution float32
	Spots      int
	Hit        bool
	// SpotXY holds x, y pairs of the frame's spots (pixels); only valid
	// during the call: copy what you keep.
	SpotXY []float32
}

// SeriesObserver hears of series starting and ending (the detector devices).
type SeriesObserver interface {
	SeriesStarted(s *stream.Series, width, height int)
	SeriesEnded(sum Summary)
}

// Summary describes a finished series.
type Summary struct {
	SeriesID  uint64
	Expected  uint64
	Received  int
	Processed int
	Written   int
	Dropped   int // frames that never arrived (see frameBook)
	// BeyondNImages counts frames numbered at or beyond Expected: kept,
	// never counted as lost.
	BeyondNImages int
	BadFrames     int
	Hits          int
	EndReason     stream.EndReason
	Complete      bool
	Elapsed       time.Duration
	Template      string
	Results       string
	HitList       string
	Spots         string
	HeatMap       string
	WriteError    string
}

// Pipeline processes one stream.
type Pipeline struct {
	cfg   Config
	dev   *contract.Devices
	log   zerolog.Logger
	sched gocron.Scheduler

	receiver Receiver
	sink     FrameSink
	observer SeriesObserver

	queue chan *job
	done  chan *job
	// freeJobs holds finished jobs for reuse, with their spot buffers: a
	// channel rather than a sync.Pool, which a garbage collection empties
	// (and the jobs' buffers would then grow again frame by frame). At
	// most cap(freeJobs) jobs are ever made (jobsMade, dispatcher only):
	// with all of them in flight the dispatcher waits for one, as for a
	// full queue. Jobs in flight are those of the queue, the workers and
	// done, and those the committer holds until the frames before them
	// are committed, which nothing else bounds: while a worker is
	// descheduled in the middle of a frame the others go on. Before, a
	// job beyond 2*(queue+workers)+1 was left to the collector and a new
	// one made with empty buffers: on a loaded 2-core machine 14 jobs in
	// 400 frames, 30-60 allocations with their buffers' growth.
	freeJobs chan *job
	jobsMade int

	// queueFull is the queue-state text under back-pressure, set once per
	// episode (queueFullShown) rather than for every frame that waits.
	queueFull      string
	queueFullShown atomic.Bool

	// settings changed by properties, applied as documented
	mu            sync.Mutex
	params        analysis.Params
	writerCfg     writer.Config
	writerEnabled bool
	grid          raster.Grid
	gridFromProp  bool

	cur    atomic.Pointer[series] // the open series, nil when none
	recent atomic.Pointer[series] // the open or last series (for queries)
	ssx    results.SSX
	hot    *analysis.HotMap // persists across series (hot-pixels-reset)
	// tableCache lets a series like the previous one start with its
	// analysis tables instead of rebuilding them (tablecache.go).
	tableCache tableCache

	// exportMu serialises the periodic export with the end-of-series export,
	// so that the final full array follows the last batch.
	exportMu sync.Mutex
	speed    *results.Speed

	timing stageTimes // of the open (or last) series

	backPressure atomic.Uint64
	incomplete   atomic.Uint64
	lastSummary  atomic.Pointer[Summary]

	spotScratch       []writer.Spot // committer only
	distanceSource    string        // dispatcher only: where the series' distance came from
	warnedDistance    bool          // dispatcher only: the configured-distance fallback was logged
	lastReceiverError string        // export only (under exportMu)
	errorsSince       atomic.Int64  // unix ns: receiver problems before it belong to an earlier series

	wg sync.WaitGroup
}

// New builds a pipeline that publishes into dev and schedules its periodic
// work on sched. receiver, sink and observer may be nil.
func New(cfg Config, dev *contract.Devices, sched gocron.Scheduler, receiver Receiver, sink FrameSink, observer SeriesObserver) (*Pipeline, error) {
	cfg.defaults()
	if err := cfg.Analysis.Validate(); err != nil {
		return nil, fmt.Errorf("analysis parameters: %w", err)
	}
	p := &Pipeline{
		cfg: cfg, dev: dev, log: cfg.Logger.With().Str("component", "pipeline").Logger(), sched: sched,
		receiver: receiver, sink: sink, observer: observer,
		queue:         make(chan *job, cfg.QueueDepth),
		done:          make(chan *job, cfg.QueueDepth+cfg.Workers),
		params:        cfg.Analysis,
		writerCfg:     cfg.Writer,
		writerEnabled: cfg.WriterEnabled,
		grid:          cfg.Scan,
		gridFromProp:  cfg.Scan.Valid(),
		speed:         results.NewSpeed(time.Second),
		hot:           analysis.NewHotMap(),
	}
	p.freeJobs = make(chan *job, maxJobs(cfg.QueueDepth, cfg.Workers))
	p.queueFull = fmt.Sprintf("full: %d frames queued, the receiver waits for the workers", cfg.QueueDepth)
	if err := p.bindProperties(); err != nil {
		return nil, err
	}
	s := dev.Stream
	s.Workers.SetInt32(int32(cfg.Workers))
	s.QueueCapacity.SetInt32(int32(cfg.QueueDepth))
	if sched != nil {
		_, err := sched.NewJob(gocron.DurationJob(cfg.ExportPeriod), gocron.NewTask(p.export),
			gocron.WithSingletonMode(gocron.LimitModeReschedule), gocron.WithName("result export"))
		if err != nil {
			return nil, fmt.Errorf("schedule result export: %w", err)
		}
		_, err = sched.NewJob(gocron.DurationJob(housekeepingPeriod), gocron.NewTask(p.housekeeping),
			gocron.WithSingletonMode(gocron.LimitModeReschedule), gocron.WithName("housekeeping"),
			gocron.WithStartAt(gocron.WithStartImmediately()))
		if err != nil {
			return nil, fmt.Errorf("schedule housekeeping: %w", err)
		}
	}
	return p, nil
}

// Run consumes messages until in is closed or ctx ends, then finishes the
// open series (every accepted frame is committed) and returns.
func (p *Pipeline) Run(ctx context.Context, in <-chan stream.Message) error {
	for i := 0; i < p.cfg.Workers; i++ {
		p.wg.Add(1)
		go p.worker(i)
	}
	commitDone := make(chan struct{})
	go func() { p.committer(); close(commitDone) }()

	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		case m, ok := <-in:
			if !ok {
				break loop
			}
			p.handle(ctx, m)
		}
	}
	if s := p.cur.Load(); s != nil {
		p.endSeries(s, &stream.End{SeriesID: s.id, Synthesized: true, Reason: stream.EndShutdown})
	}
	close(p.queue)
	p.wg.Wait()
	close(p.done)
	<-commitDone
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (p *Pipeline) handle(ctx context.Context, m stream.Message) {
	switch {
	case m.Series != nil:
		if s := p.cur.Load(); s != nil {
			// The receiver ends a superseded series itself; this is the
			// fallback for a source that does not.
			p.endSeries(s, &stream.End{SeriesID: s.id, Synthesized: true, Reason: stream.EndSuperseded})
		}
		p.startSeries(m.Series)
	case m.Image != nil:
		s := p.cur.Load()
		if s == nil || m.Image.SeriesID != s.id {
			p.log.Warn().Uint64("series", m.Image.SeriesID).Uint64("image", m.Image.Number).Msg("image outside an open series dropped")
			m.Image.Release()
			return
		}
		p.dispatch(ctx, s, m.Image)
	case m.End != nil:
		if s := p.cur.Load(); s != nil && s.id == m.End.SeriesID {
			p.endSeries(s, m.End)
		}
	}
}

// dispatch queues one image, waiting (and saying so) when the queue is full.
func (p *Pipeline) dispatch(ctx context.Context, s *series, img *stream.Image) {
	if !s.prepared {
		// The header did not say how big the frames are: the first frame does.
		p.prepare(s, img.Width, img.Height, img.ElemSize)
	}
	if s.dispatched == 0 {
		p.dev.Stream.Encoding.SetText(img.Encoding.String())
	}
	j := p.takeJob()
	*j = job{series: s, image: img, number: img.Number, seq: s.dispatched, spots: j.spots[:0], spotXY: j.spotXY[:0], iceRings: j.iceRings[:0], arrival: img.Arrival}
	if j.arrival.IsZero() {
		j.arrival = time.Now()
	}
	s.noteArrival(img.Number)
	s.dispatched++
	select {
	case p.queue <- j:
		return
	default:
	}
	p.noteBackPressure()
	select {
	case p.queue <- j:
	case <-ctx.Done():
		// Shutting down: still commit the frame so nothing accepted is lost.
		p.queue <- j
	}
}

// maxJobs is the number of jobs a pipeline makes: enough for the queue,
// the workers, done, the one being dispatched and the one being committed,
// and as many again for the frames the committer holds while an earlier
// one is still in a worker.
func maxJobs(queueDepth, workers int) int { return 4*(queueDepth+workers) + 2 }

// takeJob returns a free job, or a new one while fewer than
// cap(p.freeJobs) exist; with all in flight it waits for the committer to
// free one (back-pressure, as for a full queue: the workers cannot keep
// up). Jobs always come back: every dispatched frame is committed.
func (p *Pipeline) takeJob() *job {
	select {
	case j := <-p.freeJobs:
		return j
	default:
	}
	if p.jobsMade < cap(p.freeJobs) {
		p.jobsMade++
		return new(job)
	}
	p.noteBackPressure()
	return <-p.freeJobs
}

// noteBackPressure counts a frame that waits for the workers and says so
// (once per episode in queue-state, now and then in the log).
func (p *Pipeline) noteBackPressure() {
	n := p.backPressure.Add(1)
	if p.queueFullShown.CompareAndSwap(false, true) {
		p.dev.Stream.QueueState.SetText(p.queueFull)
	}
	if n == 1 || n%100 == 0 {
		p.log.Warn().Uint64("times", n).Int("queue", cap(p.queue)).Msg("frame queue full: workers cannot keep up, applying back-pressure to the stream")
	}
}

// LastSummary returns the summary of the last finished series.
func (p *Pipeline) LastSummary() (Summary, bool) {
	s := p.lastSummary.Load()
	if s == nil {
		return Summary{}, false
	}
	return *s, true
}

// cbfHeader maps a series header to the CBF header.
func cbfHeader(h *stream.Series, g analysis.Geometry, elemSize int) cbf.Header {
	om := h.Omega()
	t := h.ArmDate
	if t.IsZero() {
		t = h.Arrival
	}
	if t.IsZero() {
		t = time.Now()
	}
	return cbf.Header{
		Detector:        h.Description,
		Serial:          h.SerialNumber,
		PixelSizeX:      nonZero(h.PixelSizeX, g.PixelSize),
		PixelSizeY:      nonZero(h.PixelSizeY, g.PixelSize),
		Sensor:          h.SensorMaterial,
		SensorThickness: h.SensorThickness,
		ExposureTime:    h.CountTime,
		ExposurePeriod:  nonZero(h.FrameTime, h.CountTime),
		// The files hold signed 32-bit counts, clipped at MaxInt32: a
		// cut-off above it could never be reached.
		CountCutoff:    min(int64(h.Saturation(elemSize)), math.MaxInt32),
		Threshold:      h.ThresholdEnergy,
		Wavelength:     g.Wavelength,
		Distance:       g.Distance,
		BeamX:          g.BeamX + stream.PixelCentre, // back to the detector's convention, which dxtbx reads
		BeamY:          g.BeamY + stream.PixelCentre,
		StartAngle:     om.Start,
		AngleIncrement: om.Increment,
		Timestamp:      t,
	}
}

func nonZero(v, fallback float64) float64 {
	if v != 0 {
		return v
	}
	return fallback
}
