package pipeline

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tioga/device/contract"
	"tioga/device/detectormodel"
	"tioga/driver/analysis"
	"tioga/driver/cbf"
	"tioga/driver/raster"
	"tioga/driver/results"
	"tioga/driver/stream"
	"tioga/driver/writer"
	"tioga/properties"
)

// series is everything the pipeline keeps about the open series.
type series struct {
	id      uint64
	header  *stream.Series
	started time.Time

	// Set by prepare (dispatcher) before the first frame is queued, read by
	// workers and the committer afterwards.
	prepared    bool
	width       int
	height      int
	elemSize    int
	geom        analysis.Geometry
	tables      atomic.Pointer[analysis.Tables] // nil: analysis unavailable
	analysisErr string
	w           *writer.Series // nil: not writing
	writerErr   string
	store       *results.Store
	ring        *results.SpotRing
	grid        atomic.Pointer[raster.Map] // nil: not a raster

	// Written by the dispatcher only; atomics where the export reads them.
	dispatched uint64
	frames     frameBook // lost and beyond-nimages counts are atomics
	received   atomic.Int64

	// Committer, read by others.
	committed  atomic.Uint64
	written    atomic.Int64
	bad        atomic.Int64
	overloaded atomic.Int64
	ice        atomic.Int64 // frames with an ice ring
	shapeRej   atomic.Int64 // spot candidates rejected by shape
	blobFrag   atomic.Int64 // spot candidates rejected as pieces of a blob
	headerGain float64      // the header's gain (counts per photon), 0 = none given
	hits       atomic.Int64
	failed     atomic.Int64
	// unwritable counts frames the writer never saw because they could not
	// be decoded (bad frames, writing on): files that could not be
	// written, so they count in files-failed beside the writer's own.
	unwritable atomic.Int64

	mu   sync.Mutex
	cond *sync.Cond

	iceMu   sync.Mutex
	lastIce []float64 // d (Å) of the last committed frame's ice rings
	iceSeen bool      // a frame was analysed: lastIce is meaningful
}

// setLastIce records the ice rings of the frame just committed (committer).
func (s *series) setLastIce(rings []float64) {
	s.iceMu.Lock()
	s.lastIce = append(s.lastIce[:0], rings...)
	s.iceSeen = true
	s.iceMu.Unlock()
}

// lastIceRings returns a copy of the last committed frame's ice rings.
func (s *series) lastIceRings() ([]float64, bool) {
	s.iceMu.Lock()
	defer s.iceMu.Unlock()
	return append([]float64{}, s.lastIce...), s.iceSeen
}

func (s *series) noteArrival(number uint64) {
	s.received.Add(1)
	s.frames.arrive(number)
}

