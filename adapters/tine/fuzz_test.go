package tine

import (
	"net/netip"
	"testing"
	"time"

	"tioga/adapters/tine/wire"
)

type discard struct{ n int }

func (d *discard) send(b []byte) error {
	if _, err := wire.ParseReply(b, nil); err != nil {
		panic("server built a reply it cannot parse itself: " + err.Error())
	}
	d.n++
	return nil
}

// FuzzServerDatagram runs hostile datagrams through the whole request path
// of a peer (parse, resolve, read or write, attach, multi-block input,
// replies), synchronously and without the panic guard, seeded with every
// captured request. Nothing may panic, and every reply the server builds
// must parse.
func FuzzServerDatagram(f *testing.F) {
	reqs, _ := fixtureFiles(f)
	for _, name := range reqs {
		f.Add(mustRead(f, name))
	}
	ref := newRefTree(f)
	s, err := NewServer(ref.tree, Config{Listen: "127.0.0.1", UDPPort: -1, WriteUsers: []string{"ROOT"}, Logger: testLogger(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	from := netip.MustParseAddrPort("127.0.0.1:8054")
	f.Fuzz(func(t *testing.T, b []byte) {
		m := s.parse(b, from)
		if m == nil {
			return
		}
		p := newPeer(s, from, &discard{}, true)
		p.handleDatagram(m)
		p.runDue(time.Now().Add(time.Hour))
		p.w.flush()
		p.dropAll()
		putMsg(m)
		ref.threshold.SetFloat(0.5)
	})
}
