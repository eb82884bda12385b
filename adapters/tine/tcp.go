package tine

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"tioga/adapters/tine/wire"
)

// TCP transports. Requests arrive in both as on UDP, each message starting
// with its u16 totalSize [verified for the stream port: tine.jar's CM_STREAM
// requests are the UDP request with mode flag 0x80]; messages are read by
// totalSize, and the connection is closed at the first that does not parse.
//
// Stream port (10003 + offset), tine.jar's CM_STREAM: each reply block is
// one message, u32 total (4 + 42 + status + data), then the 44-byte reply
// header without its msgSize field, then status and data [verified: a
// tine.jar 4.5.6 server's replies, and a tine.jar client reading a
// 1,000,000-record array from this server]. Blocks are those of UDP.
//
// Port 8503 + offset: the UDP framing on a stream, each reply datagram
// starting with its u16 total. Tioga's own client (tioga-ctl --tcp) uses
// it; UNVERIFIED against tine.jar, which never used that port in any
// capture.

const tcpWriteTimeout = 10 * time.Second

type tcpTransport struct {
	conn   *net.TCPConn
	stream bool
	buf    []byte
}

func (t *tcpTransport) send(b []byte) error {
	if t.stream {
		b = t.streamFrame(b)
	}
	_ = t.conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	_, err := t.conn.Write(b)
	if err != nil {
		t.conn.Close() // the reader sees it and ends the peer
	}
	return err
}

// streamFrame rewrites a reply datagram (u16 total, then blocks each
// starting with its u16 msgSize) into CM_STREAM messages: per block a u32
// total and the block without its msgSize.
func (t *tcpTransport) streamFrame(b []byte) []byte {
	out := t.buf[:0]
	for rest := b[2:]; len(rest) >= wire.ReplyHeaderSize; {
		n := int(binary.LittleEndian.Uint16(rest))
		if n < wire.ReplyHeaderSize || n > len(rest) {
			break // our own writer never builds this
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(n+2))
		out = append(out, rest[2:n]...)
		rest = rest[n:]
	}
	t.buf = out
	return out
}

func (s *Server) acceptTCP(l *net.TCPListener, stream bool) {
	defer s.wg.Done()
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn().Err(err).Msg("tine: TCP accept")
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if len(s.peers)+s.tcpPeers >= s.cfg.MaxClients {
			s.mu.Unlock()
			s.stats.busy.Add(1)
			c.Close()
			continue
		}
		s.tcpPeers++
		s.mu.Unlock()
		s.wg.Add(2) // the reader and its peer
		go s.serveTCP(c, stream)
	}
}

// serveTCP reads one connection's messages and feeds them to its peer.
func (s *Server) serveTCP(c *net.TCPConn, stream bool) {
	defer s.wg.Done()
	from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	p := newPeer(s, from, &tcpTransport{conn: c, stream: stream}, false)
	p.closing = make(chan struct{})
	go p.run()
	defer func() {
		c.Close()
		close(p.closing)
		<-p.quit
		s.mu.Lock()
		s.tcpPeers--
		s.mu.Unlock()
	}()
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		total := int(binary.LittleEndian.Uint16(hdr[:]))
		if total < wire.RequestHeaderSize+wire.LinkHeaderSize {
			s.stats.datagrams.Add(1)
			s.stats.malformed.Add(1)
			s.warnf(from.Addr(), "tine: TCP message of %d bytes from %s; closing", total, from)
			return
		}
		msg := make([]byte, total)
		copy(msg, hdr[:])
		if _, err := io.ReadFull(c, msg[2:]); err != nil {
			return
		}
		s.stats.datagrams.Add(1)
		m := s.parse(msg, from)
		if m == nil {
			return
		}
		select {
		case p.in <- m:
		case <-p.quit:
			return
		case <-s.done:
			return
		}
	}
}
