// Package tracker is the image tracker of control-contract.md: it learns
// which frames are on disk and how they scored, and keeps the ADXV viewer
// showing the best of them, so that the person at the beamline sees the
// strongest diffraction of a raster or serial experiment now instead of
// scrolling through thousands of mostly empty frames.
//
// # Data flow
//
// The pipeline calls FrameWritten once per frame after the writer reported
// it on disk (never before: the tracker must never show an unwritten
// file), from its result committer goroutine, in frame order, framed by
// SeriesStarted and SeriesEnded. FrameWritten only ranks the frame into a
// bounded top-N queue under a mutex that nobody holds across I/O: it costs
// tens of nanoseconds and never waits for the network.
//
// Every display period (a job on the process's gocron scheduler) the
// tracker looks at the best frame of the series; if it has not handed that
// frame to ADXV yet, it hands over a batch: `load_image <path>`, the spot
// overlay when spot-list is on, and `raise_window Image` as Config.Raise
// says. The ADXV client (tioga/driver/adxv) delivers it from its own
// goroutine, keeping only the newest batch while ADXV is away. The same
// job publishes the queue and queue-paths properties when they changed.
//
// # Behaviour of the device's properties
//
//   - load-state: tracking on or off. Writing true (clients do it at the
//     start of every collection) resumes tracking and forgets what was
//     shown, so the best frame is sent again at the next period even if it
//     was shown before: in between, the viewer may have been showing a
//     manual load or anything a person opened in it. It does not empty the
//     queue; a new series does (SeriesStarted), because load-state may be
//     written just before or just after the series starts. Writing false
//     stops tracking and withdraws a tracking batch not yet delivered.
//   - filter: only frames with score > 0 (hits) are shown, and only they
//     are published in queue and queue-paths.
//   - spot-list: the frame's spots are drawn (the define_type,
//     load_spots, points, end_of_pack lines). Every overlay is sent with its
//     image, an empty one too, so that no frame is drawn with another
//     frame's spots; when spot-list goes off, the next image is sent with
//     one empty overlay to clear the last drawn one.
//   - load: shows the given path at once (with the spots of that frame if
//     it is in the queue and spot-list is on, and raise_window Image unless
//     Config.Raise is RaiseNever) and switches tracking off: load-state
//     becomes false, as existing clients expect.
//   - adxv-host, adxv-port: where ADXV listens; changing them takes effect
//     at once and the best frame is sent to the new viewer.
//   - display-period: the job's period, changed at run time.
//   - queue-size: how many best frames are kept (and published).
//   - shown: the path of the last image ADXV took.
//
// # Status
//
// The status property takes the first of these that applies:
//
//   - unknown: the tracker was closed.
//   - error: the last attempt to reach ADXV failed. The client retries with
//     back-off (probing with empty connections when it has nothing to send)
//     and the status leaves error at the first success.
//   - busy: a load command is on its way to ADXV.
//   - disabled: load-state is false.
//   - tracking: a series is open (between SeriesStarted and SeriesEnded).
//   - ready: ADXV was reachable at the last contact.
//   - unknown: ADXV has not been contacted yet (New probes it at once).
//
// Counters (frames seen, queued, refused, shown; the client's deliveries,
// failures and reconnects) are in Stats.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/rs/zerolog"

	"tioga/device/contract"
	"tioga/driver/adxv"
	"tioga/properties"
)

// Frame is one frame on disk, as the pipeline reports it.
type Frame struct {
	Series     int64
	Index      int     // 0-based frame number in the series
	Path       string  // absolute path of the written image file
	Score      float32 // 0 for a blank frame; > 0 is a hit
	Resolution float32 // Å; 0 = none
	Spots      int     // number of spots found
	// SpotXY holds x,y pairs (pixels) of the frame's spots. The tracker
	// copies what it keeps (at most Config.MaxSpots spots) before
	// FrameWritten returns, so the caller may reuse the slice.
	SpotXY []float32
}

// Raise says when the tracker asks ADXV to bring its image window to the
// front (raise_window Image). Doing it at every new best frame would pull
// the window over whatever the user is doing several times a second.
type Raise int

