package writer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Result is the analysis outcome of one frame, as the pipeline maps it
// from the analysis package.
type Result struct {
	Frame      int     // 0-based frame number in the series
	File       string  // full path returned by Series.Write; "" if not written
	Spots      int     // number of spots found
	Score      float64 // quality score
	Resolution float64 // estimated resolution d in Å, 0 = none
	IS         float64 // integrated signal of the spots
	Hit        bool    // the frame counts as a hit
	Ice        bool    // an ice ring was detected (its spots are not among Spots)
}

// Spot is one spot of a frame.
type Spot struct {
	X, Y      float64 // pixels, fast and slow axis
	Intensity float64 // integrated counts above background
	Sigma     float64 // its standard deviation
	D         float64 // resolution in Å, 0 = unknown
}

// File names of the per-series outputs, after "<prefix>_<run>_".
const (
	ResultsSuffix = "results.jsonl"
	HitsSuffix    = "hits.lst"
	SpotsSuffix   = "spots.txt"
	spotsHeading  = "# frame x y intensity sigma d\n"
)

// maxLineBuffer bounds the unwritten bytes kept per result file while its
// disk refuses writes; beyond it the oldest complete lines are dropped and
// counted.
const maxLineBuffer = 16 << 20

// lineFile is an append-only text file written through an in-memory
// buffer. Each flush opens the file for appending, writes and closes it:
// no descriptor is held between flushes, so the file system may be
// remounted or the directory recreated meanwhile. Unlike bufio.Writer it
// survives write errors: what could not be written stays buffered and is
// tried again at the next flush, so a disk that fills up and is then
// cleared loses nothing unless the buffer bound is reached. A line that a
// full disk cut short is truncated away again, so the file only ever holds
// whole lines (a reader never sees half a record); only when even the
// truncation fails is the rest of that line completed at the next flush.
type lineFile struct {
	path        string
	buf         []byte
	size        int64 // bytes of the file on disk (it is created empty)
	headPartial bool  // buf starts in the middle of a line already partly on disk
	limit       int   // bound of buf after a failed flush; 0 means maxLineBuffer
	// Counters are atomic so that Stats never waits for a slow disk.
	lines   atomic.Uint64
	dropped atomic.Uint64
}

// flush appends the buffer to the file, and fsyncs it when sync is set.
func (l *lineFile) flush(fsys FS, sync bool) (op string, err error) {
	if len(l.buf) == 0 && !sync {
		return "", nil
	}
	f, err := fsys.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return "open", err
	}
	n, err := f.Write(l.buf)
	op = "append"
	if err == nil && sync {
		err, op = f.Sync(), "sync"
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err, op = cerr, "close"
	}
	if n > 0 && l.buf[n-1] != '\n' && !l.headPartial {
		// Take the cut line back: keep whole lines only on disk.
		whole := bytes.LastIndexByte(l.buf[:n], '\n') + 1
		if fsys.Truncate(l.path, l.size+int64(whole)) == nil {
			n = whole
		}
	}
	l.size += int64(n)
	if n > 0 {
		l.headPartial = l.buf[n-1] != '\n'
		l.buf = l.buf[:copy(l.buf, l.buf[n:])]
	}
	limit := l.limit
	if limit == 0 {
		limit = maxLineBuffer
	}
	if err != nil && len(l.buf) > limit {
		keep := 0
		if l.headPartial {
			keep = bytes.IndexByte(l.buf, '\n') + 1
		}
		l.dropped.Add(uint64(bytes.Count(l.buf[keep:], []byte{'\n'})))
		l.buf = l.buf[:keep]
	}
	return op, err
}

// results holds the three per-series output files.
type results struct {
	mu             sync.Mutex
	closed         bool
	res, hits, spt lineFile
	lastFlush      time.Time
	next           int              // the frame whose lines are due next
	waiting        map[int]*waiting // frames that arrived before an earlier one
	hitsNotWritten atomic.Uint64
	flushErrors    atomic.Uint64
}

func (r *results) files() [3]*lineFile { return [3]*lineFile{&r.res, &r.hits, &r.spt} }

