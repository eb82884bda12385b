package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tioga/driver/stream"
	"tioga/sim/truth"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestArmAndTriggerRaster runs the command as the demo does: a small
// serpentine raster, Stream V2, truth file, into a real receiver.
func TestArmAndTriggerRaster(t *testing.T) {
	v2 := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	r, err := stream.New(stream.Config{Endpoint: v2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	truthPath := filepath.Join(t.TempDir(), "truth_%d.jsonl")
	var stderr bytes.Buffer
	code := run([]string{"--profile", "eiger500k", "--raster", "5x7", "--format", "cbor", "--rate", "-1",
		"--rest", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--v1", "tcp://127.0.0.1:*", "--v2", v2,
		"--truth", truthPath, "--arm-and-trigger", "--quiet"}, &stderr)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	images := 0
	timeout := time.After(20 * time.Second)
loop:
	for {
		select {
		case m := <-r.Events():
			if m.Image != nil {
				if m.Image.Number != uint64(images) {
					t.Fatalf("image %d numbered %d", images, m.Image.Number)
				}
				images++
			}
			if m.End != nil {
				break loop
			}
		case <-timeout:
			t.Fatalf("%d images, no end", images)
		}
	}
	if images != 35 {
		t.Fatalf("%d images, want 35", images)
	}
	f, err := os.Open(strings.Replace(truthPath, "%d", "1", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frames, err := truth.ReadAll(f)
	if err != nil || len(frames) != 35 {
		t.Fatalf("truth: %d frames, %v", len(frames), err)
	}
	hits := 0
	for i, fr := range frames {
		line, col := i/7, i%7
		if line%2 == 1 {
			col = 6 - col
		}
		if fr.Line != line || fr.Column != col {
			t.Fatalf("truth frame %d at (%d,%d), want (%d,%d)", i, fr.Line, fr.Column, line, col)
		}
		if fr.Hit {
			hits++
		}
	}
	if hits == 0 || hits == 35 {
		t.Fatalf("%d hits in the raster", hits)
	}
	if !strings.Contains(stderr.String(), "series done") || !strings.Contains(stderr.String(), "frames=35") {
		t.Fatalf("no summary in the log:\n%s", stderr.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--profile", "eiger7m"},
		{"--raster", "37by213"},
		{"--roi", "2M"},
		{"--bit-depth", "12", "--rest", "127.0.0.1:0", "--v1", "tcp://127.0.0.1:*", "--v2", "tcp://127.0.0.1:*"},
		{"stray"},
	} {
		var stderr bytes.Buffer
		if code := run(args, &stderr); code == 0 {
			t.Errorf("%q: exit 0\n%s", args, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, &stderr); code != 0 || !strings.Contains(stderr.String(), "--arm-and-trigger") {
		t.Fatalf("-h: exit %d\n%s", code, stderr.String())
	}
}