// Raise policies.
const (
	// RaiseOnStart raises with a load command and with the first frame
	// shown of each series or after tracking is switched on again.
	RaiseOnStart Raise = iota
	// RaiseAlways raises with every image sent.
	RaiseAlways
	// RaiseNever never raises.
	RaiseNever
)

// Defaults of Config.
const (
	DefaultDisplayPeriod = 300 * time.Millisecond
	DefaultQueueSize     = 100
	DefaultMaxSpots      = 1000
)

// ErrClosed rejects property writes after Close.
var ErrClosed = errors.New("image tracker stopped")

// Config sets up a Tracker. Zero fields take the defaults.
type Config struct {
	// ADXV configures the viewer client; Host and Port are the initial
	// values of adxv-host and adxv-port. OnReport and Logger are the
	// tracker's own and are ignored here.
	ADXV adxv.Config
	// DisplayPeriod is the initial display-period (default 300 ms).
	DisplayPeriod time.Duration
	// QueueSize is the initial queue-size (default 100, at most
	// contract.MaxTrackerQueue).
	QueueSize int
	// MaxSpots bounds the spots kept per queued frame (default 1000): the
	// queue's memory is at most queue-size x MaxSpots x 8 bytes of spots.
	MaxSpots int
	Raise    Raise
	Logger   zerolog.Logger
}

// Stats counts what the tracker did since New.
type Stats struct {
	Frames    uint64 // frames reported by FrameWritten
	Queued    uint64 // frames that entered the queue
	Rejected  uint64 // frames refused: non-finite score or resolution, negative number or count, bad path
	Stale     uint64 // frames of a series older than the current one
	BadSpots  uint64 // frames kept without their malformed spot list
	Truncated uint64 // spot lists cut to MaxSpots
	Sent      uint64 // batches handed to the ADXV client (tracking and load)
	Shown     uint64 // images ADXV took (tracking and load)
	Loads     uint64 // load commands accepted
	Displays  uint64 // runs of the display job
	ADXV      adxv.Stats
}

// Tracker is the image tracker. Its methods are safe for concurrent use.
type Tracker struct {
	dev    *contract.Tracker
	sched  gocron.Scheduler
	client *adxv.Client
	cfg    Config
	log    zerolog.Logger
	bad    zerolog.Logger // sampled: refused frames can come in floods

	jobMu sync.Mutex
	job   gocron.Job

	// Frame side, guarded by mu: FrameWritten, SeriesStarted and the
	// display job's short copies.
	mu                                                      sync.Mutex
	q                                                       queue
	series                                                  int64
	haveSeries                                              bool
	frames, queued, rejected, stale, badSpots, truncatedCnt uint64

	// Status inputs.
	seriesOpen atomic.Bool
	loadState  atomic.Bool
	filter     atomic.Bool
	spotList   atomic.Bool
	manualBusy atomic.Bool
	reach      atomic.Int32 // adxv.Reach
	closedFlag atomic.Bool
	statusMu   sync.Mutex
	status     string

	sent, shownCnt, loads, displays atomic.Uint64

	// Display side, guarded by ctl: the display job, property hooks and
	// the client's reports. Lock order: ctl, then mu, then statusMu.
	ctl          sync.Mutex
	closed       bool
	shown        frameKey // the frame tracking handed to ADXV last
	shownValid   bool
	raisedFor    int64 // series whose first image was sent with raise_window
	raised       bool
	overlay      bool // ADXV may be drawing spots
	trackTicket  uint64
	manualTicket uint64
	published    bool
	pubVersion   uint64
	pubFilter    bool
	snap         []record
	xy           []float32
	differed     bool // reconcile saw properties differ from the settings
}

type frameKey struct {
	series int64
	frame  int
}

