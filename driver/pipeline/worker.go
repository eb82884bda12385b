package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"tioga/driver/analysis"
	"tioga/driver/cbf"
	"tioga/driver/codec"
	"tioga/driver/results"
	"tioga/driver/stream"
	"tioga/driver/writer"
)

// job carries one frame through a worker to the committer. Jobs are pooled:
// their spot buffers keep their storage from frame to frame.
type job struct {
	series *series
	image  *stream.Image // released (Image.Release) by the worker once decoded
	number uint64        // image number (0-based frame)
	seq    uint64

	// Filled by the worker.
	res      analysis.Result // only the scalars are used after the worker
	analysed bool
	overload bool
	ice      bool
	shapeRej int
	blobFrag int
	iceRings []float64 // d (Å) of the frame's ice rings
	path     string    // "" when not written
	writeErr error
	err      error     // decode or analysis failure
	spots    []float32 // results.SpotWidth per spot
	spotXY   []float32 // x, y per spot
	meanI    float32

	// Stage timing (see timing.go): arrival at the receiver (or at the
	// pipeline, for sources that do not stamp it) and the worker's stages.
	arrival                time.Time
	decode, analyse, write time.Duration
}

// worker is one frame worker: it owns its decoder, analyser, decode buffer
// and encoder scratch, so the per-frame path allocates nothing once warm.
func (p *Pipeline) worker(id int) {
	defer p.wg.Done()
	dec := codec.NewDecoder()
	var (
		an      *analysis.Analyser
		res     analysis.Result
		buf     []byte
		scratch writer.Scratch
	)
	for j := range p.queue {
		t0 := time.Now()
		s := j.series
		img := j.image
		// What the stages after decoding need of the image: the image
		// itself goes back to the receiver once decoded.
		number, width, height, elemSize, enc := img.Number, img.Width, img.Height, img.ElemSize, img.Encoding
		if !s.prepared {
			// Cannot happen: the dispatcher prepares before queueing.
			j.err = errors.New("series not prepared")
			j.releaseImage()
			p.done <- j
			continue
		}
		size := img.DecodedSize()
		if width != s.width || height != s.height || elemSize != s.elemSize {
			j.err = fmt.Errorf("frame %d is %dx%d x %d bytes, the series is %dx%d x %d", number,
				width, height, elemSize, s.width, s.height, s.elemSize)
			j.releaseImage()
			p.done <- j
			continue
		}
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		_, err := dec.Decode(buf, img.Data, enc, elemSize)
		// The encoded message is no longer needed: its buffer goes back to
		// the receiver for a later frame.
		j.releaseImage()
		img = nil
		t1 := time.Now()
		j.decode = t1.Sub(t0)
		if err != nil {
			j.err = fmt.Errorf("frame %d: decode %s: %w", number, enc, err)
			p.done <- j
			continue
		}
		if t := s.tables.Load(); t != nil {
			if an == nil {
				an = analysis.NewAnalyser(t)
			} else if an.Tables() != t {
				an.SetTables(t)
			}
			if err := an.Analyse(buf, elemSize, &res); err != nil {
				j.err = fmt.Errorf("frame %d: analyse: %w", number, err)
			} else {
				j.analysed = true
				j.res.Spots, j.res.Score, j.res.Resolution, j.res.IS, j.res.Hit = res.Spots, res.Score, res.Resolution, res.IS, res.Hit
				j.overload = res.Overloaded
				j.ice = res.Ice
				j.shapeRej = res.ShapeRejected
				j.blobFrag = res.BlobFragments
				j.iceRings = an.Tables().IceRingD(res.IceRings, j.iceRings[:0])
				var sumI float64
				j.spots = slices.Grow(j.spots, results.SpotWidth*len(res.SpotList))
				j.spotXY = slices.Grow(j.spotXY, 2*len(res.SpotList))
				for _, sp := range res.SpotList {
					j.spots = append(j.spots, float32(sp.X), float32(sp.Y), float32(sp.Intensity), float32(sp.Sigma), float32(sp.D))
					j.spotXY = append(j.spotXY, float32(sp.X), float32(sp.Y))
					sumI += sp.Intensity
				}
				if res.Spots > 0 {
					j.meanI = float32(sumI / float64(res.Spots))
				}
			}
		}
		t2 := time.Now()
		j.analyse = t2.Sub(t1)
		if s.w != nil {
			path, err := s.w.Write(&scratch, int(number), cbf.Pixels{Data: buf, Width: width, Height: height, ElemSize: elemSize})
			j.path, j.writeErr = path, err
			j.write = time.Since(t2)
		}
		p.done <- j
	}
}

