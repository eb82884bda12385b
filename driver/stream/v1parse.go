package stream

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"tioga/driver/codec"
)

// Stream V1 htypes (the "htype" key of the first part, and of the parts that
// describe blobs).
const (
	htypeHeader     = "dheader-1.0"
	htypeImage      = "dimage-1.0"
	htypeImageData  = "dimage_d-1.0"
	htypeImageTimes = "dconfig-1.0"
	htypeEnd        = "dseries_end-1.0"
	htypeFlatfield  = "dflatfield-1.0"
	htypePixelMask  = "dpixelmask-1.0"
	htypeCountRate  = "dcountrate_table-1.0"
)

// absent marks a numeric JSON field that was not sent: the decoder leaves a
// field untouched when its key is missing, and no real series id, frame
// number or size is 2^64-1.
const absent = math.MaxUint64

// v1First is the first part of every V1 message.
type v1First struct {
	HType        string `json:"htype"`
	Series       uint64 `json:"series"`
	Frame        uint64 `json:"frame"`
	Hash         string `json:"hash"`
	HeaderDetail string `json:"header_detail"`
}

// v1Shaped is a part describing the blob that follows it: dimage_d and the
// three header tables.
type v1Shaped struct {
	HType    string   `json:"htype"`
	Shape    []uint64 `json:"shape"`
	Type     string   `json:"type"`
	Encoding string   `json:"encoding"`
	Size     uint64   `json:"size"`
}

// v1Times is the dconfig part of an image.
type v1Times struct {
	HType     string `json:"htype"`
	StartTime uint64 `json:"start_time"`
	StopTime  uint64 `json:"stop_time"`
	RealTime  uint64 `json:"real_time"`
}

// ParseV1 parses one Stream V1 multipart message (one slice per ZeroMQ
// part): a series header, an image or an end of series. The Image's pixel
// bytes alias parts[2].
func ParseV1(parts [][]byte) (Message, error) {
	var p Parser
	return p.ParseV1(parts)
}

// ParseV1 is the package-level ParseV1 using the parser's scratch space.
func (p *Parser) ParseV1(parts [][]byte) (Message, error) {
	if len(parts) == 0 {
		return Message{}, fmt.Errorf("V1: empty message (no parts)")
	}
	p.first = v1First{Series: absent, Frame: absent}
	first := &p.first
	if !p.fastV1First(parts[0], first) {
		p.first = v1First{Series: absent, Frame: absent}
		if err := json.Unmarshal(parts[0], first); err != nil {
			return Message{}, fmt.Errorf("V1 part 1: not a JSON object with an htype: %v (starts %s)", err, quoteStart(parts[0]))
		}
	}
	if first.Series == absent {
		return Message{}, fmt.Errorf("V1 part 1 (htype %q): no series id", first.HType)
	}
	switch first.HType {
	case htypeHeader:
		s, err := p.parseV1Header(parts, first)
		return Message{Series: s}, err
	case htypeImage:
		img, err := p.parseV1Image(parts, first)
		return Message{Image: img}, err
	case htypeEnd:
		if len(parts) != 1 {
			return Message{}, fmt.Errorf("V1 end of series %d: %d parts, want 1", first.Series, len(parts))
		}
		return Message{End: &End{Version: 1, SeriesID: first.Series, Reason: EndReceived}}, nil
	case "":
		return Message{}, fmt.Errorf("V1 part 1: no htype")
	}
	return Message{}, fmt.Errorf("V1 part 1: unknown htype %q (want %s, %s or %s)", first.HType, htypeHeader, htypeImage, htypeEnd)
}

