package writer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"tioga/driver/cbf"
	"tioga/driver/cbf/cbftest"
	"tioga/driver/tiff"
)

// frames returns n distinct small 16-bit frames (an EIGER 500K module).
func frames(n int) []cbf.Pixels {
	out := make([]cbf.Pixels, n)
	for i := range out {
		out[i] = cbftest.Frame{Width: 1030, Height: 514, ElemSize: 2, Background: 2, Spots: 10, Seed: uint64(100 + i)}.Pixels()
	}
	return out
}

// tinyFrames are small enough to fill a 512 KiB tmpfs in a few files.
func tinyFrames(n int) []cbf.Pixels {
	out := make([]cbf.Pixels, n)
	for i := range out {
		out[i] = cbftest.Frame{Width: 256, Height: 256, ElemSize: 2, Background: 50, Spots: 5, Seed: uint64(200 + i)}.Pixels()
	}
	return out
}

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func open(t *testing.T, cfg Config) *Series {
	t.Helper()
	cfg.Logger = testLog(t)
	if cfg.MinFreeBytes == 0 {
		cfg.MinFreeBytes = -1
	}
	if cfg.Fsync == "" {
		cfg.Fsync = FsyncNever // keep the shared machine's disk quiet; TestFsyncPolicies covers the rest
	}
	s, err := Open(cfg, cbftest.Header())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkImage reads a written file back with the package's reader and
// compares every pixel and the per-frame header fields.
func checkImage(t *testing.T, path string, p cbf.Pixels, frame int) {
	t.Helper()
	var pix []int32
	switch {
	case strings.HasSuffix(path, ".tif"):
		img, err := tiff.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pix = img.Pixels
	default:
		img, err := cbf.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pix = img.Pixels
		h := cbftest.Header()
		wantAngle := h.StartAngle + float64(frame)*h.AngleIncrement
		if math.Abs(img.Header.StartAngle-wantAngle) > 1e-9 {
			t.Fatalf("%s: start angle %v, want %v", path, img.Header.StartAngle, wantAngle)
		}
		wantTime := h.Timestamp.Add(time.Duration(float64(frame) * h.ExposurePeriod * 1e9)).Truncate(time.Millisecond)
		if !img.Header.Timestamp.Equal(wantTime) {
			t.Fatalf("%s: timestamp %v, want %v", path, img.Header.Timestamp, wantTime)
		}
	}
	if len(pix) != p.Len() {
		t.Fatalf("%s: %d pixels, want %d", path, len(pix), p.Len())
	}
	for i, v := range pix {
		if v != p.Value(i) {
			t.Fatalf("%s: pixel %d = %d, want %d", path, i, v, p.Value(i))
		}
	}
}

func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".part") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// Two workers write a series concurrently; every file has the template
// name, decodes to the frame's pixels with the frame's angle and time, and
// the counters add up.
func TestSeriesWritesEveryFormat(t *testing.T) {
	fr := frames(8)
	for _, c := range []struct {
		format Format
		first  int
		want   string
	}{
		{FormatCBFGzip, 0, "lyso_7_00001.cbf.gz"},
		{FormatCBF, 1, "lyso_7_00001.cbf"},
		{FormatTIFF, 99999, "lyso_7_99999.tif"},
	} {
		dir := filepath.Join(t.TempDir(), "a", "b") // created by Open
		s := open(t, Config{Directory: dir, Prefix: "lyso", Run: 7, FirstImage: c.first, Format: c.format})
		if got := s.Path(0); got != filepath.Join(dir, c.want) {
			t.Fatalf("%s: Path(0) = %s", c.format, got)
		}
		paths := make([]string, len(fr))
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				var sc Scratch
				for i := w; i < len(fr); i += 2 {
					p, err := s.Write(&sc, i, fr[i])
					if err != nil {
						t.Error(err)
						return
					}
					paths[i] = p
				}
			}(w)
		}
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		var total uint64
		for i, p := range paths {
			if p != s.Path(i) {
				t.Fatalf("frame %d written to %s, want %s", i, p, s.Path(i))
			}
			checkImage(t, p, fr[i], i)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			total += uint64(fi.Size())
		}
		if c.first == 99999 && filepath.Base(paths[1]) != "lyso_7_100000.tif" {
			t.Fatalf("number past 99999: %s", paths[1])
		}
		st := s.Stats()
		if st.Written != uint64(len(fr)) || st.Failed != 0 || st.Bytes != total || st.Pending != 0 || st.LastError != "" {
			t.Fatalf("%s: stats %+v (files hold %d bytes)", c.format, st, total)
		}
		wantTemplate := filepath.Join(dir, "lyso_7_%05d."+c.format.Ext())
		if st.Template != wantTemplate || st.Directory != dir {
			t.Fatalf("template %q dir %q", st.Template, st.Directory)
		}
		noTemporaries(t, dir)
	}
}

