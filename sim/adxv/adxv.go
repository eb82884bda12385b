// Package adxv is a stand-in for the ADXV viewer's socket interface
// (`adxv -socket 8100`, control-contract.md): it listens on TCP, accepts any
// number of connections, and records every command line it receives, so the
// image tracker's tests can assert exactly what the viewer was told.
//
// The protocol is ASCII lines ending in \n; blank lines are tolerated.
// Besides recording raw lines the listener understands load_image,
// define_type and the spot overlay (load_spots <n>, n lines "<x> <y> <type>",
// end_of_pack), and it can be stopped and restarted on the same port to
// play "ADXV died mid-scan".
package adxv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultAddr is where ADXV listens when started as `adxv -socket 8100`.
const DefaultAddr = ":8100"

// maxLine bounds one command line; ADXV's own buffer is far smaller.
const maxLine = 64 << 10

// Command is one non-blank line received.
type Command struct {
	Time time.Time
	Conn int    // connection number, 1 for the first accepted connection
	Line string // the line without its line ending
}

// Spot is one point of a spot overlay.
type Spot struct {
	X, Y float64
	Type int
}

// SpotPack is one complete load_spots ... end_of_pack overlay.
type SpotPack struct {
	Time  time.Time
	Conn  int
	Spots []Spot
}

// SpotType is a define_type: e.g. "define_type 1 color red radius 10".
type SpotType struct {
	Color  string
	Radius int
}

// Listener is the fake viewer. Its accessors are safe for concurrent use.
type Listener struct {
	addr string

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
	nconn    int
	commands []Command
	images   []string
	packs    []SpotPack
	types    map[int]SpotType
	errs     []string
	changed  chan struct{} // closed and replaced whenever something is recorded
	wg       sync.WaitGroup
}

// Listen starts a listener on addr ("127.0.0.1:0" picks a free port).
func Listen(addr string) (*Listener, error) {
	l := &Listener{addr: addr, conns: map[net.Conn]struct{}{}, types: map[int]SpotType{}, changed: make(chan struct{})}
	if err := l.start(); err != nil {
		return nil, err
	}
	// Restart must come back on the same port, also when ":0" chose it.
	l.addr = l.ln.Addr().String()
	return l, nil
}

func (l *Listener) start() error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return fmt.Errorf("adxv: listen %s: %w", l.addr, err)
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	l.wg.Add(1)
	go l.accept(ln)
	return nil
}

// Addr returns the host:port the listener is bound to.
func (l *Listener) Addr() string { return l.addr }

// Port returns the TCP port.
func (l *Listener) Port() int {
	_, p, _ := net.SplitHostPort(l.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Running reports whether the listener accepts connections.
func (l *Listener) Running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ln != nil
}

// Stop closes the listening socket and every open connection, as if ADXV
// had exited. Recorded commands are kept. Stopping twice is harmless.
func (l *Listener) Stop() error {
	l.mu.Lock()
	ln := l.ln
	l.ln = nil
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	l.wg.Wait()
	return err
}

// Restart listens again on the same address after Stop.
func (l *Listener) Restart() error {
	if l.Running() {
		return errors.New("adxv: restart of a running listener")
	}
	return l.start()
}

// Close stops the listener for good (same as Stop).
func (l *Listener) Close() error { return l.Stop() }

func (l *Listener) accept(ln net.Listener) {
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.ln != ln { // stopped between Accept and here
			l.mu.Unlock()
			c.Close()
			return
		}
		l.nconn++
		id := l.nconn
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.serve(c, id)
	}
}

// serve reads one connection's lines; spot packs are parsed per connection.
func (l *Listener) serve(c net.Conn, id int) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), maxLine)
	var st connState
	for sc.Scan() {
		l.mu.Lock()
		l.handle(&st, id, sc.Text(), time.Now())
		l.mu.Unlock()
	}
	if err := sc.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		l.mu.Lock()
		l.errs = append(l.errs, fmt.Sprintf("conn %d: %v", id, err))
		l.mu.Unlock()
	}
}

// connState is the per-connection parser state: an open spot pack.
type connState struct {
	pack *SpotPack
	want int
}

