package stream

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"tioga/driver/codec"
)

// Stream V2 message types (the "type" key).
const (
	typeStart = "start"
	typeImage = "image"
	typeEnd   = "end"
)

// cborSpan captures one encoded CBOR item of the message being parsed
// without copying it. fxamacker/cbor hands an Unmarshaler a subslice of the
// input; keeping it (against the general Unmarshaler advice) is safe here
// because the parser owns the input for as long as the result lives.
type cborSpan []byte

// UnmarshalCBOR keeps the item's bytes.
func (s *cborSpan) UnmarshalCBOR(b []byte) error {
	*s = b
	return nil
}

// textSpan captures a text-string item so the parser can intern it.
type textSpan []byte

// UnmarshalCBOR checks the item is a definite text string and keeps its
// content.
func (s *textSpan) UnmarshalCBOR(b []byte) error {
	r := cborReader{b: b}
	t, err := r.str(majorText, "text")
	*s = t
	return err
}

// rational is the V2 Rational [numerator, denominator].
type rational struct {
	num, den uint64
	set      bool
}

// UnmarshalCBOR reads exactly [uint, uint].
func (q *rational) UnmarshalCBOR(b []byte) error {
	r := cborReader{b: b}
	if err := r.arrayHead(2, "rational"); err != nil {
		return err
	}
	var err error
	if q.num, err = r.uint("rational numerator"); err != nil {
		return err
	}
	if q.den, err = r.uint("rational denominator"); err != nil {
		return err
	}
	q.set = true
	return nil
}

// v2Envelope is what the parser needs of image and end messages, and the
// dispatch for start messages.
type v2Envelope struct {
	Type       textSpan  `cbor:"type"` // not a string: that would allocate per message
	SeriesID   uint64    `cbor:"series_id"`
	UniqueID   textSpan  `cbor:"series_unique_id"`
	ImageID    uint64    `cbor:"image_id"`
	StartTime  rational  `cbor:"start_time"`
	StopTime   rational  `cbor:"stop_time"`
	RealTime   rational  `cbor:"real_time"`
	SeriesDate time.Time `cbor:"series_date"`
	Data       cborSpan  `cbor:"data"`
	UserData   cborSpan  `cbor:"user_data"`
}

var (
	// v2Mode decodes configuration values: maps to map[string]any, dates to
	// time.Time. Limits are fxamacker's defaults (nesting 32, 131072
	// elements), far above anything a detector sends.
	v2Mode = mustDecMode(cbor.DecOptions{
		DefaultMapType: reflect.TypeOf(map[string]any(nil)),
		TimeTagToAny:   cbor.TimeTagToTime,
	})
	// v2LooseMode decodes values whose maps have non-text keys (user data
	// may hold anything).
	v2LooseMode = mustDecMode(cbor.DecOptions{TimeTagToAny: cbor.TimeTagToTime})
)

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	dm, err := o.DecMode()
	if err != nil {
		panic(err) // static options: a programming error
	}
	return dm
}

// ParseV2 parses one Stream V2 message (one CBOR item, with or without the
// self-describe tag 55799): a start, image or end message. The Image's pixel
// bytes alias msg.
func ParseV2(msg []byte) (Message, error) {
	var p Parser
	return p.ParseV2(msg)
}

// ParseV2 is the package-level ParseV2 with the parser's channel selection
// and scratch space.
func (p *Parser) ParseV2(msg []byte) (Message, error) {
	if len(msg) == 0 {
		return Message{}, fmt.Errorf("V2: empty message")
	}
	if err := checkTopLevel(msg); err != nil {
		return Message{}, err
	}
	p.env = v2Envelope{SeriesID: absent, ImageID: absent}
	e := &p.env
	if err := v2Mode.Unmarshal(msg, e); err != nil {
		return Message{}, fmt.Errorf("V2: not a CBOR map of a stream message: %v", err)
	}
	if len(e.Type) == 0 {
		return Message{}, fmt.Errorf("V2: message has no type")
	}
	if e.SeriesID == absent {
		return Message{}, fmt.Errorf("V2 %s message: no series_id", e.Type)
	}
	switch string(e.Type) {
	case typeImage:
		img, err := p.parseV2Image(e)
		return Message{Image: img}, err
	case typeEnd:
		return Message{End: &End{Version: 2, SeriesID: e.SeriesID, UniqueID: p.internBytes(e.UniqueID), Reason: EndReceived}}, nil
	case typeStart:
		s, err := p.parseV2Start(msg, e)
		return Message{Series: s}, err
	}
	return Message{}, fmt.Errorf("V2: unknown message type %q (want start, image or end)", e.Type)
}