// open creates the three files, refusing (OverwriteRefuse) or renaming
// aside (OverwriteBackup) existing ones.
func (r *results) open(s *Series) error {
	r.res.path = filepath.Join(s.dir, s.base+ResultsSuffix)
	r.hits.path = filepath.Join(s.dir, s.base+HitsSuffix)
	r.spt.path = filepath.Join(s.dir, s.base+SpotsSuffix)
	for _, l := range r.files() {
		f, err := s.fs.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) && s.cfg.Overwrite == OverwriteBackup {
			var bak string
			if bak, err = backupByRename(s.fs, l.path); err == nil {
				s.log.Warn().Str("path", l.path).Str("backup", bak).Msg("existing file renamed aside")
				f, err = s.fs.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			}
		}
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				err = fmt.Errorf("%w: run %d of %q already has result files", ErrExists, s.cfg.Run, s.cfg.Prefix)
			}
			return newError(-1, l.path, "create", err)
		}
	}
	r.spt.buf = append(r.spt.buf, spotsHeading...)
	r.lastFlush = time.Now()
	return nil
}

// backupByRename moves a file to "<path>.~N~". Result files are renamed,
// not linked, because the new file is created under the old name: a link
// would share the old content with it.
func backupByRename(fsys FS, path string) (string, error) {
	for n := 1; n < 1000; n++ {
		bak := path + ".~" + strconv.Itoa(n) + "~"
		if _, err := fsys.Lstat(bak); err == nil {
			continue
		}
		return bak, fsys.Rename(path, bak)
	}
	return "", fmt.Errorf("%s: 999 backups exist", path)
}

// reorderLimit bounds the frames whose result lines wait for a missing
// earlier frame. When it is reached the missing frame is taken as lost and
// the lines after it are written; should it arrive after all, its lines
// follow where it arrived.
const reorderLimit = 1024

// waiting holds the rendered lines of a frame that arrived before an
// earlier one.
type waiting struct {
	res, hits, spots []byte
}

// AddResult appends a frame's result line, its hit-list line (when it is a
// hit whose image was written) and its spot lines. The three files are in
// frame order: a frame that arrives before an earlier one waits (at most
// reorderLimit frames) for the missing one; a frame arriving after its
// successors were written goes where it arrived. Lines are buffered and
// written when FlushInterval has passed since the last write, by Flush,
// and by Close; an error means the result files could not be written (the
// lines stay buffered and are tried again).
func (s *Series) AddResult(res Result, spots []Spot) error {
	r := &s.res
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return &Error{Frame: -1, Path: r.res.path, Op: "append", Cause: CauseOther, Err: ErrClosed}
	}
	r.res.lines.Add(1)
	r.spt.lines.Add(uint64(len(spots)))
	if res.Hit && res.File == "" {
		r.hitsNotWritten.Add(1)
	}
	if res.Hit && res.File != "" {
		r.hits.lines.Add(1)
	}
	switch {
	case res.Frame == r.next:
		r.res.buf, r.hits.buf, r.spt.buf = appendResult(r.res.buf, r.hits.buf, r.spt.buf, res, spots)
		r.next++
		r.release()
	case res.Frame < r.next || r.waiting[res.Frame] != nil:
		// Later than reorderLimit frames, or a repeated number.
		r.res.buf, r.hits.buf, r.spt.buf = appendResult(r.res.buf, r.hits.buf, r.spt.buf, res, spots)
	default:
		w := &waiting{}
		w.res, w.hits, w.spots = appendResult(nil, nil, nil, res, spots)
		if r.waiting == nil {
			r.waiting = make(map[int]*waiting)
		}
		r.waiting[res.Frame] = w
		if len(r.waiting) > reorderLimit {
			r.next = r.firstWaiting()
			r.release()
		}
	}
	if time.Since(r.lastFlush) >= s.cfg.FlushInterval {
		return r.flushLocked(s)
	}
	return nil
}

// release appends the waiting frames that follow on r.next.
func (r *results) release() {
	for len(r.waiting) > 0 {
		w := r.waiting[r.next]
		if w == nil {
			return
		}
		r.res.buf = append(r.res.buf, w.res...)
		r.hits.buf = append(r.hits.buf, w.hits...)
		r.spt.buf = append(r.spt.buf, w.spots...)
		delete(r.waiting, r.next)
		r.next++
	}
}

