// Package writer puts the frames of a series on disk as miniCBF (.cbf,
// .cbf.gz) or TIFF files and keeps the per-series result files beside them.
//
// # Files
//
// Images are named <prefix>_<run>_<number>.<ext>, number = FirstImage +
// frame, zero-padded to five digits (more digits beyond 99999), ext "cbf",
// "cbf.gz" or "tif": the template of the control contract. Per series,
// beside the images:
//
//	<prefix>_<run>_results.jsonl  one JSON object per frame:
//	    {"frame":0,"file":"/data/lyso_1_00001.cbf.gz","spots":12,"score":3.5,
//	     "resolution":2.1,"is":1234.5,"hit":true}
//	    (frame 0-based; file null when the image was not written;
//	    resolution in Å, 0 = none; non-finite numbers as null)
//	<prefix>_<run>_hits.lst       full paths of the hit images, one per line
//	                              (for indexamajig -i, nXDS)
//	<prefix>_<run>_spots.txt      one spot per line, blank-separated columns
//	                              "frame x y intensity sigma d" under a
//	                              "# frame x y intensity sigma d" heading
//	                              (x, y in pixels, d in Å, 0 = unknown):
//	                              numpy.loadtxt, awk and pandas read it as is
//
// # Guarantees
//
// A frame is reported written (Write returns its path) only once the
// complete file exists under its final name. Each file is written to a
// hidden temporary name (".<name>.part") in the same directory and then
// published, so a crash never leaves a half file under a final name; stale
// temporaries of the same prefix and run are removed when a series opens.
// Publishing uses link(2), which fails rather than replace an existing
// file, so no existing file is ever overwritten silently: with
// OverwriteRefuse (the default) the frame fails and is counted, with
// OverwriteBackup the old file is first renamed aside to "<name>.~N~".
// When to fsync is the Fsync policy.
//
// A failure (disk full, permission, read-only or missing directory) is
// returned with the path and cause, counted, logged (rate-limited) and
// remembered as the last error; the series goes on and every later frame is
// attempted again, so writing resumes by itself when space is freed or the
// directory comes back.
//
// # Concurrency
//
// One Series is shared by the N worker goroutines of the pipeline: each
// calls Write with its own Scratch (the encoder state it reuses from frame
// to frame). Results are appended by the pipeline in frame order with
// AddResult. Stats may be read at any time.
package writer

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/rs/zerolog"

	"tioga/driver/cbf"
	"tioga/driver/tiff"
)

// Format is the image file format.
type Format string

const (
	FormatCBFGzip Format = "cbf.gz" // miniCBF, gzip-compressed: the MX default
	FormatCBF     Format = "cbf"    // miniCBF
	FormatTIFF    Format = "tiff"   // 32-bit signed Deflate TIFF, for SAXS
)

// Ext is the file name extension of the format, without the dot.
func (f Format) Ext() string {
	if f == FormatTIFF {
		return "tif"
	}
	return string(f)
}

// FsyncPolicy says when written data is forced to stable storage.
type FsyncPolicy string

const (
	// FsyncNever leaves it to the kernel: fastest; a power cut may lose the
	// last seconds of files (never leaving a partial file under a final
	// name on a journalling file system).
	FsyncNever FsyncPolicy = "never"
	// FsyncFile fsyncs every file before publishing it and the directory
	// after: a frame reported written survives a power cut, at the cost of
	// a journal commit per frame.
	FsyncFile FsyncPolicy = "file"
	// FsyncSeries syncs the file system once when the series closes
	// (syncfs) and the result files: the default, durable at the end of a
	// series without a per-frame cost.
	FsyncSeries FsyncPolicy = "series"
)

// OverwritePolicy says what happens when a file to write already exists.
type OverwritePolicy string

const (
	// OverwriteRefuse (default): the existing file is kept, the new frame
	// fails with ErrExists and is counted as refused; Open refuses a series
	// whose first image or result files exist, so that a repeated run
	// number is caught before any data arrives.
	OverwriteRefuse OverwritePolicy = "refuse"
	// OverwriteBackup: the existing file is renamed aside to "<name>.~N~"
	// (the smallest free N) and the new one takes its name.
	OverwriteBackup OverwritePolicy = "backup"
)

