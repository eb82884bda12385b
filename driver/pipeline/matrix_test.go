package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tioga/device/contract"
	"tioga/driver/codec"
	"tioga/driver/raster"
	"tioga/driver/stream"
	"tioga/properties"
	"tioga/sim/fixtures"
)

// The fault matrix of issue 12: operating sequences of a real beamline
// (restarts, re-runs, reordering, start-of-series failures, real headers)
// through real ZMQ sockets, the real receiver, pipeline and writer. Each
// test asserts the files on disk, results.jsonl (contents and order), the
// counters and the status text.

// headerDated sends series id's header armed at date: a restarted or
// re-armed detector sends the same id with another date.
func (d *scriptedDetector) headerDated(id uint64, n int, date string) {
	d.t.Helper()
	g := d.gen.Config()
	parts, err := d.b.Header(&stream.Series{Version: 1, ID: id, HeaderDetail: "basic",
		Description: "Dectris EIGER X 500K", SerialNumber: "E-01-0001",
		Width: d.prof.Width(), Height: d.prof.Height(), PixelSizeX: 75e-6, PixelSizeY: 75e-6,
		BeamCenterX: g.BeamX + stream.PixelCentre, BeamCenterY: g.BeamY + stream.PixelCentre, DetectorDistance: g.Distance, Wavelength: g.Wavelength,
		CountTime: 0.001, FrameTime: 0.001, NumberOfImages: uint64(n), BitDepth: 16, ElemSize: 2,
		Config: map[string]any{"data_collection_date": date}})
	if err != nil {
		d.t.Fatal(err)
	}
	d.send(parts)
}

