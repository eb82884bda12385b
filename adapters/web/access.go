package web

import (
	"fmt"
	"net/netip"
	"strings"
)

// writeAccess is the write allow-list, with the rules of TINE writes
// (adapters/tine's users.csv and ipnets.csv, from the same [tine]
// write_users and write_nets): user names and client networks. An empty
// list does not restrict.
type writeAccess struct {
	users map[string]bool
	nets  []netip.Prefix
}

func newWriteAccess(users, nets []string) (writeAccess, error) {
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
				return a, fmt.Errorf("web: write network %q: want CIDR (192.168.14.0/24) or an address", n)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		a.nets = append(a.nets, p.Masked())
	}
	return a, nil
}

// allows reports whether user at ip may write: it must pass every
// configured list.
func (a writeAccess) allows(user string, ip netip.Addr) bool {
	if a.users != nil && !a.users[strings.ToUpper(user)] {
		return false
	}
	if a.nets != nil {
		ip = ip.Unmap()
		for _, p := range a.nets {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
	return true
}