// The .cbf.gz files are ordinary gzip files for the system gzip.
func TestGzipFilesPassSystemGzip(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Directory: dir, Prefix: "g", Run: 1})
	var sc Scratch
	p, err := s.Write(&sc, 0, frames(1)[0])
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	cbftest.Run(t, "gzip", "-t", p)
}

func TestResultFiles(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Directory: dir, Prefix: "ssx", Run: 2, FlushInterval: time.Hour})
	in := []struct {
		r     Result
		spots []Spot
	}{
		{Result{Frame: 0, File: "/data/ssx_2_00001.cbf.gz", Spots: 2, Score: 3.5, Resolution: 2.25, IS: 1234.5, Hit: true},
			[]Spot{{X: 10.5, Y: 20.25, Intensity: 300, Sigma: 17.3, D: 2.5}, {X: 1000, Y: 2000.75, Intensity: 45.5, Sigma: 6.75, D: 0}}},
		{Result{Frame: 1, File: "/data/ssx_2_00002.cbf.gz", Spots: 0}, nil},
		{Result{Frame: 2, File: "", Spots: 1, Score: math.NaN(), Resolution: math.Inf(1), Hit: true},
			[]Spot{{X: 1, Y: 2, Intensity: 3, Sigma: 4, D: 5}}},
		{Result{Frame: 3, File: "/data/odd \"name\"\\ä\x01.cbf", Spots: 9, Score: 1e21, Hit: true, Ice: true}, nil},
	}
	for _, x := range in {
		if err := s.AddResult(x.r, x.spots); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing written before the flush interval...
	if b, _ := os.ReadFile(s.ResultsPath()); len(b) != 0 {
		t.Fatalf("results written before the flush: %q", b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	res, _ := os.ReadFile(filepath.Join(dir, "ssx_2_results.jsonl"))
	wantRes := `{"frame":0,"file":"/data/ssx_2_00001.cbf.gz","spots":2,"score":3.5,"resolution":2.25,"is":1234.5,"hit":true,"ice":false}
{"frame":1,"file":"/data/ssx_2_00002.cbf.gz","spots":0,"score":0,"resolution":0,"is":0,"hit":false,"ice":false}
{"frame":2,"file":null,"spots":1,"score":null,"resolution":null,"is":0,"hit":true,"ice":false}
{"frame":3,"file":"/data/odd \"name\"\\ä\u0001.cbf","spots":9,"score":1e+21,"resolution":0,"is":0,"hit":true,"ice":true}
`
	if string(res) != wantRes {
		t.Fatalf("results.jsonl:\n%s\nwant\n%s", res, wantRes)
	}
	// And it is JSON to a JSON parser.
	sc := bufio.NewScanner(bytes.NewReader(res))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
	}
	var last map[string]any
	json.Unmarshal([]byte(strings.Split(wantRes, "\n")[3]), &last)
	if last["file"] != "/data/odd \"name\"\\ä\x01.cbf" {
		t.Fatalf("file name did not survive JSON: %q", last["file"])
	}
	hits, _ := os.ReadFile(filepath.Join(dir, "ssx_2_hits.lst"))
	if string(hits) != "/data/ssx_2_00001.cbf.gz\n/data/odd \"name\"\\ä\x01.cbf\n" {
		t.Fatalf("hits.lst:\n%s", hits)
	}
	spots, _ := os.ReadFile(filepath.Join(dir, "ssx_2_spots.txt"))
	if string(spots) != "# frame x y intensity sigma d\n0 10.5 20.25 300 17.3 2.5\n0 1000 2000.75 45.5 6.75 0\n2 1 2 3 4 5\n" {
		t.Fatalf("spots.txt:\n%s", spots)
	}
	st := s.Stats()
	if st.Results != 4 || st.Hits != 2 || st.SpotRows != 3 || st.HitsNotWritten != 1 || st.ResultErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// numpy reads the spot list as a plain table (an independent reader of
// the format we promise downstream tools).
func TestSpotListLoadsWithNumpy(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Directory: dir, Prefix: "np", Run: 1})
	s.AddResult(Result{Frame: 4, Spots: 2}, []Spot{{X: 1.5, Y: 2.5, Intensity: 100, Sigma: 10, D: 3.25}, {X: 7, Y: 8, Intensity: 9, Sigma: 1, D: 0}})
	s.Close()
	out := cbftest.Python(t, "import numpy, sys; a = numpy.loadtxt(sys.argv[1], ndmin=2); print(a.shape, a.sum())", s.SpotsPath())
	if got := strings.TrimSpace(string(out)); got != "(2, 6) 150.25" {
		t.Fatalf("numpy: %s", got)
	}
}