// handle records one received line and parses it (lock held).
func (l *Listener) handle(st *connState, id int, raw string, now time.Time) {
	line := strings.TrimRight(raw, "\r")
	if strings.TrimSpace(line) == "" {
		return
	}
	l.commands = append(l.commands, Command{Time: now, Conn: id, Line: line})
	defer func() {
		close(l.changed)
		l.changed = make(chan struct{})
	}()
	fields := strings.Fields(line)
	switch {
	case st.pack != nil && len(st.pack.Spots) < st.want:
		s, err := parseSpot(fields)
		if err != nil {
			l.errs = append(l.errs, fmt.Sprintf("conn %d: spot %d of %d: %v", id, len(st.pack.Spots)+1, st.want, err))
			st.pack = nil
			return
		}
		st.pack.Spots = append(st.pack.Spots, s)
	case st.pack != nil && fields[0] == "end_of_pack":
		l.packs = append(l.packs, *st.pack)
		st.pack = nil
	case st.pack != nil:
		l.errs = append(l.errs, fmt.Sprintf("conn %d: %q after %d spots, want end_of_pack", id, line, st.want))
		st.pack = nil
	case fields[0] == "load_spots":
		n, err := argInt(fields)
		if err != nil || n < 0 {
			l.errs = append(l.errs, fmt.Sprintf("conn %d: %q: want load_spots <n>", id, line))
			return
		}
		// Grow the pack as spots arrive: n comes from outside.
		st.pack, st.want = &SpotPack{Time: now, Conn: id}, n
	case fields[0] == "end_of_pack":
		l.errs = append(l.errs, fmt.Sprintf("conn %d: end_of_pack without load_spots", id))
	case fields[0] == "load_image":
		path := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "load_image"))
		if path == "" {
			l.errs = append(l.errs, fmt.Sprintf("conn %d: load_image without a path", id))
			return
		}
		l.images = append(l.images, path)
	case fields[0] == "define_type":
		n, t, err := parseType(fields)
		if err != nil {
			l.errs = append(l.errs, fmt.Sprintf("conn %d: %q: %v", id, line, err))
			return
		}
		l.types[n] = t
	}
}

func argInt(f []string) (int, error) {
	if len(f) != 2 {
		return 0, errors.New("want one argument")
	}
	return strconv.Atoi(f[1])
}

func parseSpot(f []string) (Spot, error) {
	if len(f) != 3 {
		return Spot{}, fmt.Errorf("want \"<x> <y> <type>\", got %d fields", len(f))
	}
	x, err1 := strconv.ParseFloat(f[0], 64)
	y, err2 := strconv.ParseFloat(f[1], 64)
	t, err3 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return Spot{}, err
	}
	return Spot{X: x, Y: y, Type: t}, nil
}

// parseType reads "define_type <n> color <c> radius <r>" (keywords in any order).
func parseType(f []string) (int, SpotType, error) {
	if len(f) < 2 {
		return 0, SpotType{}, errors.New("want define_type <n> color <c> radius <r>")
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, SpotType{}, fmt.Errorf("type number: %w", err)
	}
	var t SpotType
	for i := 2; i+1 < len(f); i += 2 {
		switch f[i] {
		case "color":
			t.Color = f[i+1]
		case "radius":
			if t.Radius, err = strconv.Atoi(f[i+1]); err != nil {
				return 0, SpotType{}, fmt.Errorf("radius: %w", err)
			}
		default:
			return 0, SpotType{}, fmt.Errorf("unknown keyword %q", f[i])
		}
	}
	if len(f)%2 != 0 {
		return 0, SpotType{}, errors.New("keyword without a value")
	}
	return n, t, nil
}

// Commands returns every line received so far, in arrival order.
func (l *Listener) Commands() []Command {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Command(nil), l.commands...)
}

// Lines returns the text of every line received so far.
func (l *Listener) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.commands))
	for i, c := range l.commands {
		out[i] = c.Line
	}
	return out
}

// Images returns the paths of every load_image, in order.
func (l *Listener) Images() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.images...)
}

// SpotPacks returns every complete spot overlay, in order.
func (l *Listener) SpotPacks() []SpotPack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SpotPack(nil), l.packs...)
}

// Types returns the spot types defined so far.
func (l *Listener) Types() map[int]SpotType {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int]SpotType, len(l.types))
	for k, v := range l.types {
		out[k] = v
	}
	return out
}

// Errors returns protocol errors seen (a malformed spot pack, an unknown
// define_type keyword...). A correct client leaves it empty.
func (l *Listener) Errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// Connections returns how many connections have been accepted.
func (l *Listener) Connections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nconn
}

// Reset forgets everything recorded (connection numbers keep counting).
func (l *Listener) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commands, l.images, l.packs, l.errs = nil, nil, nil, nil
	l.types = map[int]SpotType{}
}

// WaitFor blocks until cond, called with the commands received so far,
// returns true, or ctx is done.
func (l *Listener) WaitFor(ctx context.Context, cond func([]Command) bool) error {
	for {
		l.mu.Lock()
		ok := cond(l.commands)
		ch := l.changed
		l.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("adxv: waiting for commands: %w", ctx.Err())
		}
	}
}

// WaitForImages blocks until at least n load_image commands have arrived.
func (l *Listener) WaitForImages(ctx context.Context, n int) ([]string, error) {
	err := l.WaitFor(ctx, func([]Command) bool { return len(l.images) >= n })
	return l.Images(), err
}
