package stream

import (
	"crypto/md5"
	"encoding/hex"
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"tioga/driver/codec"
)

// Golden values below are facts of the real captures, read off the files
// (JSON parts are plain text; CBOR was checked with an independent
// diagnostic dump), not values this package produced.

func TestV1FixtureHeader(t *testing.T) {
	m := mustParseV1(t, v1HeaderParts(t))
	if m.Kind() != KindSeries {
		t.Fatalf("kind %v, want series", m.Kind())
	}
	s := m.Series
	if s.Version != 1 || s.ID != 6 || s.HeaderDetail != "all" || s.UniqueID != "" {
		t.Errorf("version %d id %d detail %q uid %q, want 1 6 all \"\"", s.Version, s.ID, s.HeaderDetail, s.UniqueID)
	}
	// Every one of the 50 keys of the real config part is kept, unknown
	// ones included, with its JSON value.
	if len(s.Config) != 50 {
		t.Errorf("config has %d keys, want 50", len(s.Config))
	}
	for key, want := range map[string]any{
		"software_version":                "1.6.6",
		"calibration_type":                "standard",
		"countrate_correction_bunch_mode": "continuous",
		"data_collection_date":            "2017-07-03T11:38:53.475491",
		"detector_orientation":            []any{-1.0, 0.0, 0.0, 0.0, -1.0, 0.0},
		"number_of_excluded_pixels":       250513.0,
		"bit_depth_readout":               12.0,
		"element":                         "Cu",
		"nframes_sum":                     2.0,
	} {
		if got := s.Config[key]; !reflect.DeepEqual(got, want) {
			t.Errorf("Config[%q] = %#v, want %#v", key, got, want)
		}
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Description", s.Description, "Dectris Eiger 4M"},
		{"SerialNumber", s.SerialNumber, "E-08-0115"},
		{"Width", s.Width, 2070},
		{"Height", s.Height, 2167},
		{"PixelSizeX", s.PixelSizeX, 7.5000003562308848e-05},
		{"PixelSizeY", s.PixelSizeY, 7.5000003562308848e-05},
		{"BeamCenterX", s.BeamCenterX, 0.0},
		{"DetectorDistance", s.DetectorDistance, 0.0},
		{"Wavelength", s.Wavelength, 1.5406012535095215},
		{"PhotonEnergy", s.PhotonEnergy, 8047.77978515625},
		{"ThresholdEnergy", s.ThresholdEnergy, 4023.889892578125},
		{"CountTime", s.CountTime, 0.0019925357773900032},
		{"FrameTime", s.FrameTime, 0.0020000000949949026},
		{"NumberOfImages", s.NumberOfImages, uint64(10)},
		{"BitDepth", s.BitDepth, 0}, // SIMPLON 1.6.6 does not announce bit_depth_image
		{"SaturationValue", s.SaturationValue, uint64(0)},
		{"Saturation(2)", s.Saturation(2), uint64(0xFFFE)},
		{"SensorMaterial", s.SensorMaterial, "Si"},
		{"SensorThickness", s.SensorThickness, 0.00044999999227002263},
		{"Omega", s.Omega(), Axis{}},
		{"Goniometer axes", len(s.Goniometer), 5},
		{"Channels", s.Channels, []string(nil)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	// Tables: the two substituted zero blobs, and the real count-rate table.
	if len(s.Flatfield) != 1 || s.Flatfield[0].Width != 2070 || s.Flatfield[0].Height != 2167 || len(s.Flatfield[0].Float32) != 2070*2167 {
		t.Fatalf("flatfield %d tables", len(s.Flatfield))
	}
	if len(s.PixelMask) != 1 || len(s.PixelMask[0].Uint32) != 2070*2167 || s.PixelMask[0].Float32 != nil {
		t.Fatalf("pixel mask %d tables", len(s.PixelMask))
	}
	crt := s.CountRateTable
	if crt == nil || crt.Width != 2 || crt.Height != 4000 || len(crt.Float32) != 8000 {
		t.Fatalf("count-rate table %+v, want [2, 4000] float32", crt)
	}
	// The first values of streamfile_8: 00000000 00000000 00a08c44 fb948c44.
	for i, want := range []float32{0, 0, 1125, math.Float32frombits(0x448c94fb)} {
		if crt.Float32[i] != want {
			t.Errorf("count-rate table[%d] = %v, want %v", i, crt.Float32[i], want)
		}
	}
	// All 32000 bytes: the md5 of the table re-encoded equals that of the file.
	_, blob, err := v1TableParts(htypeCountRate, crt)
	if err != nil {
		t.Fatal(err)
	}
	if got := md5.Sum(blob); hex.EncodeToString(got[:]) != "59b74a45316c9724330579446c2dd6a2" {
		t.Errorf("count-rate table md5 %x, want that of streamfile_8", got)
	}

	if string(s.Appendix.Raw) != `{"acqID": "test_1"}` || !s.Appendix.JSON ||
		!reflect.DeepEqual(s.Appendix.Value, map[string]any{"acqID": "test_1"}) {
		t.Errorf("appendix %+v, want the JSON {\"acqID\": \"test_1\"}", s.Appendix)
	}
}

func TestV1FixtureImages(t *testing.T) {
	times := [3][3]uint64{ // start, stop, real (ticks of 20 ns)
		{143051295370, 143051394995, 99251},
		{143051395491, 143051494995, 99130},
		{143051495491, 143051594994, 99129},
	}
	for frame := 0; frame < 3; frame++ {
		parts := v1ImageParts(t, frame)
		img := mustParseV1(t, parts).Image
		if img == nil {
			t.Fatalf("frame %d: not an image", frame)
		}
		if img.Version != 1 || img.SeriesID != 6 || img.Number != uint64(frame) {
			t.Errorf("frame %d: version %d series %d number %d", frame, img.Version, img.SeriesID, img.Number)
		}
		if img.Width != 2070 || img.Height != 2167 || img.ElemSize != 2 || img.Encoding != codec.BSLZ4 || img.Channel != "" {
			t.Errorf("frame %d: %dx%d elem %d %v channel %q, want 2070x2167 elem 2 bslz4", frame, img.Width, img.Height, img.ElemSize, img.Encoding, img.Channel)
		}
		if len(img.Data) != v1FrameSize || &img.Data[0] != &parts[2][0] {
			t.Errorf("frame %d: data %d bytes (aliasing part 3: %v), want part 3 itself, %d bytes", frame, len(img.Data), &img.Data[0] == &parts[2][0], v1FrameSize)
		}
		// The real detector's hash is the md5 of part 2 (the dimage_d
		// header), the same for all three frames.
		if !img.HasHash || hex.EncodeToString(img.Hash[:]) != "93bf39629df438a054ab4213d273b2e5" || md5.Sum(parts[1]) != img.Hash {
			t.Errorf("frame %d: hash %x (sent %v), want 93bf39629df438a054ab4213d273b2e5 = md5(part 2)", frame, img.Hash, img.HasHash)
		}
		want := times[frame]
		if img.StartTime != (Ticks{Count: want[0]}) || img.StopTime != (Ticks{Count: want[1]}) || img.RealTime != (Ticks{Count: want[2]}) {
			t.Errorf("frame %d: times %v %v %v, want %v", frame, img.StartTime, img.StopTime, img.RealTime, want)
		}
		if img.Appendix != nil || img.Other != nil {
			t.Errorf("frame %d: appendix %q other %v, want none", frame, img.Appendix, img.Other)
		}
	}
	// 2 ms frame time at a 50 MHz clock: frames 1 and 2 start 100000 ticks
	// apart, and that is 2 ms only with the configured 20 ns tick.
	if sec, ok := (Ticks{Count: 100000}).Seconds(50_000_000); !ok || sec != 0.002 {
		t.Errorf("100000 ticks at 50 MHz = %v s, want 0.002", sec)
	}
	if _, ok := (Ticks{Count: 1}).Seconds(0); ok {
		t.Error("V1 ticks without a configured rate converted to seconds")
	}
}

func TestV1FixtureEnd(t *testing.T) {
	m := mustParseV1(t, v1EndParts(t))
	want := End{Version: 1, SeriesID: 6, Reason: EndReceived}
	if m.End == nil || *m.End != want {
		t.Fatalf("end %+v, want %+v", m.End, want)
	}
}

func TestV2Fixture16MStart(t *testing.T) {
	msg := v2File(t, v2Dir16M, "start.cbor")
	if msg[0] == 0xd9 {
		t.Fatal("fixture changed: the 16M start message has no self-describe tag")
	}
	s := mustParseV2(t, msg).Series
	if s == nil {
		t.Fatal("not a start message")
	}
	armDate := time.Date(2023, 10, 3, 15, 47, 48, 329000000, time.UTC)
	checks := []struct {
		name      string
		got, want any
	}{
		{"Version", s.Version, 2},
		{"ID", s.ID, uint64(15614)},
		{"UniqueID", s.UniqueID, "01HBV3JPF9T4ZDPADX6EMK6XMZ"},
		{"HeaderDetail", s.HeaderDetail, "all"},
		{"Description", s.Description, "Dectris EIGER2 Si 16M"},
		{"SerialNumber", s.SerialNumber, "E-32-0117"},
		{"Width", s.Width, 4148},
		{"Height", s.Height, 4362},
		{"PixelSizeX", s.PixelSizeX, 0.000075},
		{"BeamCenterX", s.BeamCenterX, 2049.3840906675064},
		{"BeamCenterY", s.BeamCenterY, 2163.621048575148},
		{"DetectorDistance", s.DetectorDistance, 0.23715919962215962}, // -z of detector_translation
		{"Wavelength", s.Wavelength, 0.918381073013},
		{"PhotonEnergy", s.PhotonEnergy, 13500.299829398293},
		{"ThresholdEnergy", s.ThresholdEnergy, 6750.149914699146},
		{"ChannelThresholds", s.ChannelThresholds, map[string]float64{"threshold_1": 6750.149914699146, "threshold_2": 18900.41976115761}},
		{"CountTime", s.CountTime, 0.004317472232502031},
		{"FrameTime", s.FrameTime, 0.004317572232502031},
		{"NumberOfImages", s.NumberOfImages, uint64(1)},
		{"SaturationValue", s.SaturationValue, uint64(21517)},
		{"Saturation(4)", s.Saturation(4), uint64(21517)},
		{"SensorMaterial", s.SensorMaterial, "Si"},
		{"SensorThickness", s.SensorThickness, 0.00045},
		{"Channels", s.Channels, []string{"threshold_1"}},
		{"Omega", s.Omega(), Axis{Start: 0, Increment: 0.1}},
		{"chi", s.Goniometer["chi"], Axis{Start: 30}},
		{"axes", len(s.Goniometer), 3},
		{"ArmDate", s.ArmDate.UTC(), armDate},
		{"translation", s.Config["detector_translation"], []any{0.15370380680006296, 0.1622715786431361, -0.23715919962215962}},
		{"countrate_correction_enabled", s.Config["countrate_correction_enabled"], true},
		{"virtual_pixel_interpolation_enabled", s.Config["virtual_pixel_interpolation_enabled"], true},
		{"config keys", len(s.Config), 30}, // 31 top-level keys minus "type"
		// The capture's tables were emptied to 4 zero bytes each (plain byte
		// strings): read as one value of the field's type.
		{"Flatfield", s.Flatfield, []Table{{Channel: "threshold_1", Width: 1, Height: 1, Float32: []float32{0}}}},
		{"PixelMask", s.PixelMask, []Table{{Channel: "threshold_1", Width: 1, Height: 1, Uint32: []uint32{0}}}},
		{"CountRateTable", s.CountRateTable, &Table{Width: 1, Height: 1, Uint32: []uint32{0}}},
		{"Appendix", s.Appendix, UserData{}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestV2Fixture16MImageAndEnd(t *testing.T) {
	msg := v2File(t, v2Dir16M, "image.cbor")
	if msg[0] != 0xd9 || msg[1] != 0xd9 || msg[2] != 0xf7 {
		t.Fatal("fixture changed: the 16M image message starts with tag 55799")
	}
	img := mustParseV2(t, msg).Image
	if img == nil {
		t.Fatal("not an image")
	}
	if img.Version != 2 || img.SeriesID != 15614 || img.UniqueID != "01HBV3JPF9T4ZDPADX6EMK6XMZ" || img.Number != 0 {
		t.Errorf("image %d of series %d (%s)", img.Number, img.SeriesID, img.UniqueID)
	}
	if img.Channel != "threshold_1" || img.Width != 4148 || img.Height != 4362 || img.ElemSize != 2 || img.Encoding != codec.BSLZ4 {
		t.Errorf("pixels %s %dx%d elem %d %v", img.Channel, img.Width, img.Height, img.ElemSize, img.Encoding)
	}
	// The bslz4 header announces 4148*4362*2 = 36187152 bytes (0x02282c10).
	if n, ok := codec.DecodedSize(img.Data, codec.BSLZ4); !ok || n != 36187152 || len(img.Data) != 513082 {
		t.Errorf("data %d bytes announcing %d, want 513082 announcing 36187152", len(img.Data), n)
	}
	if img.RealTime != (Ticks{215873, 50000000}) || img.StartTime != (Ticks{0, 50000000}) || img.StopTime != (Ticks{215873, 50000000}) {
		t.Errorf("times %v %v %v", img.StartTime, img.StopTime, img.RealTime)
	}
	if sec, _ := img.RealTime.Seconds(0); math.Abs(sec-0.00431746) > 1e-9 {
		t.Errorf("real time %v s", sec)
	}
	if !img.SeriesDate.Equal(time.Date(2023, 10, 3, 15, 47, 49, 434000000, time.UTC)) {
		t.Errorf("series date %v", img.SeriesDate)
	}
	if img.Appendix != nil || img.Other != nil {
		t.Errorf("appendix %x other %v", img.Appendix, img.Other)
	}
	// The payload is read in place: it lies inside the message buffer.
	if !within(img.Data, msg) {
		t.Error("pixel data was copied out of the message")
	}

	end := mustParseV2(t, v2File(t, v2Dir16M, "end.cbor")).End
	want := End{Version: 2, SeriesID: 15614, UniqueID: "01HBV3JPF9T4ZDPADX6EMK6XMZ", Reason: EndReceived}
	if end == nil || *end != want {
		t.Errorf("end %+v, want %+v", end, want)
	}
}

func TestV2Fixture500K(t *testing.T) {
	for _, d := range v2500K {
		t.Run(d.dir, func(t *testing.T) {
			enc := codec.BSLZ4
			if d.alg == "lz4" {
				enc = codec.HDF5LZ4
			}
			for n := 1; n <= 10; n++ {
				msg := v2ImageFile(t, d.dir, n)
				if msg[0] != 0xd9 {
					t.Fatal("fixture changed: 500K messages start with tag 55799")
				}
				img := mustParseV2(t, msg).Image
				if img == nil {
					t.Fatalf("message %d: not an image", n)
				}
				id := uint64(n - 1)
				if img.SeriesID != 1 || img.UniqueID != d.uid || img.Number != id {
					t.Errorf("message %d: image %d of series %d (%s)", n, img.Number, img.SeriesID, img.UniqueID)
				}
				// CBOR dims [514, 1030] are [rows, cols].
				if img.Channel != "threshold_1" || img.Width != 1030 || img.Height != 514 || img.ElemSize != d.elemSize || img.Encoding != enc {
					t.Errorf("message %d: %s %dx%d elem %d %v", n, img.Channel, img.Width, img.Height, img.ElemSize, img.Encoding)
				}
				if size, ok := codec.DecodedSize(img.Data, enc); !ok || size != 1030*514*d.elemSize || !within(img.Data, msg) {
					t.Errorf("message %d: data announces %d bytes", n, size)
				}
				if img.StartTime != (Ticks{id * (d.realTime + 5), 50000000}) || img.RealTime != (Ticks{d.realTime, 50000000}) ||
					img.StopTime != (Ticks{id*(d.realTime+5) + d.realTime, 50000000}) {
					t.Errorf("message %d: times %v %v %v", n, img.StartTime, img.StopTime, img.RealTime)
				}
				// user_data is the CBOR array [1, "💙"].
				if hex.EncodeToString(img.Appendix) != "820164f09f9299" {
					t.Errorf("message %d: user_data %x", n, img.Appendix)
				}
				if u := img.UserData(); !reflect.DeepEqual(u.Value, []any{uint64(1), "💙"}) || u.JSON {
					t.Errorf("message %d: user data %#v", n, u.Value)
				}
			}
			end := mustParseV2(t, v2ImageFile(t, d.dir, 11)).End
			want := End{Version: 2, SeriesID: 1, UniqueID: d.uid, Reason: EndReceived}
			if end == nil || *end != want {
				t.Errorf("end %+v, want %+v", end, want)
			}
		})
	}
}

// within reports whether sub lies inside buf's memory.
func within(sub, buf []byte) bool {
	if len(sub) == 0 || len(buf) == 0 {
		return false
	}
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return p >= b && p+uintptr(len(sub)) <= b+uintptr(len(buf))
}
