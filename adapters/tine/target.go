package tine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"tioga/adapters/tine/wire"
	"tioga/device"
	"tioga/properties"
)

// tineError is a failed request: a completion code and the status text the
// client sees.
type tineError struct {
	code wire.CompCode
	text string
}

func (e *tineError) Error() string { return e.text }

// fail builds a tineError whose text is TINE's text for the code, followed
// by detail when there is any ("out of range: threshold = 20 outside
// [0, 10]").
func fail(code wire.CompCode, detail string) *tineError {
	t := code.String()
	if detail != "" {
		t += ": " + detail
	}
	return &tineError{code: code, text: t}
}

// codeFor maps the registry's errors to completion codes.
func codeFor(err error) *tineError {
	var te *tineError
	if errors.As(err, &te) {
		return te
	}
	var code wire.CompCode
	switch {
	case errors.Is(err, properties.ErrUnknown):
		code = wire.IllegalProperty
	case errors.Is(err, properties.ErrReadOnly), errors.Is(err, properties.ErrWriteOnly):
		code = wire.IllegalReadWrite
	case errors.Is(err, errFormat), errors.Is(err, properties.ErrType):
		code = wire.IllegalFormat
	case errors.Is(err, properties.ErrSize):
		code = wire.IllegalDataSize
	case errors.Is(err, properties.ErrOutOfRange):
		code = wire.OutOfRange
	case errors.Is(err, properties.ErrNoQuery):
		code = wire.InvalidParameter
	case errors.Is(err, properties.ErrRejected):
		code = wire.InvalidData
	case errors.Is(err, context.DeadlineExceeded):
		code = wire.ConnectionTimeout // the client's timeout passed before the server was done
	case errors.Is(err, context.Canceled):
		code = wire.ServerIdle // the server is shutting down
	default:
		code = wire.CodeFailure
	}
	// The code's text says what the registry's sentinel says: keep the
	// detail only ("out of range: threshold = 11 outside [0, 10]").
	msg := err.Error()
	for _, s := range []error{properties.ErrUnknown, properties.ErrReadOnly, properties.ErrWriteOnly, properties.ErrType,
		properties.ErrSize, properties.ErrOutOfRange, properties.ErrNoQuery, errFormat} {
		if errors.Is(err, s) {
			msg = strings.Replace(msg, s.Error()+": ", "", 1)
		}
	}
	return fail(code, msg)
}

// stockKind names a stock property: one a TINE server answers for every
// device without the application registering it (§9).
type stockKind uint8

const (
	notStock         stockKind = iota
	stockNProps                // NPROPS, NPROPERTIES: number of properties of the device
	stockProps                 // PROPS, PROPERTIES: names, or PRPQSr4 records
	stockNDevices              // NDEVICES
	stockDevices               // DEVICES
	stockVersion               // SRVVERSION
	stockStartTime             // SRVSTARTTIME (also the clients' watchdog link)
	stockStockProps            // STOCKPROPS: the names of the stock properties
	stockDesc                  // SRVDESC: the server's description
	stockOS                    // SRVOS
	stockAddressDB             // ADDRESSDB (Tioga's): the address-database rows of every server
	stockNStockProps           // NSTOCKPROPS: the number of stock properties
	stockMetaProps             // METAPROPS, METAPROPERTIES: the meta-properties of the device's properties
	stockAppVersion            // APPVERSION: the application's version
)

var stockNames = map[string]stockKind{
	"NPROPS": stockNProps, "NPROPERTIES": stockNProps,
	"PROPS": stockProps, "PROPERTIES": stockProps,
	"NDEVICES": stockNDevices, "DEVICES": stockDevices,
	"SRVVERSION": stockVersion, "SRVSTARTTIME": stockStartTime,
	"STOCKPROPS": stockStockProps, "SRVDESC": stockDesc, "SRVOS": stockOS,
	"ADDRESSDB": stockAddressDB, "NSTOCKPROPS": stockNStockProps,
	"METAPROPS": stockMetaProps, "METAPROPERTIES": stockMetaProps, "APPVERSION": stockAppVersion,
}

// StockProperties lists the stock property names the server answers, as
// STOCKPROPS returns them.
func StockProperties() []string {
	out := make([]string, len(stockInfos))
	for i, si := range stockInfos {
		out[i] = si.name
	}
	return out
}

// processWide reports whether the stock property is about the whole
// process (FEC) rather than one equipment module: those are answered
// whatever module the contract names (tine.jar's watchdog link asks
// SRVSTARTTIME with an empty device).
func (k stockKind) processWide() bool {
	switch k {
	case stockVersion, stockStartTime, stockStockProps, stockNStockProps, stockOS, stockAddressDB, stockAppVersion:
		return true
	}
	return false
}

// needsDevice reports whether the stock property is about one device.
func (k stockKind) needsDevice() bool {
	return k == stockNProps || k == stockProps || k == stockMetaProps
}

// metaKind is a meta-property suffix: <property>.EGU and friends.
type metaKind uint8