func (p *Parser) parseV1Header(parts [][]byte, first *v1First) (*Series, error) {
	s := &Series{Version: 1, ID: first.Series, HeaderDetail: first.HeaderDetail}
	next := 1
	switch first.HeaderDetail {
	case "all", "basic":
		if len(parts) < 2 {
			return nil, fmt.Errorf("V1 header of series %d: header_detail %q but no config part", s.ID, first.HeaderDetail)
		}
		if err := json.Unmarshal(parts[1], &s.Config); err != nil || s.Config == nil {
			return nil, fmt.Errorf("V1 header part 2: config is not a JSON object: %v (starts %s)", err, quoteStart(parts[1]))
		}
		if err := s.fillV1(); err != nil {
			return nil, err
		}
		next = 2
	case "none":
	default:
		return nil, fmt.Errorf("V1 header of series %d: header_detail %q (want all, basic or none)", s.ID, first.HeaderDetail)
	}
	// The rest: table header + blob pairs, then at most one appendix part.
	for i := next; i < len(parts); i++ {
		kind := v1TableKind(parts[i])
		if kind == "" {
			if i != len(parts)-1 {
				return nil, fmt.Errorf("V1 header part %d: not a table header, so it must be the appendix, but %d more parts follow", i+1, len(parts)-1-i)
			}
			s.Appendix = parseV1Appendix(parts[i])
			break
		}
		if i+1 >= len(parts) {
			return nil, fmt.Errorf("V1 header part %d: %s header without its data part", i+1, kind)
		}
		if len(parts[i+1]) == 0 {
			// A real EIGER2 sends (or a capture keeps) the table's header
			// with an empty body: the table is unusable, the series is not.
			s.Unusable = append(s.Unusable, fmt.Sprintf("%s (part %d): empty data part", strings.TrimSuffix(kind, "-1.0"), i+2))
			i++
			continue
		}
		t, err := parseV1Table(parts[i], parts[i+1], i+1)
		if err != nil {
			return nil, err
		}
		switch kind {
		case htypeFlatfield:
			if s.Flatfield != nil {
				return nil, fmt.Errorf("V1 header part %d: second flatfield", i+1)
			}
			if t.Float32 == nil {
				return nil, fmt.Errorf("V1 header part %d: flatfield of integer type, want float32", i+1)
			}
			s.Flatfield = []Table{t}
		case htypePixelMask:
			if s.PixelMask != nil {
				return nil, fmt.Errorf("V1 header part %d: second pixel mask", i+1)
			}
			if t.Uint32 == nil {
				return nil, fmt.Errorf("V1 header part %d: pixel mask of type float32, want an unsigned integer type", i+1)
			}
			s.PixelMask = []Table{t}
		case htypeCountRate:
			if s.CountRateTable != nil {
				return nil, fmt.Errorf("V1 header part %d: second count-rate table", i+1)
			}
			s.CountRateTable = &t
		}
		i++
	}
	return s, nil
}

// v1TableKind returns the htype of a header-table part, or "" when the part
// is not one (then it is the appendix). Only a JSON object whose htype is one
// of the three table types counts: an appendix is free text.
func v1TableKind(part []byte) string {
	t := bytes.TrimSpace(part)
	if len(t) == 0 || t[0] != '{' {
		return ""
	}
	var h struct {
		HType string `json:"htype"`
	}
	if json.Unmarshal(t, &h) != nil {
		return ""
	}
	switch h.HType {
	case htypeFlatfield, htypePixelMask, htypeCountRate:
		return h.HType
	}
	return ""
}

func parseV1Table(head, blob []byte, partNo int) (Table, error) {
	var h v1Shaped
	if err := json.Unmarshal(head, &h); err != nil {
		return Table{}, fmt.Errorf("V1 header part %d: %v", partNo, err)
	}
	x, y, err := v1Shape(h.Shape)
	if err != nil {
		return Table{}, fmt.Errorf("V1 header part %d (%s): %v", partNo, h.HType, err)
	}
	size := 4
	if h.Type != "float32" {
		if size = elemSizeOf(h.Type); size == 0 {
			return Table{}, fmt.Errorf("V1 header part %d (%s): type %q (want float32, uint8, uint16 or uint32)", partNo, h.HType, h.Type)
		}
	}
	if want := x * y * size; len(blob) != want {
		return Table{}, fmt.Errorf("V1 header part %d: %s data has %d bytes but shape [%d, %d] of %s needs %d", partNo+1, h.HType, len(blob), x, y, h.Type, want)
	}
	t := Table{Width: x, Height: y}
	if h.Type == "float32" {
		t.Float32 = float32sLE(blob)
	} else {
		t.Uint32 = uint32sLE(blob, size)
	}
	return t, nil
}

