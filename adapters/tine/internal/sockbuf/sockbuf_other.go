//go:build !linux

package sockbuf

import "net"

func force(*net.UDPConn, int, int) int { return 0 }