// checkTopLevel rejects a message that is not a map (after an optional
// self-describe tag) with an error in the protocol's terms.
func checkTopLevel(msg []byte) error {
	r := cborReader{b: msg}
	major, info, arg, err := r.head()
	if err == nil && major == majorTag && arg == tagSelfDescribe {
		major, info, arg, err = r.head()
	}
	if err != nil {
		return fmt.Errorf("V2: not a CBOR item: %v", err)
	}
	if major != majorMap {
		return fmt.Errorf("V2: the message is a CBOR %s, want a map with a type key", describeHead(major, info, arg))
	}
	return nil
}

func (p *Parser) parseV2Image(e *v2Envelope) (*Image, error) {
	if e.ImageID == absent {
		return nil, fmt.Errorf("V2 image of series %d: no image_id", e.SeriesID)
	}
	img := p.newImage()
	img.Version = 2
	img.SeriesID = e.SeriesID
	img.UniqueID = p.internBytes(e.UniqueID)
	img.Number = e.ImageID
	img.StartTime = Ticks{Count: e.StartTime.num, Rate: e.StartTime.den}
	img.StopTime = Ticks{Count: e.StopTime.num, Rate: e.StopTime.den}
	img.RealTime = Ticks{Count: e.RealTime.num, Rate: e.RealTime.den}
	img.SeriesDate = e.SeriesDate
	if len(e.UserData) > 0 {
		img.Appendix = e.UserData
	}
	if len(e.Data) == 0 {
		return nil, fmt.Errorf("V2 image %d: no data", img.Number)
	}
	r := cborReader{b: e.Data}
	major, info, count, err := r.head()
	if err != nil || major != majorMap {
		return nil, fmt.Errorf("V2 image %d: data is not a map of channels", img.Number)
	}
	indefinite := info == indefiniteLength
	if img.buf != nil {
		img.Other = img.buf.other[:0] // the receiver's storage
	}
	if !indefinite && count > 1 {
		img.Other = slices.Grow(img.Other, int(min(count-1, 8)))
	}
	found := false
	for i := uint64(0); indefinite || i < count; i++ {
		if indefinite && r.off < len(r.b) && r.b[r.off] == 0xff {
			break
		}
		name, err := r.str(majorText, "channel name")
		if err != nil {
			return nil, fmt.Errorf("V2 image %d data: %v", img.Number, err)
		}
		a, err := r.readArray()
		if err != nil {
			return nil, fmt.Errorf("V2 image %d channel %s: %v", img.Number, name, err)
		}
		px, err := pixelsOf(&a)
		if err != nil {
			return nil, fmt.Errorf("V2 image %d channel %s: %v", img.Number, name, err)
		}
		px.Channel = p.internBytes(name)
		if !found && (p.Channel == "" || p.Channel == px.Channel) {
			img.Pixels, found = px, true
		} else {
			img.Other = append(img.Other, px)
		}
	}
	if !found {
		if p.Channel == "" {
			return nil, fmt.Errorf("V2 image %d: data has no channel", img.Number)
		}
		have := make([]string, len(img.Other))
		for i, o := range img.Other {
			have[i] = o.Channel
		}
		return nil, fmt.Errorf("V2 image %d: no channel %q (have %s)", img.Number, p.Channel, strings.Join(have, ", "))
	}
	if len(img.Other) == 0 {
		img.Other = nil
	} else if img.buf != nil {
		img.buf.other = img.Other
	}
	return img, nil
}

