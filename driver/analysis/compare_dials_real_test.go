//go:build dials

package analysis

import (
	"cmp"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"tioga/driver/cbf"
	"tioga/driver/stream"
	"tioga/sim/fixtures"
)

// dialsRealFrame is a Python program run by Debian's python3: it runs
// dials.find_spots (its run function, with the command line's arguments)
// on one image file reps times in one process and prints, as JSON, the
// wall and CPU time of each call, the spots' centroids (pixels, DIALS'
// convention: pixel i spans [i, i+1)) and resolutions, and DIALS' own
// per-image resolution estimate (per_image_analysis, the estimated_d_min
// that dials.find_spots per_image_statistics and the DIALS spot-finding
// server report, ice rings filtered). Timing each call inside the process
// leaves out the interpreter's start-up and DIALS' imports; the first call
// also pays dxtbx's format-class lookup and other first-use costs, so the
// per-image figure is the median of the calls after the first.
const dialsRealFrame = `
import json, sys, time
from dials.command_line.find_spots import run
from dials.array_family import flex
from dials.algorithms.spot_finding import per_image_analysis
from dxtbx.model.experiment_list import ExperimentListFactory
img, reps = sys.argv[1], int(sys.argv[2])
args = [img, "nproc=1", "output.reflections=strong.refl", "output.log=find_spots.log"] + sys.argv[3:]
wall, cpu = [], []
for i in range(reps):
    w, c = time.perf_counter(), time.process_time()
    run(args)
    wall.append(time.perf_counter() - w)
    cpu.append(time.process_time() - c)
r = flex.reflection_table.from_file("strong.refl")
expts = ExperimentListFactory.from_filenames([img])
r.centroid_px_to_mm(expts)
r.map_centroids_to_reciprocal_space(expts)
stats = per_image_analysis.stats_for_reflection_table(r)
norms = r["rlp"].norms()
xyz = r["xyzobs.px.value"]
print(json.dumps({
    "wall": wall, "cpu": cpu,
    "x": [p[0] for p in xyz], "y": [p[1] for p in xyz],
    "d": [1 / n if n > 0 else 0 for n in norms],
    "d_min": stats.estimated_d_min,
}))
`

// dialsFrameResult is dialsRealFrame's output.
type dialsFrameResult struct {
	Wall, CPU []float64
	X, Y, D   []float64
	DMin      float64 `json:"d_min"`
}

