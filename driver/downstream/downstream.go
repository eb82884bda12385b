// Package downstream hands a series' hits, while the series runs, to the
// processing programs crystallographers trust (DIALS, or CrystFEL), as
// jobs on a SLURM cluster or on this host, and brings back what they
// found: which hits indexed and with which unit cell.
//
//	committer ──FrameWritten (hits)──▶ open chunk ──every N hits or T s,──▶ bounded chunk queue
//	(pipeline)                          (mutex, O(1))  and at series end        │ (full: dropped, counted)
//	                                                                             ▼
//	                          loop: files.lst + job.sh ──▶ Executor (slurm: sbatch; local: processes)
//	                                gocron tick: Status ──▶ done: parse output, indexed.jsonl, properties
//	                                                        failed: retry once, then count and report
//
// The frame path never waits for the cluster: FrameWritten appends to the
// open chunk and, when it is full, offers it to a bounded queue without
// blocking; a chunk that does not fit is dropped, counted and written to
// the indexed file as "dropped", so that every hit of a series appears
// there exactly once (indexed, not indexed, job failed, or dropped).
//
// A job's files live in its own directory under the series' work
// directory (by default <images>/<prefix>_<run>_downstream/chunk-0001.1):
// files.lst, job.sh, job.log, exit_status and the program's outputs. The
// image paths are those the writer used: the cluster's nodes must see the
// images, and the work directory, under the same paths (a shared file
// system).
package downstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/rs/zerolog"

	"tioga/device/contract"
	"tioga/properties"
)

// Config tunes the hand-off. Zero values take the documented defaults.
type Config struct {
	Executor Executor
	Template *Template

	ChunkHits   int           // hits per job (default 20)
	ChunkPeriod time.Duration // a partial chunk is submitted when its first hit is this old (default 30 s)
	QueueChunks int           // chunks waiting for submission (default 16)
	Retries     int           // attempts after the first for a failed job (default 1; -1: none)
	PollPeriod  time.Duration // how often job states are polled and old chunks sealed (default 2 s)

	// WorkDir holds the series' job directories (default: beside the
	// images, <dir>/<prefix>_<run>_downstream).
	WorkDir   string
	CPUs      int           // CPUs per job (default 1)
	TimeLimit time.Duration // per job (0: the executor's default)

	// The job template's variables (see JobData).
	Cell          *Cell
	SpaceGroup    string
	MaxCell       float64
	CellFile      string // CrystFEL unit-cell file; default: written from Cell
	Python        string // default /usr/bin/python3
	Options       string
	ImportOptions string

	// Logger is the process's logger; the manager adds its component field.
	Logger zerolog.Logger
}