// MD5Policy says when a miniCBF file carries a Content-MD5 line.
type MD5Policy string

const (
	// MD5Auto (default): plain .cbf files carry it, .cbf.gz files do not,
	// since the gzip CRC-32 already covers every byte of them and every
	// gzip reader checks it, while the MD5 costs as much CPU time as the
	// byte-offset encoding (a fifth of the time of writing a .cbf.gz).
	MD5Auto MD5Policy = "auto"
	// MD5Always writes Content-MD5 in every miniCBF file (CBFlib checks it
	// when present; no reader requires it).
	MD5Always MD5Policy = "always"
	// MD5Never never writes it.
	MD5Never MD5Policy = "never"
)

// Defaults of Config.
const (
	DefaultMinFreeBytes   = 2 << 30 // 2 GiB: a few seconds of EIGER 16M .cbf.gz at full rate
	DefaultFreeCheckEvery = 100
	DefaultFlushInterval  = time.Second
)

// Config describes where and how a series is written.
type Config struct {
	Directory string // made absolute; created with its parents when missing
	Prefix    string // file name prefix: letters, digits and ._+-
	Run       int    // run number, >= 0
	// FirstImage is the number of frame 0 in the file names (0 means 1,
	// the usual first image number).
	FirstImage int
	Format     Format // "" means FormatCBFGzip
	// GzipLevel is the .cbf.gz gzip level, 0 for cbf.DefaultGzipLevel.
	GzipLevel int
	// TIFFLevel is the TIFF Deflate level, 0 for tiff.DefaultLevel.
	TIFFLevel int
	// ContentMD5 says when miniCBF files carry Content-MD5; "" means
	// MD5Auto.
	ContentMD5 MD5Policy
	Fsync      FsyncPolicy     // "" means FsyncSeries
	Overwrite  OverwritePolicy // "" means OverwriteRefuse
	// MinFreeBytes is the free space below which Open refuses to start a
	// series and Stats reports DiskLow; 0 means DefaultMinFreeBytes, a
	// negative value disables the refusal (the free space is still
	// measured and reported).
	MinFreeBytes int64
	// FreeCheckEvery is how many written files apart the free space is
	// checked again; 0 means DefaultFreeCheckEvery.
	FreeCheckEvery int
	// FlushInterval is how long result lines may wait in memory before
	// AddResult writes them out; 0 means DefaultFlushInterval.
	FlushInterval time.Duration
	// FS is the file system; nil means OS.
	FS FS
	// Logger receives structured events (the writer adds its component
	// field); the zero value logs nothing.
	Logger zerolog.Logger
}

// Stats are the writer's counters for the devices to publish.
type Stats struct {
	Directory string
	Template  string // e.g. "/data/lyso_1_%05d.cbf.gz"
	Format    Format

	Written uint64 // image files on disk
	Bytes   uint64 // bytes of the image files written
	Failed  uint64 // frames not written, every cause (Refused included)
	Refused uint64 // frames not written because the file existed
	Pending int64  // frames being written now
	// FailedBy counts failures of images and result files by cause.
	FailedBy [NumCauses]uint64

	LastError   string // "" when nothing failed
	LastErrorAt time.Time

	FreeBytes     uint64 // at the last check
	FreeCheckedAt time.Time
	DiskLow       bool // free space below MinFreeBytes at the last check

	Results      uint64 // lines in the results file
	Hits         uint64 // lines in the hit list
	SpotRows     uint64 // lines in the spot list
	ResultErrors uint64 // failed flushes of the result files
	// ResultLinesDropped counts result, hit and spot lines given up after
	// the result files could not be written for so long that their buffer
	// reached its bound.
	ResultLinesDropped uint64
	// HitsNotWritten counts hits whose image was not written, hence not in
	// the hit list.
	HitsNotWritten uint64
}

