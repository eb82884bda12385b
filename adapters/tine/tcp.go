package tine

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"tioga/adapters/tine/wire"
)

// TCP transport (port 8503 + offset). UNVERIFIED: tine.jar listened on it
// but sent nothing over TCP in any capture. The framing used is the UDP
// one on a stream: each request message starts with its u16 totalSize and
// each reply datagram with its u16 total, so both directions are
// self-delimiting. Messages are read by totalSize, which is also why a
// client that pads messages over TCP (as tine.jar pads attach datagrams
// over UDP) would not be understood: the connection is closed at the first
// message that does not parse.

const tcpWriteTimeout = 10 * time.Second

type tcpTransport struct{ conn *net.TCPConn }

func (t tcpTransport) send(b []byte) error {
	_ = t.conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	_, err := t.conn.Write(b)
	if err != nil {
		t.conn.Close() // the reader sees it and ends the peer
	}
	return err
}

func (s *Server) acceptTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.AcceptTCP()
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
		go s.serveTCP(c)
	}
}

// serveTCP reads one connection's messages and feeds them to its peer.
func (s *Server) serveTCP(c *net.TCPConn) {
	defer s.wg.Done()
	from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	p := newPeer(s, from, tcpTransport{c}, false)
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
