package stream

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"tioga/driver/codec"
)

// V1Builder builds Stream V1 multipart messages, the inverse of ParseV1.
//
// It writes what a real EIGER writes: compact JSON with sorted keys and a
// trailing newline, the image "hash" as the md5 of part 2 (the dimage_d
// header), times as clock ticks. It reuses its buffers, so a simulator can
// build 750 frames/s without garbage: the parts returned by a call stay valid
// until the next call on the same builder. Pixel data, tables and appendices
// are not copied: the returned parts alias the caller's slices.
//
// The zero V1Builder is ready to use; it is not safe for concurrent use.
type V1Builder struct {
	parts [][]byte
	head  []byte // part 1 of an image or end
	desc  []byte // part 2 of an image
	times []byte // part 4 of an image
}

// Image builds the 4 (or 5, with an appendix) parts of one frame from the
// Image's series id, number, pixels (Channel and Other are ignored: V1 has
// one channel), times (ticks; rates are not sent) and appendix.
func (b *V1Builder) Image(img *Image) ([][]byte, error) {
	enc, err := v1EncodingName(img.Encoding, img.ElemSize)
	if err != nil {
		return nil, fmt.Errorf("V1 image %d: %v", img.Number, err)
	}
	typ := typeName(img.ElemSize)
	if typ == "" {
		return nil, fmt.Errorf("V1 image %d: element size %d (want 1, 2 or 4)", img.Number, img.ElemSize)
	}
	if img.Width <= 0 || img.Height <= 0 {
		return nil, fmt.Errorf("V1 image %d: size %d x %d", img.Number, img.Width, img.Height)
	}
	if img.Encoding == codec.Raw && len(img.Data) != img.DecodedSize() {
		return nil, fmt.Errorf("V1 image %d: raw data of %d bytes for %d x %d pixels of %d bytes", img.Number, len(img.Data), img.Width, img.Height, img.ElemSize)
	}

	d := append(b.desc[:0], `{"encoding":"`...)
	d = append(d, enc...)
	d = append(d, `","htype":"`+htypeImageData+`","shape":[`...)
	d = strconv.AppendInt(d, int64(img.Width), 10)
	d = append(d, ',')
	d = strconv.AppendInt(d, int64(img.Height), 10)
	d = append(d, `],"size":`...)
	d = strconv.AppendInt(d, int64(len(img.Data)), 10)
	d = append(d, `,"type":"`...)
	d = append(d, typ...)
	d = append(d, "\"}\n"...)
	b.desc = d

	sum := md5.Sum(d)
	var hexSum [2 * md5.Size]byte
	hex.Encode(hexSum[:], sum[:])
	h := append(b.head[:0], `{"frame":`...)
	h = strconv.AppendUint(h, img.Number, 10)
	h = append(h, `,"hash":"`...)
	h = append(h, hexSum[:]...)
	h = append(h, `","htype":"`+htypeImage+`","series":`...)
	h = strconv.AppendUint(h, img.SeriesID, 10)
	h = append(h, "}\n"...)
	b.head = h

	t := append(b.times[:0], `{"htype":"`+htypeImageTimes+`","real_time":`...)
	t = strconv.AppendUint(t, img.RealTime.Count, 10)
	t = append(t, `,"start_time":`...)
	t = strconv.AppendUint(t, img.StartTime.Count, 10)
	t = append(t, `,"stop_time":`...)
	t = strconv.AppendUint(t, img.StopTime.Count, 10)
	t = append(t, "}\n"...)
	b.times = t

	b.parts = append(b.parts[:0], h, d, img.Data, t)
	if img.Appendix != nil {
		app := img.Appendix
		if img.Version == 2 { // CBOR user_data: V1 wants text
			u := parseV2UserData(app)
			if app, err = u.bytesV1(); err != nil {
				return nil, fmt.Errorf("V1 image %d: %v", img.Number, err)
			}
		}
		b.parts = append(b.parts, app)
	}
	return b.parts, nil
}

// End builds the single-part end of series message.
func (b *V1Builder) End(e *End) [][]byte {
	h := append(b.head[:0], `{"htype":"`+htypeEnd+`","series":`...)
	h = strconv.AppendUint(h, e.SeriesID, 10)
	h = append(h, "}\n"...)
	b.head = h
	b.parts = append(b.parts[:0], h)
	return b.parts
}

// Header builds the series header: part 1, then the config part (detail
// "basic" and "all"), then for "all" the flatfield, pixel mask and count-rate
// table (each a JSON part and a blob, when the Series has them), then the
// appendix when there is one. An empty HeaderDetail means "all" when the
// Series has tables, else "basic".
//
// The config part holds every typed field under its V1 key (a field is
// written when it is non-zero or its key is in Config) and every other key
// of Config verbatim. Headers are rare, so Header allocates freely; the
// returned parts are new slices.
func (b *V1Builder) Header(s *Series) ([][]byte, error) {
	detail := s.HeaderDetail
	if detail == "" {
		detail = "basic"
		if s.Flatfield != nil || s.PixelMask != nil || s.CountRateTable != nil {
			detail = "all"
		}
	}
	switch detail {
	case "all", "basic", "none":
	default:
		return nil, fmt.Errorf("V1 header: header_detail %q (want all, basic or none)", detail)
	}
	first, err := json.Marshal(map[string]any{"htype": htypeHeader, "series": s.ID, "header_detail": detail})
	if err != nil {
		return nil, err
	}
	parts := [][]byte{append(first, '\n')}
	if detail != "none" {
		cfg, err := s.v1Config()
		if err != nil {
			return nil, err
		}
		js, err := json.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("V1 header config: %v", err)
		}
		parts = append(parts, append(js, '\n'))
	}
	if detail == "all" {
		tables := []struct {
			htype string
			t     []Table
		}{{htypeFlatfield, s.Flatfield}, {htypePixelMask, s.PixelMask}}
		if s.CountRateTable != nil {
			tables = append(tables, struct {
				htype string
				t     []Table
			}{htypeCountRate, []Table{*s.CountRateTable}})
		}
		for _, tt := range tables {
			if len(tt.t) > 1 {
				return nil, fmt.Errorf("V1 header: %d %s tables, V1 sends one", len(tt.t), tt.htype)
			}
			if len(tt.t) == 0 {
				continue
			}
			head, blob, err := v1TableParts(tt.htype, &tt.t[0])
			if err != nil {
				return nil, err
			}
			parts = append(parts, head, blob)
		}
	}
	if app, err := s.Appendix.bytesV1(); err != nil {
		return nil, err
	} else if app != nil {
		parts = append(parts, app)
	}
	return parts, nil
}

