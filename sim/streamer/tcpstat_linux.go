//go:build linux

package streamer

import (
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// kernelCarried is how many bytes the kernel has taken from ZeroMQ on the
// TCP connection fd: acknowledged by the receiver's host (tcpi_bytes_acked)
// plus still in the send queue (SIOCOUTQ). ZeroMQ's own queue is what is
// not in it. ok is false when fd is no longer that connection (peer
// differs) or the kernel does not say.
func kernelCarried(fd int, peer string) (uint64, bool) {
	if p, err := unix.Getpeername(fd); err != nil || sockaddrString(p) != peer {
		return 0, false
	}
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, false
	}
	outq, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil || outq < 0 {
		return 0, false
	}
	return ti.Bytes_acked + uint64(outq), true
}

// peerOf names the peer of the TCP connection fd ("" when unknown).
func peerOf(fd int) string {
	p, err := unix.Getpeername(fd)
	if err != nil {
		return ""
	}
	return sockaddrString(p)
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return fmtAddr(a.Addr[:], a.Port)
	case *unix.SockaddrInet6:
		return fmtAddr(a.Addr[:], a.Port)
	}
	return ""
}

func fmtAddr(ip []byte, port int) string {
	return net.JoinHostPort(net.IP(ip).String(), strconv.Itoa(port))
}