func (c *Config) defaults() {
	if c.ChunkHits <= 0 {
		c.ChunkHits = 20
	}
	if c.ChunkPeriod <= 0 {
		c.ChunkPeriod = 30 * time.Second
	}
	if c.QueueChunks <= 0 {
		c.QueueChunks = 16
	}
	if c.Retries == 0 {
		c.Retries = 1
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.PollPeriod <= 0 {
		c.PollPeriod = 2 * time.Second
	}
	if c.CPUs <= 0 {
		c.CPUs = 1
	}
	if c.Python == "" {
		c.Python = "/usr/bin/python3"
	}
	if c.Cell != nil && c.SpaceGroup == "" {
		c.SpaceGroup = "P1"
	}
}

// hit is a frame on disk that the analysis called a hit.
type hit struct {
	frame int
	path  string
	at    time.Time // when it was reported on disk
}

// chunk is the hits of one job.
type chunk struct {
	series uint64
	index  int
	hits   []hit
}

// ingest is the hot-path state of the open series (under Manager.inMu).
type ingest struct {
	id     uint64
	open   []hit
	chunks int // chunks sealed so far
	hits   int
}

// control is a message from the hot path to the loop that must not be
// lost: series start and end, dropped chunks.
type control struct {
	start, end bool
	series     uint64
	chunks     int    // end: chunks sealed in the series
	hits       int    // end: hits in the series
	dropped    *chunk // a chunk the full queue refused
}

// Manager runs the hand-off. Its hot-path methods (SeriesStarted,
// FrameWritten, SeriesEnded) return at once; Run owns the rest.
type Manager struct {
	cfg   Config
	dev   *contract.Downstream
	log   zerolog.Logger
	sched gocron.Scheduler

	inMu      sync.Mutex
	in        *ingest
	ctrl      []control
	chunkHits int
	period    time.Duration

	chunks chan *chunk
	nudge  chan struct{}
	tick   chan struct{}
	cancel chan uint64

	// Loop state (owned by Run's goroutine).
	series map[uint64]*seriesState
	shown  uint64
	jobs   map[string]*jobState // executor id → job
}

// New builds the hand-off and schedules its periodic tick on sched. dev
// receives the figures; its chunk-hits, chunk-period and cancel
// properties control it.
func New(cfg Config, dev *contract.Downstream, sched gocron.Scheduler) (*Manager, error) {
	cfg.defaults()
	if cfg.Executor == nil || cfg.Template == nil {
		return nil, errors.New("downstream: an executor and a job template are required")
	}
	m := &Manager{
		cfg: cfg, dev: dev, log: cfg.Logger.With().Str("component", "downstream").Logger(), sched: sched,
		chunkHits: cfg.ChunkHits, period: cfg.ChunkPeriod,
		chunks: make(chan *chunk, cfg.QueueChunks),
		nudge:  make(chan struct{}, 1),
		tick:   make(chan struct{}, 1),
		cancel: make(chan uint64, 16),
		series: map[uint64]*seriesState{},
		jobs:   map[string]*jobState{},
	}
	dev.Executor.SetText(cfg.Executor.Name())
	dev.ChunkHits.SetInt32(int32(cfg.ChunkHits))
	dev.ChunkPeriod.SetFloat(cfg.ChunkPeriod.Seconds())
	dev.ChunkHits.OnWrite(func(_ context.Context, v properties.Value) error {
		m.inMu.Lock()
		m.chunkHits = v.Int()
		m.inMu.Unlock()
		dev.ChunkHits.SetInt32(int32(v.Int()))
		return nil
	})
	dev.ChunkPeriod.OnWrite(func(_ context.Context, v properties.Value) error {
		m.inMu.Lock()
		m.period = time.Duration(v.Float() * float64(time.Second))
		m.inMu.Unlock()
		dev.ChunkPeriod.SetFloat(v.Float())
		return nil
	})
	dev.Cancel.OnWrite(func(_ context.Context, v properties.Value) error {
		select {
		case m.cancel <- uint64(max(v.Int(), 0)):
			return nil
		default:
			return errors.New("cancel requests are piling up: try again in a moment")
		}
	})
	if sched != nil {
		_, err := sched.NewJob(gocron.DurationJob(cfg.PollPeriod), gocron.NewTask(m.onTick),
			gocron.WithSingletonMode(gocron.LimitModeReschedule), gocron.WithName("downstream tick"))
		if err != nil {
			return nil, fmt.Errorf("schedule downstream tick: %w", err)
		}
	}
	return m, nil
}

// SeriesStarted opens the chunking of a series.
func (m *Manager) SeriesStarted(id uint64) {
	m.inMu.Lock()
	if m.in != nil {
		m.endLocked()
	}
	m.in = &ingest{id: id}
	m.ctrl = append(m.ctrl, control{start: true, series: id})
	m.inMu.Unlock()
	m.poke()
}

// FrameWritten takes a frame on disk; hits join the open chunk. It never
// blocks.
func (m *Manager) FrameWritten(series uint64, frame int, path string, isHit bool) {
	if !isHit || path == "" {
		return
	}
	now := time.Now()
	m.inMu.Lock()
	in := m.in
	if in == nil || in.id != series {
		m.inMu.Unlock()
		return
	}
	in.open = append(in.open, hit{frame: frame, path: path, at: now})
	in.hits++
	if len(in.open) >= m.chunkHits {
		m.sealLocked()
	}
	m.inMu.Unlock()
}

// SeriesEnded submits the series' last, partial chunk.
func (m *Manager) SeriesEnded(id uint64) {
	m.inMu.Lock()
	if m.in != nil && m.in.id == id {
		m.endLocked()
		m.in = nil
	}
	m.inMu.Unlock()
	m.poke()
}

func (m *Manager) endLocked() {
	m.sealLocked()
	m.ctrl = append(m.ctrl, control{end: true, series: m.in.id, chunks: m.in.chunks, hits: m.in.hits})
}

// sealLocked closes the open chunk and offers it to the queue.
func (m *Manager) sealLocked() {
	in := m.in
	if len(in.open) == 0 {
		return
	}
	in.chunks++
	c := &chunk{series: in.id, index: in.chunks, hits: in.open}
	in.open = nil
	select {
	case m.chunks <- c:
	default:
		m.ctrl = append(m.ctrl, control{series: in.id, dropped: c})
	}
}

// onTick (gocron) seals a partial chunk that waited long enough and wakes
// the loop to poll the executor.
func (m *Manager) onTick() {
	m.inMu.Lock()
	if in := m.in; in != nil && len(in.open) > 0 && time.Since(in.open[0].at) >= m.period {
		m.sealLocked()
	}
	m.inMu.Unlock()
	select {
	case m.tick <- struct{}{}:
	default:
	}
}

func (m *Manager) poke() {
	select {
	case m.nudge <- struct{}{}:
	default:
	}
}

// Flush seals the open chunk now (tests, and a client that wants results
// before the period is up).
func (m *Manager) Flush() {
	m.inMu.Lock()
	if m.in != nil {
		m.sealLocked()
	}
	m.inMu.Unlock()
	m.poke()
}

// Run submits chunks and follows their jobs until ctx ends. Jobs still
// running on a cluster then keep running; their results are not collected
// (the log says which).
func (m *Manager) Run(ctx context.Context) error {
	defer m.cfg.Executor.Close()
	for {
		m.drainControl()
		select {
		case <-ctx.Done():
			m.drainControl()
			if n := len(m.jobs); n > 0 {
				m.log.Warn().Int("jobs", n).Msg("stopping with jobs unfinished: their results will not be collected")
			}
			for _, s := range m.series {
				s.close()
			}
			return nil
		case c := <-m.chunks:
			m.submitChunk(ctx, c)
		case <-m.nudge:
		case <-m.tick:
			m.poll(ctx)
		case id := <-m.cancel:
			m.cancelSeries(ctx, id)
		}
		m.finishSeries()
		m.publish()
	}
}

// drainControl applies series starts and ends and dropped chunks, in the
// order the hot path produced them.
func (m *Manager) drainControl() {
	m.inMu.Lock()
	ctrl := m.ctrl
	m.ctrl = nil
	m.inMu.Unlock()
	for _, c := range ctrl {
		s := m.seriesFor(c.series)
		switch {
		case c.start:
			m.shown = c.series
		case c.end:
			s.ended, s.sealed, s.hits = true, c.chunks, c.hits
		case c.dropped != nil:
			_ = m.prepareSeries(s, c.dropped.hits[0].path) // the indexed file says which hits were dropped
			s.chunksLost++
			s.hitsLost += len(c.dropped.hits)
			s.settled++
			m.log.Warn().Uint64("series", c.series).Int("chunk", c.dropped.index).Int("hits", len(c.dropped.hits)).
				Msg("chunk dropped: the chunk queue is full (jobs are submitted slower than hits arrive, or the cluster is down)")
			for _, h := range c.dropped.hits {
				s.writeLine(h, c.dropped.index, "", "dropped", nil)
			}
		}
	}
}

func (m *Manager) seriesFor(id uint64) *seriesState {
	s, ok := m.series[id]
	if !ok {
		s = &seriesState{id: id, log: m.log.With().Uint64("series", id).Logger()}
		m.series[id] = s
	}
	return s
}

// finishSeries closes the files of series that are over (ended, every
// chunk settled) and forgets them, except the one shown.
func (m *Manager) finishSeries() {
	for id, s := range m.series {
		if !s.ended || s.settled < s.sealed || s.finished {
			continue
		}
		s.finished = true
		s.close()
		s.log.Info().Int("hits", s.hits).Int("indexed", s.indexed).Int("jobs_done", s.jobsDone).Int("jobs_failed", s.jobsFailed).
			Int("chunks_dropped", s.chunksLost).Str("indexed_file", s.indexedPath).Msg("downstream processing of the series finished")
		if id != m.shown {
			delete(m.series, id)
		}
	}
	for id, s := range m.series {
		if s.finished && id != m.shown {
			delete(m.series, id)
		}
	}
}

// base derives "<dir>/<prefix>_<run>_" from an image path of the writer
// ("<dir>/<prefix>_<run>_%05d.<ext>").
var imageName = regexp.MustCompile(`^(.*_)\d+\.(cbf|cbf\.gz|tif|tiff)$`)

func seriesBase(path string, series uint64) string {
	if m := imageName.FindStringSubmatch(path); m != nil {
		return m[1]
	}
	return filepath.Join(filepath.Dir(path), fmt.Sprintf("series%d_", series))
}

// prepareSeries opens the series' indexed file and work directory at its
// first chunk.
func (m *Manager) prepareSeries(s *seriesState, first string) error {
	if s.prepared {
		return s.prepErr
	}
	s.prepared = true
	base := seriesBase(first, s.id)
	s.indexedPath = base + "indexed.jsonl"
	s.workDir = base + "downstream"
	if m.cfg.WorkDir != "" {
		s.workDir = filepath.Join(m.cfg.WorkDir, filepath.Base(base)+"downstream")
	}
	if err := os.MkdirAll(s.workDir, 0o755); err != nil {
		s.prepErr = fmt.Errorf("work directory: %w", err)
		return s.prepErr
	}
	f, err := os.OpenFile(s.indexedPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		s.prepErr = fmt.Errorf("indexed file: %w", err)
		return s.prepErr
	}
	s.out = f
	if m.cfg.Template.Output == OutputCrystFEL {
		s.geometry = filepath.Join(s.workDir, "detector.geom")
		if err := writeCrystFELGeometry(s.geometry, first); err != nil {
			s.prepErr = err
			return err
		}
		s.cellFile = m.cfg.CellFile
		if s.cellFile == "" && m.cfg.Cell != nil {
			s.cellFile = filepath.Join(s.workDir, "known.cell")
			if err := writeCrystFELCell(s.cellFile, *m.cfg.Cell); err != nil {
				s.prepErr = err
				return err
			}
		}
	}
	return nil
}

// submitChunk writes a chunk's first attempt and submits it.
func (m *Manager) submitChunk(ctx context.Context, c *chunk) {
	s := m.seriesFor(c.series)
	if s.cancelled {
		_ = m.prepareSeries(s, c.hits[0].path)
		s.settled++
		for _, h := range c.hits {
			s.writeLine(h, c.index, "", "cancelled", nil)
		}
		return
	}
	s.submittedHits += len(c.hits)
	j := &jobState{chunk: c, attempt: 1}
	if err := m.prepareSeries(s, c.hits[0].path); err != nil {
		m.fail(s, j, err.Error())
		return
	}
	m.submit(ctx, s, j)
}

// submit writes the attempt's directory (file list, script) and hands it
// to the executor; a failure to do so is a failed attempt.
func (m *Manager) submit(ctx context.Context, s *seriesState, j *jobState) {
	c := j.chunk
	name := fmt.Sprintf("tioga-%d-%04d", c.series, c.index)
	dir := filepath.Join(s.workDir, fmt.Sprintf("chunk-%04d.%d", c.index, j.attempt))
	j.job = Job{Name: name, Dir: dir, Script: filepath.Join(dir, "job.sh"), Log: filepath.Join(dir, "job.log"),
		CPUs: m.cfg.CPUs, TimeLimit: m.cfg.TimeLimit}
	if err := m.writeJob(s, j); err != nil {
		m.attemptFailed(ctx, s, j, err.Error())
		return
	}
	id, err := m.cfg.Executor.Submit(ctx, j.job)
	if err != nil {
		m.attemptFailed(ctx, s, j, "submit: "+err.Error())
		return
	}
	j.id = id
	j.state = Queued
	m.jobs[id] = j
	s.jobsQueued++
	s.log.Debug().Str("job", id).Str("dir", dir).Int("hits", len(c.hits)).Int("attempt", j.attempt).Msg("job submitted")
}

func (m *Manager) writeJob(s *seriesState, j *jobState) error {
	d := j.job.Dir
	_ = os.RemoveAll(d)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("job directory: %w", err)
	}
	files := make([]string, len(j.chunk.hits))
	var b strings.Builder
	for i, h := range j.chunk.hits {
		files[i] = h.path
		b.WriteString(h.path)
		b.WriteByte('\n')
	}
	list := filepath.Join(d, "files.lst")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("file list: %w", err)
	}
	data := JobData{Name: j.job.Name, Dir: d, List: list, Files: files, Series: j.chunk.series, Chunk: j.chunk.index,
		Attempt: j.attempt, CPUs: m.cfg.CPUs, SpaceGroup: m.cfg.SpaceGroup, MaxCell: m.cfg.MaxCell,
		Geometry: s.geometry, CellFile: s.cellFile, Python: m.cfg.Python, Options: m.cfg.Options, ImportOptions: m.cfg.ImportOptions}
	if c := m.cfg.Cell; c != nil {
		parts := make([]string, 6)
		for i, v := range c {
			parts[i] = strconv.FormatFloat(v, 'f', -1, 64)
		}
		data.Cell = strings.Join(parts, ",")
	}
	script, err := m.cfg.Template.Render(data)
	if err != nil {
		return err
	}
	if err := os.WriteFile(j.job.Script, script, 0o755); err != nil {
		return fmt.Errorf("job script: %w", err)
	}
	return nil
}