// v1Shape checks a V1 shape [x, y] (fast, slow).
func v1Shape(shape []uint64) (x, y int, err error) {
	if len(shape) != 2 {
		return 0, 0, fmt.Errorf("shape has %d dimensions, want [x, y]", len(shape))
	}
	if shape[0] == 0 || shape[1] == 0 || shape[0] > maxDim || shape[1] > maxDim || shape[0]*shape[1] > maxPixels {
		return 0, 0, fmt.Errorf("shape [%d, %d] out of range (each 1..%d, at most %d elements)", shape[0], shape[1], maxDim, maxPixels)
	}
	return int(shape[0]), int(shape[1]), nil
}

// fillV1 derives the typed fields from the V1 config part.
func (s *Series) fillV1() error {
	f := fields{m: s.Config, what: "V1 header config"}
	s.Description = f.str("description")
	s.SerialNumber = f.str("detector_number")
	s.Width = f.dim("x_pixels_in_detector")
	s.Height = f.dim("y_pixels_in_detector")
	s.PixelSizeX = f.float("x_pixel_size")
	s.PixelSizeY = f.float("y_pixel_size")
	s.BeamCenterX = f.float("beam_center_x")
	s.BeamCenterY = f.float("beam_center_y")
	s.DetectorDistance = f.float("detector_distance")
	s.Wavelength = f.float("wavelength")
	s.PhotonEnergy = f.float("photon_energy")
	s.ThresholdEnergy = f.float("threshold_energy")
	s.CountTime = f.float("count_time")
	s.FrameTime = f.float("frame_time")
	nimages, ntrigger := f.uint("nimages"), f.uint("ntrigger")
	if ntrigger == 0 {
		ntrigger = 1
	}
	if nimages != 0 && ntrigger > math.MaxUint64/nimages {
		return fmt.Errorf("V1 header config: nimages %d * ntrigger %d overflows", nimages, ntrigger)
	}
	s.NumberOfImages = nimages * ntrigger
	if bits := f.uint("bit_depth_image"); bits != 0 {
		if s.ElemSize = elemSizeOfBits(bits); s.ElemSize == 0 {
			return fmt.Errorf("V1 header config: bit_depth_image %d (want 1..32)", bits)
		}
		s.BitDepth = int(bits)
	}
	s.SaturationValue = f.uint("countrate_correction_count_cutoff")
	s.SensorMaterial = f.str("sensor_material")
	s.SensorThickness = f.float("sensor_thickness")
	if d, ok := s.Config["data_collection_date"].(string); ok {
		s.ArmDate = parseCollectionDate(d)
	}
	for _, axis := range goniometerAxes {
		_, hasStart := s.Config[axis+"_start"]
		_, hasInc := s.Config[axis+"_increment"]
		if !hasStart && !hasInc {
			continue
		}
		if s.Goniometer == nil {
			s.Goniometer = make(map[string]Axis)
		}
		s.Goniometer[axis] = Axis{Start: f.float(axis + "_start"), Increment: f.float(axis + "_increment")}
	}
	return f.err
}

// parseCollectionDate reads V1's data_collection_date: RFC 3339 with an
// offset (EIGER2: "2020-09-07T21:46:54.965+02:00") or without one, in the
// DCU's local time, taken as this machine's (EIGER: "2017-07-03T11:38:53.475491").
// An unreadable date gives the zero time: the date is worth having, not
// worth losing a series for.
func parseCollectionDate(d string) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, d); err == nil {
		return t
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", d, time.Local); err == nil {
		return t
	}
	return time.Time{}
}