// Series writes the frames and results of one series.
type Series struct {
	cfg      Config
	fs       FS
	log      zerolog.Logger
	failLog  zerolog.Logger // sampled: a full disk fails every frame
	header   cbf.Header
	dir      string
	dirSep   string // dir with a trailing separator: the images' paths start with it
	base     string // "<prefix>_<run>_"
	ext      string // cfg.Format.Ext()
	minFree  int64
	template string

	// mu is held shared by every Write in flight and exclusively by Close,
	// which so waits for writes to finish.
	mu     sync.RWMutex
	closed bool

	written, bytes, failed, refused atomic.Uint64
	failedBy                        [NumCauses]atomic.Uint64
	pending                         atomic.Int64
	sinceFreeCheck                  atomic.Int64
	diskLow                         atomic.Bool

	statMu        sync.Mutex // guards the fields below
	lastErr       string
	lastErrAt     time.Time
	freeBytes     uint64
	freeCheckedAt time.Time

	res results
}

// Open starts a series: it validates the configuration and the header,
// creates the directory, checks the free space, removes stale temporary
// files of this prefix and run, and creates the result files. It fails
// when any of that fails (so that the control system learns of a wrong
// directory or a repeated run number before data arrives).
func Open(cfg Config, h cbf.Header) (*Series, error) {
	if err := cfg.normalise(); err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	s := &Series{
		cfg:     cfg,
		fs:      cfg.FS,
		header:  h,
		dir:     cfg.Directory,
		dirSep:  strings.TrimSuffix(cfg.Directory, string(filepath.Separator)) + string(filepath.Separator),
		base:    cfg.Prefix + "_" + strconv.Itoa(cfg.Run) + "_",
		ext:     cfg.Format.Ext(),
		minFree: cfg.MinFreeBytes,
		log:     cfg.Logger.With().Str("component", "writer").Str("dir", cfg.Directory).Str("prefix", cfg.Prefix).Int("run", cfg.Run).Logger(),
	}
	s.failLog = s.log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})
	s.template = filepath.Join(s.dir, s.base+"%05d."+cfg.Format.Ext())

	if err := s.fs.MkdirAll(s.dir, 0o755); err != nil {
		return nil, newError(-1, s.dir, "create directory", err)
	}
	// The free space is measured (and published as free-disk) even when
	// the minimum is disabled: only the refusal is switched off, and a
	// free-disk of 0 would say the disk is full.
	free, err := s.fs.FreeBytes(s.dir)
	switch {
	case err != nil && s.minFree >= 0:
		return nil, newError(-1, s.dir, "check free space", err)
	case err == nil:
		s.setFree(free)
		if s.minFree >= 0 && free < uint64(s.minFree) {
			return nil, &Error{Frame: -1, Path: s.dir, Op: "start series", Cause: CauseNoSpace,
				Err: fmt.Errorf("%w: %d MiB free, minimum %d MiB", ErrDiskNearlyFull, free>>20, s.minFree>>20)}
		}
	}
	s.removeStaleTemporaries()
	if cfg.Overwrite == OverwriteRefuse {
		if _, err := s.fs.Lstat(s.Path(0)); err == nil {
			return nil, newError(-1, s.Path(0), "start series", fmt.Errorf("%w: run %d of %q already has images", ErrExists, cfg.Run, cfg.Prefix))
		}
	}
	if err := s.res.open(s); err != nil {
		return nil, err
	}
	s.log.Info().Str("template", s.template).Str("fsync", string(cfg.Fsync)).Str("overwrite", string(cfg.Overwrite)).
		Uint64("free_mib", s.Stats().FreeBytes>>20).Msg("series opened")
	return s, nil
}

// Check validates the configuration as Open will (format, prefix, run,
// policies, levels), without touching the file system: a server checks
// its configuration at start-up, not at the first series.
func (c Config) Check() error { return c.normalise() }

// CheckDirectory makes sure dir exists (creating it with its parents) and
// that a file can be created in it, by creating and removing a hidden
// probe file.
func CheckDirectory(fsys FS, dir string) error {
	if fsys == nil {
		fsys = OS
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return newError(-1, dir, "create directory", err)
	}
	probe := filepath.Join(dir, ".tioga-probe-"+strconv.Itoa(os.Getpid()))
	f, err := fsys.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return newError(-1, dir, "create a file in", err)
	}
	f.Close()
	if err := fsys.Remove(probe); err != nil {
		return newError(-1, probe, "remove", err)
	}
	return nil
}