// TestCompareDIALSRealFrames runs dials.find_spots (defaults, nproc=1, gain
// 1: every frame counts photons, none of their headers gives a gain) and our
// analysis (default parameters, ice-ring detection and a fresh hot-pixel
// map as the server has them) on each real frame of
// ../shared/fixtures/real-frames, and prints per frame: spot counts both
// ways and their ratio, the spots both found (centroids within 2 px),
// resolution both ways (ours: Result.Resolution; DIALS: its per-image
// estimated_d_min, and its highest-resolution spot), and the time per frame
// both ways. DIALS reads the miniCBF/imgCIF files as given (gunzipped); the
// EIGER2 Stream V1 dump becomes the CBF file our server writes for it (the
// same encoder and header fields as driver/pipeline's cbfHeader). It then
// prints the speed ratio on the 4M frame (issue 14 item 7 asks >= 50x).
//
// Nothing is asserted beyond the runs succeeding: no real frame has a
// ground truth, and the figures are for the README and issue 14.
func TestCompareDIALSRealFrames(t *testing.T) {
	if _, err := exec.LookPath("dials.find_spots"); err != nil {
		t.Fatalf("dials.find_spots not found: this comparison needs Debian's dials package (make compare-dials installs it)")
	}
	const python = "/usr/bin/python3"
	const dialsReps, ourReps = 3, 15
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	type row struct {
		name, file          string
		pixels              int
		ours, dials, shared int
		oursRes, dialsDMin  float64
		dialsMinD           float64
		oursCPU             time.Duration
		dialsWall, dialsCPU time.Duration
		dialsFirst          time.Duration
		oursShape, oursIce  int
		oursFragments       int
	}
	var rows []row
	for _, name := range []string{"eiger2-thaumatin-grid", "eiger2xe-very-weak", "pilatus-weak-ice", "pilatus-high-background", "pilatus-thaumatin-still"} {
		dir := t.TempDir()
		f := loadRealFrame(t, name)
		img, what := realFrameFile(t, name, dir, f)

		// Ours: the analysis alone on this thread (one core), CPU time of
		// the thread, median of ourReps runs. One Analyser, warmed up once
		// (its scratch allocated), then fresh tables for each run, as a
		// pipeline worker analyses a frame. The hot-pixel map is one map,
		// emptied before each run (the same frame over and over would
		// teach it that its spots are hot): its per-pixel counts are
		// allocated once per pipeline, which a fresh map per run charged
		// to every frame (8 ms of 18 on the EIGER2 4M frame).
		hot := NewHotMap()
		fresh := func() *Tables {
			tab, err := NewTables(f.geom, DefaultParams(), Masks{Hot: hot})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return tab
		}
		a := NewAnalyser(fresh())
		var res Result
		if err := a.Analyse(f.pixels, f.elemSize, &res); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cpus := make([]time.Duration, ourReps)
		for i := range cpus {
			a.SetTables(fresh())
			hot.Reset()
			c0 := threadCPU()
			if err := a.Analyse(f.pixels, f.elemSize, &res); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			cpus[i] = threadCPU() - c0
		}

		cmd := exec.Command(python, "-c", dialsRealFrame, img, fmt.Sprint(dialsReps))
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("%s: dials.find_spots: %v\n%s", name, err, stderr)
		}
		var d dialsFrameResult
		if err := json.Unmarshal(out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:], &d); err != nil {
			t.Fatalf("%s: reading DIALS' result: %v\n%s", name, err, out)
		}
		minD := math.Inf(1)
		for _, v := range d.D {
			if v > 0 {
				minD = min(minD, v)
			}
		}
		sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
		r := row{name: name, file: what, pixels: f.geom.Width * f.geom.Height,
			ours: res.Spots, dials: len(d.X), shared: sharedSpots(res.SpotList, d.X, d.Y, 2),
			oursRes: res.Resolution, dialsDMin: d.DMin, dialsMinD: minD,
			oursCPU: medianDuration(cpus), dialsFirst: sec(d.Wall[0]),
			dialsWall: sec(median(d.Wall[1:])), dialsCPU: sec(median(d.CPU[1:])),
			oursShape: res.ShapeRejected, oursFragments: res.BlobFragments, oursIce: res.IceSpots}
		rows = append(rows, r)
		t.Logf("%s: DIALS on %s; ours %+v", name, what, r)
	}

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var b strings.Builder
	fmt.Fprintf(&b, "Real frames (../shared/fixtures/real-frames), dials.find_spots defaults nproc=1 gain 1 vs ours (defaults, threshold):\n")
	fmt.Fprintf(&b, "| frame | Mpx | DIALS spots | ours | ours/DIALS | shared (2 px) | ours d (Å) | DIALS d_min (Å) | DIALS best spot d (Å) | ours ms CPU | DIALS ms CPU (wall; 1st call wall) | DIALS/ours CPU |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %.1f | %d | %d | %.2f | %d (%.0f %% of ours, %.0f %% of DIALS') | %.2f | %.2f | %.2f | %.1f | %.0f (%.0f; %.0f) | %.0fx |\n",
			r.name, float64(r.pixels)/1e6, r.dials, r.ours, float64(r.ours)/float64(r.dials), r.shared,
			100*float64(r.shared)/float64(max(r.ours, 1)), 100*float64(r.shared)/float64(max(r.dials, 1)),
			r.oursRes, r.dialsDMin, r.dialsMinD, ms(r.oursCPU), ms(r.dialsCPU), ms(r.dialsWall), ms(r.dialsFirst),
			float64(r.dialsCPU)/float64(r.oursCPU))
	}
	fmt.Fprintf(&b, "DIALS: the file as given (gunzipped) or, for the EIGER2 V1 dump, the CBF our server writes; d_min = per_image_analysis estimated_d_min (ice filtered). "+
		"Times: ours = Analyse alone on a warmed-up Analyser, thread CPU, median of %d; DIALS = dials.find_spots' run() in one Python process, median of calls 2..%d "+
		"(excludes interpreter start-up and imports; includes reading the image, masks, writing strong.refl)\n", ourReps, dialsReps)
	g := rows[0] // the EIGER2 4M ROI frame
	speed := fmt.Sprintf("compare-dials speed (issue 14 item 7), EIGER2 4M frame (%.2f Mpx): ours threshold %.1f ms CPU (%.0f Mpx/cpu-s), dials.find_spots %.0f ms CPU (%.0f ms wall) per image: %.0fx (CPU), %.0fx (DIALS wall / our CPU); target 50x",
		float64(g.pixels)/1e6, ms(g.oursCPU), float64(g.pixels)/1e6/g.oursCPU.Seconds(), ms(g.dialsCPU), ms(g.dialsWall),
		float64(g.dialsCPU)/float64(g.oursCPU), float64(g.dialsWall)/float64(g.oursCPU))
	t.Log("\n" + b.String() + speed)
	if testing.Verbose() {
		fmt.Print(b.String())
		fmt.Println(speed)
	}
}

