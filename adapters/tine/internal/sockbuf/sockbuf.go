// Package sockbuf sizes UDP socket buffers for TINE's back-to-back
// multi-block transfers: a 1,000,000-record dozor-pass is 11,236 datagrams
// sent without pacing, and a receiver with Linux's default 212 KB buffer
// loses most of them (docs/tine-protocol.md §6).
package sockbuf

import "net"

// Raise asks for rcv and snd bytes of receive and send buffer (0 leaves one
// alone). The kernel caps the ordinary request at net.core.rmem_max and
// wmem_max; where the process may exceed them (Linux, CAP_NET_ADMIN) the
// forcing option is tried too. It returns the receive buffer obtained (0 if
// unknown). Failures are not errors: the socket works, only bursts may drop.
func Raise(c *net.UDPConn, rcv, snd int) int {
	if rcv > 0 {
		_ = c.SetReadBuffer(rcv)
	}
	if snd > 0 {
		_ = c.SetWriteBuffer(snd)
	}
	return force(c, rcv, snd)
}
