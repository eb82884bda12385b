// Command tioga-ctl reads, writes and watches the properties of Tioga's
// device servers from the shell, for experiment scripts and for checking a
// beamline's setup. It speaks TINE (package adapters/tine/client) and is
// built so that another transport (OPC UA) can be added.
//
//	tioga-ctl get   /P14/rideau/tioga/frame-count
//	tioga-ctl set   /P14/rideau/tioga/threshold 2.75
//	tioga-ctl watch /P14/rideau/tioga/dozor-pass --mode event --json
//	tioga-ctl props /P14/rideau/tioga
//	tioga-ctl devices /P14/detector
//	tioga-ctl csv   --host 192.168.14.5 --port-offset 7
//	tioga-ctl url
//
// The server is found as a TINE client finds it: --host/--port-offset/
// --module, else the address database (eqpdbase.csv, fecaddr.csv) in --db,
// $TINE_CACHE/tine/cache or $TINE_HOME, else localhost.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"tioga/adapters/tine"
	"tioga/adapters/tine/addrdb"
	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/device"
)

const usage = `usage: tioga-ctl <command> [flags] <address> [values]

commands:
  get <addr/property>            read a property (its own format, or --format/--size)
      [--input V]...             with input data (a query: e.g. the frame of a spot list)
  set <addr/property> <value>... write a property (numbers, true/false, or text)
  watch <addr/property>          print updates: --mode poll|datachange|event (default datachange),
                                 --interval 1s, --count N, --for 10s
  props <addr>                   list a device's properties: /<context>/<server>/<device>
  devices /<context>/<server>    list a server's devices
  url [/<context>/<server>/<device>]
                                 print the address of the live web page (and /metrics)
                                 (default device /P14/rideau/tioga)
  csv                            print the TINE address-database rows of a running Tioga
                                 (needs --host; --port-offset)

flags (anywhere on the line):
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type globals struct {
	connectOpts
	json      bool
	transport string
	format    string
	size      int
	inputs    stringList
	mode      string
	interval  time.Duration
	count     int
	duration  time.Duration
	dir       string
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func newFlags(g *globals, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tioga-ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&g.host, "host", "", "server host (default: from the address database, else localhost)")
	fs.IntVar(&g.portOffset, "port-offset", 0, "server port offset (UDP 9003+offset, TCP 8503+offset)")
	fs.StringVar(&g.module, "module", "", "equipment module (default: from the address database, else derived from the server name)")
	fs.StringVar(&g.db, "db", "", "directory of eqpdbase.csv and fecaddr.csv (default $TINE_CACHE/tine/cache or $TINE_HOME)")
	fs.BoolVar(&g.tcp, "tcp", false, "use TCP instead of UDP")
	fs.DurationVar(&g.timeout, "timeout", 2*time.Second, "time the whole command may take, every attempt included (watch: its attach)")
	fs.StringVar(&g.user, "user", "", "user name sent to the server (default: login name)")
	fs.BoolVar(&g.json, "json", false, "print JSON (one object per line for watch)")
	fs.StringVar(&g.transport, "transport", "tine", "control protocol")
	fs.StringVar(&g.format, "format", "", "data format: INT32, FLOAT, DOUBLE, INT16, INT64, BYTE, TEXT, NAME64, ...")
	fs.IntVar(&g.size, "size", 0, "number of elements (text: bytes) to read")
	fs.Var(&g.inputs, "input", "input data of a read (repeatable)")
	fs.StringVar(&g.mode, "mode", "datachange", "watch mode: poll, datachange or event")
	fs.DurationVar(&g.interval, "interval", time.Second, "watch interval (event: the heartbeat period)")
	fs.IntVar(&g.count, "count", 0, "watch: stop after this many updates")
	fs.DurationVar(&g.duration, "for", 0, "watch: stop after this long")
	fs.StringVar(&g.dir, "dir", "", "csv: write eqpdbase.csv, fecaddr.csv (and cshosts.csv when absent) into this directory, e.g. $TINE_CACHE/tine/cache")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	return fs
}

// parseInterleaved parses flags appearing anywhere among the positional
// arguments. Negative numbers are values, not flags ("set .../offset -5"),
// and "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	const neg = "\x00"
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	masked := make([]string, len(args))
	for i, a := range args {
		if _, err := strconv.ParseFloat(a, 64); err == nil && strings.HasPrefix(a, "-") {
			a = neg + a
		}
		masked[i] = a
	}
	var pos []string
	for args = masked; ; {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	unmask := func(ss []string) {
		for i := range ss {
			ss[i] = strings.TrimPrefix(ss[i], neg)
		}
	}
	unmask(pos)
	if v, ok := fs.Lookup("input").Value.(*stringList); ok {
		unmask(*v)
	}
	return append(pos, tail...), nil
}

// exitTINE is the exit status of a TINE error (completion code != 0).
const exitTINE = 2

func run(args []string, stdout, stderr io.Writer) int {
	var g globals
	fs := newFlags(&g, stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if len(pos) == 0 {
		fs.Usage()
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := pos[0], pos[1:]
	err = dispatch(ctx, cmd, rest, &g, stdout)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "tioga-ctl %s: %v\n", cmd, err)
	var te *client.Error
	if errors.As(err, &te) {
		return exitTINE
	}
	return 1
}

func dispatch(ctx context.Context, cmd string, rest []string, g *globals, out io.Writer) error {
	if cmd == "csv" {
		return csvRows(ctx, g, out)
	}
	if cmd == "url" {
		// The live web page's address is a property of the streaming
		// device: read it like any other.
		dev := "/P14/rideau/tioga"
		if len(rest) > 0 {
			dev = strings.TrimSuffix(rest[0], "/")
		}
		cmd, rest = "get", []string{dev + "/web-page"}
	}
	if len(rest) == 0 {
		return errors.New("missing address")
	}
	a, err := parseAddr(rest[0], cmd)
	if err != nil {
		return err
	}
	dial, ok := transports[g.transport]
	if !ok {
		return fmt.Errorf("unknown transport %q", g.transport)
	}
	opts := g.connectOpts
	if cmd != "watch" {
		// --timeout bounds the whole command: module lookup, property
		// information and every attempt of the call.
		opts.deadline = time.Now().Add(g.timeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, opts.deadline)
		defer cancel()
	}
	tr, err := dial(a, opts)
	if err != nil {
		return err
	}
	defer tr.Close()
	err = run1(ctx, cmd, rest, g, out, a, tr)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		err = client.ErrTimeout
	}
	if w, ok := tr.(interface{ where() string }); ok && errors.Is(err, client.ErrTimeout) {
		// Say which server did not answer.
		err = fmt.Errorf("%w: %s, within %s", err, w.where(), g.timeout)
	}
	return err
}

// run1 runs one command on a connected transport.
func run1(ctx context.Context, cmd string, rest []string, g *globals, out io.Writer, a device.Address, tr transport) error {
	ro := readOpts{format: g.format, size: g.size, input: g.inputs}
	switch cmd {
	case "get":
		r, err := tr.Get(ctx, a, ro)
		if err != nil {
			return err
		}
		return printResult(out, r, g.json, false)
	case "set":
		if len(rest) < 2 {
			return errors.New("missing value")
		}
		return tr.Set(ctx, a, rest[1:], ro)
	case "watch":
		if g.duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, g.duration)
			defer cancel()
		}
		n := 0
		var perr error
		err := tr.Watch(ctx, a, watchOpts{readOpts: ro, mode: g.mode, interval: g.interval}, func(r Result) bool {
			if perr = printResult(out, r, g.json, true); perr != nil {
				return false
			}
			n++
			return g.count <= 0 || n < g.count
		})
		if err == nil {
			err = perr
		}
		return err
	case "props":
		ps, err := tr.Props(ctx, a)
		if err != nil {
			return err
		}
		return printProps(out, ps, g.json)
	case "devices":
		ds, err := tr.Devices(ctx, a)
		if err != nil {
			return err
		}
		if g.json {
			return json.NewEncoder(out).Encode(ds)
		}
		for _, d := range ds {
			fmt.Fprintln(out, d)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// parseAddr reads /<context>/<server>[/<device>[/<property>]]: get, set and
// watch need a property, props a device, devices a server.
func parseAddr(s, cmd string) (device.Address, error) {
	parts := strings.Split(strings.Trim(s, "/"), "/")
	need := map[string]int{"get": 4, "set": 4, "watch": 4, "props": 3, "devices": 2}[cmd]
	if need == 0 {
		return device.Address{}, fmt.Errorf("unknown command %q", cmd)
	}
	if len(parts) != need {
		return device.Address{}, fmt.Errorf("%s wants %s, got %q", cmd,
			[]string{"", "", "/<context>/<server>", "/<context>/<server>/<device>", "/<context>/<server>/<device>/<property>"}[need], s)
	}
	for _, p := range parts {
		if p == "" {
			return device.Address{}, fmt.Errorf("address %q: empty element", s)
		}
	}
	a := device.Address{Context: parts[0], Server: parts[1]}
	if need >= 3 {
		a.Device = parts[2]
	}
	if need == 4 {
		a.Property = parts[3]
	}
	return a, nil
}

// csvRows prints the address-database files for the Tioga at --host: the
// server names it hosts come from its stock property ADDRESSDB, the IP and
// port offset from how it was reached.
func csvRows(ctx context.Context, g *globals, out io.Writer) error {
	if g.host == "" {
		return errors.New("csv needs --host (the address clients use to reach Tioga)")
	}
	c, err := client.DialServer(g.host, g.portOffset, client.Options{User: g.user, Timeout: g.timeout, TCP: g.tcp})
	if err != nil {
		return err
	}
	defer c.Close()
	d, err := c.Get(ctx, client.Address{Module: g.module, Property: "ADDRESSDB"}, wire.Text, 1<<16)
	if err != nil {
		return err
	}
	servers, err := addrdb.ParseServers(d.Text())
	if err != nil {
		return err
	}
	ip := g.host
	if addrs, err := net.DefaultResolver.LookupHost(ctx, g.host); err == nil && len(addrs) > 0 {
		ip = addrs[0]
	}
	fec := ""
	if len(servers) > 0 {
		fec = servers[0].FEC
	}
	row := addrdb.FEC{Name: fec, IP: ip, PortOffset: g.portOffset}
	if g.dir != "" {
		if err := addrdb.WriteDir(g.dir, servers, []addrdb.FEC{row}); err != nil {
			return err
		}
		_, err := fmt.Fprintf(out, "wrote %s: eqpdbase.csv, fecaddr.csv, cshosts.csv (tine.jar: TINE_CACHE=%s)\n",
			g.dir, cacheRoot(g.dir))
		return err
	}
	return tine.WriteAddressFiles(out, servers, row)
}

// cacheRoot is the TINE_CACHE under which tine.jar reads dir, when dir
// ends in tine/cache (else dir itself, as a hint).
func cacheRoot(dir string) string {
	d := strings.TrimSuffix(strings.TrimSuffix(dir, "/"), "/tine/cache")
	if d == "" {
		return dir
	}
	return d
}

func printResult(out io.Writer, r Result, asJSON, withTime bool) error {
	if asJSON {
		return json.NewEncoder(out).Encode(r)
	}
	var b strings.Builder
	if withTime {
		b.WriteString(r.Time.Format("2006-01-02T15:04:05.000Z07:00"))
		b.WriteByte(' ')
		if r.Error != "" {
			b.WriteString("error: " + r.Error + "\n")
			_, err := io.WriteString(out, b.String())
			return err
		}
	}
	switch {
	case r.Text != nil:
		b.WriteString(*r.Text)
	case r.Names != nil:
		b.WriteString(strings.Join(r.Names, "\n"))
	case r.Numbers != nil:
		for i, x := range r.Numbers {
			if i > 0 {
				if r.RowSize > 1 && i%r.RowSize == 0 {
					b.WriteByte('\n')
					if withTime {
						b.WriteString(strings.Repeat(" ", 30))
					}
				} else {
					b.WriteByte(' ')
				}
			}
			b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	default:
		fmt.Fprintf(&b, "%d bytes of %s", len(r.Bytes), r.Format)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(out, b.String())
	return err
}

func printProps(out io.Writer, ps []PropInfo, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(out).Encode(ps)
	}
	var b strings.Builder
	for _, p := range ps {
		shape := strconv.Itoa(p.Size)
		if p.RowSize > 1 {
			shape = fmt.Sprintf("%dx%d", p.Size/p.RowSize, p.RowSize)
		}
		in := ""
		if p.InputFormat != "" {
			in = fmt.Sprintf(" in=%s[%d]", p.InputFormat, p.InputSize)
		}
		units := ""
		if p.Units != "none" && p.Units != "" {
			units = " " + p.Units
		}
		fmt.Fprintf(&b, "%-24s %-2s %s[%s]%s%s  %s\n", p.Name, p.Access, p.Format, shape, units, in, p.Description)
	}
	_, err := io.WriteString(out, b.String())
	return err
}
