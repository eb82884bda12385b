package tine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"tioga/adapters/tine/wire"
	"tioga/sim/fixtures"
)

// TestReplayCaptures sends every captured request of shared/fixtures/tine,
// in capture order, over real UDP to our server serving the reference
// server's device (/TEST/TIOGA.SIM/tioga, module TIOGA, same properties and
// values), and compares each reply with the captured one field by field:
// sizes, subscription id, completion code, block counts and numbers, mtu,
// format, protocol, echoed start time, status size, code and text, stamps
// and data. Only what cannot be equal may differ:
//
//   - the data timestamp (checked to be current);
//   - the value of frame-count (it counts frames; checked to be an integer,
//     and to go up by one between data-change and event deliveries, as the
//     capture's does);
//   - SRVSTARTTIME (checked to be our server's start time);
//   - the random part of a POLL link's first counter (checked to lie in
//     60 x m + [0, 100)), and its later counters (checked to count down by
//     one per delivery);
//   - POLL's xferReason (0x18 when the value changed since the previous
//     delivery, else 0x10: the rule, since our value changes at other
//     moments than the capture's);
//   - which reply blocks of different links share a datagram (timing).
//
// Counters and transfer reasons of DATACHANGE and EVENT deliveries, which
// depend on the acknowledgements the replayed requests carry, must match
// the capture exactly.
func TestReplayCaptures(t *testing.T) {
	steps, timeline := captureTimeline(t)
	var mu sync.Mutex
	replayed := map[string]bool{}
	ran := 0
	t.Cleanup(func() {
		if ran < len(steps) {
			return // a subset was asked for (-run)
		}
		reqs, _ := fixtureFiles(t)
		for _, f := range reqs {
			if !replayed[f] {
				t.Errorf("captured request %s was not replayed", f)
			}
		}
	})
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			ref := newRefTree(t)
			stateful := strings.HasPrefix(step, "poll-") || strings.HasPrefix(step, "datachange-") || strings.HasPrefix(step, "event-")
			if stateful {
				ref.tick(t, 500*time.Millisecond)
			}
			// MaxUDPBlocks lifted: the reference server sent read-big-array's
			// 281 blocks (and tine.jar took them all on the capture machine).
			s := startServer(t, ref.tree, Config{Version: "4.5.6:5180", MaxUDPBlocks: -1})
			r := &replayer{t: t, c: newUDPClient(t, s), srvStart: uint32(s.StartTime().Unix()), links: map[uint16]*replayLink{}}
			if stateful {
				r.stateful(timeline[step])
			} else {
				r.sequential(timeline[step])
			}
			mu.Lock()
			ran++
			for f := range r.sent {
				replayed[f] = true
			}
			mu.Unlock()
		})
	}
}

func fixtureFiles(t testing.TB) (reqs, reps []string) {
	_, timeline := captureTimeline(t)
	for _, tl := range timeline {
		for _, e := range tl {
			if e.req {
				reqs = append(reqs, e.file)
			} else {
				reps = append(reps, e.file)
			}
		}
	}
	return reqs, reps
}

type replayer struct {
	t        *testing.T
	c        *udpClient
	srvStart uint32
	links    map[uint16]*replayLink // by link id
	queue    []wire.ReplyBlock      // received blocks not yet matched
	sent     map[string]bool
}

// replayLink is what the replayer knows of one link of the step.
type replayLink struct {
	con       wire.Contract
	mode      wire.Mode
	interval  time.Duration
	delivered int
	prevCount uint16
	prevData  []byte
	cancelled bool
}

func (r *replayer) send(file string) {
	b := fixtures.Read(r.t, "tine", file)
	var req wire.Request
	if err := req.Parse(b); err != nil {
		r.t.Fatalf("%s: %v", file, err)
	}
	for _, l := range req.Links {
		lk, ok := r.links[l.LinkID]
		if !ok || l.Mode.Base() != wire.Cancel && (lk.con != l.Contract || lk.mode != l.Mode.Base()) {
			lk = &replayLink{con: l.Contract, mode: l.Mode.Base(), interval: time.Duration(l.PollingInterval) * time.Millisecond}
			r.links[l.LinkID] = lk
		}
		if l.Mode.Base() == wire.Cancel {
			lk.cancelled = true
		}
	}
	if r.sent == nil {
		r.sent = map[string]bool{}
	}
	r.sent[file] = true
	r.c.send(b) // the whole datagram, padding included, as captured
}

