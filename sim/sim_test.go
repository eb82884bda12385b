package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tioga/device/detectormodel"
	"tioga/driver/codec"
	"tioga/driver/stream"
	"tioga/sim/diffraction"
	"tioga/sim/streamer"
	"tioga/sim/truth"
)

func profile(t testing.TB, name string) detectormodel.Profile {
	t.Helper()
	p, ok := detectormodel.ByName(name)
	if !ok {
		t.Fatalf("no profile %s", name)
	}
	return p
}

// rest is a minimal SIMPLON client over real HTTP.
type rest struct {
	t    testing.TB
	base string
}

func (r rest) do(method, path, body string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (r rest) put(sub, key string, v any) {
	r.t.Helper()
	b, _ := json.Marshal(map[string]any{"value": v})
	if code, out := r.do("PUT", "/"+sub+"/api/1.8.0/config/"+key, string(b)); code != 200 {
		r.t.Fatalf("PUT %s/%s = %v: %d %s", sub, key, v, code, out)
	}
}

func (r rest) command(cmd string) string {
	r.t.Helper()
	code, out := r.do("PUT", "/detector/api/1.8.0/command/"+cmd, "")
	if code != 200 {
		r.t.Fatalf("command %s: %d %s", cmd, code, out)
	}
	return out
}

// receiver runs the foundation's stream receiver on an endpoint.
type receiver struct {
	r      *stream.Receiver
	cancel context.CancelFunc
	done   chan error
}

func startReceiver(t testing.TB, endpoint string) *receiver {
	t.Helper()
	r, err := stream.New(stream.Config{Endpoint: endpoint, QueueLength: 64})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &receiver{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rc.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-rc.done
	})
	return rc
}

// series collects one series' events (header, images, end).
type series struct {
	header *stream.Series
	images []*stream.Image
	data   [][]byte // decoded pixels
	end    *stream.End
}

func (rc *receiver) collect(t testing.TB, timeout time.Duration) *series {
	t.Helper()
	var s series
	dec := codec.NewDecoder()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-rc.r.Events():
			if !ok {
				t.Fatal("receiver stopped")
			}
			switch {
			case m.Series != nil:
				s.header = m.Series
			case m.Image != nil:
				img := m.Image
				buf := make([]byte, img.DecodedSize())
				if _, err := dec.Decode(buf, img.Data, img.Encoding, img.ElemSize); err != nil {
					t.Fatalf("frame %d: decode %v: %v", img.Number, img.Encoding, err)
				}
				// Keep the encoded bytes too (they alias the ZMQ buffer,
				// which the receiver hands over to us).
				s.images = append(s.images, img)
				s.data = append(s.data, buf)
			case m.End != nil:
				s.end = m.End
				return &s
			}
		case <-deadline:
			t.Fatalf("no end of series within %v (header %v, %d images)", timeout, s.header != nil, len(s.images))
		}
	}
}

func startSim(t testing.TB, cfg Config) (*Detector, rest) {
	t.Helper()
	if cfg.Stream.FPS == 0 {
		cfg.Stream.FPS = -1 // tests: as fast as the receiver takes them
	}
	d, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, rest{t: t, base: d.RESTURL()}
}

