package stream

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"tioga/driver/codec"
)

// The V1 builder writes what the real EIGER 4M wrote, byte for byte: the
// image parts, the end, and the header's fixed-format parts.
func TestV1BuilderReproducesCapture(t *testing.T) {
	var b V1Builder
	for frame := 0; frame < 3; frame++ {
		parts := v1ImageParts(t, frame)
		img := mustParseV1(t, parts).Image
		got, err := b.Image(img)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(parts) {
			t.Fatalf("frame %d: %d parts, want %d", frame, len(got), len(parts))
		}
		for i := range parts {
			if !bytes.Equal(got[i], parts[i]) {
				t.Errorf("frame %d part %d:\n got %q\nwant %q", frame, i+1, clip(got[i]), clip(parts[i]))
			}
		}
	}
	end := mustParseV1(t, v1EndParts(t)).End
	if got := b.End(end); len(got) != 1 || !bytes.Equal(got[0], v1Part(t, 22)) {
		t.Errorf("end %q, want %q", got, v1Part(t, 22))
	}

	fixture := v1HeaderParts(t)
	s := mustParseV1(t, fixture).Series
	hdr, err := b.Header(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(hdr) != len(fixture) {
		t.Fatalf("header: %d parts, want %d", len(hdr), len(fixture))
	}
	// Part 2 (config) differs only in how JSON numbers are spelled
	// (7.5000003562308848e-05 vs 0.00007500000356230885); all the others
	// are byte-identical.
	for i := range fixture {
		if i != 1 && !bytes.Equal(hdr[i], fixture[i]) {
			t.Errorf("header part %d:\n got %q\nwant %q", i+1, clip(hdr[i]), clip(fixture[i]))
		}
	}
	again := mustParseV1(t, hdr).Series
	if !reflect.DeepEqual(again, s) {
		t.Errorf("header round trip differs:\n got %+v\nwant %+v", summary(again), summary(s))
	}
}

// The V2 builder writes what the real EIGER2 wrote, byte for byte, for every
// image and end message of the captures.
func TestV2BuilderReproducesCapture(t *testing.T) {
	b := V2Builder{SelfDescribe: true}
	var buf []byte
	check := func(name string, msg []byte) {
		t.Helper()
		m := mustParseV2(t, msg)
		var err error
		switch {
		case m.Image != nil:
			buf, err = b.AppendImage(buf[:0], m.Image)
		case m.End != nil:
			buf = b.AppendEnd(buf[:0], m.End)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(buf, msg) {
			i := 0
			for i < len(buf) && i < len(msg) && buf[i] == msg[i] {
				i++
			}
			t.Errorf("%s: rebuilt message differs from byte %d (%d vs %d bytes)", name, i, len(buf), len(msg))
		}
	}
	for _, d := range v2500K {
		for n := 1; n <= 11; n++ {
			check(fmt.Sprintf("%s/%06d", d.dir, n), v2ImageFile(t, d.dir, n))
		}
	}
	check("16m/image", v2File(t, v2Dir16M, "image.cbor"))
	check("16m/end", v2File(t, v2Dir16M, "end.cbor"))

	// The start message: the builder writes typed arrays where the capture
	// has emptied tables as plain byte strings, so compare parsed values.
	start := mustParseV2(t, v2File(t, v2Dir16M, "start.cbor")).Series
	b.SelfDescribe = false
	msg, err := b.AppendStart(nil, start)
	if err != nil {
		t.Fatal(err)
	}
	if msg[0] == 0xd9 {
		t.Error("start message has tag 55799 with SelfDescribe false")
	}
	again := mustParseV2(t, msg).Series
	if !reflect.DeepEqual(utc(again), utc(start)) {
		t.Errorf("start round trip differs:\n got %+v\nwant %+v", summary(again), summary(start))
	}
}

// A synthetic series with every field set, for the builder round trips.
func testSeries(version int, detail string) *Series {
	w, h := 40, 30
	ff := make([]float32, w*h)
	mask := make([]uint32, w*h)
	for i := range ff {
		ff[i] = 1 + float32(i%7)/100
	}
	mask[5], mask[77] = 1, 0x10
	crt := &Table{Width: 2, Height: 5, Float32: []float32{0, 0, 1, 1.01, 2, 2.03, 3, 3.1, 4, 4.3}}
	s := &Series{
		Version: version, ID: 42, HeaderDetail: detail,
		Description: "Dectris EIGER2 Si 4M", SerialNumber: "E-08-9999",
		Width: w, Height: h, PixelSizeX: 75e-6, PixelSizeY: 75e-6,
		BeamCenterX: 20.5, BeamCenterY: 14.25, DetectorDistance: 0.125,
		Wavelength: 0.9762, PhotonEnergy: 12700, ThresholdEnergy: 6350,
		CountTime: 0.00199, FrameTime: 0.002, NumberOfImages: 1200,
		BitDepth: 16, ElemSize: 2, SaturationValue: 40000,
		SensorMaterial: "Si", SensorThickness: 450e-6,
		Goniometer: map[string]Axis{"omega": {Start: 10, Increment: 0.1}, "phi": {Start: 0}},
		Config:     map[string]any{"trigger_mode": "exts", "ntrigger": 2.0, "unknown_future_key": []any{1.0, "x"}},
	}
	if detail == "all" {
		s.Flatfield = []Table{{Width: w, Height: h, Float32: ff}}
		s.PixelMask = []Table{{Width: w, Height: h, Uint32: mask}}
		s.CountRateTable = crt
	}
	if version == 2 {
		s.UniqueID = "01J0000000000000000000TEST"
		s.ArmDate = time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.UTC)
		s.Channels = []string{"threshold_1", "threshold_2"}
		s.ChannelThresholds = map[string]float64{"threshold_1": 6350, "threshold_2": 9000}
		s.Config = map[string]any{"countrate_correction_enabled": true, "unknown_future_key": []any{uint64(1), "x"}}
		if detail == "all" {
			s.Flatfield = append(s.Flatfield, Table{Channel: "threshold_2", Width: w, Height: h, Float32: ff})
			s.Flatfield[0].Channel = "threshold_1"
			s.PixelMask = append(s.PixelMask, Table{Channel: "threshold_2", Width: w, Height: h, Uint32: mask})
			s.PixelMask[0].Channel = "threshold_1"
			s.CountRateTable = &Table{Width: 6, Height: 1, Uint32: []uint32{0, 1, 2, 4, 8, 16}}
		}
	}
	return s
}

func TestV1HeaderRoundTrip(t *testing.T) {
	for _, detail := range []string{"all", "basic", "none"} {
		for _, appendix := range []UserData{{}, {Raw: []byte("free text, not JSON")}, {Value: map[string]any{"sample": "lysozyme", "distance_mm": 125.0}}} {
			name := fmt.Sprintf("%s/appendix=%q", detail, appendix.Raw)
			s := testSeries(1, detail)
			s.Appendix = appendix
			var b V1Builder
			parts, err := b.Header(s)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			wantParts := map[string]int{"all": 8, "basic": 2, "none": 1}[detail]
			if appendix.Raw != nil || appendix.Value != nil {
				wantParts++
			}
			if len(parts) != wantParts {
				t.Fatalf("%s: %d parts, want %d", name, len(parts), wantParts)
			}
			got := mustParseV1(t, parts).Series
			if detail == "none" {
				if got.Config != nil || got.Width != 0 || got.ID != 42 {
					t.Errorf("%s: config %v width %d id %d", name, got.Config, got.Width, got.ID)
				}
			} else {
				want := *s
				if want.Appendix.Raw == nil && want.Appendix.Value != nil {
					want.Appendix = parseV1Appendix(parts[len(parts)-1])
				}
				// The parsed Config has every key the builder wrote.
				want.Config = got.Config
				if !reflect.DeepEqual(got, &want) {
					t.Errorf("%s: round trip differs:\n got %+v\nwant %+v", name, summary(got), summary(&want))
				}
				// nimages is per trigger in V1.
				if got.Config["nimages"] != 600.0 || got.Config["ntrigger"] != 2.0 || got.Config["trigger_mode"] != "exts" {
					t.Errorf("%s: nimages %v ntrigger %v", name, got.Config["nimages"], got.Config["ntrigger"])
				}
			}
			switch {
			case appendix.Raw != nil:
				if !bytes.Equal(got.Appendix.Raw, appendix.Raw) || got.Appendix.JSON {
					t.Errorf("%s: appendix %+v", name, got.Appendix)
				}
			case appendix.Value != nil:
				if !reflect.DeepEqual(got.Appendix.Value, appendix.Value) || !got.Appendix.JSON {
					t.Errorf("%s: appendix %+v", name, got.Appendix)
				}
			}
		}
	}
}

// encodeFrame makes a test frame of w x h pixels of elemSize bytes and
// encodes it, returning the raw and the encoded bytes.
func encodeFrame(t testing.TB, w, h, elemSize int, enc codec.Encoding, seed uint64) (raw, encoded []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	raw = make([]byte, w*h*elemSize)
	for i := 0; i < w*h; i++ {
		v := uint32(rng.ExpFloat64() * 3)
		if i%97 == 0 {
			v = 0xFFFFFFFF // masked pixels are all-ones
		}
		switch elemSize {
		case 1:
			raw[i] = byte(v)
		case 2:
			binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
		case 4:
			binary.LittleEndian.PutUint32(raw[4*i:], v)
		}
	}
	if enc == codec.Raw {
		return raw, raw
	}
	encoded, err := codec.NewEncoder().Encode(nil, raw, enc, elemSize)
	if err != nil {
		t.Fatalf("encode %v: %v", enc, err)
	}
	return raw, encoded
}

// decodePixels decodes p with the codec, as the pipeline will.
func decodePixels(t testing.TB, p *Pixels) []byte {
	t.Helper()
	out := make([]byte, p.DecodedSize())
	if _, err := codec.NewDecoder().Decode(out, p.Data, p.Encoding, p.ElemSize); err != nil {
		t.Fatalf("decode %v: %v", p.Encoding, err)
	}
	return out
}

func TestV1ImageRoundTrip(t *testing.T) {
	var b V1Builder
	for _, enc := range []codec.Encoding{codec.Raw, codec.LZ4Block, codec.BSLZ4, codec.BSLZ4NoHeader} {
		for _, elem := range []int{1, 2, 4} {
			for _, appendix := range [][]byte{nil, []byte(`{"shot": 17}`)} {
				name := fmt.Sprintf("%v/%d/appendix=%v", enc, elem, appendix != nil)
				raw, data := encodeFrame(t, 33, 21, elem, enc, uint64(elem))
				img := &Image{
					Version: 1, SeriesID: 7, Number: 12345,
					Pixels:    Pixels{Width: 33, Height: 21, ElemSize: elem, Encoding: enc, Data: data},
					StartTime: Ticks{Count: 1000}, StopTime: Ticks{Count: 1999}, RealTime: Ticks{Count: 999},
					Appendix: appendix,
				}
				parts, err := b.Image(img)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got := mustParseV1(t, parts).Image
				want := *img
				want.Hash, want.HasHash = md5.Sum(parts[1]), true
				if !reflect.DeepEqual(got, &want) {
					t.Errorf("%s: round trip differs:\n got %+v\nwant %+v", name, got, &want)
				}
				if !bytes.Equal(decodePixels(t, &got.Pixels), raw) {
					t.Errorf("%s: decoded pixels differ", name)
				}
			}
		}
	}
}

func TestV2StartRoundTrip(t *testing.T) {
	for _, detail := range []string{"all", "basic"} {
		for _, tables := range []codec.Encoding{codec.Raw, codec.BSLZ4, codec.HDF5LZ4} {
			for _, selfDescribe := range []bool{false, true} {
				if detail == "basic" && tables != codec.Raw {
					continue
				}
				name := fmt.Sprintf("%s/%v/tag55799=%v", detail, tables, selfDescribe)
				s := testSeries(2, detail)
				b := V2Builder{SelfDescribe: selfDescribe, TableEncoding: tables}
				msg, err := b.AppendStart(nil, s)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if (msg[0] == 0xd9) != selfDescribe {
					t.Errorf("%s: first byte %#x", name, msg[0])
				}
				got := mustParseV2(t, msg).Series
				want := *s
				want.HeaderDetail = detail
				// V2 has no distance: it travels in user_data.
				want.Appendix = got.Appendix
				if !reflect.DeepEqual(got.Appendix.Value, map[string]any{"detector_distance": 0.125}) {
					t.Errorf("%s: user_data %#v, want the distance", name, got.Appendix.Value)
				}
				want.Config = got.Config
				if !reflect.DeepEqual(utc(got), utc(&want)) {
					t.Errorf("%s: round trip differs:\n got %+v\nwant %+v", name, summary(got), summary(&want))
				}
				if got.Config["countrate_correction_enabled"] != true || !reflect.DeepEqual(got.Config["unknown_future_key"], []any{uint64(1), "x"}) {
					t.Errorf("%s: unknown keys not kept: %v", name, got.Config)
				}
				if tables != codec.Raw && !bytes.Contains(msg, []byte{0xd9, 0xdc, 0xb4}) {
					t.Errorf("%s: tables not compressed with tag 56500", name)
				}
			}
		}
	}
}

func TestV2ImageRoundTrip(t *testing.T) {
	for _, enc := range []codec.Encoding{codec.Raw, codec.BSLZ4, codec.HDF5LZ4} {
		for _, elem := range []int{1, 2, 4} {
			for _, channels := range []int{1, 3} {
				for _, selfDescribe := range []bool{false, true} {
					name := fmt.Sprintf("%v/%d/channels=%d/tag55799=%v", enc, elem, channels, selfDescribe)
					names := []string{"threshold_1", "threshold_2", "difference"}
					raws := make([][]byte, channels)
					img := &Image{
						Version: 2, SeriesID: 9, UniqueID: "01J0000000000000000000TEST", Number: 77,
						StartTime: Ticks{500, 50_000_000}, StopTime: Ticks{999, 50_000_000}, RealTime: Ticks{499, 50_000_000},
						SeriesDate: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
						Appendix:   []byte{0xa1, 0x61, 0x6b, 0x01}, // {"k": 1}
					}
					for c := 0; c < channels; c++ {
						raw, data := encodeFrame(t, 35, 19, elem, enc, uint64(10*elem+c))
						raws[c] = raw
						px := Pixels{Channel: names[c], Width: 35, Height: 19, ElemSize: elem, Encoding: enc, Data: data}
						if c == 0 {
							img.Pixels = px
						} else {
							img.Other = append(img.Other, px)
						}
					}
					b := V2Builder{SelfDescribe: selfDescribe}
					msg, err := b.AppendImage(nil, img)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					got := mustParseV2(t, msg).Image
					if !reflect.DeepEqual(got, img) {
						t.Errorf("%s: round trip differs:\n got %+v\nwant %+v", name, got, img)
					}
					if got.UserData().Value.(map[string]any)["k"] != uint64(1) {
						t.Errorf("%s: user data %v", name, got.UserData())
					}
					for c := 0; c < channels; c++ {
						px := &got.Pixels
						if c > 0 {
							px = &got.Other[c-1]
						}
						if !bytes.Equal(decodePixels(t, px), raws[c]) {
							t.Errorf("%s: channel %d pixels differ", name, c)
						}
					}
					// Channel selection: the configured channel goes to Pixels.
					if channels == 3 {
						p := Parser{Channel: "difference"}
						m, err := p.ParseV2(msg)
						if err != nil || m.Image.Channel != "difference" || len(m.Image.Other) != 2 ||
							m.Image.Other[0].Channel != "threshold_1" || m.Image.Other[1].Channel != "threshold_2" {
							t.Errorf("%s: selecting difference: %v %+v", name, err, m.Image)
						}
						p.Channel = "threshold_9"
						if _, err := p.ParseV2(msg); err == nil || err.Error() != `V2 image 77: no channel "threshold_9" (have threshold_1, threshold_2, difference)` {
							t.Errorf("%s: missing channel error %v", name, err)
						}
					}
				}
			}
		}
	}
}

func TestV2EndRoundTrip(t *testing.T) {
	for _, sd := range []bool{false, true} {
		b := V2Builder{SelfDescribe: sd}
		e := &End{Version: 2, SeriesID: 3, UniqueID: "u", Reason: EndReceived}
		got := mustParseV2(t, b.AppendEnd(nil, e)).End
		if *got != *e {
			t.Errorf("end %+v, want %+v", got, e)
		}
	}
}

// Builders reuse their buffers: after warm-up an image costs no allocation.
func TestBuildersDoNotAllocate(t *testing.T) {
	_, data := encodeFrame(t, 64, 64, 2, codec.BSLZ4, 1)
	img := &Image{Version: 2, SeriesID: 1, UniqueID: "x", Number: 3,
		Pixels: Pixels{Channel: "threshold_1", Width: 64, Height: 64, ElemSize: 2, Encoding: codec.BSLZ4, Data: data}}
	var v1 V1Builder
	var v2 V2Builder
	buf := make([]byte, 0, 1<<16)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := v1.Image(img); err != nil {
			t.Fatal(err)
		}
		var err error
		if buf, err = v2.AppendImage(buf[:0], img); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per image, want 0", n)
	}
}

// utc returns a copy of s with its dates in UTC, so that equal instants
// compare equal whatever zone offset they were parsed with.
func utc(s *Series) *Series {
	c := *s
	c.ArmDate = c.ArmDate.UTC()
	c.Config = make(map[string]any, len(s.Config))
	for k, v := range s.Config {
		if tm, ok := v.(time.Time); ok {
			v = tm.UTC()
		}
		c.Config[k] = v
	}
	return &c
}

// summary prints a Series without its (large) tables.
func summary(s *Series) string {
	c := *s
	c.Flatfield, c.PixelMask, c.CountRateTable = nil, nil, nil
	c.Config = nil
	return fmt.Sprintf("%+v tables %d/%d/%v config %v", c, len(s.Flatfield), len(s.PixelMask), s.CountRateTable != nil, len(s.Config))
}

func clip(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