// realFrameFile writes the file dials.find_spots reads for real frame f into
// dir and returns its path and what it is.
func realFrameFile(t *testing.T, name, dir string, f realFrame) (string, string) {
	t.Helper()
	if name == "eiger2-thaumatin-grid" {
		hm, err := stream.ParseV1(fixtures.MessageParts(t, "real-frames", "eiger2-16m-roi4m-thaumatin-v1dump", "header"))
		if err != nil || hm.Series == nil {
			t.Fatalf("%s header: %v", name, err)
		}
		s := hm.Series
		// As driver/pipeline's cbfHeader maps the series header.
		h := &cbf.Header{Detector: s.Description, Serial: s.SerialNumber, PixelSizeX: s.PixelSizeX, PixelSizeY: s.PixelSizeY,
			Sensor: s.SensorMaterial, SensorThickness: s.SensorThickness, ExposureTime: s.CountTime, ExposurePeriod: s.FrameTime,
			CountCutoff: min(int64(s.Saturation(f.elemSize)), math.MaxInt32), Threshold: s.ThresholdEnergy,
			Wavelength: f.geom.Wavelength, Distance: f.geom.Distance,
			BeamX: f.geom.BeamX + stream.PixelCentre, BeamY: f.geom.BeamY + stream.PixelCentre,
			StartAngle: s.Omega().Start, AngleIncrement: s.Omega().Increment, Timestamp: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)}
		enc, err := cbf.NewEncoder(cbf.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := enc.Encode(h, "grid_00044", cbf.Pixels{Data: f.pixels, Width: f.geom.Width, Height: f.geom.Height, ElemSize: f.elemSize})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := filepath.Join(dir, "grid_00044.cbf")
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return p, "our server's CBF of the V1 dump"
	}
	file := map[string][]string{
		"eiger2xe-very-weak":      {"dlsnxs2cbf_therm_0001.cbf.gz"},
		"pilatus-weak-ice":        {"pilatus", "DLS_I03_smargon_0001.cbf.gz"},
		"pilatus-high-background": {"pilatus", "example_004.cbf.gz"},
		"pilatus-thaumatin-still": {"pilatus", "thaum_0500.cbf.gz"},
	}[name]
	zr, err := gzip.NewReader(strings.NewReader(string(fixtures.Read(t, append([]string{"real-frames"}, file...)...))))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := filepath.Join(dir, strings.TrimSuffix(file[len(file)-1], ".gz"))
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, "the fixture file as given"
}

// sharedSpots counts our spots with a DIALS spot within tol pixels, each
// DIALS spot matched at most once (nearest first, greedily). DIALS'
// centroids count pixel i as [i, i+1), ours centre pixel i on i.
func sharedSpots(ours []Spot, dx, dy []float64, tol float64) int {
	type pair struct {
		d    float64
		i, j int
	}
	var pairs []pair
	for i, s := range ours {
		for j := range dx {
			if d := math.Hypot(s.X-(dx[j]-0.5), s.Y-(dy[j]-0.5)); d <= tol {
				pairs = append(pairs, pair{d, i, j})
			}
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return cmp.Compare(a.d, b.d) })
	usedO, usedD := map[int]bool{}, map[int]bool{}
	n := 0
	for _, p := range pairs {
		if !usedO[p.i] && !usedD[p.j] {
			usedO[p.i], usedD[p.j] = true, true
			n++
		}
	}
	return n
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDuration(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