// poll asks the executor about every job not yet final.
func (m *Manager) poll(ctx context.Context) {
	if len(m.jobs) == 0 {
		return
	}
	ask := make(map[string]Job, len(m.jobs))
	for id, j := range m.jobs {
		ask[id] = j.job
	}
	st, err := m.cfg.Executor.Status(ctx, ask)
	if err != nil {
		m.log.Warn().Err(err).Msg("job states unavailable (the jobs are asked again at the next tick)")
		return
	}
	ids := make([]string, 0, len(st))
	for id := range st {
		ids = append(ids, id)
	}
	sort.Strings(ids) // chunks in submission order (ids grow) for a tidy indexed file
	for _, id := range ids {
		j, ok := m.jobs[id]
		if !ok {
			continue
		}
		s := m.seriesFor(j.chunk.series)
		switch x := st[id]; x.State {
		case Queued:
		case Running:
			if j.state == Queued {
				s.jobsQueued--
				s.jobsRunning++
				j.state = Running
			}
		case Done, Failed:
			delete(m.jobs, id)
			if j.state == Queued {
				s.jobsQueued--
			} else {
				s.jobsRunning--
			}
			if x.State == Done {
				m.collect(ctx, s, j)
			} else {
				m.attemptFailed(ctx, s, j, x.Reason)
			}
		}
	}
}