// New starts the tracker of the image-tracker device dev: it publishes the
// configuration's initial values (adxv-host, adxv-port, display-period,
// queue-size, and load-state true: the server exists to show frames),
// installs the property hooks, starts the ADXV client and registers the
// display job on sched (which the caller starts and shuts down).
func New(dev *contract.Tracker, sched gocron.Scheduler, cfg Config) (*Tracker, error) {
	if dev == nil || sched == nil {
		return nil, errors.New("tracker: device and scheduler are required")
	}
	if cfg.DisplayPeriod == 0 {
		cfg.DisplayPeriod = DefaultDisplayPeriod
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxSpots == 0 {
		cfg.MaxSpots = DefaultMaxSpots
	}
	switch {
	case cfg.DisplayPeriod < time.Millisecond || cfg.DisplayPeriod > time.Hour:
		return nil, fmt.Errorf("tracker: display period %v outside [1ms, 1h]", cfg.DisplayPeriod)
	case cfg.QueueSize < 1 || cfg.QueueSize > contract.MaxTrackerQueue:
		return nil, fmt.Errorf("tracker: queue size %d outside [1, %d]", cfg.QueueSize, contract.MaxTrackerQueue)
	case cfg.MaxSpots < 1 || cfg.MaxSpots > 1_000_000:
		return nil, fmt.Errorf("tracker: max spots %d outside [1, 1000000]", cfg.MaxSpots)
	case cfg.Raise < RaiseOnStart || cfg.Raise > RaiseNever:
		return nil, fmt.Errorf("tracker: unknown raise policy %d", cfg.Raise)
	}
	if cfg.ADXV.Host == "" {
		cfg.ADXV.Host = adxv.DefaultHost
	}
	if cfg.ADXV.Port == 0 {
		cfg.ADXV.Port = adxv.DefaultPort
	}
	if _, err := adxv.JoinHostPort(cfg.ADXV.Host, cfg.ADXV.Port); err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	log := cfg.Logger.With().Str("component", "tracker").Logger()
	t := &Tracker{
		dev:    dev,
		sched:  sched,
		cfg:    cfg,
		log:    log,
		bad:    log.Sample(&zerolog.BurstSampler{Burst: 3, Period: 10 * time.Second}),
		q:      newQueue(cfg.QueueSize),
		status: dev.Status.Value().Text,
	}
	t.loadState.Store(true)
	t.filter.Store(dev.Filter.Value().Bool())
	t.spotList.Store(dev.SpotList.Value().Bool())

	dev.ADXVHost.SetText(cfg.ADXV.Host)
	dev.ADXVPort.SetInt32(int32(cfg.ADXV.Port))
	dev.DisplayPeriod.SetFloat(cfg.DisplayPeriod.Seconds())
	dev.QueueSize.SetInt32(int32(cfg.QueueSize))
	dev.LoadState.SetBool(true)

	acfg := cfg.ADXV
	acfg.Logger = cfg.Logger
	acfg.OnReport = t.onReport
	client, err := adxv.New(acfg)
	if err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	t.client = client
	job, err := sched.NewJob(gocron.DurationJob(cfg.DisplayPeriod), gocron.NewTask(t.display), jobOptions()...)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("tracker: display job: %w", err)
	}
	t.job = job

	dev.LoadState.OnWrite(t.onLoadState)
	dev.Filter.OnWrite(t.onFilter)
	dev.SpotList.OnWrite(t.onSpotList)
	dev.Load.OnWrite(t.onLoad)
	dev.ADXVHost.OnWrite(t.onHost)
	dev.ADXVPort.OnWrite(t.onPort)
	dev.DisplayPeriod.OnWrite(t.onPeriod)
	dev.QueueSize.OnWrite(t.onQueueSize)
	t.updateStatus()
	log.Info().Str("adxv", client.Addr()).Dur("period", cfg.DisplayPeriod).Int("queue_size", cfg.QueueSize).
		Bool("keep_open", cfg.ADXV.KeepOpen).Msg("image tracker started")
	return t, nil
}

func jobOptions() []gocron.JobOption {
	return []gocron.JobOption{
		gocron.WithName("image-tracker display"),
		// A slow run (a big queue to publish) is skipped over, not stacked.
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
	}
}

// Run returns when ctx ends, after Close: the tracker works from New on
// (its display job and ADXV client), and Run gives it the lifecycle of the
// command's other components. The command ends ctx after the pipeline has
// handed over its last frame.
func (t *Tracker) Run(ctx context.Context) error {
	<-ctx.Done()
	return t.Close()
}

