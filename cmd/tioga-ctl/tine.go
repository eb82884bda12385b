package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"tioga/adapters/tine/addrdb"
	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/device"
)

// tineTransport speaks TINE through package client.
type tineTransport struct {
	c       *client.Client
	module  string
	host    string
	offset  int
	tcpUsed bool
	infos   map[string][]wire.PropertyInfo // per device
}

// dialTINE finds the server of a as a TINE client would: flags first, then
// the local address database (eqpdbase.csv and fecaddr.csv in --db,
// $TINE_CACHE/tine/cache or $TINE_HOME), then localhost with the module
// name derived from the server name the way Tioga derives it.
func dialTINE(a device.Address, o connectOpts) (transport, error) {
	host, offset, module := o.host, o.portOffset, o.module
	if db, err := addrdb.Load(o.db); err == nil {
		e, err := db.Resolve(a.Context, a.Server)
		switch {
		case err == nil:
			if host == "" {
				host, offset = e.IP, e.PortOffset
			}
			if module == "" {
				module = e.Module
			}
		case host == "":
			return nil, err // a database that does not know the server: as a TINE client, give up
		}
	} else if o.db != "" {
		return nil, err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	// --timeout is the whole call's: three attempts share it.
	c, err := client.DialServer(host, offset, client.Options{User: o.user, Timeout: max(o.timeout/3, 50*time.Millisecond), Retries: 2, TCP: o.tcp})
	if err != nil {
		return nil, err
	}
	t := &tineTransport{c: c, module: module, host: host, offset: offset, tcpUsed: o.tcp, infos: map[string][]wire.PropertyInfo{}}
	if module == "" {
		deadline := o.deadline
		if deadline.IsZero() {
			deadline = time.Now().Add(o.timeout)
		}
		if t.module, err = askModule(c, a, deadline); err != nil {
			c.Close()
			if errors.Is(err, client.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w: %s, within %s", client.ErrTimeout, t.where(), o.timeout)
			}
			return nil, err
		}
	}
	return t, nil
}

// where names the server a transport talks to, for error messages.
func (t *tineTransport) where() string {
	port := wire.UDPBasePort + t.offset
	proto := "UDP"
	if t.tcpUsed {
		port, proto = wire.TCPBasePort+t.offset, "TCP"
	}
	return fmt.Sprintf("%s %s:%d (port offset %d)", proto, t.host, port, t.offset)
}

// askModule learns the equipment module of /<context>/<server> from a
// Tioga server's stock property ADDRESSDB, and refuses a context or server
// name that Tioga does not serve (rather than send every request to
// whatever answers). For another TINE server (no ADDRESSDB) it derives the
// module from the server name as Tioga does.
//
// A server that does not answer at all is an error (ErrTimeout): nothing
// else would get through within the deadline either.
func askModule(c *client.Client, a device.Address, deadline time.Time) (string, error) {
	derived := device.NewServer(a.Context, a.Server, "", "").Module()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	d, err := c.Get(ctx, client.Address{Module: derived, Property: "ADDRESSDB"}, wire.Text, 1<<16)
	if errors.Is(err, client.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return "", err
	}
	if err != nil {
		return derived, nil
	}
	servers, err := addrdb.ParseServers(d.Text())
	if err != nil {
		return derived, nil
	}
	var names []string
	for _, s := range servers {
		if strings.EqualFold(s.Context, a.Context) && strings.EqualFold(s.Name, a.Server) {
			return s.Module, nil
		}
		names = append(names, "/"+s.Context+"/"+s.Name)
	}
	return "", fmt.Errorf("/%s/%s is not served there (it serves %s)", a.Context, a.Server, strings.Join(names, ", "))
}

func (t *tineTransport) Close() error { return t.c.Close() }

func (t *tineTransport) addr(a device.Address) client.Address {
	return client.Address{Module: t.module, Device: a.Device, Property: a.Property}
}

// info returns the property's information record, if the server has one.
func (t *tineTransport) info(ctx context.Context, a device.Address) (wire.PropertyInfo, bool) {
	infos, ok := t.infos[a.Device]
	if !ok {
		infos, _ = t.c.Properties(ctx, t.module, a.Device)
		t.infos[a.Device] = infos
	}
	for _, in := range infos {
		if strings.EqualFold(in.Name, a.Property) {
			return in, true
		}
	}
	return wire.PropertyInfo{}, false
}

// outFormat picks the output format and size: the flags, else the
// property's own, else text (every value reads as text).
func (t *tineTransport) outFormat(ctx context.Context, a device.Address, o readOpts) (wire.Format, int, int, error) {
	in, known := t.info(ctx, a)
	rowSize := 0
	if known && in.RowSize > 1 {
		rowSize = int(in.RowSize)
	}
	if o.format != "" {
		f, err := wire.ParseFormat(o.format)
		if err != nil {
			return 0, 0, 0, err
		}
		n := o.size
		if n <= 0 {
			switch {
			case known:
				n = int(in.SizeOut)
			case f == wire.Text:
				n = 4096
			default:
				n = 1
			}
		}
		return f, n, rowSize, nil
	}
	if known {
		n := int(in.SizeOut)
		if o.size > 0 {
			n = o.size
		}
		return in.FormatOut, n, rowSize, nil
	}
	n := o.size
	if n <= 0 {
		n = 4096
	}
	return wire.Text, n, 0, nil
}

// encode turns command-line words into input data of format f (the
// property's input format when known).
func encode(words []string, f wire.Format) (wire.Data, error) {
	switch {
	case f == wire.Text || f == wire.Null:
		return wire.TextData(strings.Join(words, " ")), nil
	case f.IsName():
		var b []byte
		for _, w := range words {
			b = wire.AppendName(b, w, f.Size())
		}
		return wire.Data{Format: f, Bytes: b}, nil
	case f.IsNumeric():
		xs := make([]float64, 0, len(words))
		for _, w := range words {
			for _, field := range strings.FieldsFunc(w, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
				x, err := parseNumber(field)
				if err != nil {
					return wire.Data{}, err
				}
				xs = append(xs, x)
			}
		}
		return wire.NumberData(f, xs...)
	}
	return wire.Data{}, fmt.Errorf("cannot write %s data from the command line", f)
}

func parseNumber(s string) (float64, error) {
	switch strings.ToLower(s) {
	case "true", "on", "yes":
		return 1, nil
	case "false", "off", "no":
		return 0, nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return x, nil
}

// inFormat is the format the input words are sent in.
func (t *tineTransport) inFormat(ctx context.Context, a device.Address, flag string, words []string) (wire.Format, error) {
	if flag != "" {
		return wire.ParseFormat(flag)
	}
	if in, ok := t.info(ctx, a); ok {
		if in.FormatIn != wire.Null {
			return in.FormatIn, nil
		}
		return in.FormatOut, nil
	}
	// Unknown property: numbers as DOUBLE, anything else as text.
	for _, w := range words {
		if _, err := parseNumber(w); err != nil {
			return wire.Text, nil
		}
	}
	return wire.Double, nil
}

func (t *tineTransport) Get(ctx context.Context, a device.Address, o readOpts) (Result, error) {
	f, n, rowSize, err := t.outFormat(ctx, a, o)
	if err != nil {
		return Result{}, err
	}
	req := client.Request{Address: t.addr(a), Format: f, Size: n}
	if n*max(f.Size(), 1) > 1<<20 {
		req.Timeout = bigTimeout(f, n) // per attempt; --timeout still bounds the command
	}
	if f == wire.Struct {
		if in, ok := t.info(ctx, a); ok {
			req.Tag = in.TagOut
		}
	}
	if len(o.input) > 0 {
		inf, err := t.inFormat(ctx, a, "", o.input)
		if err != nil {
			return Result{}, err
		}
		in, err := encode(o.input, inf)
		if err != nil {
			return Result{}, err
		}
		req.Input = &in
	}
	rep, err := t.c.Call(ctx, req)
	if err != nil {
		return Result{}, err
	}
	return toResult(a, rep, rowSize), nil
}

// bigTimeout gives large transfers time: about 20 MB/s worst case.
func bigTimeout(f wire.Format, n int) time.Duration {
	bytes := n * max(f.Size(), 1)
	return time.Second + time.Duration(bytes/20_000)*time.Millisecond
}

func (t *tineTransport) Set(ctx context.Context, a device.Address, values []string, o readOpts) error {
	f, err := t.inFormat(ctx, a, o.format, values)
	if err != nil {
		return err
	}
	in, err := encode(values, f)
	if err != nil {
		return err
	}
	return t.c.Set(ctx, t.addr(a), in)
}

func (t *tineTransport) Watch(ctx context.Context, a device.Address, o watchOpts, fn func(Result) bool) error {
	var mode wire.Mode
	switch strings.ToLower(o.mode) {
	case "poll", "timer":
		mode = wire.Poll
	case "", "datachange", "data-change", "change", "refresh":
		mode = wire.DataChange
	case "event":
		mode = wire.Event
	default:
		return fmt.Errorf("unknown watch mode %q (poll, datachange, event)", o.mode)
	}
	f, n, rowSize, err := t.outFormat(ctx, a, o.readOpts)
	if err != nil {
		return err
	}
	l, err := t.c.Attach(ctx, client.Request{Address: t.addr(a), Format: f, Size: n}, mode, o.interval)
	if err != nil {
		return err
	}
	defer l.Close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-l.C:
			if !ok {
				return errors.New("link closed")
			}
			if u.Err == nil && u.Reason == wire.XferKeepAlive {
				continue // a heartbeat: the link is alive, nothing new to print
			}
			r := toResult(a, &u.Reply, rowSize)
			r.Reason = reason(u.Reason)
			if u.Err != nil {
				r = Result{Address: a.String(), Time: time.Now(), Error: u.Err.Error()}
			}
			if !fn(r) {
				return nil
			}
		}
	}
}