// collect parses a finished job's output and records its hits.
func (m *Manager) collect(ctx context.Context, s *seriesState, j *jobState) {
	res, err := ParseOutput(m.cfg.Template.Output, j.job.Dir)
	if err != nil {
		m.attemptFailed(ctx, s, j, fmt.Sprintf("output unreadable: %v (log %s)", err, j.job.Log))
		return
	}
	byName := map[string]Indexing{}
	for p, r := range res {
		byName[filepath.Base(p)] = r
	}
	now := time.Now()
	s.jobsDone++
	s.settled++
	for _, h := range j.chunk.hits {
		r, ok := res[h.path]
		if !ok {
			r, ok = byName[filepath.Base(h.path)]
		}
		s.processed++
		s.latency.add(now.Sub(h.at).Seconds())
		if ok {
			s.indexed++
			s.cells = append(s.cells, r.Cell)
			cell := r.Cell
			s.writeLine(h, j.chunk.index, j.id, "indexed", &cell)
		} else {
			s.writeLine(h, j.chunk.index, j.id, "not indexed", nil)
		}
	}
	s.log.Info().Str("job", j.id).Int("chunk", j.chunk.index).Int("hits", len(j.chunk.hits)).Int("indexed", len(res)).Msg("job done")
}

// attemptFailed retries the chunk once (Retries) in a fresh directory,
// then records it as failed.
func (m *Manager) attemptFailed(ctx context.Context, s *seriesState, j *jobState, reason string) {
	s.lastFailure = fmt.Sprintf("series %d chunk %d attempt %d: %s", j.chunk.series, j.chunk.index, j.attempt, reason)
	if j.attempt <= m.cfg.Retries && !s.cancelled && !j.cancelled {
		s.retried++
		s.log.Warn().Int("chunk", j.chunk.index).Int("attempt", j.attempt).Str("reason", reason).Msg("job failed: retrying")
		next := &jobState{chunk: j.chunk, attempt: j.attempt + 1}
		m.submit(ctx, s, next)
		return
	}
	m.fail(s, j, reason)
}

