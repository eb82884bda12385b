//go:build dials

// The comparison with DIALS (issue 4, "make compare-dials"): opt-in because
// it needs Debian's dials package (large) and takes minutes. Run with
//
//	go test -tags dials -count=1 -timeout 30m -run CompareDIALS -v ./driver/analysis/

package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tioga/driver/cbf"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// dialsCounts is a Python program run by Debian's python3 with DIALS'
// libraries: it prints the number of spots per image of a strong.refl as a
// JSON list (image index from the shoebox's first z).
const dialsCounts = `
import json, sys
from dials.array_family import flex
n = int(sys.argv[2])
r = flex.reflection_table.from_file(sys.argv[1])
counts = [0] * n
for b in r["bbox"]:
    counts[int(b[4])] += 1
print(json.dumps(counts))
`

// TestCompareDIALS writes simulated EIGER 4M frames as miniCBF files, runs
// dials.import and dials.find_spots on them (the classic dispersion test,
// which our Dispersion method reimplements, and DIALS' default
// dispersion_extended), runs our analysis on the same frames, and prints the
// per-frame spot counts side by side with their Pearson correlation and the
// time each took. It asserts a correlation of at least 0.9.
func TestCompareDIALS(t *testing.T) {
	for _, tool := range []string{"dials.import", "dials.find_spots"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: this comparison needs Debian's dials package (apt-get install -y dials; make compare-dials installs it)", tool)
		}
	}
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import dials.array_family.flex").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import DIALS (Debian's python3-dials): %v\n%s", python, err, out)
	}

	// A raster over the crystal's edge: frames from blank to strong, so
	// spot counts spread over the whole range and the correlation means
	// something beyond "hit or blank".
	cfg := diffraction.DefaultConfig(eiger4M(t))
	cfg.Seed = 9
	r := diffraction.DefaultRaster()
	r.Lines, r.FramesPerLine = 6, 8
	r.CenterColumn, r.CenterLine, r.RadiusColumns, r.RadiusLines = 4.3, 2.6, 5.5, 3.5
	r.EdgeStrength = 0.05
	cfg.Raster = &r
	g, err := diffraction.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := r.Frames()

	dir := t.TempDir()
	enc, err := cbf.NewEncoder(cbf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Beam_xy counts from the first pixel's outer edge (dxtbx, PILATUS);
	// the simulator and this package centre pixel i on i: add half a pixel.
	hdr := &cbf.Header{
		Detector: "Dectris EIGER X 4M", Serial: "E-08-SIM", PixelSizeX: g.Config().Profile.PixelSize, PixelSizeY: g.Config().Profile.PixelSize,
		Sensor: "Si", SensorThickness: 450e-6, ExposureTime: 0.00134, ExposurePeriod: 0.00134,
		CountCutoff: int64(g.Saturation()), Threshold: 6000, Wavelength: cfg.Wavelength, Distance: cfg.Distance,
		BeamX: cfg.BeamX + 0.5, BeamY: cfg.BeamY + 0.5, Timestamp: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
	}
	thr := NewAnalyser(simTables(t, g, DefaultParams()))
	pd := DefaultParams()
	pd.Method = Dispersion
	disp := NewAnalyser(simTables(t, g, pd))

	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	var res Result
	truths, trueAll := make([]int, n), make([]int, n)
	oursT, oursD := make([]float64, n), make([]float64, n)
	var timeT, timeD, cpuT, cpuD time.Duration
	var files []string
	// Our analysis runs on this goroutine, locked to its thread, so that
	// the thread's CPU time is the analysis' CPU time.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	analyse := func(a *Analyser, wall, cpu *time.Duration) float64 {
		c0, w0 := threadCPU(), time.Now()
		if err := a.Analyse(buf, g.ElemSize(), &res); err != nil {
			t.Fatal(err)
		}
		*wall += time.Since(w0)
		*cpu += threadCPU() - c0
		return float64(res.Spots)
	}
	for i := 0; i < n; i++ {
		if err := g.Frame(i, buf, &tr); err != nil {
			t.Fatal(err)
		}
		truths[i], trueAll[i] = tr.CountStrong(10), len(tr.Spots)
		oursT[i] = analyse(thr, &timeT, &cpuT)
		oursD[i] = analyse(disp, &timeD, &cpuD)
		name := fmt.Sprintf("raster_%05d", i+1)
		out, err := enc.Encode(hdr, name, cbf.Pixels{Data: buf, Width: g.Width(), Height: g.Height(), ElemSize: g.ElemSize()})
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name+".cbf")
		if err := os.WriteFile(f, out, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}

	run := func(name string, args ...string) (wall, cpu time.Duration) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	counts := func(refl string) []float64 {
		t.Helper()
		out, err := exec.Command(python, "-c", dialsCounts, filepath.Join(dir, refl), fmt.Sprint(n)).Output()
		if err != nil {
			t.Fatalf("reading %s: %v", refl, err)
		}
		var c []float64
		if err := json.Unmarshal(out, &c); err != nil || len(c) != n {
			t.Fatalf("reading %s: %v (%q)", refl, err, out)
		}
		return c
	}
	run("dials.import", append([]string{"output.experiments=imported.expt"}, files...)...)
	timeDD, cpuDD := run("dials.find_spots", "imported.expt", "nproc=1", "threshold.algorithm=dispersion", "output.reflections=dispersion.refl", "output.log=dispersion.log")
	timeDE, cpuDE := run("dials.find_spots", "imported.expt", "nproc=1", "output.reflections=extended.refl", "output.log=extended.log")
	dialsD, dialsE := counts("dispersion.refl"), counts("extended.refl")

	var table strings.Builder
	fmt.Fprintf(&table, "%5s %10s %10s %10s %10s %10s %10s\n", "frame", "true", "true>=10σ", "DIALS-disp", "DIALS-ext", "ours-thr", "ours-disp")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&table, "%5d %10d %10d %10.0f %10.0f %10.0f %10.0f\n", i, trueAll[i], truths[i], dialsD[i], dialsE[i], oursT[i], oursD[i])
	}
	t.Log("\n" + table.String())
	perFrame := func(wall, cpu time.Duration) string {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
		return fmt.Sprintf("%.1f ms/frame CPU (%.1f wall)", ms(cpu), ms(wall))
	}
	rTD, rDD, rTE := pearson(oursT, dialsD), pearson(oursD, dialsD), pearson(oursT, dialsE)
	summary := fmt.Sprintf("compare-dials: %d EIGER 4M frames; Pearson r(ours threshold, DIALS dispersion) = %.3f, r(ours dispersion, DIALS dispersion) = %.3f, r(ours threshold, DIALS dispersion_extended) = %.3f; "+
		"time: ours threshold %s, ours dispersion %s, dials.find_spots dispersion %s, dispersion_extended %s (DIALS: nproc=1, whole process including its start-up)",
		n, rTD, rDD, rTE, perFrame(timeT, cpuT), perFrame(timeD, cpuD), perFrame(timeDD, cpuDD), perFrame(timeDE, cpuDE))
	summary += fmt.Sprintf("\ncompare-dials speed, simulated 4M frames: dials.find_spots (default dispersion_extended) CPU per frame / ours threshold = %.0fx (DIALS' figure includes its start-up, spread over the %d frames)",
		float64(cpuDE)/float64(cpuT), n)
	t.Log(summary)
	if testing.Verbose() {
		fmt.Print(table.String())
		fmt.Println(summary)
	}
	for _, c := range []struct {
		name string
		r    float64
	}{{"ours threshold vs DIALS dispersion", rTD}, {"ours dispersion vs DIALS dispersion", rDD}, {"ours threshold vs DIALS dispersion_extended", rTE}} {
		if !(c.r >= 0.9) {
			t.Errorf("Pearson r(%s) = %.3f, want >= 0.9", c.name, c.r)
		}
	}
}

// pearson is the sample correlation coefficient of x and y.
func pearson(x, y []float64) float64 {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= n
	my /= n
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	return sxy / math.Sqrt(sxx*syy)
}

// threadCPU returns the CPU time of the calling OS thread
// (CLOCK_THREAD_CPUTIME_ID, nanoseconds); the caller locks its goroutine
// to the thread. getrusage(RUSAGE_THREAD), used before, counts in
// scheduler ticks (4 ms here): a 4 ms analysis read as 4 or 8 ms.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