func TestPeriodicFlush(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Directory: dir, Prefix: "f", Run: 1, FlushInterval: time.Nanosecond})
	defer s.Close()
	s.AddResult(Result{Frame: 0}, nil)
	if b, _ := os.ReadFile(s.ResultsPath()); !strings.HasPrefix(string(b), `{"frame":0,`) {
		t.Fatalf("not flushed: %q", b)
	}
	s2 := open(t, Config{Directory: dir, Prefix: "f", Run: 2, FlushInterval: time.Hour})
	defer s2.Close()
	s2.AddResult(Result{Frame: 0}, nil)
	if err := s2.Flush(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(s2.ResultsPath()); len(b) == 0 {
		t.Fatal("Flush wrote nothing")
	}
}

func TestOverwriteRefuse(t *testing.T) {
	dir := t.TempDir()
	fr := frames(3)
	s := open(t, Config{Directory: dir, Prefix: "x", Run: 1})
	var sc Scratch
	// Someone else's file where frame 1 goes.
	other := []byte("not ours")
	if err := os.WriteFile(s.Path(1), other, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range fr {
		_, err := s.Write(&sc, i, fr[i])
		if i == 1 {
			var we *Error
			if !errors.Is(err, ErrExists) || !errors.As(err, &we) || we.Cause != CauseExists || we.Path != s.Path(1) {
				t.Fatalf("frame 1 over an existing file: %v", err)
			}
			if !strings.Contains(err.Error(), s.Path(1)) {
				t.Fatalf("error text lacks the path: %v", err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if b, _ := os.ReadFile(s.Path(1)); !bytes.Equal(b, other) {
		t.Fatal("existing file was overwritten")
	}
	st := s.Stats()
	if st.Written != 2 || st.Failed != 1 || st.Refused != 1 || st.FailedBy[CauseExists] != 1 || !strings.Contains(st.LastError, "file exists") {
		t.Fatalf("stats %+v", st)
	}
	checkImage(t, s.Path(2), fr[2], 2)
	noTemporaries(t, dir)

	// The same run again is refused before any data.
	_, err := Open(Config{Directory: dir, Prefix: "x", Run: 1, MinFreeBytes: -1}, cbftest.Header())
	if !errors.Is(err, ErrExists) {
		t.Fatalf("reopening run 1: %v", err)
	}
	// Result files alone also stop it.
	os.WriteFile(filepath.Join(dir, "y_1_results.jsonl"), []byte("old\n"), 0o644)
	if _, err := Open(Config{Directory: dir, Prefix: "y", Run: 1, MinFreeBytes: -1}, cbftest.Header()); !errors.Is(err, ErrExists) {
		t.Fatalf("existing results: %v", err)
	}
}

func TestOverwriteBackup(t *testing.T) {
	dir := t.TempDir()
	fr := frames(2)
	s := open(t, Config{Directory: dir, Prefix: "x", Run: 1, Format: FormatCBF})
	var sc Scratch
	for i := range fr {
		if _, err := s.Write(&sc, i, fr[i]); err != nil {
			t.Fatal(err)
		}
	}
	s.AddResult(Result{Frame: 0, Spots: 1}, nil)
	s.Close()
	first, _ := os.ReadFile(s.Path(0))

	// Run 1 again, frames swapped: the old files move aside.
	s2 := open(t, Config{Directory: dir, Prefix: "x", Run: 1, Format: FormatCBF, Overwrite: OverwriteBackup})
	if _, err := s2.Write(&sc, 0, fr[1]); err != nil {
		t.Fatal(err)
	}
	s2.AddResult(Result{Frame: 0, Spots: 2}, nil)
	s2.Close()
	checkImage(t, s2.Path(0), fr[1], 0)
	if b, _ := os.ReadFile(s2.Path(0) + ".~1~"); !bytes.Equal(b, first) {
		t.Fatal("backup does not hold the old frame")
	}
	if b, _ := os.ReadFile(s2.ResultsPath() + ".~1~"); !strings.Contains(string(b), `"spots":1`) {
		t.Fatalf("old results not kept: %q", b)
	}
	if b, _ := os.ReadFile(s2.ResultsPath()); !strings.Contains(string(b), `"spots":2`) || strings.Contains(string(b), `"spots":1`) {
		t.Fatalf("new results: %q", b)
	}
}

func TestStaleTemporariesRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	ours := filepath.Join(dir, ".x_1_00007.cbf.gz.part")
	theirs := filepath.Join(dir, ".other_1_00001.cbf.part")
	os.WriteFile(ours, []byte("half"), 0o644)
	os.WriteFile(theirs, []byte("half"), 0o644)
	s := open(t, Config{Directory: dir, Prefix: "x", Run: 1})
	defer s.Close()
	if _, err := os.Stat(ours); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("stale temporary of this run not removed")
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Fatal("temporary of another run removed")
	}
	// A leftover under the very name a frame uses does not block it.
	os.WriteFile(filepath.Join(dir, ".x_1_00001.cbf.gz.part"), []byte("half"), 0o644)
	var sc Scratch
	if _, err := s.Write(&sc, 0, frames(1)[0]); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []Config{
		{Prefix: "x"},
		{Directory: dir},
		{Directory: dir, Prefix: "a/b"},
		{Directory: dir + "/new\nline", Prefix: "x"},
		{Directory: dir, Prefix: ".hidden"},
		{Directory: dir, Prefix: "with space"},
		{Directory: dir, Prefix: "x", Run: -1},
		{Directory: dir, Prefix: "x", FirstImage: -3},
		{Directory: dir, Prefix: "x", Format: "jpeg"},
		{Directory: dir, Prefix: "x", Fsync: "sometimes"},
		{Directory: dir, Prefix: "x", Overwrite: "always"},
		{Directory: dir, Prefix: "x", GzipLevel: 42},
		{Directory: dir, Prefix: "x", ContentMD5: "sometimes"},
		{Directory: dir, Prefix: "x", Format: FormatTIFF, TIFFLevel: 42},
	} {
		if _, err := Open(c, cbftest.Header()); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig", c, err)
		}
	}
	h := cbftest.Header()
	h.Wavelength = math.NaN()
	if _, err := Open(Config{Directory: dir, Prefix: "x"}, h); !errors.Is(err, ErrConfig) {
		t.Errorf("NaN wavelength: %v", err)
	}
}

// Content-MD5 by policy: auto puts it in plain .cbf files only (a .cbf.gz
// has the gzip CRC-32); always and never mean what they say.
func TestContentMD5Policy(t *testing.T) {
	p := frames(1)[0]
	for i, c := range []struct {
		format Format
		policy MD5Policy
		want   bool
	}{
		{FormatCBF, "", true}, {FormatCBFGzip, "", false},
		{FormatCBF, MD5Auto, true}, {FormatCBFGzip, MD5Auto, false},
		{FormatCBF, MD5Always, true}, {FormatCBFGzip, MD5Always, true},
		{FormatCBF, MD5Never, false}, {FormatCBFGzip, MD5Never, false},
	} {
		s := open(t, Config{Directory: t.TempDir(), Prefix: "md5", Run: i, Format: c.format, ContentMD5: c.policy})
		path, err := s.Write(&Scratch{}, 0, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		img, err := cbf.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if img.HasMD5 != c.want {
			t.Errorf("%s, policy %q: Content-MD5 %v, want %v", c.format, c.policy, img.HasMD5, c.want)
		}
		checkImage(t, path, p, 0)
	}
}

// A bad frame is an input error: counted, reported, the series goes on.
func TestBadFrameIsCountedAndSeriesGoesOn(t *testing.T) {
	s := open(t, Config{Directory: t.TempDir(), Prefix: "x", Run: 1})
	defer s.Close()
	var sc Scratch
	_, err := s.Write(&sc, 0, cbf.Pixels{Data: make([]byte, 5), Width: 2, Height: 2, ElemSize: 2})
	if CauseOf(err) != CauseInput {
		t.Fatalf("bad frame: %v", err)
	}
	if _, err := s.Write(&sc, -1, frames(1)[0]); CauseOf(err) != CauseInput {
		t.Fatalf("negative frame: %v", err)
	}
	if _, err := s.Write(&sc, 1, frames(1)[0]); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Failed != 2 || st.FailedBy[CauseInput] != 2 || st.Written != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWriteAfterClose(t *testing.T) {
	s := open(t, Config{Directory: t.TempDir(), Prefix: "x", Run: 1})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	var sc Scratch
	if _, err := s.Write(&sc, 0, frames(1)[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if err := s.AddResult(Result{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddResult after Close: %v", err)
	}
}

// faultFS is the real file system with failures injected on demand.
type faultFS struct {
	FS
	mu        sync.Mutex
	createErr error // returned when creating a file
	linkErr   error // returned by Link
	budget    int64 // bytes that may still be written; <0: unlimited
	free      uint64
	freeSet   bool
	calls     map[string]int
}

func newFaultFS() *faultFS { return &faultFS{FS: OS, budget: -1, calls: map[string]int{}} }

func (f *faultFS) count(op string) {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
}

func (f *faultFS) set(fn func(*faultFS)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f.mu.Lock()
	err := f.createErr
	f.mu.Unlock()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

func (f *faultFS) Link(oldname, newname string) error {
	f.mu.Lock()
	err := f.linkErr
	f.mu.Unlock()
	if err != nil {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}
	return f.FS.Link(oldname, newname)
}

func (f *faultFS) FreeBytes(dir string) (uint64, error) {
	f.count("statfs")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.freeSet {
		return f.free, nil
	}
	return f.FS.FreeBytes(dir)
}

func (f *faultFS) SyncDir(dir string) error { f.count("syncdir"); return f.FS.SyncDir(dir) }
func (f *faultFS) SyncFS(dir string) error  { f.count("syncfs"); return f.FS.SyncFS(dir) }

type faultFile struct {
	File
	fs   *faultFS
	name string
}

// Write writes what the budget allows, then fails with ENOSPC, as a full
// disk does.
func (w *faultFile) Write(p []byte) (int, error) {
	w.fs.mu.Lock()
	allowed := int64(len(p))
	if w.fs.budget >= 0 && allowed > w.fs.budget {
		allowed = w.fs.budget
	}
	if w.fs.budget >= 0 {
		w.fs.budget -= allowed
	}
	w.fs.mu.Unlock()
	n, err := w.File.Write(p[:allowed])
	if err == nil && int(allowed) < len(p) {
		err = &fs.PathError{Op: "write", Path: w.name, Err: syscall.ENOSPC}
	}
	return n, err
}

func (w *faultFile) Sync() error { w.fs.count("sync"); return w.File.Sync() }

// Injected faults: each cause is reported with the path and counted, no
// temporary file is left, the series goes on, and once the fault is gone
// writing resumes; the files reported before are intact.
func TestInjectedFaults(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	s := open(t, Config{Directory: dir, Prefix: "x", Run: 1, FS: ffs})
	fr := frames(12)
	var sc Scratch
	written := map[int]string{}
	write := func(i int) error {
		p, err := s.Write(&sc, i, fr[i])
		if err == nil {
			written[i] = p
		}
		return err
	}
	for i := 0; i < 2; i++ {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		inject func(*faultFS)
		cause  Cause
		text   string
	}{
		{"disk full mid-file", func(f *faultFS) { f.budget = 1000 }, CauseNoSpace, "no space left on device"},
		{"disk full at create", func(f *faultFS) { f.createErr = syscall.ENOSPC }, CauseNoSpace, "no space left on device"},
		{"permission", func(f *faultFS) { f.createErr = syscall.EACCES }, CausePermission, "permission denied"},
		{"read-only", func(f *faultFS) { f.createErr = syscall.EROFS }, CauseReadOnly, "read-only file system"},
		{"quota", func(f *faultFS) { f.budget = 0; f.createErr = nil }, CauseNoSpace, "no space left on device"},
		{"link fails", func(f *faultFS) { f.budget = -1; f.linkErr = syscall.EIO }, CauseOther, "input/output error"},
	}
	frame := 2
	for _, c := range cases {
		ffs.set(func(f *faultFS) { f.budget, f.createErr, f.linkErr = -1, nil, nil })
		ffs.set(c.inject)
		before := s.Stats()
		err := write(frame)
		var we *Error
		if !errors.As(err, &we) || we.Cause != c.cause || we.Frame != frame || we.Path != s.Path(frame) {
			t.Fatalf("%s: err = %#v", c.name, err)
		}
		for _, want := range []string{s.Path(frame), c.cause.String(), c.text} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", c.name, err, want)
			}
		}
		st := s.Stats()
		if st.Failed != before.Failed+1 || st.FailedBy[c.cause] != before.FailedBy[c.cause]+1 || st.LastError != err.Error() || st.Written != before.Written {
			t.Fatalf("%s: stats %+v", c.name, st)
		}
		if _, err := os.Stat(s.Path(frame)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: a failed frame exists under its final name", c.name)
		}
		noTemporaries(t, dir)
		frame++
	}
	// Fault gone: the next frames are written (every frame is tried again).
	ffs.set(func(f *faultFS) { f.budget, f.createErr, f.linkErr = -1, nil, nil })
	for ; frame < len(fr); frame++ {
		if err := write(frame); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for i, p := range written {
		checkImage(t, p, fr[i], i)
	}
	st := s.Stats()
	if st.Written != uint64(len(written)) || st.Written+st.Failed != uint64(len(fr)) {
		t.Fatalf("stats %+v, %d written", st, len(written))
	}
}

// A directory that vanishes mid-series is created again; one that cannot
// be created (a regular file in its place) fails each frame until fixed.
func TestMissingDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	// Cannot even start: a regular file where the directory should be.
	os.WriteFile(dir, []byte("a file"), 0o644)
	_, err := Open(Config{Directory: filepath.Join(dir, "run"), Prefix: "x", MinFreeBytes: -1}, cbftest.Header())
	if CauseOf(err) != CauseMissing || !strings.Contains(err.Error(), filepath.Join(dir, "run")) {
		t.Fatalf("directory under a file: %v", err)
	}
	os.Remove(dir)

	s := open(t, Config{Directory: dir, Prefix: "x", Run: 1})
	fr := frames(3)
	var sc Scratch
	if _, err := s.Write(&sc, 0, fr[0]); err != nil {
		t.Fatal(err)
	}
	// Directory removed: recreated on the fly.
	os.RemoveAll(dir)
	if _, err := s.Write(&sc, 1, fr[1]); err != nil {
		t.Fatalf("vanished directory not recreated: %v", err)
	}
	checkImage(t, s.Path(1), fr[1], 1)
	// Replaced by a regular file: fails, counted, series goes on.
	os.RemoveAll(dir)
	os.WriteFile(dir, []byte("a file"), 0o644)
	_, err = s.Write(&sc, 2, fr[2])
	if CauseOf(err) != CauseMissing || !strings.Contains(err.Error(), s.Path(2)) {
		t.Fatalf("directory replaced by a file: %v", err)
	}
	os.Remove(dir)
	if _, err := s.Write(&sc, 2, fr[2]); err != nil {
		t.Fatal(err)
	}
	checkImage(t, s.Path(2), fr[2], 2)
	if st := s.Stats(); st.FailedBy[CauseMissing] != 1 || st.Written != 3 {
		t.Fatalf("stats %+v", st)
	}
	s.Close()
}

func TestFreeSpace(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	ffs.set(func(f *faultFS) { f.free, f.freeSet = 100<<20, true })
	_, err := Open(Config{Directory: dir, Prefix: "x", Run: 1, FS: ffs, MinFreeBytes: 1 << 30}, cbftest.Header())
	if !errors.Is(err, ErrDiskNearlyFull) || CauseOf(err) != CauseNoSpace || !strings.Contains(err.Error(), "100 MiB free, minimum 1024 MiB") {
		t.Fatalf("start below the minimum: %v", err)
	}
	ffs.set(func(f *faultFS) { f.free = 2 << 30 })
	s, err := Open(Config{Directory: dir, Prefix: "x", Run: 1, FS: ffs, MinFreeBytes: 1 << 30, FreeCheckEvery: 2, Logger: testLog(t)}, cbftest.Header())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.DiskLow || st.FreeBytes != 2<<30 || st.FreeCheckedAt.IsZero() {
		t.Fatalf("stats after open %+v", st)
	}
	fr := frames(4)
	var sc Scratch
	ffs.set(func(f *faultFS) { f.free = 10 << 20 })
	for i := range fr {
		if _, err := s.Write(&sc, i, fr[i]); err != nil {
			t.Fatal(err) // low space warns; it does not stop writing
		}
		if st := s.Stats(); st.DiskLow != (i >= 1) {
			t.Fatalf("after %d files DiskLow=%v (checked every 2 files)", i+1, st.DiskLow)
		}
	}
	if n := ffs.calls["statfs"]; n != 2+2 {
		t.Fatalf("%d statfs calls, want 2 at the opens and 2 for 4 files", n)
	}
	ffs.set(func(f *faultFS) { f.free = 5 << 30 })
	s.Write(&sc, 4, fr[0])
	s.Write(&sc, 5, fr[0])
	if s.Stats().DiskLow {
		t.Fatal("DiskLow not cleared when space came back")
	}

	// With the minimum disabled nothing is refused, but the free space is
	// still measured and reported (free-disk must not read 0).
	ffs.set(func(f *faultFS) { f.free = 10 << 20 })
	off, err := Open(Config{Directory: t.TempDir(), Prefix: "x", Run: 1, FS: ffs, MinFreeBytes: -1, FreeCheckEvery: 1, Logger: testLog(t)}, cbftest.Header())
	if err != nil {
		t.Fatalf("open with the minimum disabled: %v", err)
	}
	defer off.Close()
	if st := off.Stats(); st.DiskLow || st.FreeBytes != 10<<20 {
		t.Fatalf("minimum disabled, stats after open %+v", st)
	}
	ffs.set(func(f *faultFS) { f.free = 7 << 20 })
	if _, err := off.Write(&sc, 0, fr[0]); err != nil {
		t.Fatal(err)
	}
	if st := off.Stats(); st.DiskLow || st.FreeBytes != 7<<20 {
		t.Fatalf("minimum disabled, stats after a write %+v", st)
	}
}

func TestFsyncPolicies(t *testing.T) {
	for _, c := range []struct {
		policy                FsyncPolicy
		sync, syncdir, syncfs int
	}{
		{FsyncNever, 0, 0, 0},
		{FsyncFile, 3 + 3, 3, 0}, // 3 images; the 3 result files at close
		{FsyncSeries, 3, 1, 1},   // the result files, then the directory and file system
	} {
		ffs := newFaultFS()
		s := open(t, Config{Directory: t.TempDir(), Prefix: "x", Run: 1, FS: ffs, Fsync: c.policy})
		var sc Scratch
		for i, p := range frames(3) {
			if _, err := s.Write(&sc, i, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		got := [3]int{ffs.calls["sync"], ffs.calls["syncdir"], ffs.calls["syncfs"]}
		if got != [3]int{c.sync, c.syncdir, c.syncfs} {
			t.Errorf("%s: sync/syncdir/syncfs = %v, want %v", c.policy, got, [3]int{c.sync, c.syncdir, c.syncfs})
		}
	}
}

// Without hard links (FAT, some network mounts) publishing falls back to
// check-and-rename, still refusing to replace a file.
func TestNoHardLinks(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	ffs.set(func(f *faultFS) { f.linkErr = syscall.EPERM })
	s := open(t, Config{Directory: dir, Prefix: "x", Run: 1, FS: ffs})
	defer s.Close()
	fr := frames(2)
	var sc Scratch
	if _, err := s.Write(&sc, 0, fr[0]); err != nil {
		t.Fatal(err)
	}
	checkImage(t, s.Path(0), fr[0], 0)
	if _, err := s.Write(&sc, 0, fr[1]); !errors.Is(err, ErrExists) {
		t.Fatalf("second write of frame 0: %v", err)
	}
	checkImage(t, s.Path(0), fr[0], 0)
	noTemporaries(t, dir)
}

// Result lines survive a full disk: what cannot be written stays buffered,
// a partly written line is completed first, and after the disk recovers the
// file is exactly what a fault-free run writes.
func TestResultsSurviveFullDisk(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	s := open(t, Config{Directory: dir, Prefix: "r", Run: 1, FS: ffs, FlushInterval: time.Hour})
	var want strings.Builder
	for i := 0; i < 50; i++ {
		r := Result{Frame: i, File: fmt.Sprintf("/d/r_1_%05d.cbf.gz", i+1), Spots: i, Score: float64(i) / 4, Hit: i%3 == 0}
		s.AddResult(r, nil)
		fmt.Fprintf(&want, `{"frame":%d,"file":"/d/r_1_%05d.cbf.gz","spots":%d,"score":%g,"resolution":0,"is":0,"hit":%v,"ice":false}`+"\n", i, i+1, i, float64(i)/4, i%3 == 0)
		if i == 20 {
			ffs.set(func(f *faultFS) { f.budget = 777 }) // the flush stops mid-line
			err := s.Flush()
			if CauseOf(err) != CauseNoSpace || !strings.Contains(err.Error(), s.ResultsPath()) {
				t.Fatalf("flush on a full disk: %v", err)
			}
			// A reader looking now sees whole records only.
			got, _ := os.ReadFile(s.ResultsPath())
			if len(got) == 0 || got[len(got)-1] != '\n' {
				t.Fatalf("results file torn after a full disk: ends %q", got[max(0, len(got)-20):])
			}
			for _, line := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
				if !json.Valid([]byte(line)) {
					t.Fatalf("half a record on disk: %q", line)
				}
			}
		}
		if i == 30 {
			if err := s.Flush(); err == nil {
				t.Fatal("flush on a still full disk succeeded")
			}
			ffs.set(func(f *faultFS) { f.budget = -1 })
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(s.ResultsPath())
	if string(got) != want.String() {
		t.Fatalf("results after recovery differ:\n%s", got)
	}
	st := s.Stats()
	if st.ResultErrors < 2 || st.ResultLinesDropped != 0 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A frame is on disk before Write returns, and concurrent writers share
// one Series without losing counts (run with -race).
func TestConcurrentWritersCount(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Directory: dir, Prefix: "c", Run: 1, Format: FormatCBF, FreeCheckEvery: 3, MinFreeBytes: 1})
	fr := tinyFrames(4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var paths []string
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var sc Scratch
			for i := w; i < 40; i += 4 {
				p, err := s.Write(&sc, i, fr[w])
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := os.Stat(p); err != nil {
					t.Error("reported file not on disk:", err)
				}
				mu.Lock()
				paths = append(paths, p)
				mu.Unlock()
				_ = s.Stats()
			}
		}(w)
	}
	wg.Wait()
	s.Close()
	sort.Strings(paths)
	if len(paths) != 40 || s.Stats().Written != 40 {
		t.Fatalf("%d paths, stats %+v", len(paths), s.Stats())
	}
}

// When the disk stays full, the line buffer is bounded: complete lines are
// dropped and counted, a line the full disk cut short is truncated away
// (a reader never sees half a record), and the file holds whole lines only.
func TestLineBufferBound(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS()
	l := &lineFile{path: filepath.Join(dir, "r.jsonl"), limit: 100}
	for i := 0; i < 5; i++ {
		l.buf = append(l.buf, fmt.Sprintf("line %02d\n", i)...) // 8 bytes a line
	}
	ffs.set(func(f *faultFS) { f.budget = 12 }) // one and a half lines
	if _, err := l.flush(ffs, false); CauseOf(err) != CauseNoSpace {
		t.Fatalf("flush: %v", err)
	}
	if got, _ := os.ReadFile(l.path); string(got) != "line 00\n" {
		t.Fatalf("after a flush cut short the file holds %q, want whole lines only", got)
	}
	for i := 5; i < 30; i++ {
		l.buf = append(l.buf, fmt.Sprintf("line %02d\n", i)...)
	}
	if _, err := l.flush(ffs, false); err == nil { // budget exhausted: buffer 212 bytes > 100
		t.Fatal("flush on a full disk succeeded")
	}
	if l.dropped.Load() != 29 || string(l.buf) != "" {
		t.Fatalf("dropped %d, kept %q", l.dropped.Load(), l.buf)
	}
	ffs.set(func(f *faultFS) { f.budget = -1 })
	l.buf = append(l.buf, "line 30\n"...)
	if _, err := l.flush(ffs, false); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(l.path)
	if string(got) != "line 00\nline 30\n" {
		t.Fatalf("file %q", got)
	}
}

// Result, hit and spot lines are in frame order, whatever the arrival
// order: out-of-order frames wait for the missing ones; a frame that never
// comes holds the others back at most reorderLimit frames (or until Close),
// and a frame numbered beyond the series goes last.
func TestResultsInFrameOrder(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Directory: dir, Prefix: "o", Run: 1, FlushInterval: time.Hour})
	add := func(f int) {
		t.Helper()
		r := Result{Frame: f, File: fmt.Sprintf("/d/o_1_%05d.cbf.gz", f+1), Spots: 1, Hit: true}
		if err := s.AddResult(r, []Spot{{X: float64(f)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []int{0, 1, 3, 2, 5, 4, 100, 6, 8} { // 7 never comes
		add(f)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	frames := func(path string, field func(string) string) []string {
		b, _ := os.ReadFile(path)
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line != "" && line[0] != '#' {
				out = append(out, field(line))
			}
		}
		return out
	}
	frameOf := func(line string) string {
		var v struct{ Frame int }
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		return strconv.Itoa(v.Frame)
	}
	if got := strings.Join(frames(s.ResultsPath(), frameOf), " "); got != "0 1 2 3 4 5 6" {
		t.Fatalf("before close (7 missing) results hold frames %s", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(frames(s.ResultsPath(), frameOf), " "); got != "0 1 2 3 4 5 6 8 100" {
		t.Fatalf("results hold frames %s", got)
	}
	if got := strings.Join(frames(s.SpotsPath(), func(l string) string { return strings.Fields(l)[0] }), " "); got != "0 1 2 3 4 5 6 8 100" {
		t.Fatalf("spots hold frames %s", got)
	}
	if got := frames(s.HitsPath(), func(l string) string { return l }); len(got) != 9 || got[3] != "/d/o_1_00004.cbf.gz" || got[8] != "/d/o_1_00101.cbf.gz" {
		t.Fatalf("hit list %q", got)
	}

	// A gap that lasts: after reorderLimit frames the lines go out, and the
	// missing frame, arriving after all, follows where it arrived.
	s2 := open(t, Config{Directory: dir, Prefix: "o", Run: 2, FlushInterval: time.Hour})
	s = s2
	add(0)
	for f := 2; f <= reorderLimit+2; f++ {
		add(f)
	}
	add(1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := frames(s.ResultsPath(), frameOf)
	if len(got) != reorderLimit+3 || got[1] != "2" || got[len(got)-1] != "1" {
		t.Fatalf("%d lines, frames %v ... %v", len(got), got[:3], got[len(got)-3:])
	}
}

// Once warm, writing a frame allocates nothing frame-sized (the encoder
// reuses every buffer: pinned at zero in driver/cbf); what remains are the
// few small objects of creating and naming a file (path strings, the
// os.File, the system calls' path copies), a few hundred bytes per frame.
func TestWriteAllocatesOnlyFileHandles(t *testing.T) {
	p := cbftest.Frame{Width: 1030, Height: 514, ElemSize: 2, Background: 2, Spots: 10, Seed: 5}.Pixels()
	s := open(t, Config{Directory: t.TempDir(), Prefix: "alloc", Run: 1})
	defer s.Close()
	var sc Scratch
	if _, err := s.Write(&sc, 0, p); err != nil {
		t.Fatal(err)
	}
	frame := 1
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := s.Write(&sc, frame, p); err != nil {
			t.Fatal(err)
		}
		frame++
	})
	if allocs > 12 {
		t.Errorf("%.1f allocations per frame written, want at most 12 small ones", allocs)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 10
	for i := 0; i < n; i++ {
		if _, err := s.Write(&sc, frame, p); err != nil {
			t.Fatal(err)
		}
		frame++
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 2048 {
		t.Errorf("%d bytes allocated per frame written, want at most 2 KiB (no frame-sized buffer)", per)
	}
}
