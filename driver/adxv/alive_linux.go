//go:build linux

package adxv

import (
	"net"
	"syscall"
)

// alive reports whether a kept-open connection is still usable: ADXV never
// writes to its clients, so a readable end-of-file (or a reset) means it
// closed or restarted. The check reads without waiting (MSG_DONTWAIT), so
// a healthy connection costs one system call. Anything ADXV did send is
// read and discarded.
func alive(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = true
	var buf [256]byte
	cerr := rc.Read(func(fd uintptr) bool {
		for {
			n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_DONTWAIT)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return true // nothing to read: open
			case err != nil, n == 0:
				ok = false // reset, or end-of-file
				return true
			}
			// data: discard it and look again
		}
	})
	return ok && cerr == nil
}
