package downstream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"tioga/device/contract"
	"tioga/properties"
)

// fakeExec is an executor whose jobs end when the test says so, leaving a
// DIALS experiment list with the cells the test chose.
type fakeExec struct {
	mu        sync.Mutex
	next      int
	jobs      map[string]Job
	state     map[string]Status
	submitErr error
	cancelled []string
	submitted []Job
}

func newFake() *fakeExec {
	return &fakeExec{jobs: map[string]Job{}, state: map[string]Status{}}
}

func (f *fakeExec) Name() string { return "fake" }
func (f *fakeExec) Close() error { return nil }

func (f *fakeExec) Submit(_ context.Context, j Job) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.submitErr != nil {
		return "", f.submitErr
	}
	f.next++
	id := fmt.Sprintf("%03d", f.next)
	f.jobs[id] = j
	f.state[id] = Status{State: Queued}
	f.submitted = append(f.submitted, j)
	return id, nil
}

func (f *fakeExec) Status(_ context.Context, jobs map[string]Job) (map[string]Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]Status{}
	for id := range jobs {
		out[id] = f.state[id]
	}
	return out, nil
}

func (f *fakeExec) Cancel(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, id)
	f.state[id] = Status{State: Failed, Reason: "cancelled"}
	return nil
}

func (f *fakeExec) set(id string, s Status) {
	f.mu.Lock()
	f.state[id] = s
	f.mu.Unlock()
}

// finish ends job id successfully, the frames of indexed (paths) indexed
// with cell.
func (f *fakeExec) finish(t *testing.T, id string, indexed []string, cell Cell) {
	t.Helper()
	f.mu.Lock()
	j := f.jobs[id]
	f.mu.Unlock()
	writeExpt(t, j.Dir, indexed, cell)
	f.set(id, Status{State: Done})
}

