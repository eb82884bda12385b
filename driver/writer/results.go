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
// survives write errors: what could not be written stays buffered (a
// partly written line is completed first) and is tried again at the next
// flush, so a disk that fills up and is then cleared loses nothing unless
// the buffer bound is reached.
type lineFile struct {
	path        string
	buf         []byte
	headPartial bool // buf starts in the middle of a line already partly on disk
	limit       int  // bound of buf after a failed flush; 0 means maxLineBuffer
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

// AddResult appends a frame's result line, its hit-list line (when it is a
// hit whose image was written) and its spot lines. Call it in frame order.
// Lines are buffered and written when FlushInterval has passed since the
// last write, by Flush, and by Close; an error means the result files could
// not be written (the lines stay buffered and are tried again).
func (s *Series) AddResult(res Result, spots []Spot) error {
	r := &s.res
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return &Error{Frame: -1, Path: r.res.path, Op: "append", Cause: CauseOther, Err: ErrClosed}
	}
	b := r.res.buf
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
	b = append(b, "}\n"...)
	r.res.buf = b
	r.res.lines.Add(1)

	if res.Hit {
		if res.File != "" {
			r.hits.buf = append(append(r.hits.buf, res.File...), '\n')
			r.hits.lines.Add(1)
		} else {
			r.hitsNotWritten.Add(1)
		}
	}
	b = r.spt.buf
	for _, sp := range spots {
		b = strconv.AppendInt(b, int64(res.Frame), 10)
		for _, v := range [...]float64{sp.X, sp.Y, sp.Intensity, sp.Sigma, sp.D} {
			b = append(b, ' ')
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
		b = append(b, '\n')
	}
	r.spt.buf = b
	r.spt.lines.Add(uint64(len(spots)))

	if time.Since(r.lastFlush) >= s.cfg.FlushInterval {
		return r.flushLocked(s)
	}
	return nil
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