// TestSeriesBitExact drives V1 and V2 series over real HTTP and ZMQ in
// every encoding and bit depth, and checks that the foundation's receiver
// gets every frame, decoded bit-exact against the simulator's own pixels.
func TestSeriesBitExact(t *testing.T) {
	sample := diffraction.DefaultConfig(profile(t, "eiger500k"))
	sample.HitFraction = 0.5
	sample.Seed = 11
	d, c := startSim(t, Config{Profile: profile(t, "eiger500k"), Sample: &sample, Uninitialized: true,
		HeaderAppendix: `{"acqID": "test_1"}`, ImageAppendix: `{"beamline": "P14"}`})
	v1, v2 := d.StreamEndpoints()
	r1, r2 := startReceiver(t, v1), startReceiver(t, v2)
	c.command("initialize")
	const nimages, ntrigger = 3, 2
	c.put("detector", "nimages", nimages)
	c.put("detector", "ntrigger", ntrigger)
	c.put("detector", "frame_time", 0.002)
	c.put("detector", "count_time", 0.00199)

	type combo struct {
		format, compression string
		bits                int
		detail              string
		want                codec.Encoding
	}
	var combos []combo
	for _, bits := range []int{8, 16, 32} {
		combos = append(combos,
			combo{"legacy", "none", bits, "basic", codec.Raw},
			combo{"legacy", "lz4", bits, "none", codec.LZ4Block},
			combo{"legacy", "bslz4", bits, "all", codec.BSLZ4},
			combo{"cbor", "none", bits, "basic", codec.Raw},
			combo{"cbor", "lz4", bits, "all", codec.HDF5LZ4},
			combo{"cbor", "bslz4", bits, "basic", codec.BSLZ4},
		)
	}
	for _, cb := range combos {
		name := fmt.Sprintf("%s/%s/%d/%s", cb.format, cb.compression, cb.bits, cb.detail)
		t.Run(name, func(t *testing.T) {
			c.t = t
			c.put("stream", "format", cb.format)
			c.put("stream", "header_detail", cb.detail)
			c.put("detector", "compression", cb.compression)
			c.put("detector", "bit_depth_image", cb.bits)
			var seq struct {
				ID int `json:"sequence id"`
			}
			if err := json.Unmarshal([]byte(c.command("arm")), &seq); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < ntrigger; i++ {
				c.command("trigger")
			}
			rc, version := r1, 1
			if cb.format == "cbor" {
				rc, version = r2, 2
			}
			s := rc.collect(t, 30*time.Second)
			checkSeries(t, d, s, seq.ID, version, cb.bits, cb.want, cb.detail, nimages*ntrigger)
		})
	}
}