// Close stops the display job and the ADXV client; a batch not yet
// delivered is dropped. Property writes are refused afterwards.
func (t *Tracker) Close() error {
	t.ctl.Lock()
	if t.closed {
		t.ctl.Unlock()
		return nil
	}
	t.closed = true
	t.closedFlag.Store(true)
	t.ctl.Unlock()
	refuse := func(context.Context, properties.Value) error { return ErrClosed }
	for _, p := range []*properties.Property{t.dev.LoadState, t.dev.Filter, t.dev.SpotList, t.dev.Load,
		t.dev.ADXVHost, t.dev.ADXVPort, t.dev.DisplayPeriod, t.dev.QueueSize} {
		p.OnWrite(refuse)
	}
	t.jobMu.Lock()
	id := t.job.ID()
	t.jobMu.Unlock()
	err := t.sched.RemoveJob(id)
	if errors.Is(err, gocron.ErrJobNotFound) {
		err = nil // the scheduler was shut down first
	}
	t.client.Close()
	t.updateStatus()
	t.log.Info().Msg("image tracker stopped")
	return err
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	s := Stats{Frames: t.frames, Queued: t.queued, Rejected: t.rejected, Stale: t.stale,
		BadSpots: t.badSpots, Truncated: t.truncatedCnt}
	t.mu.Unlock()
	s.Sent, s.Shown, s.Loads, s.Displays = t.sent.Load(), t.shownCnt.Load(), t.loads.Load(), t.displays.Load()
	s.ADXV = t.client.Stats()
	return s
}

// SeriesStarted empties the queue for series id: the best frame of the
// previous series says nothing about this sample.
func (t *Tracker) SeriesStarted(id int64) {
	t.mu.Lock()
	t.q.reset()
	t.series, t.haveSeries = id, true
	t.mu.Unlock()
	t.seriesOpen.Store(true)
	t.updateStatus()
	t.log.Info().Int64("series", id).Msg("tracking series")
}

// SeriesEnded marks series id as complete. Its frames stay in the queue
// (the best of them stays on display) until the next series starts.
func (t *Tracker) SeriesEnded(id int64) {
	t.mu.Lock()
	current := t.haveSeries && id == t.series
	t.mu.Unlock()
	if current {
		t.seriesOpen.Store(false)
		t.updateStatus()
	}
}

// FrameWritten ranks a frame that is on disk. It never blocks on I/O: it
// takes the queue's mutex, which nobody holds across I/O, and returns.
// Frames of an older series than the current one are dropped (counted as
// stale); a frame of a newer series starts that series as SeriesStarted
// would, so a missed SeriesStarted costs nothing.
func (t *Tracker) FrameWritten(f Frame) {
	t.mu.Lock()
	t.frames++
	started := false
	if !t.haveSeries || f.Series != t.series {
		if t.haveSeries && f.Series < t.series {
			t.stale++
			t.mu.Unlock()
			t.bad.Warn().Int64("series", f.Series).Int("frame", f.Index).Msg("frame of an older series dropped")
			return
		}
		t.q.reset()
		t.series, t.haveSeries, started = f.Series, true, true
	}
	refused, spotsDropped := t.rank(&f)
	t.mu.Unlock()
	if refused != "" {
		t.bad.Warn().Int64("series", f.Series).Int("frame", f.Index).Str("path", f.Path).
			Float32("score", f.Score).Str("reason", refused).Msg("frame refused")
	}
	if spotsDropped {
		t.bad.Warn().Int64("series", f.Series).Int("frame", f.Index).Int("coords", len(f.SpotXY)).
			Msg("malformed spot list (odd length or non-finite coordinate): frame kept without spots")
	}
	if started {
		t.implicitStart(f.Series)
	}
}