// waitCommitted blocks until every dispatched frame has been committed.
func (s *series) waitCommitted() {
	s.mu.Lock()
	for s.committed.Load() < s.dispatched {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

func (s *series) noteCommitted() {
	s.mu.Lock()
	s.committed.Add(1)
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (p *Pipeline) startSeries(h *stream.Series) {
	s := &series{id: h.ID, header: h, started: time.Now()}
	s.cond = sync.NewCond(&s.mu)
	s.frames.init(h.NumberOfImages)
	expected := int(h.NumberOfImages)
	if expected <= 0 || expected > p.cfg.ResultsLimit {
		expected = min(p.cfg.ResultsLimit, 1<<16)
	}
	s.store = results.NewStore(expected, p.cfg.ResultsLimit)
	s.ring = results.NewSpotRing(p.cfg.SpotRingFrames, p.cfg.SpotRingSpots)
	if !p.cfg.AccumulateSSX {
		p.ssx.Reset()
	}
	p.speed.Reset()
	p.timing.reset()

	p.log.Info().Uint64("series", h.ID).Int("version", h.Version).Uint64("images", h.NumberOfImages).
		Int("width", h.Width).Int("height", h.Height).Str("detector", h.Description).Msg("series start")
	// One batch from series-id to status "receiving": a client never sees
	// the new series-id next to the old nimages, geometry or file names.
	properties.Batch(func() {
		p.publishSeriesStart(s)
		if h.Width > 0 && h.Height > 0 && (h.ElemSize > 0 || h.SaturationValue > 0) {
			elem := h.ElemSize
			if elem == 0 {
				elem = elemSizeFor(h.SaturationValue)
			}
			p.prepare(s, h.Width, h.Height, elem)
		}
		p.setupGrid(s)
		p.cur.Store(s)
		p.recent.Store(s)
		p.dev.Stream.Status.SetText(contract.StatusReceiving)
	})
	if p.sink != nil {
		p.sink.SeriesStarted(h.ID)
	}
	if p.observer != nil {
		p.observer.SeriesStarted(h, h.Width, h.Height)
	}
}

func elemSizeFor(saturation uint64) int {
	switch {
	case saturation < 0xFF:
		return 1
	case saturation < 0xFFFF:
		return 2
	}
	return 4
}

// headerGain returns the detector gain (counts per photon) the series
// header gives, as a "gain" key of its configuration or of its user data
// (V1 appendix, V2 user_data), or 0 when it gives none. EIGERs count
// photons (gain 1) and say nothing; a source that rescales counts, as the
// real EIGER 4M capture of the fixtures (even counts only: gain 2), can
// say so there, and the analysis parameter gain = 0 then takes it.
func headerGain(h *stream.Series) float64 {
	num := func(v any) float64 {
		var g float64
		switch x := v.(type) {
		case float64:
			g = x
		case uint64:
			g = float64(x)
		case int64:
			g = float64(x)
		}
		if g > 0 && g <= 100 {
			return g
		}
		return 0
	}
	if g := num(h.Config["gain"]); g > 0 {
		return g
	}
	if m, ok := h.Appendix.Value.(map[string]any); ok {
		return num(m["gain"])
	}
	return 0
}

// prepare builds what the workers need once the frame geometry is known:
// the analysis tables and the file writer. Failures do not stop the series:
// without tables frames are still written, without a writer they are still
// analysed, and the reason is in status and last-error.
func (p *Pipeline) prepare(s *series, width, height, elemSize int) {
	s.prepared = true
	s.width, s.height, s.elemSize = width, height, elemSize
	h := s.header
	s.geom = p.geometry(h, width, height)

	p.mu.Lock()
	params := p.params
	s.headerGain = headerGain(h)
	if params.Gain == 0 && s.headerGain > 0 {
		params.Gain = s.headerGain
	}
	wcfg := p.writerCfg
	writing := p.writerEnabled
	p.mu.Unlock()

	masks := analysis.Masks{Pixel: pixelMask(h, p.cfg.Channel, width, height), Hot: p.hot}
	t0 := time.Now()
	if t, reused, err := p.tableCache.tables(s.geom, params, masks); err != nil {
		s.analysisErr = fmt.Sprintf("analysis unavailable: %v", err)
		p.reportError(s.analysisErr)
	} else {
		s.tables.Store(t)
		p.log.Debug().Dur("took", time.Since(t0)).Bool("tables_reused", reused).Int("analysed_pixels", t.AnalysedPixels()).Str("gaps", t.GapProfile()).Msg("analysis tables ready")
	}
	if writing {
		w, err := p.openWriter(wcfg, cbfHeader(h, s.geom, elemSize))
		if err != nil {
			// Every frame of the series will be counted as failed with
			// this cause (see commit); the status says it once.
			s.writerErr = err.Error()
			p.reportError(s.writerErr)
			p.dev.Stream.WriterError.SetText(s.writerErr)
		} else {
			s.w = w
			st := p.dev.Stream
			st.WriterTemplate.SetText(w.Template())
			st.ResultsFile.SetText(w.ResultsPath())
			st.HitListFile.SetText(w.HitsPath())
			st.SpotsFile.SetText(w.SpotsPath())
			st.WriterError.SetText("")
		}
	}
	st := p.dev.Stream
	_ = st.ImageSize.Set(properties.Int32s([]int32{int32(width), int32(height)}))
	st.BitDepth.SetInt32(int32(8 * elemSize))
	_ = st.BeamCentre.Set(properties.Float64s([]float64{s.geom.BeamX, s.geom.BeamY}))
	st.Distance.SetFloat(s.geom.Distance)
	st.DistanceSource.SetText(p.distanceSource)
	st.Wavelength.SetFloat(s.geom.Wavelength)
}

// maxRunSearch bounds the run numbers tried after a refused one.
const maxRunSearch = 1000

// openWriter opens the series' files. A run number that already has files
// is never overwritten (unless the policy is backup) and never makes the
// series vanish: the series is written under the next free run number,
// which is published in writer-run (and so used from then on), the
// results-file and writer-template, and said once in the log. It is not an
// error: nothing was lost and nothing was overwritten.
func (p *Pipeline) openWriter(cfg writer.Config, h cbf.Header) (*writer.Series, error) {
	w, err := writer.Open(cfg, h)
	if err == nil || !errors.Is(err, writer.ErrExists) {
		return w, err
	}
	refused := cfg.Run
	for run := cfg.Run + 1; run <= min(cfg.Run+maxRunSearch, maxRun); run++ {
		cfg.Run = run
		w, err2 := writer.Open(cfg, h)
		if errors.Is(err2, writer.ErrExists) {
			continue
		}
		if err2 != nil {
			return nil, err2
		}
		p.mu.Lock()
		if p.writerCfg.Prefix == cfg.Prefix && p.writerCfg.Directory == cfg.Directory && p.writerCfg.Run == refused {
			p.writerCfg.Run = run
		}
		p.mu.Unlock()
		p.dev.Stream.WriterRun.SetInt32(int32(run))
		p.log.Warn().Str("prefix", cfg.Prefix).Int("run", refused).Int("written_as_run", run).
			Msg("run already has files (kept): this series is written under the next free run number, now in writer-run")
		return w, nil
	}
	return nil, err
}

// maxRun is the largest run number writer-run accepts.
const maxRun = 99999

// geometry takes the analysis geometry from the header, with the
// configured fallbacks for what the header lacks.
func (p *Pipeline) geometry(h *stream.Series, width, height int) analysis.Geometry {
	g := analysis.Geometry{
		Width: width, Height: height,
		BeamX: h.BeamCenterX, BeamY: h.BeamCenterY,
		Distance: h.DetectorDistance, Wavelength: h.Wavelength,
		PixelSize: h.PixelSizeX,
	}
	if g.BeamX == 0 && g.BeamY == 0 {
		g.BeamX, g.BeamY = p.cfg.DefaultBeamX, p.cfg.DefaultBeamY
		if g.BeamX == 0 && g.BeamY == 0 {
			g.BeamX, g.BeamY = float64(width)/2, float64(height)/2
			p.log.Warn().Uint64("series", h.ID).Msg("no beam centre in the header or configuration: using the detector centre")
		}
	}
	// Header, configuration and CBF Beam_xy count from the first pixel's
	// outer edge; the analysis centres pixel i on i.
	g.BeamX -= stream.PixelCentre
	g.BeamY -= stream.PixelCentre
	p.distanceSource = "header"
	if g.Distance == 0 {
		g.Distance = p.cfg.DefaultDistance
		p.distanceSource = "configuration (the header has none)"
		if !p.warnedDistance {
			p.warnedDistance = true
			p.log.Warn().Uint64("series", h.ID).Float64("distance_m", g.Distance).
				Msg("the series header has no detector distance: using detector.distance from the configuration (said once; detector-distance-source says it per series)")
		}
	}
	if g.Wavelength == 0 {
		g.Wavelength = p.cfg.DefaultWavelength
	}
	if g.PixelSize == 0 {
		if prof, ok := detectormodel.BySize(width, height); ok {
			g.PixelSize = prof.PixelSize
		} else {
			g.PixelSize = 75e-6
		}
	}
	return g
}

// pixelMask returns the series' pixel mask for the scored channel, when
// the header carried one of the frame's size.
func pixelMask(h *stream.Series, channel string, width, height int) []uint32 {
	for _, t := range h.PixelMask {
		if t.Uint32 == nil || t.Width != width || t.Height != height {
			continue
		}
		if channel == "" || t.Channel == "" || t.Channel == channel {
			return t.Uint32
		}
	}
	return nil
}

// setupGrid lays out the raster: a geometry in the header appendix wins
// over the scan device's properties.
func (p *Pipeline) setupGrid(s *series) {
	sc := p.dev.Scan
	g, found, err := raster.GeometryFrom(s.header.Appendix.Value)
	if err != nil {
		p.log.Warn().Err(err).Msg("raster geometry in the series header ignored")
	}
	source := "header"
	if !found || err != nil {
		p.mu.Lock()
		g = p.grid
		p.mu.Unlock()
		source = "property"
		if !g.Valid() {
			source = "none"
		}
	} else {
		sc.Lines.SetInt32(int32(g.Lines))
		sc.FramesPerLine.SetInt32(int32(g.FramesPerLine))
		sc.Serpentine.SetBool(g.Serpentine)
	}
	sc.Source.SetText(source)
	p.layoutGrid(s, g)
}

// layoutGrid (re)builds the score grid of s from the records so far, so a
// geometry set after the series started still shows every frame.
func (p *Pipeline) layoutGrid(s *series, g raster.Grid) {
	sc := p.dev.Scan
	if !g.Valid() {
		s.grid.Store(nil)
		_ = sc.ScoreGrid.Set(properties.Float32s(nil))
		_ = sc.SpotsGrid.Set(properties.Float32s(nil))
		sc.Progress.SetFloat(0)
		sc.FramesDone.SetInt32(0)
		return
	}
	m := raster.NewMap(g)
	fill := func() {
		pass := s.store.Pass()
		for i := 0; i+results.PassWidth <= len(pass); i += results.PassWidth {
			m.Set(int(pass[i]), pass[i+2], int(pass[i+1]))
		}
	}
	fill()
	s.grid.Store(m)
	// Records committed while the map was built went to the old map: lay
	// them out again (Set is idempotent).
	fill()
	p.publishGrid(s)
}

func (p *Pipeline) publishGrid(s *series) {
	sc := p.dev.Scan
	m := s.grid.Load()
	if m == nil {
		return
	}
	_ = sc.ScoreGrid.Set(properties.Float32s(m.Scores()))
	_ = sc.SpotsGrid.Set(properties.Float32s(m.Spots()))
	done := m.Done()
	sc.FramesDone.SetInt32(int32(done))
	sc.Progress.SetFloat(100 * float64(done) / float64(m.Grid().Frames()))
	if f, score := m.Best(); f >= 0 {
		sc.BestFrame.SetInt32(int32(f))
		sc.BestScore.SetFloat(float64(score))
		l, c, _ := m.Grid().Cell(f)
		_ = sc.BestCell.Set(properties.Int32s([]int32{int32(l), int32(c)}))
	} else {
		sc.BestFrame.SetInt32(-1)
		sc.BestScore.SetFloat(0)
	}
}

// endSeries waits for every accepted frame, closes the files, publishes the
// final results (the complete arrays once more) and the summary.
func (p *Pipeline) endSeries(s *series, e *stream.End) {
	if s.w != nil {
		p.dev.Stream.Status.SetText(contract.StatusWriting)
	}
	s.waitCommitted()
	p.cur.Store(nil)

	sum := Summary{
		SeriesID: s.id, Expected: s.header.NumberOfImages, Received: int(s.received.Load()),
		Processed: int(s.committed.Load()), Written: int(s.written.Load()),
		BadFrames: int(s.bad.Load()), Hits: int(s.hits.Load()), EndReason: e.Reason,
		Elapsed: time.Since(s.started),
	}
	if e.Reason == "" {
		sum.EndReason = stream.EndReceived
	}
	s.frames.finish(!e.Synthesized)
	sum.Dropped = int(s.frames.lost.Load())
	sum.BeyondNImages = int(s.frames.beyond.Load())
	sum.Complete = !e.Synthesized && sum.Dropped == 0

	var problems []string
	if s.w != nil {
		closeErr := s.w.Close()
		st := s.w.Stats()
		sum.Template, sum.Results, sum.HitList, sum.Spots = s.w.Template(), s.w.ResultsPath(), s.w.HitsPath(), s.w.SpotsPath()
		sum.WriteError = st.LastError
		if st.Failed > 0 {
			problems = append(problems, notWritten(st.Failed, st.LastError))
		}
		if closeErr != nil && (st.Failed == 0 || !strings.Contains(closeErr.Error(), st.LastError)) {
			problems = append(problems, closeErr.Error())
		}
	}
	if s.writerErr != "" {
		sum.WriteError = s.writerErr
		problems = append(problems, notWritten(s.failed.Load(), s.writerErr))
	}
	if n := s.unwritable.Load(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d frames could not be decoded (recorded with zero results, not written)", n))
	}
	if s.analysisErr != "" {
		problems = append(problems, s.analysisErr)
	}
	if m := s.grid.Load(); m != nil && !p.cfg.DisableHeatMap {
		if path, err := p.writeHeatMap(s, m); err != nil {
			problems = append(problems, err.Error())
		} else if path != "" {
			sum.HeatMap = path
			p.dev.Scan.HeatMap.SetText(path)
		}
	}
	abortNote := ""
	if !sum.Complete {
		p.incomplete.Add(1)
		ended := fmt.Sprintf("series %d ended (%s) after %d of %d frames", s.id, sum.EndReason, sum.Received, sum.Expected)
		if sum.EndReason == stream.EndAborted {
			// An abort is what the user asked for: the series is
			// incomplete, not failed (beamline-operations.md, "Aborts").
			// count-incomplete-series says so; the status is an error only
			// if something else went wrong (frames lost before the abort,
			// files not written).
			p.log.Warn().Uint64("series", s.id).Int("received", sum.Received).Uint64("nimages", sum.Expected).
				Int("written", sum.Written).Msg(ended + ": incomplete, not failed; every frame received before the abort is written and reported")
			abortNote = ended
		} else {
			problems = append([]string{ended}, problems...)
		}
	}
	if sum.Dropped > 0 {
		problems = append(problems, fmt.Sprintf("%d frames lost between detector and server", sum.Dropped))
	}
	if sum.BeyondNImages > 0 {
		problems = append(problems, fmt.Sprintf("%d frames numbered beyond nimages %d (kept)", sum.BeyondNImages, sum.Expected))
	}
	if abortNote != "" && len(problems) > 0 {
		problems = append([]string{abortNote}, problems...) // the context of what else went wrong
	}

	// The final figures and the end status in one batch: "done" arrives
	// with the final counters, not before them.
	properties.Batch(func() {
		p.exportFinal(s)
		st := p.dev.Stream
		if len(problems) > 0 {
			st.Status.SetText(contract.ErrorStatus(strings.Join(problems, "; ")))
			p.reportError(strings.Join(problems, "; "))
		} else {
			st.Status.SetText(contract.StatusDone)
		}
	})
	p.lastSummary.Store(&sum)
	p.log.Info().Uint64("series", s.id).Str("end", string(sum.EndReason)).Int("received", sum.Received).
		Int("processed", sum.Processed).Int("written", sum.Written).Int("hits", sum.Hits).Int("dropped", sum.Dropped).
		Int("bad_frames", sum.BadFrames).Dur("elapsed", sum.Elapsed).Str("results", sum.Results).Msg("series end")
	if p.sink != nil {
		p.sink.SeriesEnded(s.id)
	}
	if p.observer != nil {
		p.observer.SeriesEnded(sum)
	}
}

func (p *Pipeline) writeHeatMap(s *series, m *raster.Map) (string, error) {
	var dir, base string
	if s.w != nil {
		tpl := s.w.Template()
		dir = filepath.Dir(tpl)
		base = strings.TrimSuffix(filepath.Base(s.w.ResultsPath()), writer.ResultsSuffix)
	} else {
		p.mu.Lock()
		cfg := p.writerCfg
		p.mu.Unlock()
		if cfg.Directory == "" {
			return "", nil
		}
		dir, base = cfg.Directory, fmt.Sprintf("%s_%d_", cfg.Prefix, cfg.Run)
	}
	path := filepath.Join(dir, base+"heatmap.png")
	// The figure's title: prefix and run from the file names actually
	// used (<prefix>_<run>_), the series and when it started.
	opt := raster.HeatMapOptions{Series: int64(s.header.ID), Date: s.started}
	stem := strings.TrimSuffix(base, "_")
	if i := strings.LastIndexByte(stem, '_'); i > 0 {
		if run, err := strconv.Atoi(stem[i+1:]); err == nil {
			opt.Prefix, opt.Run = stem[:i], run
		}
	}
	if opt.Prefix == "" {
		opt.Prefix = stem
	}
	if err := m.WritePNGFile(path, opt); err != nil {
		return "", err
	}
	return path, nil
}

func (p *Pipeline) reportError(msg string) {
	p.dev.Stream.LastError.SetText(msg)
	p.log.Error().Msg(msg)
}

func (p *Pipeline) publishSeriesStart(s *series) {
	h := s.header
	st := p.dev.Stream
	st.SeriesID.SetInt32(int32(h.ID))
	st.SeriesUniqueID.SetText(h.UniqueID)
	st.NImages.SetInt32(int32(min(h.NumberOfImages, 1<<31-1)))
	st.StreamVersion.SetInt32(int32(h.Version))
	st.Encoding.SetText("")
	desc := strings.TrimSpace(h.Description + " " + h.SerialNumber)
	st.DetectorDesc.SetText(desc)
	st.PhotonEnergy.SetFloat(h.PhotonEnergy)
	arrival := h.Arrival
	if arrival.IsZero() {
		arrival = s.started
	}
	st.SeriesStart.SetText(arrival.UTC().Format(time.RFC3339Nano))
	for _, prop := range []*properties.Property{st.FrameCount, st.FramesReceived, st.FramesWritten, st.Hits, st.CountDropped,
		st.BadFrames, st.Overloaded, st.BeyondNImages, st.IceFrames, st.ShapeRejected, st.BlobFragments, st.FilesWritten, st.FilesFailed, st.FilesPending} {
		prop.SetInt32(0)
	}
	_ = st.IceRingsLast.Set(properties.Float64s([]float64{}))
	st.HitRate.SetFloat(0)
	p.timing.publish(st.TimingDecode, st.TimingAnalyse, st.TimingWrite, st.TimingLatency)
	st.AverageSpeed.SetFloat(0)
	st.DozorAverageI.SetFloat(0)
	st.BytesWritten.SetFloat(0)
	// A new series starts with a clean slate: an error of the previous
	// series stays in the log, not in last-error (what happens from now on
	// is reported again).
	p.exportMu.Lock()
	p.errorsSince.Store(arrival.UnixNano())
	p.lastReceiverError = ""
	st.LastError.SetText("")
	p.exportMu.Unlock()
	st.WriterError.SetText("")
	st.WriterTemplate.SetText("")
	st.ResultsFile.SetText("")
	st.HitListFile.SetText("")
	st.SpotsFile.SetText("")
	p.dev.Scan.HeatMap.SetText("")
	store := s.store
	st.DozorPass.Compute(func() properties.Value { return properties.Float32Records(results.PassWidth, store.Pass()) })
	st.DozorPassIS.Compute(func() properties.Value { return properties.Float32Records(results.ISWidth, store.IS()) })
	st.DozorPass.Notify()
	st.DozorPassIS.Notify()
}

// errNoSeries is returned by queries that need a series.
var errNoSeries = fmt.Errorf("%w: no series has been received yet", properties.ErrNoData)