func checkSeries(t *testing.T, d *Detector, s *series, id, version, bits int, enc codec.Encoding, detail string, frames int) {
	t.Helper()
	h := s.header
	if h == nil {
		t.Fatal("no series header")
	}
	if version == 1 && detail == "none" {
		// V1 "none": part 1 only (and the appendix): the receiver learns the
		// series id, nothing else.
		if h.Version != 1 || h.ID != uint64(id) || h.Width != 0 || h.Wavelength != 0 {
			t.Fatalf("header_detail none: %+v", h)
		}
	} else if h.Version != version || h.ID != uint64(id) || h.Width != 1030 || h.Height != 514 ||
		h.NumberOfImages != uint64(frames) || h.BitDepth != bits || h.ElemSize != bits/8 {
		t.Fatalf("header: version %d id %d %dx%d images %d bits %d elem %d", h.Version, h.ID, h.Width, h.Height, h.NumberOfImages, h.BitDepth, h.ElemSize)
	}
	g := d.Generator(id)
	cfg := g.Config()
	if detail == "none" {
		cfg.BeamX, cfg.BeamY, cfg.Wavelength, cfg.Distance = 0, 0, 0, 0
	}
	if detail != "none" {
		cfg.BeamX, cfg.BeamY = cfg.BeamX+stream.PixelCentre, cfg.BeamY+stream.PixelCentre // SIMPLON counts from the pixel edge
	}
	if h.BeamCenterX != cfg.BeamX || h.BeamCenterY != cfg.BeamY || h.Wavelength != cfg.Wavelength || h.DetectorDistance != cfg.Distance {
		t.Fatalf("header geometry %v %v %v %v, generator %v %v %v %v", h.BeamCenterX, h.BeamCenterY, h.Wavelength, h.DetectorDistance,
			cfg.BeamX, cfg.BeamY, cfg.Wavelength, cfg.Distance)
	}
	if got := string(h.Appendix.Raw); version == 1 && got != `{"acqID": "test_1"}` {
		t.Fatalf("header appendix %q", got)
	}
	if v, ok := h.Appendix.Value.(map[string]any); !ok || v["acqID"] != "test_1" {
		t.Fatalf("header appendix value %#v", h.Appendix.Value)
	}
	if detail == "all" {
		if len(h.PixelMask) != 1 || len(h.Flatfield) != 1 || h.CountRateTable == nil {
			t.Fatalf("header_detail all without tables")
		}
		mask := make([]uint32, 1030*514)
		g.PixelMask(mask)
		if !equalU32(h.PixelMask[0].Uint32, mask) {
			t.Fatal("pixel mask differs from the generator's")
		}
	} else if h.PixelMask != nil || h.Flatfield != nil {
		t.Fatalf("header_detail %s with tables", detail)
	}
	if len(s.images) != frames {
		t.Fatalf("%d images, want %d", len(s.images), frames)
	}
	want := make([]byte, g.FrameBytes())
	var tr truth.Frame
	for i, img := range s.images {
		if img.Number != uint64(i) || img.SeriesID != uint64(id) || img.Encoding != enc || img.ElemSize != bits/8 {
			t.Fatalf("image %d: number %d series %d encoding %v elem %d", i, img.Number, img.SeriesID, img.Encoding, img.ElemSize)
		}
		if err := g.Frame(i, want, &tr); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.data[i], want) {
			t.Fatalf("frame %d differs from the simulator's pixels", i)
		}
		if got := img.StopTime.Count - img.StartTime.Count; got != 99500 {
			t.Fatalf("frame %d: stop-start %d ticks, want count_time 99500", i, got)
		}
		if i%3 != 0 {
			if dt := img.StartTime.Count - s.images[i-1].StartTime.Count; dt != 100000 {
				t.Fatalf("frame %d: %d ticks after the previous, want frame_time 100000", i, dt)
			}
		}
		ud := img.UserData()
		if v, ok := ud.Value.(map[string]any); !ok || v["beamline"] != "P14" {
			t.Fatalf("image appendix %#v (%q)", ud.Value, ud.Raw)
		}
	}
	if s.end == nil || s.end.Synthesized || s.end.SeriesID != uint64(id) {
		t.Fatalf("end %+v", s.end)
	}
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestHeaderlessBSLZ4 sends V1 bitshuffle without the 12-byte header.
func TestHeaderlessBSLZ4(t *testing.T) {
	d, c := startSim(t, Config{Profile: profile(t, "eiger500k"), Headerless: true, NImages: 4})
	v1, _ := d.StreamEndpoints()
	r := startReceiver(t, v1)
	var seq struct {
		ID int `json:"sequence id"`
	}
	json.Unmarshal([]byte(c.command("arm")), &seq)
	c.command("trigger")
	s := r.collect(t, 30*time.Second)
	g := d.Generator(seq.ID)
	want := make([]byte, g.FrameBytes())
	var tr truth.Frame
	for i, img := range s.images {
		if n := uint64(len(want)); len(img.Data) >= 8 && beUint64(img.Data) == n {
			t.Fatalf("frame %d carries the bslz4 header", i)
		}
		g.Frame(i, want, &tr)
		if !bytes.Equal(s.data[i], want) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if len(s.images) != 4 {
		t.Fatalf("%d images", len(s.images))
	}
	// V2 has no headerless variant.
	c.put("stream", "format", "cbor")
	if code, msg := c.do("PUT", "/detector/api/1.8.0/command/arm", ""); code != 400 || !strings.Contains(msg, "only in Stream V1") {
		t.Fatalf("headerless V2 arm: %d %s", code, msg)
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return v
}

// TestBitshuffleCLibraryDecodes hands bslz4 frames as the simulator sent
// them to Debian's bitshuffle C library (through its Python binding) and
// compares the result byte for byte with the simulator's pixels.
func TestBitshuffleCLibraryDecodes(t *testing.T) {
	d, c := startSim(t, Config{Profile: profile(t, "eiger500k"), NImages: 1, Compression: "bslz4"})
	v1, _ := d.StreamEndpoints()
	r := startReceiver(t, v1)
	dir := t.TempDir()
	for _, bits := range []int{8, 16, 32} {
		c.put("detector", "bit_depth_image", bits)
		var seq struct {
			ID int `json:"sequence id"`
		}
		json.Unmarshal([]byte(c.command("arm")), &seq)
		c.command("trigger")
		s := r.collect(t, 30*time.Second)
		if len(s.images) != 1 {
			t.Fatalf("%d images", len(s.images))
		}
		in := filepath.Join(dir, fmt.Sprintf("frame%d.bslz4", bits))
		out := filepath.Join(dir, fmt.Sprintf("frame%d.raw", bits))
		if err := os.WriteFile(in, s.images[0].Data, 0o644); err != nil {
			t.Fatal(err)
		}
		script := `
import sys, numpy as np, bitshuffle
src, dst, elem = sys.argv[1], sys.argv[2], int(sys.argv[3])
buf = np.fromfile(src, dtype=np.uint8)
total = int.from_bytes(buf[:8].tobytes(), "big")
block = int.from_bytes(buf[8:12].tobytes(), "big")
dtype = {1: "<u1", 2: "<u2", 4: "<u4"}[elem]
out = bitshuffle.decompress_lz4(buf[12:], (total // elem,), np.dtype(dtype), block // elem)
out.tofile(dst)
`
		cmd := exec.Command("/usr/bin/python3", "-c", script, in, out, fmt.Sprint(bits/8))
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bitshuffle C library: %v\n%s", err, msg)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, d.Generator(seq.ID).FrameBytes())
		var tr truth.Frame
		d.Generator(seq.ID).Frame(0, want, &tr)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d-bit: the C library's decoding differs from the simulator's pixels", bits)
		}
	}
}

// TestTruthFileAndAbort runs a series with a truth file, then aborts one
// mid-way: the receiver gets the end message, the truth file the frames sent.
func TestTruthFileAndAbort(t *testing.T) {
	dir := t.TempDir()
	sample := diffraction.DefaultConfig(profile(t, "eiger500k"))
	sample.HitFraction = 0.5
	var mu sync.Mutex
	sent := map[int][]int{}
	d, c := startSim(t, Config{Profile: profile(t, "eiger500k"), Sample: &sample, NImages: 20,
		TruthPath: filepath.Join(dir, "truth_%d.jsonl"),
		OnFrame: func(series int, tr *truth.Frame, dropped bool) {
			mu.Lock()
			sent[series] = append(sent[series], tr.Frame)
			mu.Unlock()
		}})
	sentOf := func(id int) int {
		mu.Lock()
		defer mu.Unlock()
		return len(sent[id])
	}
	v1, _ := d.StreamEndpoints()
	r := startReceiver(t, v1)
	id, err := d.RunSeries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := r.collect(t, 30*time.Second)
	if len(s.images) != 20 || sentOf(id) != 20 {
		t.Fatalf("%d images received, %d reported sent", len(s.images), sentOf(id))
	}
	f, err := os.Open(filepath.Join(dir, fmt.Sprintf("truth_%d.jsonl", id)))
	if err != nil {
		t.Fatal(err)
	}
	frames, err := truth.ReadAll(f)
	f.Close()
	if err != nil || len(frames) != 20 {
		t.Fatalf("truth file: %d frames, %v", len(frames), err)
	}
	g := d.Generator(id)
	buf := make([]byte, g.FrameBytes())
	hits := 0
	for i := range frames {
		var want truth.Frame
		g.Frame(i, buf, &want)
		if frames[i].Frame != i || frames[i].Hit != want.Hit || len(frames[i].Spots) != len(want.Spots) {
			t.Fatalf("truth line %d: %+v", i, frames[i])
		}
		for k := range want.Spots {
			if frames[i].Spots[k] != want.Spots[k] {
				t.Fatalf("truth line %d spot %d: %+v vs %+v", i, k, frames[i].Spots[k], want.Spots[k])
			}
		}
		if want.Hit {
			hits++
		}
	}
	if hits == 0 || hits == 20 {
		t.Fatalf("%d hits of 20 with hit fraction 0.5", hits)
	}

	// Abort a long, paced series over REST.
	c.put("detector", "nimages", 100000)
	c.put("detector", "frame_time", 0.01)
	var seq struct {
		ID int `json:"sequence id"`
	}
	json.Unmarshal([]byte(c.command("arm")), &seq)
	go c.do("PUT", "/detector/api/1.8.0/command/trigger", "")
	for sentOf(seq.ID) < 3 {
		time.Sleep(time.Millisecond)
	}
	c.command("abort")
	s = r.collect(t, 30*time.Second)
	if s.end == nil || s.end.Synthesized || len(s.images) == 0 || len(s.images) >= 100000 {
		t.Fatalf("aborted series: %d images, end %+v", len(s.images), s.end)
	}
	if err := d.WaitEnd(context.Background(), seq.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRasterNeedsEnoughFrames(t *testing.T) {
	sample := diffraction.DefaultConfig(profile(t, "eiger500k"))
	r := diffraction.Raster{Lines: 3, FramesPerLine: 5, Serpentine: true, CenterColumn: 2, CenterLine: 1, RadiusColumns: 2, RadiusLines: 1, EdgeStrength: 0.5}
	sample.Raster = &r
	d, c := startSim(t, Config{Profile: profile(t, "eiger500k"), Sample: &sample, NImages: 16})
	if code, msg := c.do("PUT", "/detector/api/1.8.0/command/arm", ""); code != 400 || !strings.Contains(msg, "raster 3 x 5 has 15 frames") {
		t.Fatalf("arm: %d %s", code, msg)
	}
	c.put("detector", "nimages", 15)
	v1, _ := d.StreamEndpoints()
	rc := startReceiver(t, v1)
	if _, err := d.RunSeries(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := rc.collect(t, 30*time.Second); len(s.images) != 15 {
		t.Fatalf("%d images", len(s.images))
	}
}

var _ = errors.New
var _ = streamer.TickRate