// resultFrames reads a results.jsonl: the frame of every line, in file
// order, each line checked to be a whole JSON record.
func resultFrames(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var frames []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Frame int     `json:"frame"`
			File  *string `json:"file"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		frames = append(frames, rec.Frame)
	}
	return frames
}

func framesText(f []int) string { return strings.Trim(fmt.Sprint(f), "[]") }

// images lists the image files in dir with the given prefix_run_.
func images(t *testing.T, dir, base string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, base+"*.cbf"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// counters reads the stream device's counters by name.
func counters(st *contract.Stream) map[string]int {
	out := map[string]int{}
	for _, p := range []*properties.Property{st.CountDropped, st.Stragglers, st.Malformed, st.MissedHeader,
		st.SeriesTimeouts, st.BadFrames, st.SeriesIncomplete, st.BeyondNImages, st.OutOfOrder, st.Duplicates,
		st.AbortDropped, st.Superseded, st.Restarts, st.HeaderUnusable, st.FilesWritten, st.FilesFailed,
		st.FramesReceived, st.FramesWritten, st.FrameCount} {
		out[p.Name()] = p.Value().Int()
	}
	return out
}

// wantCounters waits until every named counter has its value (the export
// runs every 30 ms), then reports the ones that differ.
func wantCounters(t *testing.T, st *contract.Stream, want map[string]int) {
	t.Helper()
	match := func() bool {
		got := counters(st)
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(20 * time.Second)
	for !match() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the export runs every 30 ms
	}
	got := counters(st)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}

// Item 1: a detector restart numbers series from 1 again. The new header
// with the open series' id starts a new acquisition: the open one ends
// incomplete with its frames kept; the new one is written whole, under the
// next free run number because run 1 already has files.
func TestMatrixRestartWithSameSeriesID(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	st := srv.dev.Stream
	img := filepath.Join(srv.dir, "img")
	det.headerDated(1, 4, "2026-12-02T10:00:00.000+01:00")
	det.image(1, 0)
	det.image(1, 1)
	det.headerDated(1, 4, "2026-12-02T10:07:00.000+01:00") // the DCU restarted
	for i := 0; i < 4; i++ {
		det.image(1, i)
	}
	det.end(1)
	waitFor(t, "second acquisition done", func() bool {
		sum, ok := srv.pipe.LastSummary()
		return ok && sum.Complete && sum.Received == 4
	})
	sum, _ := srv.pipe.LastSummary()
	if sum.Written != 4 || sum.Dropped != 0 || !strings.HasSuffix(sum.Results, "f_2_results.jsonl") {
		t.Fatalf("second acquisition %+v", sum)
	}
	if got := strings.Join(images(t, img, "f_1_"), " "); got != "f_1_00001.cbf f_1_00002.cbf" {
		t.Errorf("first acquisition's files: %s", got)
	}
	if got := len(images(t, img, "f_2_")); got != 4 {
		t.Errorf("second acquisition: %d files", got)
	}
	if got := framesText(resultFrames(t, filepath.Join(img, "f_1_results.jsonl"))); got != "0 1" {
		t.Errorf("first results: %s", got)
	}
	if got := framesText(resultFrames(t, filepath.Join(img, "f_2_results.jsonl"))); got != "0 1 2 3" {
		t.Errorf("second results: %s", got)
	}
	if st.WriterRun.Value().Int() != 2 || st.ResultsFile.Value().Text != filepath.Join(img, "f_2_results.jsonl") {
		t.Errorf("writer-run %d, results-file %q", st.WriterRun.Value().Int(), st.ResultsFile.Value().Text)
	}
	wantCounters(t, st, map[string]int{"count-series-superseded": 1, "count-series-restarts": 1, "count-incomplete-series": 1,
		"count-dropped": 0, "count-duplicates": 0, "count-stragglers": 0, "count-missed-header": 0, "files-written": 4, "files-failed": 0})
	if got := st.Status.Value().Text; got != contract.StatusDone {
		t.Errorf("status %q", got)
	}
	if got := st.LastError.Value().Text; !strings.Contains(got, "same series id") {
		t.Errorf("last-error %q", got)
	}
}

// Item 2: out-of-order frames are late, not lost; a frame numbered beyond
// nimages is kept and counted apart; a frame that never comes is lost.
// results.jsonl is in frame order in every case.
func TestMatrixOutOfOrderAndLost(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	st := srv.dev.Stream
	img := filepath.Join(srv.dir, "img")

	det.header(1, 6)
	for _, i := range []int{0, 1, 3, 2, 5, 4} {
		det.image(1, i)
	}
	det.end(1)
	sum := srv.waitSummary(t, 1)
	if !sum.Complete || sum.Dropped != 0 || sum.Written != 6 {
		t.Fatalf("reordered series: %+v", sum)
	}
	if got := framesText(resultFrames(t, filepath.Join(img, "f_1_results.jsonl"))); got != "0 1 2 3 4 5" {
		t.Errorf("results in order %s", got)
	}
	wantCounters(t, st, map[string]int{"count-dropped": 0, "count-out-of-order": 2, "count-incomplete-series": 0, "files-written": 6})
	if got := st.Status.Value().Text; got != contract.StatusDone {
		t.Errorf("status %q", got)
	}

	if err := st.WriterRun.Write(t.Context(), properties.Int32Value(2)); err != nil {
		t.Fatal(err)
	}
	det.header(2, 6)
	for _, i := range []int{0, 1, 2, 3, 100, 5, 4} {
		det.image(2, i)
	}
	det.end(2)
	sum = srv.waitSummary(t, 2)
	if !sum.Complete || sum.Dropped != 0 || sum.BeyondNImages != 1 || sum.Written != 7 {
		t.Fatalf("series with a frame beyond nimages: %+v", sum)
	}
	if got := framesText(resultFrames(t, filepath.Join(img, "f_2_results.jsonl"))); got != "0 1 2 3 4 5 100" {
		t.Errorf("results %s", got)
	}
	if _, err := os.Stat(filepath.Join(img, "f_2_00101.cbf")); err != nil {
		t.Error(err)
	}
	wantCounters(t, st, map[string]int{"count-dropped": 0, "count-beyond-nimages": 1, "count-incomplete-series": 0})
	if got := st.Status.Value().Text; got != "error: 1 frames numbered beyond nimages 6 (kept)" {
		t.Errorf("status %q", got)
	}

	if err := st.WriterRun.Write(t.Context(), properties.Int32Value(3)); err != nil {
		t.Fatal(err)
	}
	det.header(3, 6)
	for _, i := range []int{0, 2, 1, 5, 4} { // 3 never comes
		det.image(3, i)
	}
	det.end(3)
	sum = srv.waitSummary(t, 3)
	if sum.Complete || sum.Dropped != 1 || sum.Received != 5 {
		t.Fatalf("series with a lost frame: %+v", sum)
	}
	if got := framesText(resultFrames(t, filepath.Join(img, "f_3_results.jsonl"))); got != "0 1 2 4 5" {
		t.Errorf("results %s", got)
	}
	wantCounters(t, st, map[string]int{"count-dropped": 1, "count-incomplete-series": 1})
	if got := st.Status.Value().Text; got != "error: series 3 ended (received) after 5 of 6 frames; 1 frames lost between detector and server" {
		t.Errorf("status %q", got)
	}
}

// Item 3: the same prefix and run twice. Nobody loses the old files and
// nobody loses the new frames: the second series goes to the next free run
// number, published in writer-run and results-file, said once.
func TestMatrixRepeatedRunGoesToNextFreeRun(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	st := srv.dev.Stream
	img := filepath.Join(srv.dir, "img")
	for id := uint64(1); id <= 2; id++ {
		det.header(id, 3)
		for i := 0; i < 3; i++ {
			det.image(id, i)
		}
		det.end(id)
		srv.waitSummary(t, id)
	}
	old, err := os.Stat(filepath.Join(img, "f_1_00001.cbf"))
	if err != nil {
		t.Fatal(err)
	}
	if n1, n2 := len(images(t, img, "f_1_")), len(images(t, img, "f_2_")); n1 != 3 || n2 != 3 {
		t.Fatalf("run 1: %d files, run 2: %d files", n1, n2)
	}
	if got := framesText(resultFrames(t, filepath.Join(img, "f_2_results.jsonl"))); got != "0 1 2" {
		t.Errorf("run 2 results %s", got)
	}
	if st.WriterRun.Value().Int() != 2 || st.ResultsFile.Value().Text != filepath.Join(img, "f_2_results.jsonl") ||
		st.WriterTemplate.Value().Text != filepath.Join(img, "f_2_%05d.cbf") {
		t.Errorf("writer-run %d results-file %q template %q", st.WriterRun.Value().Int(), st.ResultsFile.Value().Text, st.WriterTemplate.Value().Text)
	}
	wantCounters(t, st, map[string]int{"files-written": 3, "files-failed": 0})
	if got := st.LastError.Value().Text; got != "" {
		t.Errorf("last-error %q (a new run number is not an error)", got)
	}
	if got := st.Status.Value().Text; got != contract.StatusDone {
		t.Errorf("status %q", got)
	}
	// The old files are untouched.
	if now, _ := os.Stat(filepath.Join(img, "f_1_00001.cbf")); !os.SameFile(old, now) || now.ModTime() != old.ModTime() {
		t.Error("run 1's first image was replaced")
	}
}

// Item 3: a series whose files cannot be started (a directory that cannot
// be created, too little free space) is still analysed, and every frame is
// counted as not written, with its cause, said once in the status.
func TestMatrixSeriesStartFailuresAreCounted(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*Config, string)
		cause  string
	}{
		{"directory", func(c *Config, dir string) {
			os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
			c.Writer.Directory = filepath.Join(dir, "file", "img")
		}, "not a directory"},
		{"free space", func(c *Config, _ string) { c.Writer.MinFreeBytes = 1 << 62 }, "disk nearly full"},
	} {
		t.Run(c.name, func(t *testing.T) {
			det := newScriptedDetector(t)
			parent := t.TempDir()
			srv := newServer(t, det.endpoint(), func(cfg *Config, _ *stream.Config) { c.mutate(cfg, parent) })
			st := srv.dev.Stream
			det.header(1, 5)
			for i := 0; i < 5; i++ {
				det.image(1, i)
			}
			det.end(1)
			sum := srv.waitSummary(t, 1)
			if sum.Processed != 5 || sum.Written != 0 || !strings.Contains(sum.WriteError, c.cause) {
				t.Fatalf("summary %+v", sum)
			}
			wantCounters(t, st, map[string]int{"files-failed": 5, "files-written": 0, "frame-count": 5})
			status := st.Status.Value().Text
			if !strings.HasPrefix(status, "error: writer: 5 frames not written: ") || strings.Count(status, c.cause) != 1 ||
				strings.Count(status, "writer:") != 1 {
				t.Errorf("status %q", status)
			}
			if v, _ := st.DozorPass.Read(); v.Rows() != 5 {
				t.Errorf("%d records", v.Rows())
			}
		})
	}
}

// Item 7: the real EIGER2 Stream V1 dump, whose header has empty
// flatfield, mask and count-rate bodies. The series is kept with the
// header's configuration, the three parts are counted, and the frame is
// written with the header's geometry.
func TestMatrixRealEIGER2HeaderWithEmptyTables(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	st := srv.dev.Stream
	img := filepath.Join(srv.dir, "img")
	dir := []string{"real-frames", "eiger2-16m-roi4m-thaumatin-v1dump"}
	det.send(fixtures.MessageParts(t, append(dir, "header")...))
	det.send(fixtures.MessageParts(t, append(dir, "image000044")...))
	det.send([][]byte{[]byte(`{"htype":"dseries_end-1.0","series":2619}`)})
	sum := srv.waitSummary(t, 2619)
	if sum.Received != 1 || sum.Written != 1 || sum.Expected != 80 || sum.Dropped != 79 {
		t.Fatalf("summary %+v", sum)
	}
	if got := framesText(resultFrames(t, filepath.Join(img, "f_1_results.jsonl"))); got != "43" {
		t.Errorf("results %s", got)
	}
	b, err := os.ReadFile(filepath.Join(img, "f_1_00044.cbf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Detector_distance 0.33700 m", "# Wavelength 0.97625 A", "# Pixel_size 75e-6 m x 75e-6 m",
		"# 2020-09-07T21:46:55.137\r\n", // data_collection_date + frame 43 x 4 ms, not the arrival time
		"# Beam_xy (1041.25, 1115.75) pixels", "# Count_cutoff 18533 counts"} {
		if !strings.Contains(string(b[:4000]), want) {
			t.Errorf("header lacks %q:\n%s", want, b[:1500])
		}
	}
	wantCounters(t, st, map[string]int{"count-header-parts-unusable": 3, "count-malformed": 0, "count-missed-header": 0, "files-written": 1})
	// The replay is one frame of an 80-frame series: the other 79 never
	// came, and the status says so (and nothing about a missed header).
	if got := st.Status.Value().Text; got != "error: series 2619 ended (received) after 1 of 80 frames; 79 frames lost between detector and server" {
		t.Errorf("status %q", got)
	}
}

// Item 6: frames dropped after an abort and repeated frames have their own
// counters, and last-error, which said so, is clean again after a clean
// series.
func TestMatrixAbortDuplicatesAndLastError(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	st := srv.dev.Stream
	img := filepath.Join(srv.dir, "img")

	det.header(1, 10)
	for i := 0; i < 3; i++ {
		det.image(1, i)
	}
	waitFor(t, "three frames received", func() bool { return st.FramesReceived.Value().Int() == 3 })
	if err := st.Abort.Write(t.Context(), properties.Int32Value(0)); err != nil {
		t.Fatal(err)
	}
	sum := srv.waitSummary(t, 1)
	if sum.EndReason != stream.EndAborted || sum.Received != 3 || sum.Written != 3 || sum.Dropped != 0 {
		t.Fatalf("aborted series %+v", sum)
	}
	det.image(1, 3) // the DCU had these queued: dropped, counted
	det.image(1, 4)
	det.end(1)
	wantCounters(t, st, map[string]int{"count-abort-dropped": 3, "count-dropped": 0, "count-stragglers": 0})
	if got := framesText(resultFrames(t, filepath.Join(img, "f_1_results.jsonl"))); got != "0 1 2" {
		t.Errorf("aborted series results %s", got)
	}

	det.header(2, 3)
	for _, i := range []int{0, 1, 1, 2} {
		det.image(2, i)
	}
	det.end(2)
	sum = srv.waitSummary(t, 2)
	if !sum.Complete || sum.Received != 3 || sum.Written != 3 {
		t.Fatalf("series with a repeated frame %+v", sum)
	}
	wantCounters(t, st, map[string]int{"count-duplicates": 1, "count-dropped": 0})
	if got := framesText(resultFrames(t, filepath.Join(img, "f_2_results.jsonl"))); got != "0 1 2" {
		t.Errorf("results %s", got)
	}
	waitFor(t, "last-error names the repeated frame", func() bool {
		return strings.Contains(st.LastError.Value().Text, "image 1 received twice")
	})

	det.header(3, 2)
	det.image(3, 0)
	det.image(3, 1)
	det.end(3)
	srv.waitSummary(t, 3)
	if got := st.LastError.Value().Text; got != "" {
		t.Errorf("last-error after a clean series %q", got)
	}
	if got := st.Status.Value().Text; got != contract.StatusDone {
		t.Errorf("status %q", got)
	}
}

// Item 4: a raster run again under the same prefix and run keeps the
// earlier run's heat map; the new one goes beside the new run's files.
// Every map is mode 0644 like the other outputs.
func TestMatrixHeatMapNeverOverwritten(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), func(c *Config, _ *stream.Config) {
		c.Scan = raster.Grid{Lines: 2, FramesPerLine: 2}
	})
	st := srv.dev.Stream
	img := filepath.Join(srv.dir, "img")
	for id := uint64(1); id <= 2; id++ {
		det.header(id, 4)
		for i := 0; i < 4; i++ {
			det.image(id, i)
		}
		det.end(id)
		sum := srv.waitSummary(t, id)
		want := filepath.Join(img, fmt.Sprintf("f_%d_heatmap.png", id))
		if sum.HeatMap != want || srv.dev.Scan.HeatMap.Value().Text != want {
			t.Fatalf("series %d heat map %q (property %q), want %q", id, sum.HeatMap, srv.dev.Scan.HeatMap.Value().Text, want)
		}
		fi, err := os.Stat(want)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v", want, fi.Mode().Perm())
		}
		if id == 1 {
			first, _ := os.ReadFile(want)
			t.Cleanup(func() {
				if now, _ := os.ReadFile(want); string(now) != string(first) {
					t.Error("run 1's heat map changed")
				}
			})
		}
	}
	if got := st.Status.Value().Text; got != contract.StatusDone {
		t.Errorf("status %q", got)
	}
}

// An aborted series is incomplete, not failed (beamline-operations.md,
// "Aborts"): the status is done, count-incomplete-series counts it, nothing
// is called lost or an error, and everything received is written and in
// results.jsonl. Frames lost before the abort are still an error, with the
// abort said as their context.
func TestMatrixAbortIsIncompleteNotFailed(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	st := srv.dev.Stream
	img := filepath.Join(srv.dir, "img")

	det.header(1, 10)
	for _, i := range []int{0, 2, 1, 3} {
		det.image(1, i)
	}
	waitFor(t, "four frames received", func() bool { return st.FramesReceived.Value().Int() == 4 })
	if err := st.Abort.Write(t.Context(), properties.Int32Value(0)); err != nil {
		t.Fatal(err)
	}
	sum := srv.waitSummary(t, 1)
	if sum.Complete || sum.EndReason != stream.EndAborted || sum.Received != 4 || sum.Written != 4 || sum.Dropped != 0 {
		t.Fatalf("aborted series %+v", sum)
	}
	det.end(1)
	wantCounters(t, st, map[string]int{"count-incomplete-series": 1, "count-dropped": 0, "frames-received": 4,
		"frames-written": 4, "files-written": 4, "files-failed": 0, "count-out-of-order": 1})
	if got := st.Status.Value().Text; got != contract.StatusDone {
		t.Errorf("status of an aborted series %q, want %q", got, contract.StatusDone)
	}
	if got := st.LastError.Value().Text; got != "" {
		t.Errorf("last-error after an abort %q (an abort is not an error)", got)
	}
	if got := framesText(resultFrames(t, filepath.Join(img, "f_1_results.jsonl"))); got != "0 1 2 3" {
		t.Errorf("results %s", got)
	}

	// Frame 1 never comes before the abort: it is lost, and that is an error.
	if err := st.WriterRun.Write(t.Context(), properties.Int32Value(2)); err != nil {
		t.Fatal(err)
	}
	det.header(2, 10)
	for _, i := range []int{0, 2, 3} {
		det.image(2, i)
	}
	waitFor(t, "three frames received", func() bool { return st.FramesReceived.Value().Int() == 3 })
	if err := st.Abort.Write(t.Context(), properties.Int32Value(0)); err != nil {
		t.Fatal(err)
	}
	sum = srv.waitSummary(t, 2)
	if sum.Dropped != 1 || sum.Written != 3 {
		t.Fatalf("aborted series with a lost frame %+v", sum)
	}
	det.end(2)
	wantCounters(t, st, map[string]int{"count-incomplete-series": 2, "count-dropped": 1, "files-written": 3})
	if got, want := st.Status.Value().Text, "error: series 2 ended (aborted) after 3 of 10 frames; 1 frames lost between detector and server"; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
}

// Frame accounting over a day's sequence on one server: a detector restart
// mid-series, a series out of order with a repeated frame, a re-run of the
// same prefix and run, an abort with frames still queued at the DCU, a
// frame that never comes, and a late frame after the end. Every image the
// detector sent ends in exactly one place (beamline-operations.md, "What
// people look at"): received and written, or dropped with a reason that
// has a counter; and the counters add up to what was sent.
func TestMatrixFrameAccounting(t *testing.T) {
	det := newScriptedDetector(t)
	srv := newServer(t, det.endpoint(), nil)
	st := srv.dev.Stream
	img := filepath.Join(srv.dir, "img")
	sent := 0
	image := func(id uint64, frames ...int) {
		for _, i := range frames {
			det.image(id, i)
			sent++
		}
	}
	type outcome struct {
		run                        int
		received, written, dropped int
		complete                   bool
	}
	var got []outcome
	// record checks the series' own counters (frames-received = files
	// written + files failed) and keeps its summary.
	record := func(sum Summary) {
		t.Helper()
		wantCounters(t, st, map[string]int{"frames-received": sum.Received, "files-written": sum.Written,
			"files-failed": sum.Received - sum.Written, "count-dropped": sum.Dropped})
		got = append(got, outcome{st.WriterRun.Value().Int(), sum.Received, sum.Written, sum.Dropped, sum.Complete})
	}

	// A: three frames, then the DCU restarts and numbers from 1 again.
	det.headerDated(1, 6, "2026-12-03T08:00:00.000+01:00")
	image(1, 0, 1, 2)
	det.headerDated(1, 6, "2026-12-03T08:05:00.000+01:00")
	waitFor(t, "the first acquisition superseded", func() bool {
		sum, ok := srv.pipe.LastSummary()
		return ok && sum.EndReason == stream.EndSuperseded
	})
	sumA, _ := srv.pipe.LastSummary()
	got = append(got, outcome{1, sumA.Received, sumA.Written, sumA.Dropped, sumA.Complete})
	// B: the new acquisition, out of order, frame 2 repeated.
	image(1, 0, 2, 1, 3, 2, 5, 4)
	det.end(1)
	waitFor(t, "the second acquisition done", func() bool {
		sum, ok := srv.pipe.LastSummary()
		return ok && sum.EndReason == stream.EndReceived && sum.SeriesID == 1
	})
	sumB, _ := srv.pipe.LastSummary()
	record(sumB)
	// C: the operator sets run 1 again by mistake; frame 2's data are
	// corrupt (it cannot be decoded: recorded, not written, counted).
	if err := st.WriterRun.Write(t.Context(), properties.Int32Value(1)); err != nil {
		t.Fatal(err)
	}
	det.header(2, 4)
	image(2, 0, 1)
	parts, err := det.b.Image(&stream.Image{Version: 1, SeriesID: 2, Number: 2,
		Pixels: stream.Pixels{Width: det.prof.Width(), Height: det.prof.Height(), ElemSize: 2, Encoding: codec.BSLZ4,
			Data: []byte("\x00\x00\x00\x00\x00\x10\x22\x08\x00\x00\x20\x00not bitshuffle-lz4 data")}})
	if err != nil {
		t.Fatal(err)
	}
	det.send(parts)
	sent++
	image(2, 3)
	det.end(2)
	sumC := srv.waitSummary(t, 2)
	if sumC.BadFrames != 1 {
		t.Errorf("series 2: %d bad frames, want 1", sumC.BadFrames)
	}
	wantCounters(t, st, map[string]int{"count-bad-frames": 1})
	record(sumC)
	// D: aborted after three frames; the DCU still sends two and its end.
	det.header(3, 8)
	image(3, 0, 1, 2)
	waitFor(t, "three frames of series 3", func() bool { return st.FramesReceived.Value().Int() == 3 })
	if err := st.Abort.Write(t.Context(), properties.Int32Value(0)); err != nil {
		t.Fatal(err)
	}
	record(srv.waitSummary(t, 3))
	image(3, 3, 4)
	det.end(3)
	wantCounters(t, st, map[string]int{"count-abort-dropped": 3}) // two images and the end message
	// E: frame 2 never comes before the end; it arrives after it.
	det.header(4, 4)
	image(4, 0, 1, 3)
	det.end(4)
	record(srv.waitSummary(t, 4))
	image(4, 2)

	want := []outcome{
		{1, 3, 3, 0, false}, // A: superseded by the restart, its frames kept
		{2, 6, 6, 0, true},  // B: run 1 has files: the next free run
		{3, 4, 3, 0, true},  // C: run 1 refused again: the next free run; one frame undecodable
		{4, 3, 3, 0, false}, // D: aborted: incomplete, nothing lost
		{5, 3, 3, 1, false}, // E: one frame lost (late is not in time)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("series outcomes (run, received, written, lost, complete)\n got %v\nwant %v", got, want)
	}
	wantCounters(t, st, map[string]int{"count-duplicates": 1, "count-stragglers": 1, "count-abort-dropped": 3,
		"count-missed-header": 0, "count-malformed": 0, "count-out-of-order": 2, "count-incomplete-series": 3,
		"count-series-superseded": 1, "count-series-restarts": 1})
	c := counters(st)
	received, written, files, lines := 0, 0, 0, 0
	for _, o := range got {
		received += o.received
		written += o.written
		files += len(images(t, img, fmt.Sprintf("f_%d_", o.run)))
		lines += len(resultFrames(t, filepath.Join(img, fmt.Sprintf("f_%d_results.jsonl", o.run))))
	}
	// Every image sent: received, or dropped with its counter (the abort
	// counter also counts the one end message it dropped).
	if accounted := received + c["count-duplicates"] + c["count-stragglers"] + c["count-abort-dropped"] - 1; accounted != sent {
		t.Errorf("%d images sent, %d accounted for (received %d + duplicates + stragglers + abort-dropped images)", sent, accounted, received)
	}
	if written != received-1 || files != written || lines != received {
		t.Errorf("received %d, written %d (one undecodable), files on disk %d, results lines %d", received, written, files, lines)
	}
	if got := st.Status.Value().Text; got != "error: series 4 ended (received) after 3 of 4 frames; 1 frames lost between detector and server" {
		t.Errorf("status %q", got)
	}
}