func (c *Config) normalise() error {
	if c.Directory == "" {
		return fmt.Errorf("%w: no directory", ErrConfig)
	}
	if strings.ContainsFunc(c.Directory, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		// The hit list holds one path per line.
		return fmt.Errorf("%w: directory %q contains control characters", ErrConfig, c.Directory)
	}
	dir, err := filepath.Abs(c.Directory)
	if err != nil {
		return fmt.Errorf("%w: directory %q: %v", ErrConfig, c.Directory, err)
	}
	c.Directory = dir
	if c.Prefix == "" || len(c.Prefix) > 200 {
		return fmt.Errorf("%w: prefix must have 1 to 200 characters", ErrConfig)
	}
	for _, r := range c.Prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+-", r)) {
			return fmt.Errorf("%w: prefix %q: only letters, digits and ._+- are allowed (it becomes a file name and a CIF block name)", ErrConfig, c.Prefix)
		}
	}
	if c.Prefix[0] == '.' {
		return fmt.Errorf("%w: prefix %q must not start with a dot (hidden files are temporaries)", ErrConfig, c.Prefix)
	}
	if c.Run < 0 {
		return fmt.Errorf("%w: run %d is negative", ErrConfig, c.Run)
	}
	if c.FirstImage == 0 {
		c.FirstImage = 1
	}
	if c.FirstImage < 0 {
		return fmt.Errorf("%w: first image %d is negative", ErrConfig, c.FirstImage)
	}
	switch c.Format {
	case "":
		c.Format = FormatCBFGzip
	case FormatCBF, FormatCBFGzip, FormatTIFF:
	default:
		return fmt.Errorf("%w: format %q (want cbf, cbf.gz or tiff)", ErrConfig, c.Format)
	}
	// Check the levels now rather than at the first frame.
	if c.Format == FormatCBFGzip {
		if _, err := cbf.NewEncoder(cbf.Options{Gzip: true, GzipLevel: c.GzipLevel}); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	if c.Format == FormatTIFF {
		if _, err := tiff.NewEncoder(tiff.Options{Level: c.TIFFLevel}); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	switch c.ContentMD5 {
	case "":
		c.ContentMD5 = MD5Auto
	case MD5Auto, MD5Always, MD5Never:
	default:
		return fmt.Errorf("%w: content-md5 policy %q (want auto, always or never)", ErrConfig, c.ContentMD5)
	}
	switch c.Fsync {
	case "":
		c.Fsync = FsyncSeries
	case FsyncNever, FsyncFile, FsyncSeries:
	default:
		return fmt.Errorf("%w: fsync policy %q (want never, file or series)", ErrConfig, c.Fsync)
	}
	switch c.Overwrite {
	case "":
		c.Overwrite = OverwriteRefuse
	case OverwriteRefuse, OverwriteBackup:
	default:
		return fmt.Errorf("%w: overwrite policy %q (want refuse or backup)", ErrConfig, c.Overwrite)
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.FreeCheckEvery <= 0 {
		c.FreeCheckEvery = DefaultFreeCheckEvery
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.FS == nil {
		c.FS = OS
	}
	return nil
}

// Template is the image path template, "<dir>/<prefix>_<run>_%05d.<ext>".
func (s *Series) Template() string { return s.template }

// Path is the final path of frame (0-based).
func (s *Series) Path(frame int) string { return string(s.appendPath(nil, frame)) }

// appendPath appends the final path of frame to b: dirSep, the file name
// (the data block name, "<prefix>_<run>_<number>", then "." and ext).
func (s *Series) appendPath(b []byte, frame int) []byte {
	b = append(b, s.dirSep...)
	b = append(b, s.base...)
	n := s.cfg.FirstImage + frame
	for d := 10000; d > 1 && n < d; d /= 10 {
		b = append(b, '0') // zero-padded to five digits
	}
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, '.')
	return append(b, s.ext...)
}

// pathBlockSize is the size of the blocks a Scratch carves the paths of
// its frames from: about a hundred frames' paths.
const pathBlockSize = 16 << 10

// framePaths returns the final path of frame, the temporary one
// ("<dir>/.<file>.part") and the data block name (a part of path). They
// are carved from sc's current path block, which is only ever appended
// to: a string handed out is never written again, so whoever gets the
// path (the pipeline passes it on to the tracker and the downstream
// hand-off) may keep it. Making one string per path instead cost four
// allocations a frame; this costs one block per hundred frames or so.
func (sc *Scratch) framePaths(s *Series, frame int) (path, tmp, name string) {
	// Enough for both paths with the longest number (a larger block is
	// taken when the directory alone is longer than a block).
	need := 2*(len(s.dirSep)+len(s.base)+20+1+len(s.ext)) + len(".") + len(".part")
	if cap(sc.paths)-len(sc.paths) < need {
		sc.paths = make([]byte, 0, max(pathBlockSize, need))
	}
	b := sc.paths
	start := len(b)
	b = s.appendPath(b, frame)
	end := len(b)
	b = append(b, s.dirSep...)
	b = append(b, '.')
	b = append(b, b[start+len(s.dirSep):end]...)
	b = append(b, ".part"...)
	sc.paths = b
	path = unsafe.String(&b[start], end-start)
	tmp = unsafe.String(&b[end], len(b)-end)
	return path, tmp, path[len(s.dirSep) : len(path)-len(".")-len(s.ext)]
}

// Scratch is one worker's reusable encoder state. The zero value is ready
// to use; a Scratch may serve one series after another (it rebuilds its
// encoder only when the format or level changes). Not safe for concurrent
// use.
type Scratch struct {
	paths     []byte // the current path block (framePaths)
	cbfEnc    *cbf.Encoder
	cbfOpts   cbf.Options
	tiffEnc   *tiff.Encoder
	tiffLevel int
}

func (sc *Scratch) encode(cfg *Config, h *cbf.Header, name string, p cbf.Pixels) ([]byte, error) {
	if cfg.Format == FormatTIFF {
		if sc.tiffEnc == nil || sc.tiffLevel != cfg.TIFFLevel {
			e, err := tiff.NewEncoder(tiff.Options{Level: cfg.TIFFLevel})
			if err != nil {
				return nil, err
			}
			sc.tiffEnc, sc.tiffLevel = e, cfg.TIFFLevel
		}
		return sc.tiffEnc.Encode(h, p)
	}
	o := cbf.Options{Gzip: cfg.Format == FormatCBFGzip, GzipLevel: cfg.GzipLevel,
		ContentMD5: cfg.ContentMD5 == MD5Always || cfg.ContentMD5 == MD5Auto && cfg.Format == FormatCBF}
	if sc.cbfEnc == nil || sc.cbfOpts != o {
		e, err := cbf.NewEncoder(o)
		if err != nil {
			return nil, err
		}
		sc.cbfEnc, sc.cbfOpts = e, o
	}
	return sc.cbfEnc.Encode(h, name, p)
}

// Write encodes frame (0-based) and puts it on disk. It returns the final
// path once the complete file exists under it, or an *Error naming the
// path and cause. sc is the calling worker's scratch. The path may be
// kept: its bytes are never written again (framePaths).
//
// The frame's header is the series header with StartAngle advanced by
// frame x AngleIncrement and Timestamp by frame x ExposurePeriod.
func (s *Series) Write(sc *Scratch, frame int, p cbf.Pixels) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return "", &Error{Frame: frame, Path: s.dir, Op: "write", Cause: CauseOther, Err: ErrClosed}
	}
	if frame < 0 || frame > math.MaxInt32 {
		return "", s.fail(&Error{Frame: frame, Path: s.dir, Op: "encode", Cause: CauseInput,
			Err: fmt.Errorf("frame number %d out of range", frame)})
	}
	s.pending.Add(1)
	defer s.pending.Add(-1)

	path, tmp, name := sc.framePaths(s, frame)
	h := s.header
	h.StartAngle += float64(frame) * h.AngleIncrement
	h.Timestamp = h.Timestamp.Add(time.Duration(float64(frame) * h.ExposurePeriod * float64(time.Second)))
	data, err := sc.encode(&s.cfg, &h, name, p)
	if err != nil {
		return "", s.fail(&Error{Frame: frame, Path: path, Op: "encode", Cause: CauseInput, Err: err})
	}
	if err := s.publish(frame, path, tmp, data); err != nil {
		return "", s.fail(err)
	}
	s.written.Add(1)
	s.bytes.Add(uint64(len(data)))
	if s.sinceFreeCheck.Add(1) >= int64(s.cfg.FreeCheckEvery) {
		s.sinceFreeCheck.Store(0)
		s.checkFree()
	}
	return path, nil
}