// rank validates f and puts it in the queue if it is among the best (mu
// held). It returns why the frame was refused ("" if it was not) and
// whether its spot list had to be dropped.
func (t *Tracker) rank(f *Frame) (refused string, spotsDropped bool) {
	if reason := invalid(f); reason != "" {
		t.rejected++
		return reason, false
	}
	if !t.q.admits(f.Score, f.Index) {
		return "", false // the common case once the queue is full
	}
	if err := adxv.CheckPath(f.Path); err != nil {
		t.rejected++
		return err.Error(), false
	}
	xy := f.SpotXY
	if !spotsValid(xy) {
		t.badSpots++
		xy, spotsDropped = nil, true
	}
	if max := 2 * t.cfg.MaxSpots; len(xy) > max {
		t.truncatedCnt++
		xy = xy[:max]
	}
	t.q.insert(f.Series, f.Index, f.Score, f.Resolution, f.Spots, f.Path, xy)
	t.queued++
	return "", spotsDropped
}

func (t *Tracker) implicitStart(id int64) {
	t.seriesOpen.Store(true)
	t.updateStatus()
	t.log.Info().Int64("series", id).Msg("tracking series (started by its first frame)")
}

// invalid says why a frame's numbers are unusable, or "".
func invalid(f *Frame) string {
	switch {
	case !finite(f.Score):
		return "score is not a finite number"
	case !finite(f.Resolution) || f.Resolution < 0:
		return "resolution is not a finite number >= 0"
	case f.Index < 0:
		return "negative frame number"
	case f.Spots < 0:
		return "negative spot count"
	}
	return ""
}

// finite reports whether v is neither NaN nor infinite: its exponent bits
// are not all ones.
func finite(v float32) bool { return math.Float32bits(v)&0x7f800000 != 0x7f800000 }

func spotsValid(xy []float32) bool {
	if len(xy)%2 != 0 {
		return false
	}
	for _, v := range xy {
		if !finite(v) {
			return false
		}
	}
	return true
}

// display is the periodic job: hand the best frame to ADXV if it has not
// been, and publish the queue if it changed.
func (t *Tracker) display() {
	t.ctl.Lock()
	defer t.ctl.Unlock()
	if t.closed {
		return
	}
	defer t.displays.Add(1)
	t.reconcile()
	filter := t.filter.Load()
	var (
		key     frameKey
		path    string
		show    bool
		publish bool
	)
	t.mu.Lock()
	if t.loadState.Load() && t.q.best >= 0 {
		e := &t.q.slots[t.q.best]
		key = frameKey{e.series, e.frame}
		if (!filter || e.score > 0) && !(t.shownValid && t.shown == key) {
			path, show = e.path, true
			t.xy = append(t.xy[:0], e.xy...)
		}
	}
	if !t.published || t.q.version != t.pubVersion || filter != t.pubFilter {
		t.snap = t.q.appendRecords(t.snap[:0], filter)
		t.published, t.pubVersion, t.pubFilter, publish = true, t.q.version, filter, true
	}
	t.mu.Unlock()
	if show {
		t.show(key, path)
	}
	if publish {
		t.publishQueue()
	}
}

// reconcile adopts property values that differ from what the tracker
// does for two periods in a row. A client write runs the hook before the
// value is stored, so two clients writing at once can leave the property
// holding the value whose hook ran first; a difference seen only once is
// such a write in progress. What clients read is what the tracker does,
// at the latest two periods later.
func (t *Tracker) reconcile() {
	ls := t.dev.LoadState.Value().Bool()
	sl := t.dev.SpotList.Value().Bool()
	fl := t.dev.Filter.Value().Bool()
	differs := ls != t.loadState.Load() || sl != t.spotList.Load() || fl != t.filter.Load()
	if differs && t.differed {
		if ls != t.loadState.Load() {
			t.setLoadState(ls)
		}
		t.setSpotList(sl)
		t.filter.Store(fl)
		t.log.Warn().Bool("load_state", ls).Bool("spot_list", sl).Bool("filter", fl).Msg("settings re-read after concurrent writes")
		t.updateStatus()
		differs = false
	}
	t.differed = differs
}

