package adxv

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestBatchLines pins the exact bytes of every command of
// control-contract.md.
func TestBatchLines(t *testing.T) {
	b := NewBatch(0).
		LoadImage("/data/p14/sample_1_00042.cbf.gz").
		Spots([]float32{100.5, 2000.25, 0.125, 4370.999, 7, 0}).
		RaiseWindow("Image").
		Slab(5).
		ContrastMin(0).
		ContrastMax(-3).
		SaveImage("/tmp/view.tif").
		Exit()
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	want := "load_image /data/p14/sample_1_00042.cbf.gz\n" +
		"define_type 1 color red radius 10\n" +
		"load_spots 3\n" +
		"100.50 2000.25 1\n" +
		"0.12 4371.00 1\n" + // 0.125 rounds half to even; 4370.999 rounds up
		"7.00 0.00 1\n" +
		"end_of_pack\n" +
		"raise_window Image\n" +
		"slab 5\n" +
		"contrast_min 0\n" +
		"contrast_max -3\n" +
		"save_image /tmp/view.tif\n" +
		"exit\n"
	if got := string(b.Bytes()); got != want {
		t.Fatalf("batch:\n%s\nwant:\n%s", got, want)
	}
	if b.Lines() != 13 {
		t.Errorf("Lines() = %d, want 13", b.Lines())
	}
	if b.Image() != "/data/p14/sample_1_00042.cbf.gz" {
		t.Errorf("Image() = %q", b.Image())
	}

	// An empty spot list still clears the overlay.
	e := NewBatch(0).Spots(nil)
	if got := string(e.Bytes()); got != "define_type 1 color red radius 10\nload_spots 0\nend_of_pack\n" {
		t.Errorf("empty overlay %q", got)
	}

	b.Reset()
	if b.Lines() != 0 || len(b.Bytes()) != 0 || b.Image() != "" || b.Err() != nil {
		t.Errorf("Reset left %d lines %q", b.Lines(), b.Bytes())
	}
}

func TestBatchRefusesBadInput(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxPathLen)
	for _, p := range []string{"", "relative/x.cbf", "/data/x.cbf\nexit", "/data/a b.cbf", "/data/\tx", "/data/x\x7f", long, "/data/\xff.cbf"} {
		if err := CheckPath(p); !errors.Is(err, ErrPath) {
			t.Errorf("CheckPath(%q) = %v, want ErrPath", p, err)
		}
		b := NewBatch(0).LoadImage(p)
		if b.Err() == nil || b.Lines() != 0 {
			t.Errorf("LoadImage(%q) accepted", p)
		}
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for name, b := range map[string]*Batch{
		"odd spots":    NewBatch(0).Spots([]float32{1, 2, 3}),
		"NaN spot":     NewBatch(0).Spots([]float32{1, nan}),
		"Inf spot":     NewBatch(0).Spots([]float32{inf, 1}),
		"empty window": NewBatch(0).RaiseWindow(""),
		"window space": NewBatch(0).RaiseWindow("Image\nexit"),
		"slab 0":       NewBatch(0).Slab(0),
		"save relpath": NewBatch(0).SaveImage("x.tif"),
	} {
		if b.Err() == nil {
			t.Errorf("%s accepted: %q", name, b.Bytes())
		}
	}
	// The first error sticks and later commands are ignored.
	b := NewBatch(0).LoadImage("/ok.cbf").Slab(-1).Exit()
	if b.Err() == nil || string(b.Bytes()) != "load_image /ok.cbf\n" {
		t.Errorf("sticky error: err %v, bytes %q", b.Err(), b.Bytes())
	}
	c, err := New(Config{Host: "127.0.0.1", Port: 1, MinBackoff: 1e9, MaxBackoff: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Submit(b); err == nil {
		t.Error("Submit took an invalid batch")
	}
	if _, err := c.Submit(NewBatch(0)); err == nil {
		t.Error("Submit took an empty batch")
	}
}

func TestJoinHostPort(t *testing.T) {
	if a, err := JoinHostPort("beamline-ws", 8100); err != nil || a != "beamline-ws:8100" {
		t.Errorf("got %q, %v", a, err)
	}
	if a, err := JoinHostPort("::1", 8100); err != nil || a != "[::1]:8100" {
		t.Errorf("got %q, %v", a, err)
	}
	for _, h := range []string{"", "a b", "host\n", strings.Repeat("h", 256), "http://x"} {
		if _, err := JoinHostPort(h, 8100); err == nil {
			t.Errorf("host %q accepted", h)
		}
	}
	for _, p := range []int{0, -1, 65536} {
		if _, err := JoinHostPort("localhost", p); err == nil {
			t.Errorf("port %d accepted", p)
		}
	}
}

func TestBackoffDoublesToMax(t *testing.T) {
	b := Backoff{Min: 100, Max: 1000}
	var got []int64
	for i := 0; i < 7; i++ {
		got = append(got, int64(b.Next()))
	}
	if fmt.Sprint(got) != "[100 200 400 800 1000 1000 1000]" {
		t.Errorf("delays %v", got)
	}
	b.Reset()
	if d := b.Next(); d != 100 {
		t.Errorf("after Reset: %v", d)
	}
}

// FuzzLoadImagePath: whatever a client writes into `load`, the batch holds
// either nothing (refused) or exactly one line, load_image and the path:
// no path can smuggle in a second command.
func FuzzLoadImagePath(f *testing.F) {
	for _, s := range []string{"/data/p14/x_1_00001.cbf.gz", "/a b", "/x\nexit", "rel", "", "/\x00", "/tmp/ä.cbf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		b := NewBatch(0).LoadImage(path)
		if b.Err() != nil {
			if b.Lines() != 0 || len(b.Bytes()) != 0 {
				t.Fatalf("refused path left %q", b.Bytes())
			}
			return
		}
		out := string(b.Bytes())
		if out != "load_image "+path+"\n" || strings.Count(out, "\n") != 1 || strings.ContainsAny(path, " \t\r\n") {
			t.Fatalf("path %q gave %q", path, out)
		}
	})
}

// FuzzSpots: any spot list is either refused or written as exactly n+3
// lines whose coordinates read back as the values rounded to two decimals.
func FuzzSpots(f *testing.F) {
	f.Add([]byte{0, 0, 200, 66, 0, 0, 72, 67})
	f.Add([]byte{0, 0, 192, 127, 0, 0, 128, 63})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		xy := make([]float32, len(raw)/4)
		for i := range xy {
			u := uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
			xy[i] = math.Float32frombits(u)
		}
		b := NewBatch(0).Spots(xy)
		if b.Err() != nil {
			return
		}
		lines := strings.Split(strings.TrimSuffix(string(b.Bytes()), "\n"), "\n")
		n := len(xy) / 2
		if len(lines) != n+3 || b.Lines() != n+3 || lines[0] != SpotStyle || lines[1] != "load_spots "+strconv.Itoa(n) || lines[n+2] != "end_of_pack" {
			t.Fatalf("%d spots gave %q", n, lines)
		}
		for i := 0; i < n; i++ {
			want := fmt.Sprintf("%.2f %.2f 1", xy[2*i], xy[2*i+1])
			if lines[2+i] != want {
				t.Fatalf("spot %d: %q, want %q", i, lines[2+i], want)
			}
		}
	})
}
