package tine

import (
	"testing"
	"time"

	"tioga/adapters/tine/wire"
)

// TestUDPLimit replays tine.jar's captured read of big-array (100,000
// floats, 281 blocks) against a server with the default max_udp_blocks:
// one error reply, code 22 and a status that says why and what to do,
// instead of 281 datagrams a default-tuned tine.jar would lose part of;
// with the limit raised the 281 blocks come.
func TestUDPLimit(t *testing.T) {
	for _, tc := range []struct {
		cfg    Config
		blocks int
		status string
	}{
		{Config{}, 0, "resort to stream transport: 400000 bytes = 281 blocks over UDP, max_udp_blocks 48 (a client's receive buffer loses the rest); turn the server's TCP on (tcp = true), read over CM_STREAM"},
		{Config{TCP: true, TCPPort: -1, StreamPort: -1}, 0, "resort to stream transport: 400000 bytes = 281 blocks over UDP, max_udp_blocks 48 (a client's receive buffer loses the rest); read it over TCP (CM_STREAM)"},
		{Config{MaxUDPBlocks: 281}, 281, ""},
	} {
		r := newRefTree(t)
		s := startServer(t, r.tree, tc.cfg)
		c := newUDPClient(t, s)
		c.send(mustRead(t, "read-big-array.req001.bin"))
		d := c.recv(5 * time.Second)
		blocks, err := wire.ParseReply(d, nil)
		if err != nil || len(blocks) != 1 {
			t.Fatalf("%+v: %v %d blocks", tc.cfg, err, len(blocks))
		}
		h := blocks[0].Header
		if tc.blocks == 0 {
			if h.CompCode != wire.StreamTransport || blocks[0].StatusText() != tc.status || h.NumBlocks != 1 {
				t.Errorf("%+v: code %d, %d blocks, status %q", tc.cfg, h.CompCode, h.NumBlocks, blocks[0].StatusText())
			}
			if extra := c.recv(50 * time.Millisecond); extra != nil {
				t.Errorf("%+v: a datagram after the refusal", tc.cfg)
			}
			if st := s.Stats(); st.TooLarge != 1 {
				t.Errorf("TooLarge = %d", st.TooLarge)
			}
			continue
		}
		if h.CompCode != 0 || int(h.NumBlocks) != tc.blocks {
			t.Errorf("%+v: code %d, %d blocks", tc.cfg, h.CompCode, h.NumBlocks)
		}
	}
}