// releaseImage hands the frame's encoded message back to the receiver
// (stream.Image.Release) and forgets it.
func (j *job) releaseImage() {
	j.image.Release()
	j.image = nil
}

// committer applies finished frames in arrival order. It only ever holds
// frames of one series: the dispatcher waits for every frame of a series to
// be committed before it queues a frame of the next one.
func (p *Pipeline) committer() {
	pending := map[uint64]*job{} // by seq, fewer than maxJobs entries
	var cur *series
	var next uint64
	for j := range p.done {
		if j.series != cur {
			cur, next = j.series, 0
			for _, k := range pending {
				// Cannot happen (see above); the jobs go back all the
				// same, since the dispatcher makes only so many.
				p.freeJob(k)
			}
			clear(pending)
		}
		pending[j.seq] = j
		for {
			k, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			p.commit(k)
		}
	}
}

// commit records one frame: store, result files, statistics, grid, spot
// ring, tracker.
func (p *Pipeline) commit(j *job) {
	s := j.series
	frame := int(j.number)
	p.timing.add(j.decode, j.analyse, j.write, time.Since(j.arrival))
	rec := results.Record{Frame: frame}
	if j.err != nil {
		s.bad.Add(1)
		p.log.Warn().Err(j.err).Uint64("series", s.id).Int("frame", frame).Msg("bad frame recorded with zero results")
		p.dev.Stream.LastError.SetText(j.err.Error())
	}
	if j.overload {
		s.overloaded.Add(1)
	}
	if j.ice {
		s.ice.Add(1)
	}
	s.shapeRej.Add(int64(j.shapeRej))
	s.blobFrag.Add(int64(j.blobFrag))
	if j.analysed {
		s.setLastIce(j.iceRings)
	}
	if j.analysed {
		rec.Spots = j.res.Spots
		rec.Score = float32(j.res.Score)
		rec.Resolution = float32(j.res.Resolution)
		rec.IS = float32(j.res.IS)
		rec.Hit = j.res.Hit
		rec.MeanI = j.meanI
		rec.Ice = j.ice
	}
	s.store.Add(rec)
	p.ssx.Add(rec)
	if rec.Hit {
		s.hits.Add(1)
	}
	if j.path != "" {
		s.written.Add(1)
	} else if j.writeErr != nil || s.writerErr != "" {
		// Not written: the writer failed this frame, or could not start
		// the series at all (then s.writerErr is the cause).
		s.failed.Add(1)
	} else if j.err != nil && s.w != nil {
		// Not written: it could not be decoded (counted as a bad frame
		// too, with its cause in last-error).
		s.unwritable.Add(1)
	}
	if s.w != nil {
		wr := writer.Result{Frame: frame, File: j.path, Spots: rec.Spots, Score: float64(rec.Score),
			Resolution: float64(rec.Resolution), IS: float64(rec.IS), Hit: rec.Hit, Ice: rec.Ice}
		spots := p.spotScratch[:0]
		for i := 0; i+results.SpotWidth <= len(j.spots); i += results.SpotWidth {
			spots = append(spots, writer.Spot{X: float64(j.spots[i]), Y: float64(j.spots[i+1]),
				Intensity: float64(j.spots[i+2]), Sigma: float64(j.spots[i+3]), D: float64(j.spots[i+4])})
		}
		p.spotScratch = spots
		if err := s.w.AddResult(wr, spots); err != nil {
			p.dev.Stream.WriterError.SetText(err.Error())
		}
	}
	if m := s.grid.Load(); m != nil {
		m.Set(frame, rec.Score, rec.Spots)
	}
	if j.analysed {
		s.ring.Put(frame, j.spots)
	}
	if p.sink != nil && j.path != "" {
		p.sink.FrameWritten(WrittenFrame{Series: s.id, Index: frame, Path: j.path, Score: rec.Score,
			Resolution: rec.Resolution, Spots: rec.Spots, Hit: rec.Hit, SpotXY: j.spotXY})
	}
	p.freeJob(j)
	s.noteCommitted()
}

// freeJob hands a committed job back to the dispatcher (never blocks: the
// list holds every job made).
func (p *Pipeline) freeJob(j *job) {
	j.image = nil
	j.series = nil
	p.freeJobs <- j
}