func (p *Parser) parseV1Image(parts [][]byte, first *v1First) (*Image, error) {
	if first.Frame == absent {
		return nil, fmt.Errorf("V1 image of series %d: part 1 has no frame number", first.Series)
	}
	if len(parts) < 4 || len(parts) > 5 {
		return nil, fmt.Errorf("V1 image %d of series %d: %d parts, want 4 (dimage, dimage_d, data, dconfig) or 5 (with appendix)", first.Frame, first.Series, len(parts))
	}
	img := p.newImage()
	img.Version, img.SeriesID, img.Number = 1, first.Series, first.Frame
	if len(first.Hash) == 32 {
		if _, err := hex.Decode(img.Hash[:], []byte(first.Hash)); err == nil {
			img.HasHash = true
		}
	}

	p.shaped = v1Shaped{Shape: p.shaped.Shape[:0], Size: absent}
	d := &p.shaped
	if !fastV1Shaped(parts[1], d) {
		p.shaped = v1Shaped{Shape: p.shaped.Shape[:0], Size: absent}
		if err := json.Unmarshal(parts[1], d); err != nil {
			return nil, fmt.Errorf("V1 image %d part 2: %v (starts %s)", img.Number, err, quoteStart(parts[1]))
		}
	}
	if d.HType != htypeImageData {
		return nil, fmt.Errorf("V1 image %d part 2: htype %q, want %s", img.Number, d.HType, htypeImageData)
	}
	x, y, err := v1Shape(d.Shape)
	if err != nil {
		return nil, fmt.Errorf("V1 image %d part 2: %v", img.Number, err)
	}
	if img.ElemSize = elemSizeOf(d.Type); img.ElemSize == 0 {
		return nil, fmt.Errorf("V1 image %d part 2: type %q (want uint8, uint16 or uint32)", img.Number, d.Type)
	}
	img.Width, img.Height = x, y
	data := parts[2]
	if d.Size == absent {
		return nil, fmt.Errorf("V1 image %d part 2: no size", img.Number)
	}
	if d.Size != uint64(len(data)) {
		return nil, fmt.Errorf("V1 image %d part 2: size %d but data part has %d bytes", img.Number, d.Size, len(data))
	}
	if img.Encoding, err = v1Encoding(d.Encoding, img.ElemSize, data, x*y); err != nil {
		return nil, fmt.Errorf("V1 image %d part 2: %v", img.Number, err)
	}
	img.Data = data

	p.times = v1Times{}
	t := &p.times
	if !fastV1Times(parts[3], t) {
		p.times = v1Times{}
		if err := json.Unmarshal(parts[3], t); err != nil {
			return nil, fmt.Errorf("V1 image %d part 4: %v (starts %s)", img.Number, err, quoteStart(parts[3]))
		}
	}
	if t.HType != htypeImageTimes {
		return nil, fmt.Errorf("V1 image %d part 4: htype %q, want %s", img.Number, t.HType, htypeImageTimes)
	}
	img.StartTime = Ticks{Count: t.StartTime}
	img.StopTime = Ticks{Count: t.StopTime}
	img.RealTime = Ticks{Count: t.RealTime}
	if len(parts) == 5 {
		img.Appendix = parts[4]
	}
	return img, nil
}

// v1Encoding maps a V1 encoding name (grammar [bs<8|16|32>-][lz4]<, read by
// codec.ParseV1Encoding) to an Encoding and checks it against the pixel type
// and the data.
func v1Encoding(name string, elemSize int, data []byte, pixels int) (codec.Encoding, error) {
	enc, bsElem, err := codec.ParseV1Encoding(name)
	if err != nil {
		return 0, err
	}
	raw := pixels * elemSize
	switch {
	case enc == codec.Raw && len(data) != raw:
		return 0, fmt.Errorf("encoding \"<\" (raw) but %d bytes for %d pixels of %d bytes", len(data), pixels, elemSize)
	case enc != codec.BSLZ4:
		return enc, nil
	case bsElem != elemSize:
		return 0, fmt.Errorf("encoding %q does not match %d-byte pixels", name, elemSize)
	}
	// Some simulators leave out the 12-byte header: it is there iff the
	// first 8 bytes (big-endian) equal the decoded size.
	if len(data) >= 12 && binary.BigEndian.Uint64(data) == uint64(raw) {
		return codec.BSLZ4, nil
	}
	return codec.BSLZ4NoHeader, nil
}

// quoteStart shows the beginning of a bad part in an error message.
func quoteStart(b []byte) string {
	const n = 40
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "..."
	}
	return strconv.Quote(string(b))
}
