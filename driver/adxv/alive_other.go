//go:build !linux

package adxv

import (
	"errors"
	"net"
	"os"
	"time"
)

// alive reports whether a kept-open connection is still usable: ADXV never
// writes to its clients, so end-of-file (or a reset) means it closed or
// restarted. Without a non-blocking receive, the check waits a
// millisecond for either.
func alive(conn net.Conn) bool {
	var buf [256]byte
	for {
		if err := conn.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
			return false
		}
		_, err := conn.Read(buf[:])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = conn.SetReadDeadline(time.Time{})
			return true
		}
		if err != nil {
			return false
		}
	}
}