func (m *Manager) fail(s *seriesState, j *jobState, reason string) {
	s.lastFailure = fmt.Sprintf("series %d chunk %d attempt %d: %s", j.chunk.series, j.chunk.index, j.attempt, reason)
	s.jobsFailed++
	s.settled++
	s.failedHits += len(j.chunk.hits)
	s.log.Error().Int("chunk", j.chunk.index).Int("attempt", j.attempt).Int("hits", len(j.chunk.hits)).Str("reason", reason).
		Msg("job failed: its hits are reported as not processed")
	status := "job failed"
	if j.cancelled || s.cancelled {
		status = "cancelled"
	}
	for _, h := range j.chunk.hits {
		s.writeLine(h, j.chunk.index, j.id, status, nil)
	}
}

// cancelSeries cancels the series' jobs (0: the series shown) and drops
// its chunks still to come.
func (m *Manager) cancelSeries(ctx context.Context, id uint64) {
	if id == 0 {
		id = m.shown
	}
	s, ok := m.series[id]
	if !ok {
		m.log.Warn().Uint64("series", id).Msg("cancel: no such series with jobs")
		return
	}
	s.cancelled = true
	n := 0
	for jid, j := range m.jobs {
		if j.chunk.series != id {
			continue
		}
		j.cancelled = true
		if err := m.cfg.Executor.Cancel(ctx, jid); err != nil {
			m.log.Warn().Err(err).Str("job", jid).Msg("cancel failed")
			continue
		}
		n++
	}
	s.log.Info().Int("jobs", n).Msg("jobs of the series cancelled")
}

