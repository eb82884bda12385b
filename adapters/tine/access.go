package tine

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// writeAccess is the write allow-list: TINE's users.csv (user names) and
// ipnets.csv (client networks).
//
// Without a network list, writes are allowed only from loopback and the
// networks of this host's own interfaces (found at start-up): a beamline
// server must not take commands from anyone who can reach its UDP port.
// To open writes deliberately, list the networks, e.g. write_nets =
// ["0.0.0.0/0", "::/0"] for everyone. The user name in a request is what
// the client claims (TINE does not authenticate it): write_users narrows
// writes to well-behaved clients, it is no protection against a hostile one;
// the network list is.
type writeAccess struct {
	users map[string]bool
	nets  []netip.Prefix
	// localDefault: nets is the default (loopback and the host's subnets),
	// not configured.
	localDefault bool
}

func newWriteAccess(users, nets []string) (writeAccess, error) {
	return newWriteAccessFrom(users, nets, hostPrefixes)
}

// newWriteAccessFrom is newWriteAccess with the host's networks given by
// local (tests).
func newWriteAccessFrom(users, nets []string, local func() []netip.Prefix) (writeAccess, error) {
	var a writeAccess
	for _, u := range users {
		u = strings.ToUpper(strings.TrimSpace(u))
		if u == "" {
			continue
		}
		if a.users == nil {
			a.users = map[string]bool{}
		}
		a.users[u] = true
	}
	for _, n := range nets {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		p, err := netip.ParsePrefix(n)
		if err != nil {
			ip, ierr := netip.ParseAddr(n)
			if ierr != nil {
				return a, fmt.Errorf("tine: write network %q: want CIDR (192.168.14.0/24) or an address", n)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		a.nets = append(a.nets, p.Masked())
	}
	if a.nets == nil {
		a.nets = append([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, local()...)
		a.localDefault = true
	}
	return a, nil
}

// hostPrefixes lists the networks of this host's interfaces.
func hostPrefixes() []netip.Prefix {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		ip = ip.Unmap()
		if ip.Is4() && ones > 32 {
			ones -= 96
		}
		if p, err := ip.Prefix(ones); err == nil && !ip.IsLoopback() {
			out = append(out, p)
		}
	}
	return out
}

// describe says who may write, for the start-up log.
func (a writeAccess) describe() string {
	nets := make([]string, len(a.nets))
	for i, p := range a.nets {
		nets[i] = p.String()
	}
	s := "from " + strings.Join(nets, ", ")
	if a.localDefault {
		s = "only from loopback and this host's networks (" + strings.Join(nets, ", ") + "; set write_nets to change)"
	}
	if a.users != nil {
		var us []string
		for u := range a.users {
			us = append(us, u)
		}
		s += " by " + strings.Join(us, ", ") + " (user names as the clients claim them)"
	}
	return s
}

// allows reports whether user at ip may write: it must pass every
// configured list.
func (a writeAccess) allows(user string, ip netip.Addr) bool {
	if a.users != nil && !a.users[strings.ToUpper(user)] {
		return false
	}
	return a.allowsAddr(ip)
}

// allowsAddr reports whether ip is on the write networks, whoever the user.
func (a writeAccess) allowsAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
