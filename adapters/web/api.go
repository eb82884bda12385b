package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"tioga/device"
	"tioga/properties"
)

// snapshot is the whole state as JSON: the roles of the devices the panels
// read, whether writes are offered, every device with every property
// (spec, value, time), and, with pass, the dozor-pass records so far.
func (s *Server) snapshot(pass, canWrite bool) []byte {
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"roles":{"stream":`...)
	b = appendString(b, s.addressOf(s.cfg.Stream))
	b = append(b, `,"scan":`...)
	b = appendString(b, s.addressOf(s.cfg.Scan))
	b = append(b, `,"tracker":`...)
	b = appendString(b, s.addressOf(s.cfg.Tracker))
	b = append(b, `,"detectors":[`...)
	for i, d := range s.cfg.Detectors {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s.addressOf(d))
	}
	b = append(b, `]},"allowWrites":`...)
	b = strconv.AppendBool(b, s.cfg.AllowWrites)
	b = append(b, `,"canWrite":`...)
	b = strconv.AppendBool(b, canWrite)
	b = append(b, `,"frameView":`...)
	b = strconv.AppendBool(b, s.cfg.Frames != nil)
	b = append(b, `,"heatMapFigure":`...)
	b = strconv.AppendBool(b, s.cfg.HeatMap != nil)
	b = append(b, `,"devices":[`...)
	for i, d := range s.devices() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"address":`...)
		b = appendString(b, d.addr)
		b = append(b, `,"name":`...)
		b = appendString(b, d.dev.Name())
		b = append(b, `,"description":`...)
		b = appendString(b, d.dev.Description())
		b = append(b, `,"props":[`...)
		for j, p := range d.dev.Properties() {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendProp(b, d.addr, p)
		}
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	if pass && s.cfg.Stream != nil {
		if p, ok := s.cfg.Stream.Property(propDozorPass); ok {
			b = append(b, `,"pass":`...)
			b = appendFloat32s(b, readValue(p).Float32s)
		}
	}
	return append(b, '}')
}

// appendProp writes one property's spec and current value.
func appendProp(b []byte, devAddr string, p *properties.Property) []byte {
	spec := p.Spec()
	b = append(b, `{"name":`...)
	b = appendString(b, spec.Name)
	b = append(b, `,"address":`...)
	b = appendString(b, devAddr+"/"+spec.Name)
	b = append(b, `,"type":`...)
	b = appendString(b, spec.Elem.String())
	b = append(b, `,"shape":`...)
	b = appendString(b, spec.Shape.String())
	if spec.Width > 0 {
		b = append(b, `,"width":`...)
		b = strconv.AppendInt(b, int64(spec.Width), 10)
	}
	if len(spec.Columns) > 0 {
		b = append(b, `,"columns":[`...)
		for i, c := range spec.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, c)
		}
		b = append(b, ']')
	}
	b = append(b, `,"units":`...)
	b = appendString(b, spec.Units)
	b = append(b, `,"access":`...)
	b = appendString(b, spec.Access.String())
	b = append(b, `,"description":`...)
	b = appendString(b, spec.Description)
	if spec.Limits != nil {
		b = append(b, `,"limits":[`...)
		b = appendFloat(b, spec.Limits.Min, 64)
		b = append(b, ',')
		b = appendFloat(b, spec.Limits.Max, 64)
		b = append(b, ']')
	}
	if spec.Arg != 0 {
		b = append(b, `,"query":true`...)
	}
	if spec.Readable() && spec.Arg == 0 {
		v := readValue(p)
		b = append(b, `,"value":`...)
		b = appendValue(b, v, spec)
		b = append(b, `,"time":`...)
		b = strconv.AppendInt(b, v.Time.UnixMilli(), 10)
		b = append(b, `,"len":`...)
		b = strconv.AppendInt(b, int64(v.Rows()), 10)
		b = appendQuality(b, v.Quality)
	}
	return append(b, '}')
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, err error) {
	b := append([]byte(`{"error":`), appendString(nil, err.Error())...)
	writeJSON(w, status, append(b, '}'))
}

// handleState returns the snapshot (without the per-frame records, which
// /api/value?address=.../dozor-pass returns in full).
func (s *Server) handleState(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.snapshot(false, s.canWrite(r)))
}