// pixelsOf checks a located image array and describes it as Pixels.
func pixelsOf(a *located) (Pixels, error) {
	if !a.hasDims {
		return Pixels{}, fmt.Errorf("not a MultiDimArray (tag 40)")
	}
	if a.elem == elemUnknown || a.elem == elemFloat32 {
		return Pixels{}, fmt.Errorf("pixels are %s, want a uint8, uint16 or uint32 typed array", a.elem)
	}
	if _, err := a.check(a.elem.size()); err != nil {
		return Pixels{}, err
	}
	return Pixels{
		Width:    int(a.cols),
		Height:   int(a.rows),
		ElemSize: a.elem.size(),
		Encoding: a.enc,
		Data:     a.data,
	}, nil
}

// V2 start-message keys that hold tables rather than configuration values.
const (
	keyFlatfield = "flatfield"
	keyPixelMask = "pixel_mask"
	keyCountRate = "countrate_correction_lookup_table"
	keyUserData  = "user_data"
)

func (p *Parser) parseV2Start(msg []byte, e *v2Envelope) (*Series, error) {
	var raw map[string]cborSpan
	if err := v2Mode.Unmarshal(msg, &raw); err != nil {
		return nil, fmt.Errorf("V2 start: %v", err)
	}
	s := &Series{
		Version:      2,
		ID:           e.SeriesID,
		UniqueID:     string(e.UniqueID),
		HeaderDetail: "basic",
		Config:       make(map[string]any, len(raw)),
	}
	what := fmt.Sprintf("V2 start of series %d", s.ID)
	for key, span := range raw {
		var err error
		switch key {
		case "type":
			continue
		case keyFlatfield:
			s.Flatfield, err = p.v2Tables(span, what+" flatfield", tableFlatfield)
			s.Config[key] = s.Flatfield
			s.HeaderDetail = "all"
		case keyPixelMask:
			s.PixelMask, err = p.v2Tables(span, what+" pixel_mask", tableMask)
			s.Config[key] = s.PixelMask
			s.HeaderDetail = "all"
		case keyCountRate:
			var t Table
			r := cborReader{b: span}
			if t, err = p.v2Table(&r, what+" "+key, tableLookup); err == nil {
				s.CountRateTable = &t
				s.Config[key] = s.CountRateTable
			}
			s.HeaderDetail = "all"
		case keyUserData:
			s.Appendix = parseV2UserData(span)
			s.Config[key] = s.Appendix.Value
		default:
			var v any
			if err = v2Mode.Unmarshal(span, &v); err != nil {
				err = v2LooseMode.Unmarshal(span, &v)
			}
			if err != nil {
				err = fmt.Errorf("%s: %s: %v", what, key, err)
			}
			s.Config[key] = v
		}
		if err != nil {
			return nil, err
		}
	}
	if err := s.fillV2(what); err != nil {
		return nil, err
	}
	return s, nil
}