// v1Config merges the typed fields into a copy of Config.
func (s *Series) v1Config() (map[string]any, error) {
	cfg := make(map[string]any, len(s.Config)+24)
	for k, v := range s.Config {
		cfg[k] = v
	}
	put := func(key string, v any, zero bool) {
		if _, ok := cfg[key]; ok || !zero {
			cfg[key] = v
		}
	}
	putF := func(key string, v float64) { put(key, v, v == 0) }
	put("description", s.Description, s.Description == "")
	put("detector_number", s.SerialNumber, s.SerialNumber == "")
	put("x_pixels_in_detector", s.Width, s.Width == 0)
	put("y_pixels_in_detector", s.Height, s.Height == 0)
	putF("x_pixel_size", s.PixelSizeX)
	putF("y_pixel_size", s.PixelSizeY)
	putF("beam_center_x", s.BeamCenterX)
	putF("beam_center_y", s.BeamCenterY)
	putF("detector_distance", s.DetectorDistance)
	putF("wavelength", s.Wavelength)
	putF("photon_energy", s.PhotonEnergy)
	putF("threshold_energy", s.ThresholdEnergy)
	putF("count_time", s.CountTime)
	putF("frame_time", s.FrameTime)
	// V1 announces nimages per trigger; keep the configured ntrigger when
	// it divides the total.
	ntrigger := uint64(1)
	if v, ok := cfg["ntrigger"]; ok {
		if n, ok := unsigned(v); ok && n > 0 && s.NumberOfImages%n == 0 {
			ntrigger = n
		}
		cfg["ntrigger"] = ntrigger
	}
	put("nimages", s.NumberOfImages/ntrigger, s.NumberOfImages == 0)
	put("bit_depth_image", s.BitDepth, s.BitDepth == 0)
	put("countrate_correction_count_cutoff", s.SaturationValue, s.SaturationValue == 0)
	put("sensor_material", s.SensorMaterial, s.SensorMaterial == "")
	putF("sensor_thickness", s.SensorThickness)
	if _, ok := cfg["data_collection_date"]; !ok && !s.ArmDate.IsZero() {
		cfg["data_collection_date"] = s.ArmDate.Format(time.RFC3339Nano)
	}
	for name, a := range s.Goniometer {
		cfg[name+"_start"] = a.Start
		cfg[name+"_increment"] = a.Increment
	}
	for k, v := range cfg {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil, fmt.Errorf("V1 header config: %s is %v, JSON has no such number", k, f)
		}
	}
	return cfg, nil
}

// v1TableParts builds the JSON part and the blob of one header table.
func v1TableParts(htype string, t *Table) (head, blob []byte, err error) {
	typ := "float32"
	switch {
	case t.Float32 != nil:
		blob = make([]byte, 0, 4*len(t.Float32))
		for _, f := range t.Float32 {
			blob = binary.LittleEndian.AppendUint32(blob, math.Float32bits(f))
		}
	default:
		typ = "uint32"
		blob = make([]byte, 0, 4*len(t.Uint32))
		for _, u := range t.Uint32 {
			blob = binary.LittleEndian.AppendUint32(blob, u)
		}
	}
	if t.Width*t.Height != t.Len() {
		return nil, nil, fmt.Errorf("V1 header %s: %d values for shape [%d, %d]", htype, t.Len(), t.Width, t.Height)
	}
	head = []byte(fmt.Sprintf(`{"htype":%q,"shape":[%d,%d],"type":%q}`+"\n", htype, t.Width, t.Height, typ))
	return head, blob, nil
}

// bytesV1 is the V1 appendix part: Raw verbatim unless it is CBOR (a V2
// user_data), else a text Value as its text, else Value as JSON.
func (u *UserData) bytesV1() ([]byte, error) {
	if u.Raw != nil && !u.cbor {
		return u.Raw, nil
	}
	switch v := u.Value.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(v), nil
	}
	b, err := json.Marshal(u.Value)
	if err != nil {
		return nil, fmt.Errorf("V1 appendix: user data %T has no JSON form: %v", u.Value, err)
	}
	return b, nil
}

// v1EncodingName is the V1 "encoding" value of an Encoding.
func v1EncodingName(enc codec.Encoding, elemSize int) (string, error) {
	switch enc {
	case codec.Raw:
		return "<", nil
	case codec.LZ4Block:
		return "lz4<", nil
	case codec.BSLZ4, codec.BSLZ4NoHeader:
		switch elemSize {
		case 1:
			return "bs8-lz4<", nil
		case 2:
			return "bs16-lz4<", nil
		case 4:
			return "bs32-lz4<", nil
		}
		return "", fmt.Errorf("bitshuffle with %d-byte elements", elemSize)
	}
	return "", fmt.Errorf("encoding %v has no V1 name (V1 sends <, lz4< or bsN-lz4<)", enc)
}
