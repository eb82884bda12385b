package tine

import (
	"fmt"

	"tioga/adapters/tine/wire"
)

// Large transfers over UDP.
//
// A reply of n blocks leaves as n datagrams back to back. A client whose
// UDP receive buffer cannot hold the burst loses blocks, and the server
// cannot see it: tine.jar sends one request and nothing else (no
// acknowledgement, no retry of a SINGLE read with execute(timeout, mode)),
// and when a transfer stays incomplete it waits out its timeout and
// returns 0, "success", with no data - the first block's header already set
// the link status [verified with tine.jar 4.5.6 on a default-tuned client:
// its receive buffer is 64 KB asked, 128 KB granted (cln.RECV_BUFFER_SIZE);
// 57 blocks arrived complete, 230 and 11,236 blocks ended in cc 0 with no
// data after the 10 s timeout]. What the server knows is the size, so it
// refuses, before sending anything, a transfer beyond Config.MaxUDPBlocks
// over UDP with completion code 22, "resort to stream transport" (TINE's
// code for exactly this), and a status naming the size, the limit and the
// way out: tine.jar shows the code and the text instead of silently stale
// data. TCP transfers (CM_STREAM on 10003+offset, Tioga's client on
// 8503+offset) have no such limit.
const defaultMaxUDPBlocks = 48

// tooLarge returns the error for a payload this peer may not receive in
// one transfer, or nil.
func (p *peer) tooLarge(pl *payload) *tineError {
	n := blocks(pl)
	if n > maxBlocks {
		return fail(wire.InvalidTransport, fmt.Sprintf("%d bytes need more than %d blocks", pl.size, maxBlocks))
	}
	if !p.udp || n <= p.s.cfg.MaxUDPBlocks {
		return nil
	}
	p.s.stats.tooLarge.Add(1)
	how := "read it over TCP (CM_STREAM)"
	if !p.s.cfg.TCP {
		how = "turn the server's TCP on (tcp = true), read over CM_STREAM"
	}
	return fail(wire.StreamTransport, fmt.Sprintf("%d bytes = %d blocks over UDP, max_udp_blocks %d (a client's receive buffer loses the rest); %s",
		pl.size, n, p.s.cfg.MaxUDPBlocks, how))
}
