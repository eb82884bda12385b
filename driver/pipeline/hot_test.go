package pipeline

import (
	"context"
	"testing"
	"time"

	"tioga/device/detectormodel"
	"tioga/internal/testenv"
	"tioga/properties"
	"tioga/sim"
	"tioga/sim/diffraction"
)

// TestEndToEndHotPixels streams two series from a detector with hot
// clusters and a hot column segment: the column is rejected by its shape
// (count-shape-rejected) until it, with the clusters, joins the hot-pixel map (hot-pixels)
// within the first series and stay in it for the next, where no blank is a
// hit; hot-pixels-reset empties the map.
func TestEndToEndHotPixels(t *testing.T) {
	testenv.SkipIfShort(t)
	prof, _ := detectormodel.ByName("eiger4m")
	sample := diffraction.DefaultConfig(prof)
	sample.Seed = 59
	sample.Hot = diffraction.Hot{Clusters: 5, Column: 30, Counts: 200}
	const n = 14
	h := newHarness(t, sim.Config{Profile: prof, Format: "legacy", Compression: "bslz4", NImages: n, Sample: &sample}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st := h.dev.Stream
	const wantHot = 5*3 + 30

	h.runSeries(ctx)
	// The column is rejected by its shape until the map holds it (after
	// hot-pixel-frames, 10, frames; two workers observe out of order).
	if got := st.ShapeRejected.Value().Int(); got < 5 || got > 12 {
		t.Errorf("count-shape-rejected %d after %d frames with a hot column, want about 10", got, n)
	}
	if got := st.HotPixels.Value().Int(); got != wantHot {
		t.Errorf("hot-pixels %d after the first series, want the %d of the clusters and the column", got, wantHot)
	}

	id, sum := h.runSeries(ctx)
	tr := h.readTruth(id)
	blanks, hits := 0, 0
	for _, f := range tr {
		if f.Hit {
			hits++
		} else {
			blanks++
		}
	}
	if sum.Hits != hits || blanks == 0 {
		t.Errorf("second series: %d hits reported, truth %d hits and %d blanks", sum.Hits, hits, blanks)
	}

	if err := st.HotPixelsReset.Write(ctx, properties.Int32Value(0)); err != nil {
		t.Fatal(err)
	}
	if got := st.HotPixels.Value().Int(); got != 0 {
		t.Errorf("hot-pixels %d after hot-pixels-reset", got)
	}
}