// publish writes data to the temporary file tmp and gives it its final
// name path without ever replacing an existing file (see the package
// comment).
func (s *Series) publish(frame int, path, tmp string, data []byte) *Error {
	f, err := s.create(tmp)
	if err != nil {
		return newError(frame, path, "create", err)
	}
	_, err = f.Write(data)
	op := "write"
	if err == nil && s.cfg.Fsync == FsyncFile {
		err, op = f.Sync(), "sync"
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		// Network file systems report write errors at close.
		err, op = cerr, "close"
	}
	if err != nil {
		s.removeTemp(tmp)
		return newError(frame, path, op, err)
	}
	if err := s.rename(frame, tmp, path); err != nil {
		s.removeTemp(tmp)
		return err
	}
	if s.cfg.Fsync == FsyncFile {
		if err := s.fs.SyncDir(s.dir); err != nil {
			// The file is complete under its name; only its durability
			// is in doubt. Report it, since the policy promised it.
			return newError(frame, path, "sync directory", err)
		}
	}
	return nil
}

// create opens a new temporary file. A leftover of the same name (a crash
// during this very frame's earlier attempt) is removed; a vanished
// directory is created again.
func (s *Series) create(tmp string) (File, error) {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := s.fs.OpenFile(tmp, flags, 0o644)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, fs.ErrExist):
		_ = s.fs.Remove(tmp)
	case errors.Is(err, fs.ErrNotExist):
		if merr := s.fs.MkdirAll(s.dir, 0o755); merr != nil {
			return nil, merr
		}
	default:
		return nil, err
	}
	return s.fs.OpenFile(tmp, flags, 0o644)
}