func (t *tineTransport) Props(ctx context.Context, a device.Address) ([]PropInfo, error) {
	infos, err := t.c.Properties(ctx, t.module, a.Device)
	if err != nil {
		return nil, err
	}
	out := make([]PropInfo, len(infos))
	for i, in := range infos {
		acc := ""
		if in.Access&wire.AccessRead != 0 {
			acc += "r"
		}
		if in.Access&wire.AccessWrite != 0 {
			acc += "w"
		}
		p := PropInfo{Name: in.Name, Description: in.Description, Format: in.FormatOut.String(), Size: int(in.SizeOut), Access: acc,
			Units: in.Units, Min: ptr(round32(in.Min)), Max: ptr(round32(in.Max))}
		if in.FormatIn != wire.Null {
			p.InputFormat, p.InputSize = in.FormatIn.String(), int(in.SizeIn)
		}
		if in.RowSize > 1 {
			// numRows is 16 bits: a 1,000,000-row array says 32767 there;
			// the output size says how many rows it holds.
			p.Rows, p.RowSize = int(in.SizeOut)/int(in.RowSize), int(in.RowSize)
		}
		if in.Access&wire.AccessWrite == 0 {
			// Limits are about writes; a read-only property's are TINE's
			// display defaults (0, 10), not facts.
			p.Min, p.Max = nil, nil
		}
		out[i] = p
	}
	return out, nil
}