// show hands the frame at path to ADXV (ctl held).
func (t *Tracker) show(key frameKey, path string) {
	b := adxv.NewBatch(64 + len(path) + 24*len(t.xy)/2)
	b.LoadImage(path)
	t.addOverlay(b, t.xy)
	switch t.cfg.Raise {
	case RaiseAlways:
		b.RaiseWindow("Image")
	case RaiseOnStart:
		if !t.raised || t.raisedFor != key.series {
			b.RaiseWindow("Image")
			t.raised, t.raisedFor = true, key.series
		}
	}
	ticket, err := t.client.Submit(b)
	if err != nil {
		t.log.Error().Err(err).Str("path", path).Msg("image not handed to ADXV")
		return
	}
	t.sent.Add(1)
	t.trackTicket = ticket
	t.shown, t.shownValid = key, true
	if t.manualTicket != 0 { // the load's batch was still waiting: replaced
		t.manualTicket = 0
		t.manualBusy.Store(false)
	}
}

// addOverlay adds the spot overlay as spot-list asks (ctl held).
func (t *Tracker) addOverlay(b *adxv.Batch, xy []float32) {
	switch {
	case t.spotList.Load():
		b.Spots(xy)
		t.overlay = len(xy) > 0
	case t.overlay:
		b.Spots(nil)
		t.overlay = false
	}
}

func (t *Tracker) publishQueue() {
	sortRecords(t.snap)
	// A new slice each time: readers of the property share the old one.
	data := make([]float32, 0, 4*len(t.snap))
	var paths strings.Builder
	for i, r := range t.snap {
		data = append(data, float32(r.frame), r.score, float32(r.spots), r.resolution)
		if i > 0 {
			paths.WriteByte('\n')
		}
		paths.WriteString(r.path)
	}
	if err := t.dev.Queue.Set(properties.Float32Records(4, data)); err != nil {
		t.log.Error().Err(err).Msg("queue not published")
	}
	t.dev.QueuePaths.SetText(paths.String())
}

// onReport follows the client's attempts (client goroutine).
func (t *Tracker) onReport(r adxv.Report) {
	t.ctl.Lock()
	if r.Err == nil && r.Ticket != 0 && r.Image != "" {
		t.dev.Shown.SetText(r.Image)
		t.shownCnt.Add(1)
	}
	if r.Ticket != 0 && (r.Err == nil || r.Dropped) {
		if r.Ticket == t.manualTicket {
			t.manualTicket = 0
			t.manualBusy.Store(false)
		}
		if r.Ticket == t.trackTicket {
			t.trackTicket = 0
		}
	}
	// ADXV answered an empty probe after being away or unknown: it may
	// have restarted blank, so the best frame goes to it again.
	if r.Err == nil && r.Ticket == 0 && adxv.Reach(t.reach.Load()) != adxv.ReachUp {
		t.shownValid, t.raised = false, false
	}
	t.reach.Store(int32(r.Reach))
	t.ctl.Unlock()
	t.updateStatus()
}

func (t *Tracker) onLoadState(_ context.Context, v properties.Value) error {
	t.ctl.Lock()
	defer t.ctl.Unlock()
	t.setLoadState(v.Bool())
	t.updateStatus()
	return nil
}

// setLoadState switches tracking (ctl held). Switching on forgets what was
// shown, also when it was on already (see the package doc).
func (t *Tracker) setLoadState(on bool) {
	t.loadState.Store(on)
	if on {
		t.shownValid, t.raised = false, false
		return
	}
	if t.trackTicket != 0 {
		t.client.Withdraw(t.trackTicket)
		t.trackTicket = 0
	}
}

func (t *Tracker) onFilter(_ context.Context, v properties.Value) error {
	t.filter.Store(v.Bool())
	return nil
}

func (t *Tracker) onSpotList(_ context.Context, v properties.Value) error {
	t.ctl.Lock()
	defer t.ctl.Unlock()
	t.setSpotList(v.Bool())
	return nil
}

// setSpotList (ctl held): the shown frame goes again, with or without its
// overlay.
func (t *Tracker) setSpotList(on bool) {
	if t.spotList.Swap(on) != on {
		t.shownValid = false
	}
}

