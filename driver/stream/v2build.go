package stream

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/fxamacker/cbor/v2"

	"tioga/driver/codec"
)

// V2Builder builds Stream V2 messages, the inverse of ParseV2. Each Append
// method appends one complete message (one ZeroMQ message) to dst and
// returns the extended slice, so a simulator reuses one buffer for every
// frame: msg, err = b.AppendImage(msg[:0], img).
//
// The zero V2Builder writes messages without the self-describe tag and with
// uncompressed header tables. It is not safe for concurrent use.
type V2Builder struct {
	// SelfDescribe starts every message with tag 55799. Real EIGER2 image
	// and end messages carry it; the captured 16M start message does not.
	SelfDescribe bool
	// TableEncoding compresses the start message's flatfield, pixel mask and
	// count-rate table with the DECTRIS compression tag 56500: codec.BSLZ4
	// or codec.HDF5LZ4. Zero or codec.Raw sends them as plain typed arrays.
	TableEncoding codec.Encoding

	enc *codec.Encoder
	buf []byte // scratch for table bytes
}

// encMode encodes free configuration values (unknown keys, user data):
// dates as tag 0 text, maps with sorted keys so a message is reproducible.
var encMode = func() cbor.EncMode {
	em, err := cbor.EncOptions{
		Sort:    cbor.SortBytewiseLexical,
		Time:    cbor.TimeRFC3339Nano,
		TimeTag: cbor.EncTagRequired,
	}.EncMode()
	if err != nil {
		panic(err) // static options: a programming error
	}
	return em
}()

func (b *V2Builder) begin(dst []byte, pairs int) []byte {
	if b.SelfDescribe {
		dst = appendHead(dst, majorTag, tagSelfDescribe)
	}
	return appendHead(dst, majorMap, uint64(pairs))
}

// AppendEnd appends an end message.
func (b *V2Builder) AppendEnd(dst []byte, e *End) []byte {
	dst = b.begin(dst, 3)
	dst = appendKeyText(dst, "type", typeEnd)
	dst = appendKeyUint(dst, "series_id", e.SeriesID)
	return appendKeyText(dst, "series_unique_id", e.UniqueID)
}

// AppendImage appends an image message, keys in the detector's order: the
// Image's Pixels (channel "threshold_1" when Channel is empty) followed by
// its Other channels, each a MultiDimArray; raw pixels as a plain typed
// array, codec.BSLZ4 and codec.HDF5LZ4 data inside tag 56500. The pixel
// bytes are copied once, into dst; nothing is allocated.
//
// Times are written as the rationals [Count, Rate]: set Rate to the
// detector clock (50 MHz on an EIGER2). series_date is written when
// SeriesDate is set. The Appendix becomes user_data: verbatim when Version
// is 2 (it must then be one CBOR item), else as a CBOR text string.
func (b *V2Builder) AppendImage(dst []byte, img *Image) ([]byte, error) {
	pairs := 8
	if img.Appendix != nil {
		pairs++
	}
	if !img.SeriesDate.IsZero() {
		pairs++
	}
	start := len(dst)
	dst = b.begin(dst, pairs)
	dst = appendKeyText(dst, "type", typeImage)
	dst = appendKeyUint(dst, "series_id", img.SeriesID)
	dst = appendKeyText(dst, "series_unique_id", img.UniqueID)
	dst = appendKeyUint(dst, "image_id", img.Number)
	dst = appendRational(appendText(dst, "real_time"), img.RealTime)
	if !img.SeriesDate.IsZero() {
		dst = appendText(dst, "series_date")
		dst = appendHead(dst, majorTag, tagDateTime)
		var tb [64]byte
		ts := img.SeriesDate.AppendFormat(tb[:0], time.RFC3339Nano)
		dst = append(appendHead(dst, majorText, uint64(len(ts))), ts...)
	}
	dst = appendRational(appendText(dst, "start_time"), img.StartTime)
	dst = appendRational(appendText(dst, "stop_time"), img.StopTime)
	if img.Appendix != nil { // before data, where the detector puts it
		dst = appendText(dst, keyUserData)
		if img.Version == 2 {
			dst = append(dst, img.Appendix...) // already CBOR
		} else {
			dst = appendText(dst, string(img.Appendix))
		}
	}
	dst = appendText(dst, "data")
	dst = appendHead(dst, majorMap, uint64(1+len(img.Other)))
	var err error
	if dst, err = appendChannel(dst, &img.Pixels); err != nil {
		return dst[:start], fmt.Errorf("V2 image %d: %v", img.Number, err)
	}
	for i := range img.Other {
		if dst, err = appendChannel(dst, &img.Other[i]); err != nil {
			return dst[:start], fmt.Errorf("V2 image %d: %v", img.Number, err)
		}
	}
	return dst, nil
}