func (r *results) firstWaiting() int {
	first := -1
	for f := range r.waiting {
		if first < 0 || f < first {
			first = f
		}
	}
	return first
}

// releaseAll appends every waiting frame in frame order (the series ends:
// the missing frames will not come).
func (r *results) releaseAll() {
	for len(r.waiting) > 0 {
		r.next = r.firstWaiting()
		r.release()
	}
}

// appendResult renders a frame's lines.
func appendResult(b, hits, spt []byte, res Result, spots []Spot) ([]byte, []byte, []byte) {
	b = append(b, `{"frame":`...)
	b = strconv.AppendInt(b, int64(res.Frame), 10)
	b = append(b, `,"file":`...)
	if res.File == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, res.File)
	}
	b = append(b, `,"spots":`...)
	b = strconv.AppendInt(b, int64(res.Spots), 10)
	b = append(b, `,"score":`...)
	b = appendJSONFloat(b, res.Score)
	b = append(b, `,"resolution":`...)
	b = appendJSONFloat(b, res.Resolution)
	b = append(b, `,"is":`...)
	b = appendJSONFloat(b, res.IS)
	b = append(b, `,"hit":`...)
	b = strconv.AppendBool(b, res.Hit)
	b = append(b, `,"ice":`...)
	b = strconv.AppendBool(b, res.Ice)
	b = append(b, "}\n"...)

	if res.Hit && res.File != "" {
		hits = append(append(hits, res.File...), '\n')
	}
	for _, sp := range spots {
		spt = strconv.AppendInt(spt, int64(res.Frame), 10)
		for _, v := range [...]float64{sp.X, sp.Y, sp.Intensity, sp.Sigma, sp.D} {
			spt = append(spt, ' ')
			spt = strconv.AppendFloat(spt, v, 'g', -1, 64)
		}
		spt = append(spt, '\n')
	}
	return b, hits, spt
}

// Flush writes the buffered result lines now (the pipeline may call it
// from its periodic export).
func (s *Series) Flush() error {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	if s.res.closed {
		return nil
	}
	return s.res.flushLocked(s)
}

func (r *results) flushLocked(s *Series) error {
	r.lastFlush = time.Now()
	var errs []error
	for _, l := range r.files() {
		if op, err := l.flush(s.fs, false); err != nil {
			r.flushErrors.Add(1)
			errs = append(errs, s.failOutput(newError(-1, l.path, op, err)))
		}
	}
	return errors.Join(errs...)
}

func (r *results) close(s *Series) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.releaseAll()
	var errs []error
	for _, l := range r.files() {
		if op, err := l.flush(s.fs, s.cfg.Fsync != FsyncNever); err != nil {
			r.flushErrors.Add(1)
			errs = append(errs, s.failOutput(newError(-1, l.path, op, err)))
		}
		if len(l.buf) > 0 {
			// Nothing will try again: these lines are lost.
			l.dropped.Add(uint64(bytes.Count(l.buf, []byte{'\n'})))
			errs = append(errs, s.failOutput(newError(-1, l.path, "close",
				fmt.Errorf("%d bytes of results could not be written", len(l.buf)))))
			l.buf = nil
		}
	}
	return errors.Join(errs...)
}

func (r *results) stats(st *Stats) {
	st.Results, st.Hits, st.SpotRows = r.res.lines.Load(), r.hits.lines.Load(), r.spt.lines.Load()
	st.ResultErrors = r.flushErrors.Load()
	st.ResultLinesDropped = r.res.dropped.Load() + r.hits.dropped.Load() + r.spt.dropped.Load()
	st.HitsNotWritten = r.hitsNotWritten.Load()
}

// ResultsPath, HitsPath and SpotsPath are the per-series output files.
func (s *Series) ResultsPath() string { return s.res.res.path }
func (s *Series) HitsPath() string    { return s.res.hits.path }
func (s *Series) SpotsPath() string   { return s.res.spt.path }

// appendJSONFloat writes a JSON number; NaN and infinities, which JSON
// cannot express, are written as null.
func appendJSONFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendJSONString writes s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