const (
	notMeta  metaKind = iota
	metaEGU           // units text
	metaMax           // upper limit
	metaMin           // lower limit
	metaDesc          // description text
	metaTMax          // upper threshold (TQuery.getThresholds): the upper limit
	metaTMin          // lower threshold: the lower limit
	metaXEGU          // x-axis units: "none" (no property here has an x axis)
	metaXMax          // x-axis maximum: tine.jar's default 10
	metaXMin          // x-axis minimum: 0
)

// metaSuffixes are the meta-properties served for every property
// (<property>.<suffix>); .DSC is tine.jar's short form of .DESC.
var metaSuffixes = map[string]metaKind{
	"EGU": metaEGU, "MAX": metaMax, "MIN": metaMin, "DESC": metaDesc, "DSC": metaDesc,
	"TMAX": metaTMax, "TMIN": metaTMin, "XEGU": metaXEGU, "XMAX": metaXMax, "XMIN": metaXMin,
}

// metaListed is the order METAPROPS lists a property's meta-properties in.
var metaListed = []string{"DESC", "EGU", "MAX", "MIN", "TMAX", "TMIN"}

// target is what a contract addresses.
type target struct {
	srv   *device.Server
	dev   *device.Device
	prop  *properties.Property
	stock stockKind
	meta  metaKind
}

func (t *target) name() string {
	if t.prop != nil {
		return t.prop.Name()
	}
	return "stock"
}

// resolve finds what a contract addresses. The equipment module picks the
// device server; when it names none (the client's address database may say
// anything), the device name is looked up in every server, as device names
// are unique across Tioga's servers. An empty device name means the
// server's first device, "#n" its n-th (0-based).
func (s *Server) resolve(c *wire.Contract) (target, *tineError) {
	servers := s.tree.Servers()
	if len(servers) == 0 {
		return target{}, fail(wire.IllegalDevice, "no device servers")
	}
	var srv *device.Server
	for _, sv := range servers {
		if strings.EqualFold(truncate(sv.Module(), wire.EqmSize), c.EqmName) {
			srv = sv
			break
		}
	}
	kind := stockNames[strings.ToUpper(c.Property)]
	var dev *device.Device
	if srv != nil {
		dev = deviceIn(srv, c.Device)
	}
	if dev == nil && c.Device != "" && c.Device[0] != '#' {
		if sv, d, ok := s.tree.FindDevice(c.Device); ok {
			srv, dev = sv, d
		}
	}
	if kind.processWide() {
		if srv == nil {
			srv = servers[0]
		}
		return target{srv: srv, dev: dev, stock: kind}, nil
	}
	if srv == nil {
		// The module names no server and the device name found none. With
		// one server there is no doubt; with several, "#0" or "" could be
		// any of them.
		if len(servers) > 1 {
			mods := make([]string, len(servers))
			for i, sv := range servers {
				mods[i] = truncate(sv.Module(), wire.EqmSize)
			}
			return target{}, fail(wire.IllegalDevice, fmt.Sprintf("equipment module %q not served here (%s)", c.EqmName, strings.Join(mods, ", ")))
		}
		srv = servers[0]
		if dev == nil && (c.Device == "" || c.Device[0] == '#') {
			dev = deviceIn(srv, c.Device)
		}
	}
	if kind != notStock && !kind.needsDevice() {
		return target{srv: srv, dev: dev, stock: kind}, nil
	}
	if dev == nil {
		return target{}, fail(wire.IllegalDevice, "")
	}
	if kind != notStock {
		return target{srv: srv, dev: dev, stock: kind}, nil
	}
	if p, ok := dev.Property(c.Property); ok {
		return target{srv: srv, dev: dev, prop: p}, nil
	}
	if i := strings.LastIndexByte(c.Property, '.'); i > 0 {
		if m := metaSuffixes[strings.ToUpper(c.Property[i+1:])]; m != notMeta {
			if p, ok := dev.Property(c.Property[:i]); ok {
				return target{srv: srv, dev: dev, prop: p, meta: m}, nil
			}
		}
	}
	return target{}, fail(wire.IllegalProperty, "")
}