// onLoad is the load command: show path now, tracking off.
func (t *Tracker) onLoad(_ context.Context, v properties.Value) error {
	path := strings.TrimSpace(v.Text)
	if err := adxv.CheckPath(path); err != nil {
		return err
	}
	t.ctl.Lock()
	defer t.ctl.Unlock()
	if t.closed {
		return ErrClosed
	}
	t.setLoadState(false)
	t.dev.LoadState.SetBool(false)
	b := adxv.NewBatch(256)
	b.LoadImage(path)
	if t.spotList.Load() {
		t.mu.Lock()
		xy, _ := t.q.spotsOf(path)
		t.xy = append(t.xy[:0], xy...)
		t.mu.Unlock()
		t.addOverlay(b, t.xy)
	} else {
		t.addOverlay(b, nil)
	}
	if t.cfg.Raise != RaiseNever {
		b.RaiseWindow("Image")
	}
	ticket, err := t.client.Submit(b)
	if err != nil {
		return err
	}
	t.sent.Add(1)
	t.manualTicket = ticket
	t.manualBusy.Store(true)
	t.shownValid = false
	t.loads.Add(1)
	t.updateStatus()
	t.log.Info().Str("path", path).Msg("load: showing image, tracking off")
	return nil
}

func (t *Tracker) onHost(_ context.Context, v properties.Value) error {
	return t.setAddr(v.Text, t.dev.ADXVPort.Value().Int())
}

func (t *Tracker) onPort(_ context.Context, v properties.Value) error {
	return t.setAddr(t.dev.ADXVHost.Value().Text, v.Int())
}

func (t *Tracker) setAddr(host string, port int) error {
	t.ctl.Lock()
	defer t.ctl.Unlock()
	if err := t.client.SetAddr(host, port); err != nil {
		return err
	}
	t.shownValid, t.raised = false, false // a new viewer shows nothing yet
	t.log.Info().Str("adxv", t.client.Addr()).Msg("ADXV address changed")
	return nil
}

func (t *Tracker) onPeriod(_ context.Context, v properties.Value) error {
	d := time.Duration(v.Float() * float64(time.Second))
	if d < time.Millisecond {
		return fmt.Errorf("display period %v too short", d)
	}
	t.jobMu.Lock()
	defer t.jobMu.Unlock()
	job, err := t.sched.Update(t.job.ID(), gocron.DurationJob(d), gocron.NewTask(t.display), jobOptions()...)
	if err != nil {
		return err
	}
	if job == nil {
		return errors.New("scheduler stopped")
	}
	t.job = job
	t.log.Info().Dur("period", d).Msg("display period changed")
	return nil
}

func (t *Tracker) onQueueSize(_ context.Context, v properties.Value) error {
	n := v.Int()
	if n < 1 || n > contract.MaxTrackerQueue {
		return fmt.Errorf("queue size %d outside [1, %d]", n, contract.MaxTrackerQueue)
	}
	t.mu.Lock()
	t.q.setLimit(n)
	t.mu.Unlock()
	return nil
}

// updateStatus publishes the status the inputs call for, if it changed.
func (t *Tracker) updateStatus() {
	t.statusMu.Lock()
	defer t.statusMu.Unlock()
	s := statusOf(t.closedFlag.Load(), adxv.Reach(t.reach.Load()), t.manualBusy.Load(), t.loadState.Load(), t.seriesOpen.Load())
	if s == t.status {
		return
	}
	t.log.Info().Str("from", t.status).Str("to", s).Msg("tracker status")
	t.status = s
	t.dev.Status.SetText(s)
}

// statusOf is the status vocabulary's precedence (package doc).
func statusOf(closed bool, reach adxv.Reach, manualBusy, loadState, seriesOpen bool) string {
	switch {
	case closed:
		return contract.TrackerUnknown
	case reach == adxv.ReachDown:
		return contract.TrackerError
	case manualBusy:
		return contract.TrackerBusy
	case !loadState:
		return contract.TrackerDisabled
	case seriesOpen:
		return contract.TrackerTracking
	case reach == adxv.ReachUp:
		return contract.TrackerReady
	}
	return contract.TrackerUnknown
}
