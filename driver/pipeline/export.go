package pipeline

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"tioga/device/contract"
	"tioga/driver/results"
	"tioga/driver/writer"
	"tioga/properties"
)

// export is the periodic job (every ExportPeriod): new records go out as
// event batches, counters and statistics are refreshed.
//
// Each export is one batch (properties.Batch): a client hears of it as one
// consistent update with one timestamp, never frame-count of this export
// next to hits of the last.
func (p *Pipeline) export() {
	p.exportMu.Lock()
	defer p.exportMu.Unlock()
	properties.Batch(func() {
		p.publishCounters()
		if s := p.cur.Load(); s != nil {
			p.exportSeries(s, time.Now())
		}
	})
}

// exportFinal publishes what is left of a finished series, then the
// complete arrays once more: clients consider processing finished when they
// hold the announced number of records.
func (p *Pipeline) exportFinal(s *series) {
	p.exportMu.Lock()
	defer p.exportMu.Unlock()
	properties.Batch(func() {
		p.exportSeries(s, time.Now())
		st := p.dev.Stream
		st.DozorPass.Emit(properties.Float32Records(results.PassWidth, s.store.Pass()))
		st.DozorPassIS.Emit(properties.Float32Records(results.ISWidth, s.store.IS()))
		p.publishCounters()
	})
}

func (p *Pipeline) exportSeries(s *series, now time.Time) {
	st := p.dev.Stream
	if pass, is := s.store.TakeNew(); len(pass) > 0 {
		st.DozorPass.Emit(properties.Float32Records(results.PassWidth, pass))
		st.DozorPassIS.Emit(properties.Float32Records(results.ISWidth, is))
	}
	n := int(s.committed.Load())
	st.FrameCount.SetInt32(clamp32(n))
	st.AverageSpeed.SetFloat(p.speed.Observe(now, n))
	sum := s.store.Summary()
	st.DozorAverageI.SetFloat(sum.MeanSpotI)
	st.FramesReceived.SetInt32(clamp32(int(s.received.Load())))
	st.FramesWritten.SetInt32(clamp32(int(s.written.Load())))
	hits := int(s.hits.Load())
	st.Hits.SetInt32(clamp32(hits))
	if n > 0 {
		st.HitRate.SetFloat(100 * float64(hits) / float64(n))
	}
	st.CountDropped.SetInt32(clamp32(int(s.frames.lost.Load())))
	st.BeyondNImages.SetInt32(clamp32(int(s.frames.beyond.Load())))
	st.BadFrames.SetInt32(clamp32(int(s.bad.Load())))
	st.Overloaded.SetInt32(clamp32(int(s.overloaded.Load())))
	p.timing.publish(st.TimingDecode, st.TimingAnalyse, st.TimingWrite, st.TimingLatency)
	st.IceFrames.SetInt32(clamp32(int(s.ice.Load())))
	st.ShapeRejected.SetInt32(clamp32(int(s.shapeRej.Load())))
	st.BlobFragments.SetInt32(clamp32(int(s.blobFrag.Load())))
	st.HotPixels.SetInt32(clamp32(p.hot.Pixels()))
	if rings, ok := s.lastIceRings(); ok {
		_ = st.IceRingsLast.Set(properties.Float64s(rings))
	}

	x := p.ssx.Stats()
	st.SSXFrames.SetInt32(clamp32(x.Frames))
	st.SSXHits.SetInt32(clamp32(x.Hits))
	st.SSXHitRate.SetFloat(x.HitRate)
	st.SSXMeanRes.SetFloat(x.MeanResolution)
	st.SSXSpotsPerHit.SetFloat(x.SpotsPerHit)

	writerProblem := ""
	if s.w != nil {
		if err := s.w.Flush(); err != nil {
			st.WriterError.SetText(err.Error())
		}
		ws := s.w.Stats()
		st.FilesWritten.SetInt32(clamp32(int(ws.Written)))
		st.FilesFailed.SetInt32(clamp32(int(ws.Failed) + int(s.unwritable.Load())))
		st.FilesPending.SetInt32(clamp32(int(ws.Pending)))
		st.BytesWritten.SetFloat(float64(ws.Bytes))
		st.FreeDisk.SetFloat(float64(ws.FreeBytes))
		st.WriterError.SetText(ws.LastError)
		if ws.Failed > 0 {
			writerProblem = notWritten(int64(ws.Failed), ws.LastError)
		}
	}
	if s.w == nil && s.writerErr != "" {
		failed := s.failed.Load()
		st.FilesFailed.SetInt32(clamp32(int(failed)))
		if failed > 0 {
			writerProblem = notWritten(failed, s.writerErr)
		}
	}
	p.publishGrid(s)

	// Status while the series is open: processing once frames flow, or
	// the writer's failure (frames still analysed, files missing).
	if p.cur.Load() == s {
		switch {
		case writerProblem != "":
			st.Status.SetText(contract.ErrorStatus(writerProblem))
		case n > 0:
			st.Status.SetText(contract.StatusProcessing)
		}
	}
}