// files returns the paths of a job's files.lst.
func jobFiles(t *testing.T, j Job) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(j.Dir, "files.lst"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// writeExpt writes a DIALS-shaped experiment list: one imageset and one
// crystal per indexed image, real-space axes built from cell.
func writeExpt(t *testing.T, dir string, images []string, c Cell) {
	t.Helper()
	d2r := math.Pi / 180
	ca, cb, cg, sg := math.Cos(c[3]*d2r), math.Cos(c[4]*d2r), math.Cos(c[5]*d2r), math.Sin(c[5]*d2r)
	cy := (ca - cb*cg) / sg
	a := []float64{c[0], 0, 0}
	b := []float64{c[1] * cg, c[1] * sg, 0}
	cc := []float64{c[2] * cb, c[2] * cy, c[2] * math.Sqrt(1-cb*cb-cy*cy)}
	type exp struct {
		Crystal  int `json:"crystal"`
		Imageset int `json:"imageset"`
	}
	var el struct {
		Experiment []exp                 `json:"experiment"`
		Imageset   []map[string][]string `json:"imageset"`
		Crystal    []map[string][]float64
	}
	for i, p := range images {
		el.Experiment = append(el.Experiment, exp{i, i})
		el.Imageset = append(el.Imageset, map[string][]string{"images": {p}})
		el.Crystal = append(el.Crystal, map[string][]float64{"real_space_a": a, "real_space_b": b, "real_space_c": cc})
	}
	raw, _ := json.Marshal(el)
	s := strings.Replace(string(raw), `"Crystal"`, `"crystal"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "indexed.expt"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

type rig struct {
	m    *Manager
	f    *fakeExec
	dev  *contract.Downstream
	dir  string
	ctx  context.Context
	path func(frame int) string
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	f := newFake()
	tpl, err := ParseTemplate("dials", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Executor, cfg.Template, cfg.Logger = f, tpl, zerolog.Nop()
	dev := contract.NewDownstream()
	m, err := New(cfg, dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return &rig{m: m, f: f, dev: dev, dir: dir, ctx: context.Background(),
		path: func(frame int) string { return filepath.Join(dir, fmt.Sprintf("lyso_3_%05d.cbf.gz", frame+1)) }}
}

// pump runs the loop's steps until nothing is left to do, on the test's
// goroutine (what Run does between events).
func (r *rig) pump() {
	m := r.m
	for {
		m.drainControl()
		select {
		case c := <-m.chunks:
			m.submitChunk(r.ctx, c)
			continue
		case id := <-m.cancel:
			m.cancelSeries(r.ctx, id)
			continue
		default:
		}
		break
	}
	m.poll(r.ctx)
	m.drainControl()
	m.finishSeries()
	m.publish()
}

func (r *rig) hits(series uint64, frames ...int) {
	for _, i := range frames {
		r.m.FrameWritten(series, i, r.path(i), true)
	}
}

type line struct {
	Frame   int     `json:"frame"`
	File    string  `json:"file"`
	Indexed bool    `json:"indexed"`
	Cell    *Cell   `json:"cell"`
	Status  string  `json:"status"`
	Chunk   int     `json:"chunk"`
	Job     string  `json:"job"`
	Latency float64 `json:"latency_s"`
}

func readLines(t *testing.T, path string) []line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Frame < out[j].Frame })
	return out
}

func i32(p *properties.Property) int { return p.Value().Int() }

func TestChunkingEveryNHitsAndAtSeriesEnd(t *testing.T) {
	r := newRig(t, Config{ChunkHits: 3, QueueChunks: 8})
	r.m.SeriesStarted(7)
	r.m.FrameWritten(7, 0, r.path(0), false) // not a hit
	r.hits(7, 1, 2, 4, 5, 8, 9, 11)
	r.m.FrameWritten(6, 12, r.path(12), true) // another series: ignored
	r.pump()
	if n := len(r.f.submitted); n != 2 {
		t.Fatalf("%d jobs after 7 hits in chunks of 3, want 2", n)
	}
	r.m.SeriesEnded(7)
	r.pump()
	if n := len(r.f.submitted); n != 3 {
		t.Fatalf("%d jobs after the series end, want 3 (the partial chunk)", n)
	}
	seen := map[string]int{}
	for _, j := range r.f.submitted {
		for _, p := range jobFiles(t, j) {
			seen[p]++
		}
		if !strings.HasPrefix(j.Name, "tioga-7-") || j.CPUs != 1 {
			t.Errorf("job %+v", j)
		}
		script, err := os.ReadFile(j.Script)
		if err != nil || !strings.Contains(string(script), "dials.ssx_index imported.expt strong.refl nproc=1") {
			t.Errorf("script %s: %v\n%s", j.Script, err, script)
		}
	}
	for _, i := range []int{1, 2, 4, 5, 8, 9, 11} {
		if seen[r.path(i)] != 1 {
			t.Errorf("hit %d in %d jobs, want exactly 1", i, seen[r.path(i)])
		}
	}
	if len(seen) != 7 {
		t.Errorf("%d files in jobs, want the 7 hits", len(seen))
	}
	if got := i32(r.dev.JobsQueued); got != 3 {
		t.Errorf("jobs-queued %d", got)
	}
	if got := r.dev.Status.Value().Text; got != "processing" {
		t.Errorf("status %q", got)
	}
	if got := r.dev.WorkDir.Value().Text; got != filepath.Join(r.dir, "lyso_3_downstream") {
		t.Errorf("work-dir %q", got)
	}
}

func TestChunkPeriodSealsAPartialChunk(t *testing.T) {
	r := newRig(t, Config{ChunkHits: 100})
	r.m.SeriesStarted(1)
	r.hits(1, 3, 4)
	r.m.onTick() // 30 s not yet over
	r.pump()
	if len(r.f.submitted) != 0 {
		t.Fatal("partial chunk submitted before its period")
	}
	// A client shortens the period; the next tick seals the chunk.
	if err := r.dev.ChunkPeriod.Write(context.Background(), properties.Float64Value(0.1)); err != nil {
		t.Fatal(err)
	}
	r.m.inMu.Lock()
	r.m.period = 0 // the hits are younger than 0.1 s: do not wait for them
	r.m.inMu.Unlock()
	r.m.onTick()
	r.pump()
	if len(r.f.submitted) != 1 || len(jobFiles(t, r.f.submitted[0])) != 2 {
		t.Fatalf("submitted %v", r.f.submitted)
	}
	if err := r.dev.ChunkHits.Write(context.Background(), properties.Int32Value(1)); err != nil {
		t.Fatal(err)
	}
	r.hits(1, 9)
	r.pump()
	if len(r.f.submitted) != 2 {
		t.Fatalf("chunk-hits 1: %d jobs", len(r.f.submitted))
	}
}

func TestResultsPublishedAndWritten(t *testing.T) {
	r := newRig(t, Config{ChunkHits: 4})
	r.m.SeriesStarted(2)
	r.hits(2, 0, 1, 2, 3, 10, 11)
	r.m.SeriesEnded(2)
	r.pump()
	if len(r.f.submitted) != 2 {
		t.Fatalf("%d jobs", len(r.f.submitted))
	}
	r.f.set("001", Status{State: Running})
	r.pump()
	if i32(r.dev.JobsRunning) != 1 || i32(r.dev.JobsQueued) != 1 {
		t.Fatalf("running %d queued %d", i32(r.dev.JobsRunning), i32(r.dev.JobsQueued))
	}
	c1 := Cell{79.1, 79.1, 38.0, 90, 90, 90}
	c2 := Cell{79.3, 79.0, 38.2, 90.1, 89.9, 90}
	r.f.finish(t, "001", []string{r.path(0), r.path(1), r.path(3)}, c1)
	r.pump()
	if got := i32(r.dev.Indexed); got != 3 {
		t.Fatalf("indexed-frames %d", got)
	}
	if got := r.dev.IndexingRate.Value().Float(); math.Abs(got-75) > 1e-4 {
		t.Fatalf("indexing-rate %v after 3 of 4", got)
	}
	r.f.finish(t, "002", []string{r.path(10)}, c2)
	r.pump()
	if i32(r.dev.Indexed) != 4 || i32(r.dev.HitsFinished) != 6 || i32(r.dev.Hits) != 6 || i32(r.dev.JobsDone) != 2 {
		t.Fatalf("indexed %d processed %d hits %d done %d", i32(r.dev.Indexed), i32(r.dev.HitsFinished), i32(r.dev.Hits), i32(r.dev.JobsDone))
	}
	if got := r.dev.IndexingRate.Value().Float(); math.Abs(got-100*4.0/6) > 1e-4 {
		t.Fatalf("indexing-rate %v", got)
	}
	// Median of three c1 and one c2: c1's values (the middle two agree
	// on c1 for every parameter but gamma, equal anyway).
	cell := r.dev.UnitCell.Value().Float64s
	for k, want := range []float64{79.1, 79.1, 38.0, 90, 90, 90} {
		if math.Abs(cell[k]-want) > 1e-6 {
			t.Fatalf("unit-cell %v", cell)
		}
	}
	if st := r.dev.Status.Value().Text; st != contract.StatusDone {
		t.Fatalf("status %q", st)
	}
	if lat := r.dev.Latency.Value().Float64s; !(lat[2] >= lat[1] && lat[1] > 0) {
		t.Fatalf("latency %v", lat)
	}
	lines := readLines(t, filepath.Join(r.dir, "lyso_3_indexed.jsonl"))
	if len(lines) != 6 {
		t.Fatalf("%d lines, want one per hit", len(lines))
	}
	want := map[int]bool{0: true, 1: true, 2: false, 3: true, 10: true, 11: false}
	for _, l := range lines {
		if l.Indexed != want[l.Frame] || l.File != r.path(l.Frame) || (l.Cell != nil) != l.Indexed {
			t.Errorf("line %+v", l)
		}
		if l.Indexed && l.Status != "indexed" || !l.Indexed && l.Status != "not indexed" {
			t.Errorf("status of %+v", l)
		}
	}
	if r.dev.IndexedFile.Value().Text != filepath.Join(r.dir, "lyso_3_indexed.jsonl") {
		t.Errorf("indexed-file %q", r.dev.IndexedFile.Value().Text)
	}
}

func TestFailedJobIsRetriedOnceThenReported(t *testing.T) {
	r := newRig(t, Config{ChunkHits: 2})
	r.m.SeriesStarted(3)
	r.hits(3, 0, 1, 2, 3)
	r.m.SeriesEnded(3)
	r.pump()
	// Job 1 fails, its retry (3) succeeds; job 2 fails twice.
	r.f.set("001", Status{State: Failed, Reason: "exit status 1 (log a.log)"})
	r.f.set("002", Status{State: Failed, Reason: "SLURM state TIMEOUT (log b.log)"})
	r.pump()
	if len(r.f.submitted) != 4 || i32(r.dev.JobsRetried) != 2 {
		t.Fatalf("%d submissions, retried %d", len(r.f.submitted), i32(r.dev.JobsRetried))
	}
	if d := r.f.submitted[2].Dir; !strings.HasSuffix(d, "chunk-0001.2") {
		t.Fatalf("retry in %s, want a fresh directory", d)
	}
	r.f.finish(t, "003", []string{r.path(0)}, Cell{50, 60, 70, 90, 90, 90})
	r.f.set("004", Status{State: Failed, Reason: "exit status 137 (log /w/chunk-0002.2/job.log)"})
	r.pump()
	if i32(r.dev.JobsFailed) != 1 || i32(r.dev.JobsDone) != 1 || i32(r.dev.Indexed) != 1 {
		t.Fatalf("failed %d done %d indexed %d", i32(r.dev.JobsFailed), i32(r.dev.JobsDone), i32(r.dev.Indexed))
	}
	lf := r.dev.LastFailure.Value().Text
	if !strings.Contains(lf, "chunk 2 attempt 2") || !strings.Contains(lf, "/w/chunk-0002.2/job.log") {
		t.Fatalf("last-failure %q", lf)
	}
	if st := r.dev.Status.Value().Text; !strings.HasPrefix(st, "error: 1 jobs failed") {
		t.Fatalf("status %q", st)
	}
	// The failed chunk's hits are in the file as such, not as "not indexed".
	if got := r.dev.IndexingRate.Value().Float(); math.Abs(got-50) > 1e-4 {
		t.Fatalf("indexing-rate %v: 1 of the 2 processed hits", got)
	}
	for _, l := range readLines(t, filepath.Join(r.dir, "lyso_3_indexed.jsonl")) {
		if (l.Frame >= 2) != (l.Status == "job failed") {
			t.Errorf("line %+v", l)
		}
	}
}

func TestSubmitFailureIsAFailedAttempt(t *testing.T) {
	r := newRig(t, Config{ChunkHits: 1})
	r.f.submitErr = errors.New("sbatch: error: Batch job submission failed: Unable to contact slurm controller")
	r.m.SeriesStarted(4)
	r.hits(4, 0)
	r.m.SeriesEnded(4)
	r.pump()
	if i32(r.dev.JobsFailed) != 1 || i32(r.dev.JobsRetried) != 1 {
		t.Fatalf("failed %d retried %d", i32(r.dev.JobsFailed), i32(r.dev.JobsRetried))
	}
	if lf := r.dev.LastFailure.Value().Text; !strings.Contains(lf, "Unable to contact slurm controller") {
		t.Fatalf("last-failure %q", lf)
	}
}

// TestFullQueueDropsAndCounts: with no loop draining the queue (the
// cluster down, sbatch hanging), hits keep arriving without blocking;
// chunks beyond the queue are dropped, counted and written as such.
func TestFullQueueDropsAndCounts(t *testing.T) {
	r := newRig(t, Config{ChunkHits: 1, QueueChunks: 2})
	r.m.SeriesStarted(5)
	r.hits(5, 0, 1, 2, 3, 4)
	r.m.SeriesEnded(5)
	r.pump()
	if len(r.f.submitted) != 2 || i32(r.dev.ChunksLost) != 3 || i32(r.dev.HitsLost) != 3 {
		t.Fatalf("submitted %d, chunks dropped %d, hits dropped %d", len(r.f.submitted), i32(r.dev.ChunksLost), i32(r.dev.HitsLost))
	}
	r.f.finish(t, "001", []string{r.path(0)}, Cell{50, 60, 70, 90, 90, 90})
	r.f.finish(t, "002", nil, Cell{})
	r.pump()
	lines := readLines(t, filepath.Join(r.dir, "lyso_3_indexed.jsonl"))
	if len(lines) != 5 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines[2:] {
		if l.Status != "dropped" {
			t.Errorf("%+v", l)
		}
	}
	if st := r.dev.Status.Value().Text; !strings.Contains(st, "3 chunks dropped") {
		t.Fatalf("status %q", st)
	}
}

func TestCancelCommand(t *testing.T) {
	r := newRig(t, Config{ChunkHits: 2})
	r.m.SeriesStarted(8)
	r.hits(8, 0, 1, 2, 3)
	r.pump()
	if err := r.dev.Cancel.Write(context.Background(), properties.Int32Value(0)); err != nil {
		t.Fatal(err)
	}
	r.pump()
	if len(r.f.cancelled) != 2 {
		t.Fatalf("cancelled %v", r.f.cancelled)
	}
	r.hits(8, 4) // after the cancel: not submitted
	r.m.SeriesEnded(8)
	r.pump()
	if len(r.f.submitted) != 2 || i32(r.dev.JobsRetried) != 0 || i32(r.dev.JobsFailed) != 2 {
		t.Fatalf("submitted %d retried %d failed %d", len(r.f.submitted), i32(r.dev.JobsRetried), i32(r.dev.JobsFailed))
	}
	if st := r.dev.Status.Value().Text; st != "cancelled" {
		t.Fatalf("status %q", st)
	}
	for _, l := range readLines(t, filepath.Join(r.dir, "lyso_3_indexed.jsonl")) {
		if l.Status != "cancelled" {
			t.Errorf("%+v", l)
		}
	}
}

func TestSeriesBase(t *testing.T) {
	for in, want := range map[string]string{
		"/data/p14/lyso_1_00042.cbf.gz": "/data/p14/lyso_1_",
		"/d/a_b_12_00001.cbf":           "/d/a_b_12_",
		"/d/saxs_3_00007.tif":           "/d/saxs_3_",
		"/d/odd.h5":                     "/d/series9_",
	} {
		if got := seriesBase(in, 9); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