// handleValue returns one property's full value (no summarising): a
// client that wants the whole score grid or dozor-pass asks for it.
func (s *Server) handleValue(w http.ResponseWriter, r *http.Request) {
	p, err := s.lookup(r.URL.Query().Get("address"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	v, err := p.Read()
	if err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	spec := p.Spec()
	b := append([]byte(`{"value":`), appendFullValue(nil, v, spec)...)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, v.Time.UnixMilli(), 10)
	b = appendQuality(b, v.Quality)
	writeJSON(w, http.StatusOK, append(b, '}'))
}

// appendFullValue writes a value without summarising it: a flat array for
// arrays and records (the width is in the spec).
func appendFullValue(b []byte, v properties.Value, spec properties.Spec) []byte {
	if v.Elem == properties.Text {
		return appendString(b, v.Text)
	}
	if spec.Shape == properties.Scalar && v.Len() == 1 {
		return appendElem(b, v, 0)
	}
	b = append(b, '[')
	for i, n := 0, v.Len(); i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendElem(b, v, i)
	}
	return append(b, ']')
}

func (s *Server) lookup(addr string) (*properties.Property, error) {
	a, err := device.ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	if a.Property == "" {
		return nil, fmt.Errorf("address %q names no property", addr)
	}
	return s.cfg.Tree.Property(a)
}

// maxWriteBody bounds a write request.
const maxWriteBody = 64 << 10

// handleWrite applies {"address": "...", "value": v} where v is a number,
// bool, string or array of numbers. Writes must be allowed in the
// configuration, come from a client the TINE rules allow, and come from
// the page itself (same origin, JSON body), so that another web site
// cannot make a scientist's browser write.
func (s *Server) handleWrite(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.AllowWrites {
		writeError(w, http.StatusForbidden, errors.New("writes are not allowed on this server ([http] allow_writes)"))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, errors.New("write: send application/json"))
		return
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			writeError(w, http.StatusForbidden, fmt.Errorf("write from another origin (%s) refused", o))
			return
		}
	}
	if user, ok := s.writer(r); !ok {
		writeError(w, http.StatusForbidden, fmt.Errorf("client %s (user %q) may not write: not in the write lists", r.RemoteAddr, user))
		return
	}
	var req struct {
		Address string          `json:"address"`
		Value   json.RawMessage `json:"value"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxWriteBody))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("write: %w", err))
		return
	}
	p, err := s.lookup(req.Address)
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	v, err := parseWriteValue(req.Value)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := p.Write(r.Context(), v); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, properties.ErrReadOnly) {
			status = http.StatusForbidden
		}
		writeError(w, status, err)
		return
	}
	s.log.Info().Str("address", req.Address).Str("value", v.String()).Str("client", r.RemoteAddr).Msg("web write")
	writeJSON(w, http.StatusOK, []byte(`{"ok":true}`))
}

// writer returns the user a request writes as (header X-Tioga-User, or the
// basic-auth user name: like TINE, the name is what the client says) and
// whether the write lists admit it.
func (s *Server) writer(r *http.Request) (string, bool) {
	user := r.Header.Get("X-Tioga-User")
	if u, _, ok := r.BasicAuth(); ok && user == "" {
		user = u
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return user, false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return user, false
	}
	return user, s.access.allows(user, ip)
}

// canWrite reports whether the page should offer writes to this client.
func (s *Server) canWrite(r *http.Request) bool {
	if !s.cfg.AllowWrites {
		return false
	}
	_, ok := s.writer(r)
	return ok
}

func parseWriteValue(raw json.RawMessage) (properties.Value, error) {
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		return properties.Value{}, fmt.Errorf("write value: %w", err)
	}
	switch t := x.(type) {
	case bool:
		return properties.BoolValue(t), nil
	case float64:
		return properties.Float64Value(t), nil
	case string:
		return properties.TextValue(t), nil
	case []any:
		fs := make([]float64, len(t))
		for i, e := range t {
			f, ok := e.(float64)
			if !ok {
				return properties.Value{}, fmt.Errorf("write value: element %d is not a number", i)
			}
			fs[i] = f
		}
		return properties.Float64s(fs), nil
	}
	return properties.Value{}, errors.New("write value: want a number, bool, string or array of numbers")
}
