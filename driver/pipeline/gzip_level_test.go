package pipeline

import (
	"context"
	"testing"
	"time"

	"tioga/device/detectormodel"
	"tioga/properties"
	"tioga/sim"
)

// TestWriterGzipLevelZero: writer-gzip-level reads 0 ("auto") by default
// and takes 0 back after another level (it refused 0 when its limits were
// [1, 9]); 10 is out of range.
func TestWriterGzipLevelZero(t *testing.T) {
	prof, _ := detectormodel.ByName("eiger4m")
	h := newHarness(t, sim.Config{Profile: prof, Format: "legacy", Compression: "bslz4", NImages: 1}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := h.dev.Stream.WriterGzipLevel
	if got := p.Value().Int(); got != 0 {
		t.Fatalf("writer-gzip-level reads %d at start, want 0 (auto)", got)
	}
	for _, level := range []int32{5, 0} {
		if err := p.Write(ctx, properties.Int32Value(level)); err != nil {
			t.Fatalf("write %d: %v", level, err)
		}
		if got := p.Value().Int(); got != int(level) {
			t.Errorf("after writing %d it reads %d", level, got)
		}
		h.pipe.mu.Lock()
		got := h.pipe.writerCfg.GzipLevel
		h.pipe.mu.Unlock()
		if got != int(level) {
			t.Errorf("after writing %d the writer's level is %d", level, got)
		}
	}
	if err := p.Write(ctx, properties.Int32Value(10)); err == nil {
		t.Error("level 10 accepted")
	}
}