func ptr(x float64) *float64 { return &x }

func round32(f float32) float64 {
	x, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return x
}

func (t *tineTransport) Devices(ctx context.Context, a device.Address) ([]string, error) {
	return t.c.Devices(ctx, t.module)
}

func toResult(a device.Address, r *client.Reply, rowSize int) Result {
	res := Result{Address: a.String(), Format: r.Data.Format.String(), Time: r.Time}
	d := r.Data
	switch {
	case d.Format == wire.Text:
		s := d.Text()
		res.Text = &s
	case d.Format.IsName():
		res.Names = d.Names()
	case d.Format.IsNumeric():
		res.Numbers, _ = d.Floats()
		for i, x := range res.Numbers {
			switch {
			case math.IsNaN(x) || math.IsInf(x, 0):
				res.Numbers[i] = 0 // JSON has no NaN; TINE floats rarely carry one
			case d.Format == wire.Float:
				// 0.1 as FLOAT, not 0.10000000149011612
				res.Numbers[i] = round32(float32(x))
			}
		}
		res.RowSize = rowSize
	default:
		res.Bytes = d.Bytes
	}
	return res
}

func reason(x wire.XferReason) string {
	switch x {
	case wire.XferFirst:
		return "attach"
	case wire.XferUpdate, wire.XferPollChanged:
		return "changed"
	case wire.XferKeepAlive:
		return "heartbeat"
	case wire.XferSingle:
		return "timer"
	}
	return fmt.Sprintf("%#x", uint16(x))
}
