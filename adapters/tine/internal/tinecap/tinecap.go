// Package tinecap records TINE exchanges between a real client (tine.jar)
// and a server by standing between them: a UDP relay (one upstream socket
// per client endpoint, so the server sees distinct peers as the client's
// sockets are distinct) and a TCP relay. Every datagram, and every TCP
// segment as read, is kept in order with its direction, so that captures
// can be written as numbered files for the replay tests and compared
// field by field. It is a test and development tool: nothing in the server
// uses it.
package tinecap

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Packet is one captured datagram (or TCP read).
type Packet struct {
	ToServer bool
	TCP      bool
	Client   string // the client endpoint
	At       time.Time
	Data     []byte
}

// Proxy relays between clients and one upstream server.
type Proxy struct {
	udp      *net.UDPConn
	tcp      net.Listener
	upUDP    *net.UDPAddr
	upTCP    string
	mu       sync.Mutex
	packets  []Packet
	peers    map[string]*net.UDPConn
	wg       sync.WaitGroup
	done     chan struct{}
	closeOne sync.Once
	// ReplyDelay holds every UDP reply back this long before relaying it
	// (set before the first datagram; for timing experiments).
	ReplyDelay time.Duration
	// DropReply, when set (before the first datagram), drops the UDP
	// replies it returns true for, after recording them: a lossy network
	// for tests.
	DropReply func(b []byte) bool
}

// Start listens on udpListen (and tcpListen when not empty) and relays to
// upUDP and upTCP.
func Start(udpListen, upUDP, tcpListen, upTCP string) (*Proxy, error) {
	la, err := net.ResolveUDPAddr("udp", udpListen)
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", upUDP)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	p := &Proxy{udp: c, upUDP: ua, upTCP: upTCP, peers: map[string]*net.UDPConn{}, done: make(chan struct{})}
	if tcpListen != "" {
		if p.tcp, err = net.Listen("tcp", tcpListen); err != nil {
			c.Close()
			return nil, err
		}
		p.wg.Add(1)
		go p.acceptTCP()
	}
	p.wg.Add(1)
	go p.readUDP()
	return p, nil
}

func (p *Proxy) record(toServer, tcp bool, client string, b []byte) {
	p.mu.Lock()
	p.packets = append(p.packets, Packet{ToServer: toServer, TCP: tcp, Client: client, At: time.Now(), Data: append([]byte(nil), b...)})
	p.mu.Unlock()
}

func (p *Proxy) readUDP() {
	defer p.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := p.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p.record(true, false, from.String(), buf[:n])
		p.mu.Lock()
		up, ok := p.peers[from.String()]
		if !ok {
			up, err = net.DialUDP("udp", nil, p.upUDP)
			if err == nil {
				p.peers[from.String()] = up
				p.wg.Add(1)
				go p.back(up, from)
			}
		}
		p.mu.Unlock()
		if up != nil {
			_, _ = up.Write(buf[:n])
		}
	}
}

func (p *Proxy) back(up *net.UDPConn, client *net.UDPAddr) {
	defer p.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, err := up.Read(buf)
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && !ne.Timeout() {
				continue // ICMP unreachable of a server not yet up
			}
			return
		}
		p.record(false, false, client.String(), buf[:n])
		if p.DropReply != nil && p.DropReply(buf[:n]) {
			continue
		}
		if p.ReplyDelay > 0 {
			time.Sleep(p.ReplyDelay)
		}
		_, _ = p.udp.WriteToUDP(buf[:n], client)
	}
}

func (p *Proxy) acceptTCP() {
	defer p.wg.Done()
	for {
		c, err := p.tcp.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upTCP)
		if err != nil {
			c.Close()
			continue
		}
		name := c.RemoteAddr().String()
		p.wg.Add(2)
		go p.pipe(c, up, true, name)
		go p.pipe(up, c, false, name)
	}
}

func (p *Proxy) pipe(from, to net.Conn, toServer bool, name string) {
	defer p.wg.Done()
	defer to.Close()
	buf := make([]byte, 1<<16)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			p.record(toServer, true, name, buf[:n])
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Addr is the relay's UDP address (a port 0 in Start picks one).
func (p *Proxy) Addr() net.Addr { return p.udp.LocalAddr() }

// Packets returns what was captured so far and forgets it.
func (p *Proxy) Packets() []Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.packets
	p.packets = nil
	return out
}

// Close stops relaying.
func (p *Proxy) Close() {
	p.closeOne.Do(func() {
		close(p.done)
		p.udp.Close()
		if p.tcp != nil {
			p.tcp.Close()
		}
		p.mu.Lock()
		for _, c := range p.peers {
			c.Close()
		}
		p.mu.Unlock()
	})
	p.wg.Wait()
}

// WriteFiles writes the packets as <dir>/<name>.reqNNN.bin (client to
// server) and .repNNN.bin (server to client), numbered per direction in
// time order, the convention of shared/fixtures/tine.
func WriteFiles(dir, name string, pkts []Packet) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	nreq, nrep := 0, 0
	for _, pk := range pkts {
		kind := "rep"
		n := 0
		if pk.ToServer {
			kind = "req"
			nreq++
			n = nreq
		} else {
			nrep++
			n = nrep
		}
		if pk.TCP {
			kind = "tcp" + kind
		}
		f := filepath.Join(dir, fmt.Sprintf("%s.%s%03d.bin", name, kind, n))
		if err := os.WriteFile(f, pk.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
