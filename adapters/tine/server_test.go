package tine

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"tioga/adapters/tine/wire"
	"tioga/device"
	"tioga/properties"
	"tioga/sim/fixtures"
)

// TestPollCounter: a POLL link's counter starts at 60 x m + r and counts
// down one per delivery; when it is spent the link is dropped, unless the
// client renewed it.
func TestPollCounter(t *testing.T) {
	l := &link{mode: wire.Poll, interval: 200 * time.Millisecond}
	l.renew(time.Now(), 11)
	want := []struct {
		counter uint16
		xfer    wire.XferReason
		changed bool
	}{{311, 0x18, false}, {310, 0x10, false}, {309, 0x18, true}, {308, 0x10, false}}
	for i, w := range want {
		c, x, ok := l.stamp(w.changed, false)
		if !ok || c != w.counter || x != w.xfer {
			t.Fatalf("delivery %d: %d %#x %v, want %d %#x", i, c, x, ok, w.counter, w.xfer)
		}
	}
	l = &link{mode: wire.Poll, interval: 2 * time.Second}
	l.renew(time.Now(), 0)
	for i := 0; i < 60; i++ {
		if _, _, ok := l.stamp(false, false); !ok {
			t.Fatalf("dropped after %d deliveries", i)
		}
	}
	if _, _, ok := l.stamp(false, false); ok {
		t.Fatal("a spent counter did not drop the link")
	}
	l.renew(time.Now(), 5)
	if c, _, ok := l.stamp(false, false); !ok || c != 65 {
		t.Fatalf("after renewal: %d %v", c, ok)
	}
}

// TestAckCounter: DATACHANGE/EVENT deliveries carry 10 after an
// acknowledgement and count down while unacknowledged (staying at 1); the
// link expires only when several went unacknowledged for LinkTimeout.
func TestAckCounter(t *testing.T) {
	cfg := Config{}.withDefaults()
	now := time.Now()
	l := &link{mode: wire.Event, interval: 30 * time.Second}
	l.renew(now, 0)
	step := func(changed, hb bool, wc uint16, wx wire.XferReason) {
		t.Helper()
		c, x, ok := l.stamp(changed, hb)
		if !ok || c != wc || x != wx {
			t.Fatalf("got %d %#x, want %d %#x", c, x, wc, wx)
		}
	}
	// event-frame-count: 10/0x8a, 9/0x18, ack, 10/0x0a, 9/0x18, ack, 10/0x0a.
	step(true, false, 10, 0x8a)
	step(true, false, 9, 0x18)
	l.renew(now, 0)
	step(true, false, 10, 0x0a)
	step(true, false, 9, 0x18)
	l.renew(now, 0)
	step(true, false, 10, 0x0a)
	step(false, true, 9, 0x14)
	for i := 0; i < 20; i++ {
		l.stamp(true, false)
	}
	step(true, false, 1, 0x18)
	if !l.expired(now.Add(cfg.LinkTimeout+time.Second), &cfg) || l.expired(now.Add(time.Second), &cfg) {
		t.Fatal("expiry")
	}
	l.renew(now, 0)
	l.stamp(true, false)
	l.stamp(true, false)
	if l.expired(now.Add(2*cfg.LinkTimeout), &cfg) {
		t.Fatal("expired after a single unacknowledged delivery")
	}
}