// appendChannel writes one "name": MultiDimArray entry of an image's data.
func appendChannel(dst []byte, px *Pixels) ([]byte, error) {
	name := px.Channel
	if name == "" {
		name = "threshold_1"
	}
	var tag uint64
	switch px.ElemSize {
	case 1:
		tag = tagUint8
	case 2:
		tag = tagUint16LE
	case 4:
		tag = tagUint32LE
	default:
		return dst, fmt.Errorf("channel %s: element size %d (want 1, 2 or 4)", name, px.ElemSize)
	}
	if px.Width <= 0 || px.Height <= 0 {
		return dst, fmt.Errorf("channel %s: size %d x %d", name, px.Width, px.Height)
	}
	want := px.DecodedSize()
	var alg string
	switch px.Encoding {
	case codec.Raw:
		if len(px.Data) != want {
			return dst, fmt.Errorf("channel %s: raw data of %d bytes for %d x %d pixels of %d bytes", name, len(px.Data), px.Width, px.Height, px.ElemSize)
		}
	case codec.BSLZ4:
		alg = "bslz4"
	case codec.HDF5LZ4:
		alg = "lz4"
	default:
		return dst, fmt.Errorf("channel %s: encoding %v cannot be sent in V2 (raw, bslz4 with header, or HDF5-framed lz4)", name, px.Encoding)
	}
	if alg != "" {
		if n, ok := codec.DecodedSize(px.Data, px.Encoding); !ok || n != want {
			return dst, fmt.Errorf("channel %s: %v data does not announce %d bytes for %d x %d pixels", name, px.Encoding, want, px.Width, px.Height)
		}
	}
	dst = appendText(dst, name)
	return appendMultiDim(dst, uint64(px.Height), uint64(px.Width), tag, alg, px.ElemSize, px.Data), nil
}

// appendMultiDim writes tag 40 [[rows, cols], typed array], the typed array
// compressed with tag 56500 when alg is set.
func appendMultiDim(dst []byte, rows, cols uint64, tag uint64, alg string, elemSize int, data []byte) []byte {
	dst = appendHead(dst, majorTag, tagMultiDim)
	dst = appendHead(dst, majorArray, 2)
	dst = appendHead(dst, majorArray, 2)
	dst = appendUint(appendUint(dst, rows), cols)
	return appendTypedArray(dst, tag, alg, elemSize, data)
}

// appendTypedArray writes tag(bytes) or tag(56500([alg, elem_size, bytes])).
func appendTypedArray(dst []byte, tag uint64, alg string, elemSize int, data []byte) []byte {
	dst = appendHead(dst, majorTag, tag)
	if alg == "" {
		return appendBytes(dst, data)
	}
	dst = appendHead(dst, majorTag, tagDectrisCompr)
	dst = appendHead(dst, majorArray, 3)
	dst = appendText(dst, alg)
	if alg == "lz4" {
		elemSize = 0 // the HDF5 framing does not depend on it; DECTRIS writes 0
	}
	dst = appendUint(dst, uint64(elemSize))
	return appendBytes(dst, data)
}

// AppendStart appends a start message. Like the detector, it writes
// "type", "series_id" and "series_unique_id" first and every other key in
// alphabetical order: every typed field of the Series under its V2 key (when
// non-zero, or when its key is in Config), every other Config key verbatim,
// the tables and user_data.
//
// V2 has no detector distance: a non-zero DetectorDistance goes to the
// "detector_distance" key when Config has it, else into user_data when the
// Series has no appendix, else to a top-level "detector_distance" key
// (ParseV2 reads both back).
func translationAgrees(s *Series) bool {
	d, ok := translationDistance(s.Config)
	return ok && d == s.DetectorDistance
}