// publish shows the figures of the series shown.
func (m *Manager) publish() {
	s, ok := m.series[m.shown]
	if !ok {
		return
	}
	d := m.dev
	// Hits counted on the hot path while the series runs.
	hits := s.hits
	if !s.ended {
		m.inMu.Lock()
		if m.in != nil && m.in.id == s.id {
			hits = m.in.hits
		}
		m.inMu.Unlock()
	}
	d.SeriesID.SetInt32(int32(s.id))
	d.Hits.SetInt32(int32(hits))
	d.HitsInJobs.SetInt32(int32(s.submittedHits))
	d.HitsFinished.SetInt32(int32(s.processed))
	d.Indexed.SetInt32(int32(s.indexed))
	rate := 0.0
	if s.processed > 0 {
		rate = 100 * float64(s.indexed) / float64(s.processed)
	}
	d.IndexingRate.SetFloat(rate)
	med, spread := cellStatistics(s.cells)
	_ = d.UnitCell.Set(properties.Float64s(med[:]))
	_ = d.CellSpread.Set(properties.Float64s(spread[:]))
	d.JobsQueued.SetInt32(int32(s.jobsQueued + len(m.chunks)))
	d.JobsRunning.SetInt32(int32(s.jobsRunning))
	d.JobsDone.SetInt32(int32(s.jobsDone))
	d.JobsFailed.SetInt32(int32(s.jobsFailed))
	d.JobsRetried.SetInt32(int32(s.retried))
	d.ChunksLost.SetInt32(int32(s.chunksLost))
	d.HitsLost.SetInt32(int32(s.hitsLost))
	d.LastFailure.SetText(s.lastFailure)
	_ = d.Latency.Set(properties.Float64s([]float64{s.latency.last, s.latency.mean(), s.latency.max}))
	d.IndexedFile.SetText(s.indexedPath)
	d.WorkDir.SetText(s.workDir)
	var status string
	switch {
	case s.prepErr != nil:
		status = contract.ErrorStatus(s.prepErr.Error())
	case s.jobsQueued+s.jobsRunning > 0 || !s.ended || s.settled < s.sealed:
		status = "processing"
	case s.jobsFailed > 0 || s.chunksLost > 0:
		status = contract.ErrorStatus(fmt.Sprintf("%d jobs failed, %d chunks dropped; last failure: %s", s.jobsFailed, s.chunksLost, s.lastFailure))
	default:
		status = contract.StatusDone
	}
	if s.cancelled && s.jobsQueued+s.jobsRunning == 0 {
		status = "cancelled"
	}
	d.Status.SetText(status)
}

