// Package cbftest makes the test inputs shared by the file-writing packages
// (cbf, tiff, writer): a reproducible diffraction-like detector frame and a
// realistic series header. It is imported by tests and benchmarks only.
package cbftest

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"tioga/device/detectormodel"
	"tioga/driver/cbf"
)

// Frame describes a synthetic frame.
type Frame struct {
	Width, Height int
	ElemSize      int     // 1, 2 or 4
	Background    float64 // mean Poisson background at the beam centre
	Spots         int     // number of Gaussian Bragg spots
	Seed          uint64
}

// EIGER4M is the frame the throughput targets are quoted for: a 16-bit
// EIGER 4M image with a Poisson background of a few counts, the module gaps
// (5.6 % of the pixels) as all-ones, a handful of dead pixels and 200 spots.
var EIGER4M = Frame{Width: 2070, Height: 2167, ElemSize: 2, Background: 3, Spots: 200, Seed: 1}

// Pixels renders the frame. Gap pixels follow the EIGER module layout when
// the size is an EIGER geometry; a few isolated pixels are masked anyway;
// spot peaks and a few hot pixels reach the saturation range so that the
// 16- and 32-bit escapes of byte-offset are exercised.
func (f Frame) Pixels() cbf.Pixels {
	rng := rand.New(rand.NewPCG(f.Seed, 0x7109a))
	w, h, es := f.Width, f.Height, f.ElemSize
	all := uint32(math.MaxUint32 >> (32 - 8*es))
	img := make([]float64, w*h)
	cx, cy := float64(w)/2+12.5, float64(h)/2-7.5
	r0 := float64(w+h) / 4
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r2 := ((float64(x)-cx)*(float64(x)-cx) + (float64(y)-cy)*(float64(y)-cy)) / (r0 * r0)
			img[y*w+x] = f.Background * (0.4 + 0.6*math.Exp(-r2))
		}
	}
	for s := 0; s < f.Spots; s++ {
		sx, sy := rng.Float64()*float64(w), rng.Float64()*float64(h)
		peak := 20 + rng.ExpFloat64()*400
		sig := 0.8 + rng.Float64()
		for dy := -4; dy <= 4; dy++ {
			for dx := -4; dx <= 4; dx++ {
				x, y := int(sx)+dx, int(sy)+dy
				if x < 0 || y < 0 || x >= w || y >= h {
					continue
				}
				ddx, ddy := float64(x)-sx, float64(y)-sy
				img[y*w+x] += peak * math.Exp(-(ddx*ddx+ddy*ddy)/(2*sig*sig))
			}
		}
	}
	prof, eiger := detectormodel.BySize(w, h)
	data := make([]byte, w*h*es)
	for i, lambda := range img {
		v := uint32(poisson(rng, lambda))
		x, y := i%w, i/w
		switch {
		case eiger && prof.IsGap(x, y):
			v = all
		case rng.IntN(5000) == 0: // dead or masked pixel
			v = all
		case rng.IntN(20000) == 0: // hot pixel near saturation
			v = all - 1 - uint32(rng.IntN(3))
		}
		if v > all {
			v = all - 1
		}
		switch es {
		case 1:
			data[i] = byte(v)
		case 2:
			binary.LittleEndian.PutUint16(data[2*i:], uint16(v))
		default:
			binary.LittleEndian.PutUint32(data[4*i:], v)
		}
	}
	return cbf.Pixels{Data: data, Width: w, Height: h, ElemSize: es}
}

// poisson draws a Poisson variate: Knuth's product method for the small
// means of a background, a rounded normal approximation for spot peaks.
func poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		v := math.Round(lambda + math.Sqrt(lambda)*rng.NormFloat64())
		if v < 0 {
			return 0
		}
		return int(v)
	}
	l := math.Exp(-lambda)
	k, p := 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// Header returns the series header of an EIGER X 4M at 12.7 keV, as the
// pipeline would fill it: every field set to a non-trivial value so that a
// lost or misplaced field shows in a comparison.
func Header() cbf.Header {
	return cbf.Header{
		Detector:        "Dectris EIGER X 4M",
		Serial:          "E-08-0106",
		PixelSizeX:      75e-6,
		PixelSizeY:      75e-6,
		Sensor:          "Si",
		SensorThickness: 450e-6,
		ExposureTime:    0.0013300,
		ExposurePeriod:  0.0013400,
		Tau:             0,
		CountCutoff:     65535,
		Threshold:       6350,
		Wavelength:      0.97626,
		Distance:        0.2,
		BeamX:           1035.25,
		BeamY:           1083.75,
		StartAngle:      12.5,
		AngleIncrement:  0.1,
		OscillationAxis: "X.CW",
		NOscillations:   1,
		Timestamp:       time.Date(2026, 11, 23, 12, 0, 0, 125e6, time.UTC),
	}
}

// Run runs an independent reader as a subprocess and returns its standard
// output. A missing program fails the test (the Makefile's setup target
// installs them): a reader test that silently tested nothing is worse than
// a red one.
func Run(tb testing.TB, name string, args ...string) []byte {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("independent reader %s not installed (make setup installs it): %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// Python runs a script under Debian's Python (/usr/bin/python3, which has
// the Debian reader modules; an earlier python3 on PATH may not) and
// returns its standard output.
func Python(tb testing.TB, script string, args ...string) []byte {
	tb.Helper()
	return Run(tb, "/usr/bin/python3", append([]string{"-c", script}, args...)...)
}

// Int32LE returns the pixels of p as the int32 little-endian bytes a reader
// must return for the file written from p.
func Int32LE(p cbf.Pixels) []byte {
	return p.AppendInt32LE(nil, 0, p.Len())
}

// ReportThroughput reports a benchmark's megapixels per second of wall
// time ("Mpx/s", the figure the targets are quoted in) and per second of
// CPU time of the whole process ("Mpx/cpu-s"), which stays meaningful on a
// machine shared with other work. Call StartCPU after ResetTimer.
func ReportThroughput(b *testing.B, pixelsPerOp int, cpuStart time.Duration) {
	px := float64(pixelsPerOp) * float64(b.N)
	b.ReportMetric(px/b.Elapsed().Seconds()/1e6, "Mpx/s")
	if cpu := processCPU() - cpuStart; cpu > 0 {
		b.ReportMetric(px/cpu.Seconds()/1e6, "Mpx/cpu-s")
	}
}

// StartCPU returns the process CPU time so far, for ReportThroughput.
func StartCPU() time.Duration { return processCPU() }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