// rename gives tmp the final name path. link(2) cannot replace an existing
// file; on file systems without hard links it falls back to a check and
// rename(2), which is safe against everything but a concurrent writer of
// the same name.
func (s *Series) rename(frame int, tmp, path string) *Error {
	err := s.fs.Link(tmp, path)
	if err == nil {
		if rerr := s.fs.Remove(tmp); rerr != nil {
			// Harmless: the next series start cleans it up.
			s.log.Warn().Err(rerr).Str("path", tmp).Msg("cannot remove temporary file")
		}
		return nil
	}
	exists := errors.Is(err, fs.ErrExist)
	if !exists && !linkUnsupported(err) {
		return newError(frame, path, "publish", err)
	}
	if !exists {
		if _, serr := s.fs.Lstat(path); serr == nil {
			exists = true
		}
	}
	if exists {
		if s.cfg.Overwrite != OverwriteBackup {
			s.refused.Add(1)
			return &Error{Frame: frame, Path: path, Op: "publish", Cause: CauseExists, Err: ErrExists}
		}
		bak, berr := s.backup(path)
		if berr != nil {
			return newError(frame, path, "back up existing file", berr)
		}
		s.log.Warn().Str("path", path).Str("backup", bak).Msg("existing file renamed aside")
	}
	if err := s.fs.Rename(tmp, path); err != nil {
		return newError(frame, path, "publish", err)
	}
	return nil
}

// backup gives an existing file a second name "<path>.~N~" (the smallest
// free N) by link(2), so that the rename of the new file over it keeps the
// old content reachable.
func (s *Series) backup(path string) (string, error) {
	for n := 1; n < 1000; n++ {
		bak := path + ".~" + strconv.Itoa(n) + "~"
		err := s.fs.Link(path, bak)
		if err == nil {
			return bak, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if !linkUnsupported(err) {
			return "", err
		}
		if _, serr := s.fs.Lstat(bak); serr == nil {
			continue
		}
		// Without hard links, move the old file aside; the new one
		// follows at once.
		return bak, s.fs.Rename(path, bak)
	}
	return "", fmt.Errorf("%s: 999 backups exist", path)
}

// linkUnsupported reports whether link(2) failed because the file system
// has no hard links (FAT, some FUSE and SMB mounts), not because of the
// files.
func linkUnsupported(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EPERM, syscall.ENOTSUP, syscall.ENOSYS, syscall.EXDEV, syscall.EMLINK:
		return true
	}
	return false
}

