package stream

import "math"

// The small JSON parts of every V1 frame (dimage, dimage_d, dconfig) read
// without allocating.
//
// encoding/json costs 18 allocations per frame on them (its decode state
// and a string per text field), the last thing the receive path allocated
// per frame. These parts are flat objects the detector writes the same way
// every time, so a strict reader of exactly that form takes them, and
// anything else (an unknown or differently cased key, an escape or a
// non-ASCII byte in a string, null, a negative, fractional or exponent
// number, invalid JSON) is left to encoding/json: its results and its error
// messages stay the reference. FuzzV1FlatJSON checks that whatever the
// strict reader accepts, encoding/json accepts with the same values.

// flatJSON reads one flat JSON object.
type flatJSON struct {
	b   []byte
	off int
}

func (s *flatJSON) ws() {
	for s.off < len(s.b) {
		switch s.b[s.off] {
		case ' ', '\t', '\n', '\r':
			s.off++
		default:
			return
		}
	}
}

// begin reads the opening brace.
func (s *flatJSON) begin() bool {
	s.ws()
	if s.off < len(s.b) && s.b[s.off] == '{' {
		s.off++
		return true
	}
	return false
}

// key reads the separator before member n (none before the first), then
// the member's key and colon. done is true at the closing brace, which must
// end the input (whitespace aside); ok is false on anything unexpected.
func (s *flatJSON) key(n int) (key []byte, done, ok bool) {
	s.ws()
	if s.off >= len(s.b) {
		return nil, false, false
	}
	switch c := s.b[s.off]; {
	case c == '}':
		s.off++
		s.ws()
		return nil, true, s.off == len(s.b)
	case n > 0 && c == ',':
		s.off++
		s.ws()
	case n > 0:
		return nil, false, false
	}
	if key, ok = s.str(); !ok {
		return nil, false, false
	}
	s.ws()
	if s.off >= len(s.b) || s.b[s.off] != ':' {
		return nil, false, false
	}
	s.off++
	s.ws()
	return key, false, true
}

// str reads a string of printable ASCII without escapes.
func (s *flatJSON) str() ([]byte, bool) {
	if s.off >= len(s.b) || s.b[s.off] != '"' {
		return nil, false
	}
	start := s.off + 1
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			s.off = i + 1
			return s.b[start:i], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// text reads a string as one of the known values, or a new string for any
// other (not the per-frame case).
func (s *flatJSON) text(known []string) (string, bool) {
	b, ok := s.str()
	if !ok {
		return "", false
	}
	for _, k := range known {
		if string(b) == k {
			return k, true
		}
	}
	return string(b), true
}

// uint reads a non-negative integer in JSON's form that fits a uint64.
func (s *flatJSON) uint() (uint64, bool) {
	start := s.off
	var v uint64
	for s.off < len(s.b) && '0' <= s.b[s.off] && s.b[s.off] <= '9' {
		d := uint64(s.b[s.off] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
		s.off++
	}
	n := s.off - start
	if n == 0 || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.off < len(s.b) {
		switch s.b[s.off] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return v, true
}

// uints reads an array of uints, appending to dst.
func (s *flatJSON) uints(dst []uint64) ([]uint64, bool) {
	if s.off >= len(s.b) || s.b[s.off] != '[' {
		return dst, false
	}
	s.off++
	s.ws()
	if s.off < len(s.b) && s.b[s.off] == ']' {
		s.off++
		return dst, true
	}
	for {
		v, ok := s.uint()
		if !ok {
			return dst, false
		}
		dst = append(dst, v)
		s.ws()
		if s.off >= len(s.b) {
			return dst, false
		}
		switch s.b[s.off] {
		case ']':
			s.off++
			return dst, true
		case ',':
			s.off++
			s.ws()
		default:
			return dst, false
		}
	}
}

// The values the per-frame text fields take.
var (
	v1HTypes        = []string{htypeImage, htypeImageData, htypeImageTimes, htypeHeader, htypeEnd}
	v1Types         = []string{"uint16", "uint32", "uint8", "float32"}
	v1Encodings     = []string{"bs16-lz4<", "bs32-lz4<", "bs8-lz4<", "lz4<", "<"}
	v1HeaderDetails = []string{"all", "basic", "none"}
)

// fastV1First reads part 1 of a message into f, reporting false when it
// must go to encoding/json. The hash is kept as the previous frame's string
// when it is the same (the real detector sends the same one every frame).
func (p *Parser) fastV1First(b []byte, f *v1First) bool {
	s := flatJSON{b: b}
	if !s.begin() {
		return false
	}
	for n := 0; ; n++ {
		key, done, ok := s.key(n)
		if !ok || done {
			return ok
		}
		switch string(key) {
		case "htype":
			f.HType, ok = s.text(v1HTypes)
		case "series":
			f.Series, ok = s.uint()
		case "frame":
			f.Frame, ok = s.uint()
		case "hash":
			f.Hash, ok = s.text(p.lastHash[:])
			p.lastHash[0] = f.Hash
		case "header_detail":
			f.HeaderDetail, ok = s.text(v1HeaderDetails)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
}

// fastV1Shaped reads a dimage_d part into d (whose Shape is empty), reporting
// false when it must go to encoding/json.
func fastV1Shaped(b []byte, d *v1Shaped) bool {
	s := flatJSON{b: b}
	if !s.begin() {
		return false
	}
	for n := 0; ; n++ {
		key, done, ok := s.key(n)
		if !ok || done {
			return ok
		}
		switch string(key) {
		case "htype":
			d.HType, ok = s.text(v1HTypes)
		case "shape":
			d.Shape, ok = s.uints(d.Shape[:0])
		case "type":
			d.Type, ok = s.text(v1Types)
		case "encoding":
			d.Encoding, ok = s.text(v1Encodings)
		case "size":
			d.Size, ok = s.uint()
		default:
			return false
		}
		if !ok {
			return false
		}
	}
}

// fastV1Times reads a dconfig part into t, reporting false when it must go
// to encoding/json.
func fastV1Times(b []byte, t *v1Times) bool {
	s := flatJSON{b: b}
	if !s.begin() {
		return false
	}
	for n := 0; ; n++ {
		key, done, ok := s.key(n)
		if !ok || done {
			return ok
		}
		switch string(key) {
		case "htype":
			t.HType, ok = s.text(v1HTypes)
		case "start_time":
			t.StartTime, ok = s.uint()
		case "stop_time":
			t.StopTime, ok = s.uint()
		case "real_time":
			t.RealTime, ok = s.uint()
		default:
			return false
		}
		if !ok {
			return false
		}
	}
}
