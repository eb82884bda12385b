package analysis

import (
	"syscall"
	"testing"
	"time"

	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// simFrameBytes returns the first simulated frame (of the default 4M series)
// that is a hit (hit true) or a blank (hit false).
func simFrameBytes(tb testing.TB, hit bool) (*diffraction.Generator, []byte) {
	tb.Helper()
	g, err := diffraction.New(diffraction.DefaultConfig(eiger4M(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, g.FrameBytes())
	var tr truth.Frame
	for i := 0; i < 100; i++ {
		if err := g.Frame(i, buf, &tr); err != nil {
			tb.Fatal(err)
		}
		if tr.Hit == hit {
			return g, buf
		}
	}
	tb.Fatalf("no frame with hit=%v in 100", hit)
	return nil, nil
}

func benchAnalyse(b *testing.B, t *Tables, frame []byte, elemSize int) {
	a := NewAnalyser(t)
	var res Result
	if err := a.Analyse(frame, elemSize, &res); err != nil {
		b.Fatal(err)
	}
	px := t.geom.Width * t.geom.Height
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		if err := a.Analyse(frame, elemSize, &res); err != nil {
			b.Fatal(err)
		}
	}
	cpu := processCPU() - cpu0
	b.ReportMetric(float64(px)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
	if cpu > 0 {
		// CPU time of the process: what one busy core achieves, the figure
		// that stays meaningful on a shared machine.
		b.ReportMetric(float64(px)*float64(b.N)/cpu.Seconds()/1e6, "Mpx/cpu-s")
	}
	b.ReportMetric(float64(res.Spots), "spots")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAnalyse measures one core analysing 4M 16-bit frames: simulated
// hits and blanks (default series) and the real EIGER 4M fixture frame,
// with both methods. Mpx/s is megapixels per second per core; the target
// of issue 4 is 250 for the default (threshold) method.
func BenchmarkAnalyse(b *testing.B) {
	b.Run("threshold/real-4M-16bit", func(b *testing.B) {
		f := eiger4MFixture(b, 0)
		tab, err := NewTables(f.geom, DefaultParams(), Masks{})
		if err != nil {
			b.Fatal(err)
		}
		benchAnalyse(b, tab, f.pixels, f.elemSize)
	})
	for _, m := range []Method{Threshold, Dispersion} {
		for _, hit := range []bool{true, false} {
			name := m.String() + "/sim-4M-16bit-blank"
			if hit {
				name = m.String() + "/sim-4M-16bit-hit"
			}
			b.Run(name, func(b *testing.B) {
				g, frame := simFrameBytes(b, hit)
				p := DefaultParams()
				p.Method = m
				benchAnalyse(b, simTables(b, g, p), frame, g.ElemSize())
			})
		}
	}
}