// sequential replays a step of SINGLE requests: each captured reply must
// be matched by the next datagram we receive, whole datagram sizes included.
func (r *replayer) sequential(tl []timelineEntry) {
	for _, e := range tl {
		if e.req {
			r.send(e.file)
			continue
		}
		want := fixtures.Read(r.t, "tine", e.file)
		got := r.c.recv(3 * time.Second)
		if got == nil {
			r.t.Fatalf("%s: no reply", e.file)
		}
		if len(got) != len(want) {
			r.t.Errorf("%s: datagram of %d bytes, captured %d", e.file, len(got), len(want))
		}
		gb, err := wire.ParseReply(got, nil)
		if err != nil {
			r.t.Fatalf("%s: our reply does not parse: %v", e.file, err)
		}
		wb, _ := wire.ParseReply(want, nil)
		if len(gb) != len(wb) {
			r.t.Fatalf("%s: %d blocks, captured %d", e.file, len(gb), len(wb))
		}
		for i := range wb {
			r.compare(e.file, &gb[i], &wb[i])
		}
	}
	if extra := r.c.recv(100 * time.Millisecond); extra != nil {
		r.t.Errorf("unexpected extra datagram of %d bytes", len(extra))
	}
}

// stateful replays a step with links: requests are sent when the capture
// sent them, that is after the replies that preceded them (so
// acknowledgements follow deliveries as they did); each captured reply
// block is matched with our next block of the same link.
func (r *replayer) stateful(tl []timelineEntry) {
	for _, e := range tl {
		if e.req {
			r.send(e.file)
			continue
		}
		want, err := wire.ParseReply(fixtures.Read(r.t, "tine", e.file), nil)
		if err != nil {
			r.t.Fatal(err)
		}
		for i := range want {
			got := r.next(e.file, want[i].Header.SubID)
			r.compare(e.file, &got, &want[i])
		}
	}
	// After the CANCEL the links must fall silent. Deliveries the server
	// made before it read the CANCEL may still be on their way: a SINGLE
	// request sent now is answered after them (a client's requests are
	// served in order), so everything after its reply must be silence.
	marker := wire.Link{
		Subscription: wire.Subscription{MTU: wire.MaxInputData, NumBlocks: 1, BlockNum: 1, LinkID: 999, Mode: wire.Single, BlockID: 1, PollingInterval: 1000, StartTime: 42},
		Contract:     wire.Contract{Property: "SRVVERSION", Device: "tioga", EqmName: "TIOGA", SizeOut: 32, Access: wire.AccessRead, FormatIn: wire.Null, FormatOut: wire.Text},
	}
	b, err := wire.AppendRequest(nil, "ROOT", []wire.Link{marker})
	if err != nil {
		r.t.Fatal(err)
	}
	r.c.send(b)
	deadline := time.Now().Add(3 * time.Second)
	for found := false; !found; {
		d := r.c.recv(time.Until(deadline))
		if d == nil {
			r.t.Fatal("no reply to the marker request")
		}
		blocks, _ := wire.ParseReply(d, nil)
		for _, blk := range blocks {
			found = found || blk.Header.SubID == 999 && blk.Header.StartTime == 42
		}
	}
	if b := r.c.recv(800 * time.Millisecond); b != nil {
		r.t.Errorf("datagram of %d bytes after every link was cancelled", len(b))
	}
}