func deviceIn(srv *device.Server, name string) *device.Device {
	if name == "" || name[0] == '#' {
		devs := srv.Devices()
		n := 0
		if name != "" {
			var err error
			if n, err = strconv.Atoi(name[1:]); err != nil {
				return nil
			}
		}
		if n < 0 || n >= len(devs) {
			return nil
		}
		return devs[n]
	}
	d, _ := srv.Device(name)
	return d
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// read evaluates a read of the target: the data in the contract's format
// and its timestamp. in is the request's input (a query's argument, or a
// property name for PROPS); hasIn says whether there was one.
func (s *Server) read(ctx context.Context, t *target, c *wire.Contract, in properties.Value, hasIn bool) (payload, time.Time, *tineError) {
	if c.FormatOut == wire.Default {
		d := withDefaultFormat(c, t)
		c = &d
	}
	f, n := c.FormatOut, int(c.SizeOut)
	now := time.Now()
	if t.stock != notStock {
		p, err := s.readStock(t, c, in, hasIn)
		if err != nil {
			return payload{}, now, codeFor(err)
		}
		if t.stock == stockStartTime {
			now = s.start
		}
		return p, now, nil
	}
	spec := t.prop.Spec()
	if t.meta != notMeta {
		var p payload
		var err error
		switch t.meta {
		case metaEGU:
			p, err = valuePayload(properties.TextValue(tineUnits(spec.Units)), f, n)
		case metaXEGU:
			p, err = valuePayload(properties.TextValue("none"), f, n)
		case metaDesc:
			p, err = valuePayload(properties.TextValue(asciiText(spec.Description)), f, n)
		case metaMax, metaMin, metaTMax, metaTMin:
			lo, hi := displayRange(spec)
			x := hi
			if t.meta == metaMin || t.meta == metaTMin {
				x = lo
			}
			p, err = scalarPayload(float64(x), f, n)
		case metaXMax:
			p, err = scalarPayload(10, f, n)
		case metaXMin:
			p, err = scalarPayload(0, f, n)
		}
		if err != nil {
			return payload{}, now, codeFor(err)
		}
		return p, now, nil
	}
	var v properties.Value
	var err error
	switch {
	case spec.Arg != 0 && !hasIn:
		// A query read without its input would answer an empty value
		// that looks like a result: refuse it, saying what is needed.
		what := spec.ArgDescription
		if what == "" {
			what = "one " + spec.Arg.String()
		}
		return payload{}, now, fail(wire.InvalidParameter, fmt.Sprintf("%s needs an input: %s", spec.Name, asciiText(what)))
	case hasIn && spec.Arg != 0:
		v, err = t.prop.Query(ctx, in)
	default:
		v, err = t.prop.Read()
	}
	if err != nil {
		return payload{}, now, codeFor(err)
	}
	return readPayload(v, c, now)
}

// readPayload encodes a property's value for a contract whose format is
// not CF_DEFAULT; ts is the value's time (now when it has none).
func readPayload(v properties.Value, c *wire.Contract, now time.Time) (payload, time.Time, *tineError) {
	p, err := valuePayload(v, c.FormatOut, int(c.SizeOut))
	if err != nil {
		return payload{}, now, codeFor(err)
	}
	p.quality = v.Quality
	ts := v.Time
	if ts.IsZero() {
		ts = now
	}
	return p, ts, nil
}

// qualityCode maps a value's quality to the completion code of a reply
// that still carries the value (see the package documentation): 0 when
// good; not initialized (152) when there is no value yet; data stale
// (156) otherwise (source unreachable, or uncertain).
func qualityCode(q properties.Quality) wire.CompCode {
	switch {
	case q.IsGood():
		return wire.OK
	case q.Cause == properties.CauseNoValue:
		return wire.NotInitialized
	}
	return wire.DataStale
}

// write applies a client's write (or command) to the target.
func (s *Server) write(ctx context.Context, t *target, in properties.Value, hasIn bool) *tineError {
	if t.prop == nil || t.meta != notMeta {
		return fail(wire.IllegalReadWrite, "read-only stock property")
	}
	spec := t.prop.Spec()
	if !hasIn {
		if !spec.IsCommand() {
			return fail(wire.InvalidParameter, "write without input data")
		}
		// A command sent without an argument: its zero value.
		in = zeroScalar(spec.Elem)
	}
	if err := t.prop.Write(ctx, in); err != nil {
		return codeFor(err)
	}
	return nil
}

func zeroScalar(e properties.Elem) properties.Value {
	switch e {
	case properties.Bool:
		return properties.BoolValue(false)
	case properties.Float32:
		return properties.Float32Value(0)
	case properties.Float64:
		return properties.Float64Value(0)
	case properties.Text:
		return properties.TextValue("")
	}
	return properties.Int32Value(0)
}

// errStockInput is returned for an input a stock property cannot use.
var errStockInput = fmt.Errorf("%w: stock property input", properties.ErrType)

// withDefaultFormat returns the contract with a CF_DEFAULT output (tine.jar
// sends format 254 and size 65535 when the caller gave no data type, as in
// new TLink("/P14/rideau/tioga/frame-count")) replaced by the target's own
// format and size, as a tine.jar server answers [verified: its replies
// carry the property's format and registered size]. Other contracts are
// returned unchanged.
func withDefaultFormat(c *wire.Contract, t *target) wire.Contract {
	d := *c
	if c.FormatOut != wire.Default {
		return d
	}
	d.FormatOut, d.SizeOut = t.native()
	return d
}

// native is the format and size a target is read in by default.
func (t *target) native() (wire.Format, int32) {
	if t.stock != notStock {
		si := stockInfoOf(t.stock)
		return si.format, si.size
	}
	spec := t.prop.Spec()
	switch t.meta {
	case metaEGU, metaXEGU:
		return wire.Text, 16
	case metaDesc:
		return wire.Text, 64
	case notMeta:
		return nativeFormat(spec.Elem), capacity(spec)
	}
	return wire.Float, 1
}