// publishCounters refreshes the counters that live across series.
func (p *Pipeline) publishCounters() {
	st := p.dev.Stream
	if p.receiver != nil {
		c := p.receiver.Stats()
		st.Stragglers.SetInt32(clamp32(int(c.Stragglers)))
		st.Malformed.SetInt32(clamp32(int(c.Malformed)))
		st.MissedHeader.SetInt32(clamp32(int(c.MissedHeader)))
		st.SeriesTimeouts.SetInt32(clamp32(int(c.Timeouts)))
		st.OutOfOrder.SetInt32(clamp32(int(c.OutOfOrder)))
		st.Duplicates.SetInt32(clamp32(int(c.Duplicates)))
		st.AbortDropped.SetInt32(clamp32(int(c.AbortDropped)))
		st.Superseded.SetInt32(clamp32(int(c.Superseded)))
		st.Restarts.SetInt32(clamp32(int(c.Restarts)))
		st.HeaderUnusable.SetInt32(clamp32(int(c.HeaderUnusable)))
		// The receiver's last problem, unless it is older than the series
		// (a clean series clears last-error).
		if c.LastError != "" && c.LastError != p.lastReceiverError && c.LastErrorAt.UnixNano() >= p.errorsSince.Load() {
			p.lastReceiverError = c.LastError
			st.LastError.SetText(c.LastError)
		}
	}
	st.BackPressure.SetInt32(clamp32(int(p.backPressure.Load())))
	depth := len(p.queue)
	st.QueueDepth.SetInt32(int32(depth))
	if depth < cap(p.queue) {
		st.QueueState.SetText("ok")
		p.queueFullShown.Store(false) // after "ok": the next full queue says so again
	}
	st.SeriesIncomplete.SetInt32(clamp32(int(p.incomplete.Load())))
}

// housekeepingPeriod is how often the idle-time state is refreshed.
const housekeepingPeriod = 10 * time.Second

// housekeeping refreshes what changes without a series: the counters, and
// the free space where the next series will write (operators check it
// before they start a collection; during a series the writer reports it).
func (p *Pipeline) housekeeping() {
	p.exportMu.Lock()
	properties.Batch(p.publishCounters)
	p.exportMu.Unlock()
	if p.cur.Load() != nil {
		return
	}
	cfg, enabled := p.WriterConfig()
	if !enabled || cfg.Directory == "" {
		return
	}
	fsys := cfg.FS
	if fsys == nil {
		fsys = writer.OS
	}
	// The directory may not exist yet (the writer creates it): ask the
	// nearest existing parent, which is the file system it will be on.
	for dir := filepath.Clean(cfg.Directory); ; dir = filepath.Dir(dir) {
		if free, err := fsys.FreeBytes(dir); err == nil {
			p.dev.Stream.FreeDisk.SetFloat(float64(free))
			return
		}
		if dir == filepath.Dir(dir) {
			return
		}
	}
}

// notWritten says how many frames the writer could not write and why, in
// one statement ("writer: 6 frames not written: create /d/f_1_00005.cbf:
// permission denied").
func notWritten[N int64 | uint64](n N, cause string) string {
	return fmt.Sprintf("writer: %d frames not written: %s", n, strings.TrimPrefix(cause, "writer: "))
}

func clamp32(n int) int32 {
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	if n < math.MinInt32 {
		return math.MinInt32
	}
	return int32(n)
}