// jobState is one attempt at a chunk.
type jobState struct {
	chunk     *chunk
	attempt   int
	job       Job
	id        string
	state     State
	cancelled bool
}

// seriesState is what the loop keeps per series.
type seriesState struct {
	id  uint64
	log zerolog.Logger

	prepared    bool
	prepErr     error
	workDir     string
	indexedPath string
	out         *os.File
	geometry    string
	cellFile    string

	ended, finished, cancelled bool
	sealed, settled            int // chunks sealed (known at the end) and settled (done, failed, dropped)
	hits                       int

	submittedHits, processed, indexed, failedHits int
	jobsQueued, jobsRunning, jobsDone, jobsFailed int
	retried, chunksLost, hitsLost                 int
	lastFailure                                   string
	cells                                         []Cell
	latency                                       stat
}

// indexedLine is one line of <prefix>_<run>_indexed.jsonl.
type indexedLine struct {
	Frame   int      `json:"frame"`
	File    string   `json:"file"`
	Indexed bool     `json:"indexed"`
	Cell    *Cell    `json:"cell,omitempty"`
	Status  string   `json:"status"` // indexed, not indexed, job failed, cancelled, dropped
	Chunk   int      `json:"chunk"`
	Job     string   `json:"job,omitempty"`
	Latency *float64 `json:"latency_s,omitempty"`
}

func (s *seriesState) writeLine(h hit, chunkIndex int, job, status string, cell *Cell) {
	if s.out == nil {
		return
	}
	l := indexedLine{Frame: h.frame, File: h.path, Indexed: cell != nil, Cell: cell, Status: status, Chunk: chunkIndex, Job: job}
	if status == "indexed" || status == "not indexed" {
		v := math.Round(time.Since(h.at).Seconds()*1000) / 1000
		l.Latency = &v
	}
	b, _ := json.Marshal(l)
	if _, err := s.out.Write(append(b, '\n')); err != nil {
		s.log.Error().Err(err).Str("file", s.indexedPath).Msg("indexed file: write failed")
	}
}

func (s *seriesState) close() {
	if s.out != nil {
		_ = s.out.Close()
		s.out = nil
	}
}

// stat keeps last, mean and max of a figure.
type stat struct {
	last, sum, max float64
	n              int
}

func (s *stat) add(v float64) {
	s.last = v
	s.sum += v
	s.n++
	s.max = max(s.max, v)
}

func (s *stat) mean() float64 {
	if s.n == 0 {
		return 0
	}
	return s.sum / float64(s.n)
}

// cellStatistics returns the per-parameter median of the cells and their
// spread, 1.4826 x the median absolute deviation (the standard deviation
// for normal scatter, unmoved by a few cells indexed in another setting).
func cellStatistics(cells []Cell) (median, spread Cell) {
	if len(cells) == 0 {
		return
	}
	v := make([]float64, len(cells))
	for k := 0; k < 6; k++ {
		for i, c := range cells {
			v[i] = c[k]
		}
		med := medianOf(v)
		for i, c := range cells {
			v[i] = math.Abs(c[k] - med)
		}
		median[k], spread[k] = med, 1.4826*medianOf(v)
	}
	return
}

func medianOf(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