func (b *V2Builder) AppendStart(dst []byte, s *Series) ([]byte, error) {
	type entry struct {
		key string
		val []byte
	}
	var entries []entry
	owned := map[string]bool{"type": true, "series_id": true, "series_unique_id": true,
		keyFlatfield: true, keyPixelMask: true, keyCountRate: true, keyUserData: true}
	has := func(k string) bool { _, ok := s.Config[k]; return ok }
	put := func(k string, v []byte) {
		owned[k] = true
		entries = append(entries, entry{k, v})
	}
	putText := func(k, v string) {
		owned[k] = true
		if v != "" || has(k) {
			put(k, appendText(nil, v))
		}
	}
	putFloat := func(k string, v float64) {
		owned[k] = true
		if v != 0 || has(k) {
			put(k, appendFloat64(nil, v))
		}
	}
	putUint := func(k string, v uint64) {
		owned[k] = true
		if v != 0 || has(k) {
			put(k, appendUint(nil, v))
		}
	}

	if !s.ArmDate.IsZero() {
		put("arm_date", appendText(appendHead(nil, majorTag, tagDateTime), s.ArmDate.Format(time.RFC3339Nano)))
	}
	putFloat("beam_center_x", s.BeamCenterX)
	putFloat("beam_center_y", s.BeamCenterY)
	if s.Channels != nil || has("channels") {
		v := appendHead(nil, majorArray, uint64(len(s.Channels)))
		for _, c := range s.Channels {
			v = appendText(v, c)
		}
		put("channels", v)
	}
	putFloat("count_time", s.CountTime)
	putText("detector_description", s.Description)
	putText("detector_serial_number", s.SerialNumber)
	putFloat("frame_time", s.FrameTime)
	if s.Goniometer != nil || has("goniometer") {
		names := sortedKeys(s.Goniometer)
		v := appendHead(nil, majorMap, uint64(len(names)))
		for _, n := range names {
			a := s.Goniometer[n]
			v = appendText(v, n)
			v = appendHead(v, majorMap, 2)
			v = appendKeyFloat(v, "increment", a.Increment)
			v = appendKeyFloat(v, "start", a.Start)
		}
		put("goniometer", v)
	}
	putUint("image_size_x", uint64(s.Width))
	putUint("image_size_y", uint64(s.Height))
	putFloat("incident_energy", s.PhotonEnergy)
	putFloat("incident_wavelength", s.Wavelength)
	putUint("number_of_images", s.NumberOfImages)
	putFloat("pixel_size_x", s.PixelSizeX)
	putFloat("pixel_size_y", s.PixelSizeY)
	putUint("saturation_value", s.SaturationValue)
	putText("sensor_material", s.SensorMaterial)
	putFloat("sensor_thickness", s.SensorThickness)
	putText("image_dtype", typeName(s.ElemSize))
	owned["bit_depth_image"] = true
	if has("bit_depth_image") || s.BitDepth != 8*s.ElemSize {
		putUint("bit_depth_image", uint64(s.BitDepth))
	}
	owned["threshold_energy"] = true
	if s.ChannelThresholds != nil || s.ThresholdEnergy != 0 || has("threshold_energy") {
		th := s.ChannelThresholds
		if th == nil {
			ch := "threshold_1"
			if len(s.Channels) > 0 {
				ch = s.Channels[0]
			}
			th = map[string]float64{ch: s.ThresholdEnergy}
		}
		names := sortedKeys(th)
		v := appendHead(nil, majorMap, uint64(len(names)))
		for _, n := range names {
			v = appendKeyFloat(v, n, th[n])
		}
		put("threshold_energy", v)
	}

	// The distance, which V2 does not define (see the doc comment).
	appendix := s.Appendix
	owned["detector_distance"] = true
	switch {
	case has("detector_distance"):
		putFloat("detector_distance", s.DetectorDistance)
	case s.DetectorDistance == 0:
	case translationAgrees(s):
		// detector_translation (copied verbatim below) says it.
	case appendix.Raw == nil && appendix.Value == nil:
		appendix = UserData{Value: map[string]any{"detector_distance": s.DetectorDistance}}
	case !appendixHasDistance(appendix, s.DetectorDistance):
		putFloat("detector_distance", s.DetectorDistance)
	}

	// Every other configuration key, verbatim.
	for k, cv := range s.Config {
		if owned[k] {
			continue
		}
		v, err := encMode.Marshal(cv)
		if err != nil {
			return dst, fmt.Errorf("V2 start: config key %s: %v", k, err)
		}
		put(k, v)
	}

	if s.Flatfield != nil {
		v, err := b.appendTableMap(nil, s.Flatfield)
		if err != nil {
			return dst, fmt.Errorf("V2 start flatfield: %v", err)
		}
		put(keyFlatfield, v)
	}
	if s.PixelMask != nil {
		v, err := b.appendTableMap(nil, s.PixelMask)
		if err != nil {
			return dst, fmt.Errorf("V2 start pixel_mask: %v", err)
		}
		put(keyPixelMask, v)
	}
	if s.CountRateTable != nil {
		v, err := b.appendTable(nil, s.CountRateTable, s.CountRateTable.Height > 1)
		if err != nil {
			return dst, fmt.Errorf("V2 start %s: %v", keyCountRate, err)
		}
		put(keyCountRate, v)
	}
	if ud, err := appendix.cborV2(); err != nil {
		return dst, err
	} else if ud != nil {
		put(keyUserData, ud)
	}

	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	dst = b.begin(dst, len(entries)+3)
	dst = appendKeyText(dst, "type", typeStart)
	dst = appendKeyUint(dst, "series_id", s.ID)
	dst = appendKeyText(dst, "series_unique_id", s.UniqueID)
	for _, e := range entries {
		dst = append(appendText(dst, e.key), e.val...)
	}
	return dst, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// appendixHasDistance reports whether user data already says the distance.
func appendixHasDistance(u UserData, d float64) bool {
	m, ok := u.Value.(map[string]any)
	if !ok {
		return false
	}
	x, ok := number(m["detector_distance"])
	return ok && x == d
}

// cborV2 is the user_data item: Raw verbatim when it is CBOR (from a V2
// message), else Value encoded as CBOR, else Raw (free text) as a text
// string.
func (u *UserData) cborV2() ([]byte, error) {
	switch {
	case u.Raw != nil && u.cbor:
		return u.Raw, nil
	case u.Value != nil:
		b, err := encMode.Marshal(u.Value)
		if err != nil {
			return nil, fmt.Errorf("V2 start user_data: %v", err)
		}
		return b, nil
	case u.Raw != nil:
		return appendText(nil, string(u.Raw)), nil
	}
	return nil, nil
}

// appendTableMap writes Map(channel -> MultiDimArray).
func (b *V2Builder) appendTableMap(dst []byte, tables []Table) ([]byte, error) {
	dst = appendHead(dst, majorMap, uint64(len(tables)))
	for i := range tables {
		name := tables[i].Channel
		if name == "" {
			name = "threshold_1"
		}
		dst = appendText(dst, name)
		var err error
		if dst, err = b.appendTable(dst, &tables[i], true); err != nil {
			return dst, fmt.Errorf("channel %s: %v", name, err)
		}
	}
	return dst, nil
}

// appendTable writes one table as a MultiDimArray (multiDim) or a bare typed
// array, compressed when the builder's TableEncoding says so.
func (b *V2Builder) appendTable(dst []byte, t *Table, multiDim bool) ([]byte, error) {
	if t.Width*t.Height != t.Len() {
		return dst, fmt.Errorf("%d values for %d x %d", t.Len(), t.Width, t.Height)
	}
	raw := b.buf[:0]
	tag := uint64(tagUint32LE)
	if t.Float32 != nil {
		tag = tagFloat32LE
		for _, f := range t.Float32 {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
		}
	} else {
		for _, u := range t.Uint32 {
			raw = binary.LittleEndian.AppendUint32(raw, u)
		}
	}
	b.buf = raw
	data, alg := raw, ""
	switch b.TableEncoding {
	case 0, codec.Raw:
	case codec.BSLZ4, codec.HDF5LZ4:
		if b.enc == nil {
			b.enc = codec.NewEncoder()
		}
		var err error
		if data, err = b.enc.Encode(nil, raw, b.TableEncoding, 4); err != nil {
			return dst, err
		}
		alg = "bslz4"
		if b.TableEncoding == codec.HDF5LZ4 {
			alg = "lz4"
		}
	default:
		return dst, fmt.Errorf("table encoding %v (want raw, bslz4 or HDF5 lz4)", b.TableEncoding)
	}
	if multiDim {
		return appendMultiDim(dst, uint64(t.Height), uint64(t.Width), tag, alg, 4, data), nil
	}
	return appendTypedArray(dst, tag, alg, 4, data), nil
}
