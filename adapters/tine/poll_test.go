package tine

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"tioga/adapters/tine/wire"
)

// TestPollChangedMatchesData: a POLL delivery is marked changed (0x18)
// exactly when its data differ from the previous delivery's, however the
// property's updates interleave with the polls (a setter in a tight loop
// against a 10 ms POLL link). TestReplayCaptures/poll-frame-count flaked
// when a poll fell between the update's value and its changed flag.
func TestPollChangedMatchesData(t *testing.T) {
	r := newRefTree(t)
	s := startServer(t, r.tree, Config{MinInterval: 10 * time.Millisecond})
	c := newUDPClient(t, s)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := int32(2); ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			r.frameCount.SetInt32(n)
			if n%64 == 0 {
				time.Sleep(time.Millisecond) // unchanged polls too
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	l := wire.Link{
		Subscription: wire.Subscription{LinkID: 7, Mode: wire.Poll, BlockID: 1, NumBlocks: 1, BlockNum: 1, MTU: 1246,
			PollingInterval: 10, StartTime: 1796280938},
		Contract: wire.Contract{Property: "frame-count", Device: "tioga", EqmName: "TIOGA", SizeOut: 1, Access: wire.AccessRead,
			FormatIn: wire.Null, FormatOut: wire.Int32},
	}
	b, err := wire.AppendRequest(nil, "ROOT", []wire.Link{l})
	if err != nil {
		t.Fatal(err)
	}
	c.send(b)
	var prev []byte
	changed, same := 0, 0
	for i := 0; i < 150; i++ {
		d := c.recv(5 * time.Second)
		blocks, err := wire.ParseReply(d, nil)
		if err != nil || len(blocks) != 1 || blocks[0].Header.CompCode != 0 {
			t.Fatalf("delivery %d: %v %+v", i, err, blocks)
		}
		h := blocks[0].Header
		if i > 0 {
			differ := !bytes.Equal(blocks[0].Data, prev)
			if want := map[bool]wire.XferReason{true: wire.XferPollChanged, false: wire.XferSingle}[differ]; h.XferReason != want {
				t.Fatalf("delivery %d: data %x after %x, xferReason %#x, want %#x", i, blocks[0].Data, prev, h.XferReason, want)
			}
			if differ {
				changed++
			} else {
				same++
			}
		}
		prev = append(prev[:0], blocks[0].Data...)
	}
	t.Logf("%d changed, %d unchanged deliveries", changed, same)
}