func (s *Series) removeTemp(tmp string) {
	if err := s.fs.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn().Err(err).Str("path", tmp).Msg("cannot remove temporary file")
	}
}

// removeStaleTemporaries deletes ".<prefix>_<run>_*.part" files: the
// leftovers of a crash while writing this series before. Temporaries of
// other prefixes or runs may belong to another writer and are left alone.
func (s *Series) removeStaleTemporaries() {
	entries, err := s.fs.ReadDir(s.dir)
	if err != nil {
		s.log.Warn().Err(err).Msg("cannot list directory for stale temporaries")
		return
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "."+s.base) && strings.HasSuffix(name, ".part") {
			if err := s.fs.Remove(filepath.Join(s.dir, name)); err == nil {
				n++
			}
		}
	}
	if n > 0 {
		s.log.Info().Int("files", n).Msg("removed stale temporary files")
	}
}

// fail counts and logs a failure of a frame and returns it.
func (s *Series) fail(e *Error) *Error {
	s.failed.Add(1)
	return s.failOutput(e)
}

// failOutput counts and logs a failure that loses no frame (result files,
// series-end syncs) and returns it.
func (s *Series) failOutput(e *Error) *Error {
	s.failedBy[e.Cause].Add(1)
	s.statMu.Lock()
	s.lastErr, s.lastErrAt = e.Error(), time.Now()
	s.statMu.Unlock()
	s.failLog.Error().Err(e.Err).Int("frame", e.Frame).Str("path", e.Path).Str("op", e.Op).
		Str("cause", e.Cause.String()).Msg("write failed")
	return e
}

func (s *Series) setFree(free uint64) {
	s.statMu.Lock()
	s.freeBytes, s.freeCheckedAt = free, time.Now()
	s.statMu.Unlock()
	low := s.minFree >= 0 && free < uint64(s.minFree)
	if s.diskLow.Swap(low) != low {
		if low {
			s.log.Warn().Uint64("free_mib", free>>20).Int64("min_mib", s.minFree>>20).Msg("disk nearly full")
		} else {
			s.log.Info().Uint64("free_mib", free>>20).Msg("disk space recovered")
		}
	}
}

func (s *Series) checkFree() {
	free, err := s.fs.FreeBytes(s.dir)
	if err != nil {
		s.log.Warn().Err(err).Msg("cannot check free space")
		return
	}
	s.setFree(free)
}

// Stats returns a snapshot of the counters.
func (s *Series) Stats() Stats {
	st := Stats{
		Directory: s.dir,
		Template:  s.template,
		Format:    s.cfg.Format,
		Written:   s.written.Load(),
		Bytes:     s.bytes.Load(),
		Failed:    s.failed.Load(),
		Refused:   s.refused.Load(),
		Pending:   s.pending.Load(),
		DiskLow:   s.diskLow.Load(),
	}
	for i := range st.FailedBy {
		st.FailedBy[i] = s.failedBy[i].Load()
	}
	s.statMu.Lock()
	st.LastError, st.LastErrorAt = s.lastErr, s.lastErrAt
	st.FreeBytes, st.FreeCheckedAt = s.freeBytes, s.freeCheckedAt
	s.statMu.Unlock()
	s.res.stats(&st)
	return st
}

// Close waits for writes in flight, flushes and closes the result files,
// applies the series-end fsync policy, and returns what failed (the frames'
// failures were already returned by Write). Close is idempotent.
func (s *Series) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if err := s.res.close(s); err != nil {
		errs = append(errs, err)
	}
	if s.cfg.Fsync == FsyncSeries {
		if err := s.fs.SyncFS(s.dir); err != nil {
			errs = append(errs, s.failOutput(newError(-1, s.dir, "sync file system", err)))
		}
		if err := s.fs.SyncDir(s.dir); err != nil {
			errs = append(errs, s.failOutput(newError(-1, s.dir, "sync directory", err)))
		}
	}
	st := s.Stats()
	s.log.Info().Uint64("written", st.Written).Uint64("failed", st.Failed).Uint64("bytes", st.Bytes).
		Uint64("results", st.Results).Uint64("hits", st.Hits).Msg("series closed")
	return errors.Join(errs...)
}
