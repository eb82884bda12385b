package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tioga/device/detectormodel"
	"tioga/internal/testenv"
	"tioga/sim"
	"tioga/sim/diffraction"
)

// TestEndToEndIce streams a serial series with spotty ice on about half
// its frames through the simulator's ZMQ socket: the server flags the iced
// frames in results.jsonl ("ice"), counts them (count-ice-frames, equal to
// the flags written) and publishes the last frame's rings; no iced blank
// is a hit.
func TestEndToEndIce(t *testing.T) {
	testenv.SkipIfShort(t)
	prof, _ := detectormodel.ByName("eiger4m")
	sample := diffraction.DefaultConfig(prof)
	sample.Seed = 43
	sample.Ice = diffraction.Ice{Fraction: 0.5, Spots: 500, SpotIntensity: 200}
	const n = 16
	h := newHarness(t, sim.Config{Profile: prof, Format: "legacy", Compression: "bslz4", NImages: n, Sample: &sample}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, sum := h.runSeries(ctx)
	if sum.Processed != n {
		t.Fatalf("summary %+v", sum)
	}
	tr := h.readTruth(id)

	f, err := os.Open(filepath.Join(h.dir, "images", "scan_1_results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type line struct {
		Frame int   `json:"frame"`
		Hit   bool  `json:"hit"`
		Ice   *bool `json:"ice"`
	}
	sc := bufio.NewScanner(f)
	flagged, iced, lines := 0, 0, 0
	var last line
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.Ice == nil {
			t.Fatalf("result line without ice: %s", sc.Text())
		}
		lines++
		want := len(tr[l.Frame].IceSpots) >= 50
		if *l.Ice != want {
			t.Errorf("frame %d: ice %v, truth has %d ice spots", l.Frame, *l.Ice, len(tr[l.Frame].IceSpots))
		}
		if want {
			iced++
			if l.Hit && !tr[l.Frame].Hit {
				t.Errorf("frame %d: an iced blank called a hit", l.Frame)
			}
		}
		if *l.Ice {
			flagged++
		}
		last = l
	}
	if lines != n || iced < 3 || iced > n-3 {
		t.Fatalf("%d result lines, %d iced frames: series not mixed", lines, iced)
	}
	st := h.dev.Stream
	if got := st.IceFrames.Value().Int(); got != flagged {
		t.Errorf("count-ice-frames %d, results.jsonl flags %d", got, flagged)
	}
	rings := st.IceRingsLast.Value().Float64s
	if *last.Ice != (len(rings) > 0) {
		t.Errorf("last frame %d ice %v, last-frame-ice-rings %v", last.Frame, *last.Ice, rings)
	}
	for _, d := range rings {
		if d < 1.5 || d > 4 {
			t.Errorf("last-frame-ice-rings holds %v Å", d)
		}
	}
	if got := st.Params["ice-rings"].Value().Text; got != "auto" {
		t.Errorf("ice-rings %q, want auto", got)
	}
}
