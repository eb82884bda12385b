package tine

import (
	"net"
	"testing"
	"time"

	"tioga/adapters/tine/wire"
)

// TestHoldAfterEarlyReplyRace plays tine.jar's synchronous read patterns
// (hold.go): a link executed again is held from its second read; reads on
// new links are held once the client waited out its timeout after a reply
// (what tine.jar does when the reply came before it marked the link
// active), longer when that recurs, remembered for the address and port.
// Reads back to back on fresh links (Tioga's Go client) are never held.
func TestHoldAfterEarlyReplyRace(t *testing.T) {
	r := newRefTree(t)
	s := startServer(t, r.tree, Config{})
	c := newUDPClient(t, s)
	// Long enough that a loaded machine never pauses the fast reads this
	// long by itself (a false symptom).
	const timeout = 500 * time.Millisecond
	read := func(id uint16, blk uint16) time.Duration {
		t.Helper()
		l := wire.Link{
			Subscription: wire.Subscription{LinkID: id, Mode: wire.Single, BlockID: blk, NumBlocks: 1, BlockNum: 1, MTU: 1246,
				PollingInterval: int32(timeout / time.Millisecond), StartTime: 1796280938},
			Contract: wire.Contract{Property: "frame-count", Device: "tioga", EqmName: "TIOGA", SizeOut: 1, Access: wire.AccessRead,
				FormatIn: wire.Null, FormatOut: wire.Int32},
		}
		b, err := wire.AppendRequest(nil, "ROOT", []wire.Link{l})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		c.send(b)
		d := c.recv(5 * time.Second)
		took := time.Since(t0)
		blocks, err := wire.ParseReply(d, nil)
		if err != nil || len(blocks) != 1 || blocks[0].Header.CompCode != 0 || blocks[0].Header.SubID != id {
			t.Fatalf("read %d/%d: %v %+v", id, blk, err, blocks)
		}
		return took
	}
	// Go-client style: a fresh link per call, back to back: not held.
	for i := uint16(1); i <= 5; i++ {
		read(100+i, 1)
	}
	if st := s.Stats(); st.Held != 0 {
		t.Fatalf("held without the symptom: %+v", st)
	}
	// One link executed again (a TLink in a loop): held from then on.
	read(1, 1)
	read(1, 2)
	if st := s.Stats(); st.Held != 1 {
		t.Fatalf("Held = %d after a link was executed again, want 1", st.Held)
	}
	for blk := uint16(3); blk <= 5; blk++ {
		if took := read(1, blk); took < firstHold {
			t.Errorf("reply after %v, want it held >= %v", took, firstHold)
		}
	}
	// A new TLink per read: the symptom (the next read a full timeout
	// after the reply; the sleep is the simulated client's behaviour, not
	// a wait for the server) makes the hold.
	c = newUDPClient(t, s)
	read(400, 1)
	time.Sleep(timeout + 10*time.Millisecond)
	read(401, 1)
	if st := s.Stats(); st.Held != 2 {
		t.Fatalf("Held = %d after the symptom, want 2", st.Held)
	}
	if took := read(402, 1); took < firstHold {
		t.Errorf("new link per read: reply after %v, want it held >= %v", took, firstHold)
	}
	// The symptom again doubles the hold, remembered for the endpoint.
	time.Sleep(timeout + 10*time.Millisecond)
	read(403, 1)
	if took := read(404, 1); took < 2*firstHold {
		t.Errorf("reply after %v, want it held >= %v after a second stall", took, 2*firstHold)
	}
	if st := s.Stats(); st.Held != 3 {
		t.Fatalf("Held = %d, want 3", st.Held)
	}
	if got := s.holds.get(c.conn.LocalAddr().(*net.UDPAddr).AddrPort()); got != 2*firstHold {
		t.Errorf("hold remembered for the client: %v, want %v", got, 2*firstHold)
	}
	// Another client endpoint is not held.
	c = newUDPClient(t, s)
	read(300, 1)
	if got := s.holds.get(c.conn.LocalAddr().(*net.UDPAddr).AddrPort()); got != 0 {
		t.Errorf("hold of a new client: %v", got)
	}
}