func TestWriteAccess(t *testing.T) {
	a, err := newWriteAccess([]string{"mxcube", " "}, []string{"10.0.0.0/8", "192.168.1.7", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	for _, c := range []struct {
		user string
		ip   netip.Addr
		ok   bool
	}{
		{"MXCUBE", ip("10.1.2.3"), true}, {"mxcube", ip("::ffff:10.1.2.3"), true}, {"MXCUBE", ip("192.168.1.7"), true},
		{"MXCUBE", ip("192.168.1.8"), false}, {"ROOT", ip("10.1.2.3"), false}, {"MXCUBE", ip("fd12::1"), true},
	} {
		if got := a.allows(c.user, c.ip); got != c.ok {
			t.Errorf("%s at %s: %v", c.user, c.ip, got)
		}
	}
	// Without write_nets: loopback and the host's own networks only.
	local := func() []netip.Prefix {
		return []netip.Prefix{netip.MustParsePrefix("192.168.14.0/24"), netip.MustParsePrefix("fd00:14::/64")}
	}
	def, _ := newWriteAccessFrom(nil, nil, local)
	for _, c := range []struct {
		ip netip.Addr
		ok bool
	}{
		{ip("127.0.0.1"), true}, {ip("::1"), true}, {ip("::ffff:127.0.0.1"), true}, {ip("192.168.14.77"), true},
		{ip("fd00:14::5"), true}, {ip("8.8.8.8"), false}, {ip("192.168.15.1"), false}, {ip("fd00:15::5"), false},
	} {
		if got := def.allows("ANYONE", c.ip); got != c.ok {
			t.Errorf("default lists: %s: %v, want %v", c.ip, got, c.ok)
		}
	}
	// Opened deliberately.
	open, _ := newWriteAccessFrom(nil, []string{"0.0.0.0/0", "::/0"}, local)
	if !open.allows("X", ip("8.8.8.8")) || !open.allows("X", ip("2001:db8::1")) {
		t.Error("write_nets 0.0.0.0/0 and ::/0 must let everyone write")
	}
	if hp := hostPrefixes(); len(hp) == 0 {
		t.Log("no non-loopback interface: the default allows loopback only")
	}
}

// TestMalformedDatagramsAreCounted: garbage is counted and not answered,
// a request that parses but cannot be served gets an error reply, and the
// server keeps serving.
func TestMalformedDatagramsAreCounted(t *testing.T) {
	ref := newRefTree(t)
	s := startServer(t, ref.tree, Config{})
	c := newUDPClient(t, s)
	good := fixtures.Read(t, "tine", "read-frame-count.req.bin")
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := [][]byte{{}, {1}, good[:21], good[:100], bytes.Repeat([]byte{0xff}, 1472)}
	for i := 0; i < 50; i++ {
		b := make([]byte, rng.IntN(300))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		garbage = append(garbage, b)
	}
	level5 := append([]byte(nil), good...)
	level5[18] = 5
	garbage = append(garbage, level5)
	for _, g := range garbage {
		c.send(g)
	}
	if d := c.recv(200 * time.Millisecond); d != nil {
		t.Fatalf("garbage answered with %d bytes", len(d))
	}
	if st := s.Stats(); st.Malformed < 50 || st.Malformed > uint64(len(garbage)) {
		t.Fatalf("malformed %d of %d", st.Malformed, len(garbage))
	}
	// Well-formed but unservable: each gets its completion code.
	for _, tc := range []struct {
		mut  func(l *wire.Link)
		code wire.CompCode
	}{
		{func(l *wire.Link) { l.Mode = wire.Register }, wire.IllegalMode},
		{func(l *wire.Link) { l.Mode = 9 }, wire.IllegalMode},
		{func(l *wire.Link) {
			l.Access, l.FormatIn, l.SizeIn, l.Input = wire.AccessWrite, wire.Double, 2, make([]byte, 8)
			l.Property = "threshold"
		}, wire.DataSizeMismatch},
		{func(l *wire.Link) { l.FormatOut = wire.Name16FI }, wire.IllegalFormat},
		{func(l *wire.Link) { l.Device = "#7" }, wire.IllegalDevice},
		{func(l *wire.Link) {
			l.NumBlocks, l.BlockNum, l.FormatIn, l.SizeIn, l.Input, l.MTU = 3, 2, wire.Double, 10, make([]byte, 8), 1240
		}, wire.DataSizeMismatch},
		{func(l *wire.Link) {
			l.NumBlocks, l.BlockNum, l.FormatIn, l.SizeIn, l.Input, l.MTU = 19355, 1, wire.Double, 3_000_000, make([]byte, 1240), 1240
		}, wire.IllegalDataSize},
		{func(l *wire.Link) { l.Mode, l.Access = wire.Poll, wire.AccessWrite }, wire.IllegalMode},
	} {
		var req wire.Request
		if err := req.Parse(good); err != nil {
			t.Fatal(err)
		}
		l := req.Links[0]
		tc.mut(&l)
		b, _ := wire.AppendRequest(nil, "ROOT", []wire.Link{l})
		c.send(b)
		d := c.recv(time.Second)
		blocks, err := wire.ParseReply(d, nil)
		if err != nil || len(blocks) != 1 || blocks[0].Header.CompCode != tc.code || blocks[0].Header.StsSize != wire.StatusSize {
			t.Fatalf("want code %d: %v %+v", tc.code, err, blocks)
		}
	}
	c.send(good)
	d := c.recv(time.Second)
	if blocks, _ := wire.ParseReply(d, nil); len(blocks) != 1 || blocks[0].Header.CompCode != 0 {
		t.Fatal("server stopped answering")
	}
}

// TestMultiBlockInput sends an input in several blocks, out of order and
// with a duplicate, as raw datagrams.
func TestMultiBlockInput(t *testing.T) {
	tree := device.NewTree()
	srv := device.NewServer("TEST", "X", "X", "")
	d := srv.MustAdd(device.New("d", ""))
	arr := d.Add(properties.Spec{Name: "arr", Elem: properties.Float64, Shape: properties.Array, MaxLen: 1000, Access: properties.Read | properties.Write})
	if err := tree.Add(srv); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, tree, Config{})
	c := newUDPClient(t, s)
	in := make([]byte, 0, 400*8)
	for i := 0; i < 400; i++ {
		in = wire.AppendFloat(in, wire.Double, float64(i)+0.5)
	}
	mtu := wire.Double.InputMTU()
	nb := (len(in) + mtu - 1) / mtu
	var dgrams [][]byte
	for k := 0; k < nb; k++ {
		l := wire.Link{
			Subscription: wire.Subscription{MTU: uint16(mtu), NumBlocks: uint16(nb), BlockNum: uint16(k + 1), LinkID: 5, Mode: wire.Single, BlockID: 7, PollingInterval: 1000, StartTime: 99},
			Contract:     wire.Contract{Property: "arr", Device: "d", EqmName: "X", SizeIn: 400, Access: wire.AccessWrite, FormatIn: wire.Double, FormatOut: wire.Null},
			Input:        in[k*mtu : min((k+1)*mtu, len(in))],
		}
		b, _ := wire.AppendRequest(nil, "ME", []wire.Link{l})
		dgrams = append(dgrams, b)
	}
	if nb != 3 {
		t.Fatalf("%d blocks", nb)
	}
	for _, i := range []int{2, 0, 0, 1} {
		c.send(dgrams[i])
	}
	blocks, err := wire.ParseReply(c.recv(time.Second), nil)
	if err != nil || blocks[0].Header.CompCode != 0 {
		t.Fatalf("%v %+v", err, blocks)
	}
	v := arr.Value()
	if v.Len() != 400 || v.Float64s[399] != 399.5 || v.Float64s[0] != 0.5 {
		t.Fatalf("array %v", v)
	}
}

// TestAddressDatabaseText pins the address-database output that the README
// tells users to paste into their TINE_HOME.
func TestAddressDatabaseText(t *testing.T) {
	tree := device.NewTree()
	r := device.NewServer("P14", "rideau", "", "Tioga, streaming server")
	tr := device.NewServer("P14", "image-tracker", "IMGTRK", "image tracker")
	for _, s := range []*device.Server{r, tr} {
		if err := tree.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := tree.Alias(r, "tioga"); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteAddressDatabase(&b, tree, Config{PortOffset: 7, FECName: "TIOGA1"}, "192.168.14.5"); err != nil {
		t.Fatal(err)
	}
	want := `# eqpdbase.csv
NAME,EQPMODULE,FECNAME,CONTEXT,SUBSYSTEM,DESCRIPTION
rideau,RIDEAU,TIOGA1,P14,TIOGA,Tioga; streaming server
tioga,RIDEAU,TIOGA1,P14,TIOGA,Tioga; streaming server
image-tracker,IMGTRK,TIOGA1,P14,TIOGA,image tracker

# fecaddr.csv
FEC_NAME,IP_ADDR,PORT_OFFSET
TIOGA1,192.168.14.5,7

# cshosts.csv: create it in TINE_HOME (it may be empty, or hold your
# usual rows without an ENS row), so that the client uses the two files above
# instead of looking for a name server.
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestNewServerValidates(t *testing.T) {
	tree := device.NewTree()
	for _, name := range []string{"abc", "abd"} {
		if err := tree.Add(device.NewServer("P14", name, "SAME", "")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewServer(tree, Config{UDPPort: -1, Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), "equipment module") {
		t.Errorf("shared module: %v", err)
	}
	ok := newRefTree(t).tree
	for _, cfg := range []Config{{Listen: "localhost"}, {FECName: "A,B"}, {PortOffset: -1}, {PortOffset: 60000}} {
		cfg.UDPPort = -1
		cfg.Logger = testLogger(t)
		if _, err := NewServer(ok, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestUnitsASCII: units reach TINE clients in ASCII.
func TestUnitsASCII(t *testing.T) {
	for in, want := range map[string]string{"": "none", "Å": "A", "µm": "um", "°C": "degC", "Hz": "Hz", "1/Å²": "1/A^2"} {
		if got := tineUnits(in); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}

// TestRepeatedWriteIsNotRepeated: a write sent again with the same link
// id, start time and blkid (its reply was lost) is answered again but not
// performed twice: a command runs once.
func TestRepeatedWriteIsNotRepeated(t *testing.T) {
	tree := device.NewTree()
	srv := device.NewServer("TEST", "X", "X", "")
	d := srv.MustAdd(device.New("d", ""))
	var runs atomic.Int32
	d.Add(properties.Spec{Name: "go", Elem: properties.Int32, Access: properties.Command}).
		OnWrite(func(context.Context, properties.Value) error { runs.Add(1); return nil })
	if err := tree.Add(srv); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, tree, Config{})
	c := newUDPClient(t, s)
	l := wire.Link{
		Subscription: wire.Subscription{MTU: 1244, NumBlocks: 1, BlockNum: 1, LinkID: 3, Mode: wire.Single, BlockID: 17, PollingInterval: 1000, StartTime: 5},
		Contract:     wire.Contract{Property: "go", Device: "d", EqmName: "X", SizeIn: 1, Access: wire.AccessWrite, FormatIn: wire.Int32, FormatOut: wire.Null},
		Input:        wire.AppendInt(nil, wire.Int32, 1),
	}
	b, _ := wire.AppendRequest(nil, "ME", []wire.Link{l})
	for i := 0; i < 3; i++ {
		c.send(b)
		blocks, err := wire.ParseReply(c.recv(time.Second), nil)
		if err != nil || blocks[0].Header.CompCode != 0 {
			t.Fatalf("reply %d: %v %+v", i, err, blocks)
		}
	}
	l.BlockID++
	b, _ = wire.AppendRequest(nil, "ME", []wire.Link{l})
	c.send(b)
	c.recv(time.Second)
	if n := runs.Load(); n != 2 {
		t.Fatalf("command ran %d times, want 2 (three copies of one request, then a new one)", n)
	}
}

// TestExportToNameServer: with Export on, each server name is registered
// by a write of EXPORT to the ENS (experimental layout, see export.go); a
// stand-in ENS receives the writes and answers them.
func TestExportToNameServer(t *testing.T) {
	ens, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ens.Close()
	ref := newRefTree(t)
	startServer(t, ref.tree, Config{Export: true, ENSAddress: ens.LocalAddr().String(), PortOffset: 7, FECName: "TIOGAFEC"})
	buf := make([]byte, 2048)
	_ = ens.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := ens.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	var req wire.Request
	if err := req.Parse(buf[:n]); err != nil {
		t.Fatal(err)
	}
	l := req.Links[0]
	if l.Property != "EXPORT" || l.EqmName != "ENSEQM" || l.Device != "TEST" || l.FormatIn != wire.Struct || l.TagIn != "SRVADDR" || len(l.Input) != 112 {
		t.Fatalf("registration %+v", l)
	}
	in := l.Input
	name := func(b []byte) string { return strings.TrimRight(string(b), "\x00") }
	if name(in[0:32]) != "TIOGA.SIM" || name(in[32:40]) != "TIOGA" || name(in[40:72]) != "TEST" || name(in[72:88]) != "TIOGAFEC" ||
		name(in[88:104]) != "127.0.0.1" || in[104] != 7 || in[108] != 6 {
		t.Fatalf("registration data %q", in)
	}
	h := wire.ReplyHeader{SubID: l.LinkID, NumBlocks: 1, BlockNum: 1, MTU: 1426, Format: 0xFFFF, Counter: 1, Protocol: 6, StartTime: l.StartTime, StsCode: wire.NotSignalled, MsgSize: 44}
	rep := wire.AppendReplyHeader([]byte{46, 0}, &h)
	if _, err := ens.WriteToUDPAddrPort(rep, from); err != nil {
		t.Fatal(err)
	}
}

// TestConfigFromTOML: the configuration reads from the project's TOML
// file format, durations as text.
func TestConfigFromTOML(t *testing.T) {
	var cfg Config
	_, err := toml.Decode(`
port_offset = 7
listen = "192.168.14.5"
tcp = true
write_users = ["mxcube", "operator"]
write_nets = ["192.168.14.0/24"]
fec_name = "TIOGA1"
heartbeat = "2s"
link_timeout = "90s"
export = false
`, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PortOffset != 7 || !cfg.TCP || cfg.Heartbeat != 2*time.Second || cfg.LinkTimeout != 90*time.Second ||
		len(cfg.WriteUsers) != 2 || cfg.WriteNets[0] != "192.168.14.0/24" || cfg.FECName != "TIOGA1" || cfg.Listen != "192.168.14.5" {
		t.Fatalf("%+v", cfg)
	}
	if err := cfg.withDefaults().validate(); err != nil {
		t.Fatal(err)
	}
}

// TestReattachReplacesOldIncarnation: a link id attached again with a new
// start time replaces the old link instead of doubling the deliveries.
func TestReattachReplacesOldIncarnation(t *testing.T) {
	ref := newRefTree(t)
	s := startServer(t, ref.tree, Config{})
	c := newUDPClient(t, s)
	for start := uint32(1); start <= 3; start++ {
		l := wire.Link{
			Subscription: wire.Subscription{MTU: 1246, NumBlocks: 1, BlockNum: 1, LinkID: 4, Mode: wire.Poll, BlockID: 1, PollingInterval: 1000, StartTime: start},
			Contract:     wire.Contract{Property: "frame-count", Device: "tioga", EqmName: "TIOGA", SizeOut: 1, Access: wire.AccessRead, FormatIn: wire.Null, FormatOut: wire.Int32},
		}
		b, _ := wire.AppendRequest(nil, "ROOT", []wire.Link{l})
		c.send(b)
		blocks, err := wire.ParseReply(c.recv(time.Second), nil)
		if err != nil || blocks[0].Header.StartTime != start {
			t.Fatalf("%v %+v", err, blocks)
		}
	}
	if n := s.Stats().Links; n != 1 {
		t.Fatalf("%d links, want 1", n)
	}
}

// TestWriteHookContext: a write hook runs with the client's timeout (a
// SINGLE request's pollingInterval) as its deadline, and the server's
// shutdown cancels a hook that is still waiting.
func TestWriteHookContext(t *testing.T) {
	tree := device.NewTree()
	srv := device.NewServer("TEST", "X", "X", "")
	d := srv.MustAdd(device.New("d", ""))
	deadline := make(chan time.Duration, 1)
	d.Add(properties.Spec{Name: "quick", Elem: properties.Int32, Access: properties.Command}).
		OnWrite(func(ctx context.Context, _ properties.Value) error {
			dl, ok := ctx.Deadline()
			if !ok {
				dl = time.Now().Add(time.Hour)
			}
			deadline <- time.Until(dl)
			return nil
		})
	entered, observed := make(chan struct{}), make(chan error, 1)
	d.Add(properties.Spec{Name: "wait", Elem: properties.Int32, Access: properties.Command}).
		OnWrite(func(ctx context.Context, _ properties.Value) error {
			close(entered)
			<-ctx.Done()
			observed <- ctx.Err()
			return ctx.Err()
		})
	if err := tree.Add(srv); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, tree, Config{})
	c := newUDPClient(t, s)
	request := func(prop string, linkID uint16, timeoutMillis int32) []byte {
		l := wire.Link{
			Subscription: wire.Subscription{MTU: 1244, NumBlocks: 1, BlockNum: 1, LinkID: linkID, Mode: wire.Single, BlockID: 1, PollingInterval: timeoutMillis, StartTime: 6},
			Contract:     wire.Contract{Property: prop, Device: "d", EqmName: "X", SizeIn: 1, Access: wire.AccessWrite, FormatIn: wire.Int32, FormatOut: wire.Null},
			Input:        wire.AppendInt(nil, wire.Int32, 1),
		}
		b, _ := wire.AppendRequest(nil, "ME", []wire.Link{l})
		return b
	}

	c.send(request("quick", 4, 1500))
	if blocks, err := wire.ParseReply(c.recv(time.Second), nil); err != nil || blocks[0].Header.CompCode != 0 {
		t.Fatalf("quick: %v %+v", err, blocks)
	}
	if left := <-deadline; left <= 0 || left > 1500*time.Millisecond {
		t.Fatalf("hook's deadline %v away, want within the client's 1.5 s timeout", left)
	}

	c.send(request("wait", 5, 600000))
	<-entered
	s.Close()
	if err := <-observed; !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiting hook saw %v at shutdown, want context.Canceled", err)
	}
}