// next returns our next reply block of link id, receiving as needed.
func (r *replayer) next(file string, id uint16) wire.ReplyBlock {
	deadline := time.Now().Add(3 * time.Second)
	for {
		for i, b := range r.queue {
			if b.Header.SubID == id {
				r.queue = append(r.queue[:i], r.queue[i+1:]...)
				return b
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: no reply block for link %d", file, id)
		}
		d := r.c.recv(time.Until(deadline))
		if d == nil {
			continue
		}
		blocks, err := wire.ParseReply(d, nil)
		if err != nil {
			r.t.Fatalf("our reply does not parse: %v", err)
		}
		r.queue = append(r.queue, blocks...)
	}
}

// compare checks one of our reply blocks against the captured one.
func (r *replayer) compare(file string, got, want *wire.ReplyBlock) {
	t := r.t
	t.Helper()
	g, w := got.Header, want.Header
	where := fmt.Sprintf("%s link %d block %d", file, w.SubID, w.BlockNum)
	exact := []struct {
		name      string
		got, want int64
	}{
		{"msgSize", int64(g.MsgSize), int64(w.MsgSize)},
		{"subId", int64(g.SubID), int64(w.SubID)},
		{"compCode", int64(g.CompCode), int64(w.CompCode)},
		{"numblks", int64(g.NumBlocks), int64(w.NumBlocks)},
		{"blknum", int64(g.BlockNum), int64(w.BlockNum)},
		{"mtu", int64(g.MTU), int64(w.MTU)},
		{"format", int64(g.Format), int64(w.Format)},
		{"srvProtocol", int64(g.Protocol), int64(w.Protocol)},
		{"starttime", int64(g.StartTime), int64(w.StartTime)},
		{"stsSize", int64(g.StsSize), int64(w.StsSize)},
		{"stsCode", int64(g.StsCode), int64(w.StsCode)},
		{"usrStamp", int64(g.UsrStamp), int64(w.UsrStamp)},
		{"sysStamp", int64(g.SysStamp), int64(w.SysStamp)},
	}
	for _, f := range exact {
		if f.got != f.want {
			t.Errorf("%s: %s = %d, captured %d", where, f.name, f.got, f.want)
		}
	}
	if !bytes.Equal(got.Status, want.Status) {
		t.Errorf("%s: status %q, captured %q", where, got.StatusText(), want.StatusText())
	}
	if ts := g.Time(); time.Since(ts) > time.Hour || time.Until(ts) > time.Minute {
		t.Errorf("%s: data timestamp %v is not current", where, ts)
	}
	lk := r.links[w.SubID]
	if lk == nil {
		t.Fatalf("%s: reply for a link never requested", where)
	}
	prop := strings.ToLower(lk.con.Property)
	switch {
	case prop == "frame-count" && len(want.Data) > 0:
		if len(got.Data) != len(want.Data) {
			t.Errorf("%s: %d data bytes, captured %d", where, len(got.Data), len(want.Data))
			break
		}
		f := g.DataFormat()
		x := wire.FloatAt(got.Data, f, 0)
		if x < 1 || x != float64(int64(x)) {
			t.Errorf("%s: frame-count %g", where, x)
		}
		if (lk.mode == wire.DataChange || lk.mode == wire.Event) && lk.prevData != nil {
			if prev := wire.FloatAt(lk.prevData, f, 0); x != prev+1 {
				t.Errorf("%s: frame-count went from %g to %g (every change is delivered)", where, prev, x)
			}
		}
	case prop == "srvstarttime":
		if len(got.Data) != 4 || binary.LittleEndian.Uint32(got.Data) != r.srvStart {
			t.Errorf("%s: SRVSTARTTIME data %x, want our start time %d", where, got.Data, r.srvStart)
		}
	default:
		if !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: data differs (%d bytes, captured %d)\n got %x\nwant %x", where, len(got.Data), len(want.Data),
				got.Data[:min(len(got.Data), 64)], want.Data[:min(len(want.Data), 64)])
		}
	}
	if lk.mode == wire.Poll {
		switch {
		case lk.delivered == 0:
			base := pollCounter(lk.interval, 0)
			if int(g.Counter) < base || int(g.Counter) >= base+100 {
				t.Errorf("%s: first POLL counter %d outside [%d, %d)", where, g.Counter, base, base+100)
			}
			if g.XferReason != wire.XferPollChanged {
				t.Errorf("%s: first POLL xferReason %#x, want 0x18", where, g.XferReason)
			}
		default:
			if g.Counter != lk.prevCount-1 {
				t.Errorf("%s: POLL counter %d after %d", where, g.Counter, lk.prevCount)
			}
			wantX := wire.XferSingle
			if !bytes.Equal(got.Data, lk.prevData) {
				wantX = wire.XferPollChanged
			}
			if g.XferReason != wantX {
				t.Errorf("%s: POLL xferReason %#x, want %#x", where, g.XferReason, wantX)
			}
		}
	} else {
		if g.Counter != w.Counter {
			t.Errorf("%s: counter %d, captured %d", where, g.Counter, w.Counter)
		}
		if g.XferReason != w.XferReason {
			t.Errorf("%s: xferReason %#x, captured %#x", where, g.XferReason, w.XferReason)
		}
	}
	lk.delivered++
	lk.prevCount = g.Counter
	lk.prevData = append([]byte(nil), got.Data...)
}