// v2Tables reads a Map(channel -> MultiDimArray) table (flatfield, mask).
func (p *Parser) v2Tables(span cborSpan, what string, kind tableKind) ([]Table, error) {
	r := cborReader{b: span}
	major, info, count, err := r.head()
	if err != nil || major != majorMap {
		return nil, fmt.Errorf("%s: not a map of channels", what)
	}
	indefinite := info == indefiniteLength
	var out []Table
	for i := uint64(0); indefinite || i < count; i++ {
		if indefinite && r.off < len(r.b) && r.b[r.off] == 0xff {
			break
		}
		name, err := r.str(majorText, "channel name")
		if err != nil {
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		t, err := p.v2Table(&r, what+" "+string(name), kind)
		if err != nil {
			return nil, err
		}
		t.Channel = string(name)
		out = append(out, t)
	}
	return out, nil
}

// tableKind says which header table is being read: it decides the element
// types allowed and the type assumed for a bare byte string.
type tableKind uint8

const (
	tableFlatfield tableKind = iota // float32 only
	tableMask                       // unsigned integers; bare bytes are uint32
	tableLookup                     // any type; bare bytes are uint32
)

// v2Table reads one table: a MultiDimArray, a typed array or a bare byte
// string, each possibly compressed, and decodes it.
func (p *Parser) v2Table(r *cborReader, what string, kind tableKind) (Table, error) {
	a, err := r.readArray()
	if err != nil {
		return Table{}, fmt.Errorf("%s: %v", what, err)
	}
	elem := a.elem
	switch {
	case elem == elemUnknown && kind == tableFlatfield:
		elem = elemFloat32
	case elem == elemUnknown:
		elem = elemUint32
	case kind == tableFlatfield && elem != elemFloat32:
		return Table{}, fmt.Errorf("%s: %s values, want float32", what, elem)
	case kind == tableMask && elem == elemFloat32:
		return Table{}, fmt.Errorf("%s: float32 values, want an unsigned integer type", what)
	}
	size := elem.size()
	n, err := a.check(size)
	if err != nil {
		return Table{}, fmt.Errorf("%s: %v", what, err)
	}
	if n > maxPixels {
		return Table{}, fmt.Errorf("%s: %d elements, at most %d", what, n, maxPixels)
	}
	data := a.data
	if a.enc != codec.Raw {
		buf := make([]byte, n*size)
		if _, err := p.decoder().Decode(buf, a.data, a.enc, size); err != nil {
			return Table{}, fmt.Errorf("%s: %s: %v", what, a.enc, err)
		}
		data = buf
	} else if len(data) != n*size {
		return Table{}, fmt.Errorf("%s: %d bytes for %d elements of %d bytes", what, len(data), n, size)
	}
	t := Table{Width: n, Height: 1}
	if a.hasDims {
		t.Width, t.Height = int(a.cols), int(a.rows)
	}
	if elem == elemFloat32 {
		t.Float32 = float32sLE(data)
	} else {
		t.Uint32 = uint32sLE(data, size)
	}
	return t, nil
}

// parseV2UserData interprets a V2 user_data item: its CBOR value, or the
// JSON value when it is a text string holding JSON (SIMPLON passes the
// header_appendix through as text).
func parseV2UserData(raw []byte) UserData {
	if len(raw) == 0 {
		return UserData{}
	}
	u := UserData{Raw: raw, cbor: true}
	var v any
	if v2Mode.Unmarshal(raw, &v) != nil && v2LooseMode.Unmarshal(raw, &v) != nil {
		return u
	}
	u.Value = v
	if s, ok := v.(string); ok {
		t := strings.TrimSpace(s)
		if len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid([]byte(t)) {
			var j any
			if json.Unmarshal([]byte(t), &j) == nil {
				u.Value, u.JSON = j, true
			}
		}
	}
	return u
}

// translationDistance reads the distance from a start message's
// detector_translation [x, y, z] (metres, the detector's position; z is
// minus the sample-detector distance, e.g. the real EIGER2 16M's
// [0.1537, 0.1623, -0.23716] is 0.23716 m). ok is false when the key is
// missing or not three numbers with z non-zero.
func translationDistance(cfg map[string]any) (float64, bool) {
	list, ok := cfg["detector_translation"].([]any)
	if !ok || len(list) != 3 {
		return 0, false
	}
	var z float64
	switch v := list[2].(type) {
	case float64:
		z = v
	case float32:
		z = float64(v)
	case int64:
		z = float64(v)
	case uint64:
		z = float64(v)
	default:
		return 0, false
	}
	if z == 0 || math.IsNaN(z) || math.IsInf(z, 0) {
		return 0, false
	}
	return math.Abs(z), true
}

// fillV2 derives the typed fields from a V2 start message's keys.
func (s *Series) fillV2(what string) error {
	f := fields{m: s.Config, what: what}
	s.Description = f.str("detector_description")
	s.SerialNumber = f.str("detector_serial_number")
	s.Width = f.dim("image_size_x")
	s.Height = f.dim("image_size_y")
	s.PixelSizeX = f.float("pixel_size_x")
	s.PixelSizeY = f.float("pixel_size_y")
	s.BeamCenterX = f.float("beam_center_x")
	s.BeamCenterY = f.float("beam_center_y")
	s.Wavelength = f.float("incident_wavelength")
	s.PhotonEnergy = f.float("incident_energy")
	s.CountTime = f.float("count_time")
	s.FrameTime = f.float("frame_time")
	s.NumberOfImages = f.uint("number_of_images")
	s.SaturationValue = f.uint("saturation_value")
	s.SensorMaterial = f.str("sensor_material")
	s.SensorThickness = f.float("sensor_thickness")
	// The distance is not part of V2; a firmware that adds it wins over the
	// user's note of it.
	if _, ok := s.Config["detector_distance"]; ok {
		s.DetectorDistance = f.float("detector_distance")
	} else if d, ok := translationDistance(s.Config); ok {
		s.DetectorDistance = d
	} else if m, ok := s.Appendix.Value.(map[string]any); ok {
		u := fields{m: m, what: what + " user_data"}
		s.DetectorDistance = u.float("detector_distance")
		if u.err != nil && f.err == nil {
			f.err = u.err
		}
	}
	if dt := f.str("image_dtype"); dt != "" {
		if s.ElemSize = elemSizeOf(dt); s.ElemSize == 0 {
			return fmt.Errorf("%s: image_dtype %q (want uint8, uint16 or uint32)", what, dt)
		}
		s.BitDepth = 8 * s.ElemSize
	}
	if bits := f.uint("bit_depth_image"); bits != 0 {
		if s.ElemSize = elemSizeOfBits(bits); s.ElemSize == 0 {
			return fmt.Errorf("%s: bit_depth_image %d (want 1..32)", what, bits)
		}
		s.BitDepth = int(bits)
	}
	if f.err != nil {
		return f.err
	}
	if v, ok := s.Config["arm_date"]; ok {
		t, ok := v.(time.Time)
		if !ok {
			return fmt.Errorf("%s: arm_date is %s, want a date (tag 0)", what, describeValue(v))
		}
		s.ArmDate = t
	}
	if v, ok := s.Config["channels"]; ok {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: channels is %s, want an array of text", what, describeValue(v))
		}
		s.Channels = make([]string, len(list))
		for i, c := range list {
			if s.Channels[i], ok = c.(string); !ok {
				return fmt.Errorf("%s: channels[%d] is %s, want text", what, i, describeValue(c))
			}
		}
	}
	if v, ok := s.Config["threshold_energy"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: threshold_energy is %s, want a map of channel to eV", what, describeValue(v))
		}
		s.ChannelThresholds = make(map[string]float64, len(m))
		for ch, e := range m {
			x, ok := number(e)
			if !ok {
				return fmt.Errorf("%s: threshold_energy[%s] is %s, want a number", what, ch, describeValue(e))
			}
			s.ChannelThresholds[ch] = x
		}
		switch {
		case len(s.Channels) > 0:
			s.ThresholdEnergy = s.ChannelThresholds[s.Channels[0]]
		case len(m) == 1:
			for _, x := range s.ChannelThresholds {
				s.ThresholdEnergy = x
			}
		}
	}
	if v, ok := s.Config["goniometer"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: goniometer is %s, want a map of axes", what, describeValue(v))
		}
		s.Goniometer = make(map[string]Axis, len(m))
		for name, av := range m {
			am, ok := av.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: goniometer %s is %s, want {start, increment}", what, name, describeValue(av))
			}
			g := fields{m: am, what: what + " goniometer " + name}
			s.Goniometer[name] = Axis{Start: g.float("start"), Increment: g.float("increment")}
			if g.err != nil {
				return g.err
			}
		}
	}
	return nil
}
