package client_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"tioga/adapters/tine"
	"tioga/adapters/tine/addrdb"
	"tioga/adapters/tine/client"
	"tioga/adapters/tine/internal/tinecap"
	"tioga/adapters/tine/wire"
	"tioga/properties"
)

func wantCode(t *testing.T, err error, code wire.CompCode) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("want completion code %d (%s), got %v", code, code, err)
	}
	return e
}

// TestReadsCoerceFormats reads each property in other formats than its
// own: numbers convert (truncating toward zero, saturating), text is cut to
// the asked length, arrays to the asked count, bools read as any number.
func TestReadsCoerceFormats(t *testing.T) {
	r := newRig(t, tine.Config{})
	c := r.dial(t, client.Options{})
	ctx := ctxT(t)
	r.frameCount.SetInt32(70000)
	for _, tc := range []struct {
		a    client.Address
		f    wire.Format
		n    int
		want string
	}{
		{tioga("frame-count"), wire.Int32, 1, "70000"},
		{tioga("frame-count"), wire.Double, 1, "70000"},
		{tioga("frame-count"), wire.Float, 1, "70000"},
		{tioga("frame-count"), wire.Int16, 1, "32767"}, // saturates
		{tioga("frame-count"), wire.Int64, 1, "70000"},
		{tioga("frame-count"), wire.Text, 64, "70000"},
		{tioga("frame-count"), wire.Int32, 0, ""},
		{tioga("average-speed"), wire.Int32, 1, "12"},
		{tioga("average-speed"), wire.Byte, 1, "12"},
		{tioga("status"), wire.Text, 64, "idle"},
		{tioga("status"), wire.Text, 2, "id"},
		{tioga("status"), wire.Name16, 1, "idle"},
		{tioga("threshold"), wire.Float, 1, "0.5"},
		{tracker("load-state"), wire.Int32, 1, "0"},
		{tracker("load-state"), wire.Boolean, 1, "0"},
		{tracker("load-state"), wire.Int16, 1, "0"},
		// The equipment module is the client's guess from its database;
		// the device name finds the server when it names none.
		{client.Address{Module: "WHOEVER", Device: "img-tracker", Property: "LOAD-STATE"}, wire.Int32, 1, "0"},
	} {
		d, err := c.Get(ctx, tc.a, tc.f, tc.n)
		if err != nil {
			t.Fatalf("%s as %s: %v", tc.a, tc.f, err)
		}
		if d.Format != tc.f || d.String() != tc.want {
			t.Errorf("%s as %s x%d: %s %q, want %q", tc.a, tc.f, tc.n, d.Format, d.String(), tc.want)
		}
	}
	r.loadState.SetBool(true)
	if d, _ := c.Get(ctx, tracker("load-state"), wire.Boolean, 1); d.String() != "1" || len(d.Bytes) != 4 {
		t.Errorf("bool as BOOLEAN: %x", d.Bytes)
	}
	// Records are rows x width elements; a short request gets the first ones.
	rec := make([]float32, 0, 40)
	for i := 0; i < 10; i++ {
		rec = append(rec, float32(i), float32(i*10), 0.5, 2.5)
	}
	if err := r.dozor.Set(properties.Float32Records(4, rec)); err != nil {
		t.Fatal(err)
	}
	d, err := c.Get(ctx, tioga("dozor-pass"), wire.Double, 6)
	if err != nil {
		t.Fatal(err)
	}
	if xs, _ := d.Floats(); len(xs) != 6 || xs[4] != 1 || xs[5] != 10 {
		t.Errorf("dozor-pass[:6] as DOUBLE = %v", xs)
	}
	if d, _ := c.Get(ctx, tioga("dozor-pass"), wire.Float, 1000); d.Len() != 40 {
		t.Errorf("more asked than exist: %d elements sent", d.Len())
	}
	// A query: the input of a read is the frame number.
	in, _ := wire.NumberData(wire.Int32, 7)
	rep, err := c.Call(ctx, client.Request{Address: tioga("spot-list"), Format: wire.Float, Size: 3000, Input: &in})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Data.String() != "7 1 100 7 2 200" {
		t.Errorf("spot-list of frame 7: %s", rep.Data)
	}
	neg, _ := wire.NumberData(wire.Int32, -1)
	_, err = c.Call(ctx, client.Request{Address: tioga("spot-list"), Format: wire.Float, Size: 3000, Input: &neg})
	wantCode(t, err, wire.OutOfRange)
}

// TestWritesAndCompletionCodes: writes convert their input, and every kind
// of refusal has its completion code and a status text saying why.
func TestWritesAndCompletionCodes(t *testing.T) {
	r := newRig(t, tine.Config{})
	c := r.dial(t, client.Options{})
	ctx := ctxT(t)
	in, _ := wire.NumberData(wire.Double, 2.75)
	if err := c.Set(ctx, tioga("threshold"), in); err != nil {
		t.Fatal(err)
	}
	if r.threshold.Value().Float() != 2.75 {
		t.Fatalf("threshold = %v", r.threshold.Value())
	}
	i3, _ := wire.NumberData(wire.Int32, 3)
	if err := c.Set(ctx, tioga("threshold"), i3); err != nil || r.threshold.Value().Float() != 3 {
		t.Fatalf("INT32 3 written to a DOUBLE: %v, %v", err, r.threshold.Value())
	}
	// A write that wants the value back (access READ|WRITE).
	f4, _ := wire.NumberData(wire.Float, 4.5)
	rep, err := c.Call(ctx, client.Request{Address: tioga("threshold"), Input: &f4, Write: true, Format: wire.Double, Size: 1})
	if err != nil || rep.Data.String() != "4.5" {
		t.Fatalf("write with read-back: %v %v", rep, err)
	}
	txt := wire.TextData("6.25")
	if err := c.Set(ctx, tioga("threshold"), txt); err != nil || r.threshold.Value().Float() != 6.25 {
		t.Fatalf("text written to a DOUBLE: %v", err)
	}
	e := wantCode(t, c.Set(ctx, tioga("threshold"), mustNum(wire.Double, 20)), wire.OutOfRange)
	if !strings.Contains(e.Status, "out of range") || !strings.Contains(e.Status, "[0, 10]") {
		t.Errorf("status %q", e.Status)
	}
	wantCode(t, c.Set(ctx, tioga("threshold"), wire.TextData("abc")), wire.IllegalFormat)
	wantCode(t, c.Set(ctx, tioga("threshold"), mustNum(wire.Double, 1, 2)), wire.IllegalDataSize)
	wantCode(t, c.Set(ctx, tioga("frame-count"), mustNum(wire.Int32, 5)), wire.IllegalReadWrite)
	wantCode(t, c.Set(ctx, tioga("NPROPS"), mustNum(wire.Int32, 5)), wire.IllegalReadWrite)
	_, err = c.Get(ctx, tioga("no-such-property"), wire.Int32, 1)
	if e := wantCode(t, err, wire.IllegalProperty); e.Status != "illegal property" {
		t.Errorf("status %q", e.Status)
	}
	_, err = c.Get(ctx, client.Address{Module: rideau, Device: "nobody", Property: "frame-count"}, wire.Int32, 1)
	wantCode(t, err, wire.IllegalDevice)
	_, err = c.Get(ctx, tioga("frame-count"), wire.Struct, 4)
	wantCode(t, err, wire.IllegalFormat)
	_, err = c.Get(ctx, tioga("reset"), wire.Int32, 1)
	wantCode(t, err, wire.IllegalReadWrite)
	// A command: the write performs it; a command without input gets its
	// zero value.
	if err := c.Set(ctx, tioga("reset"), mustNum(wire.Int32, 7)); err != nil || <-r.commands != 7 {
		t.Fatalf("command: %v", err)
	}
	if _, err := c.Call(ctx, client.Request{Address: tioga("reset"), Write: true, Format: wire.Null, Input: &wire.Data{Format: wire.Null}}); err != nil || <-r.commands != 0 {
		t.Fatalf("command without argument: %v", err)
	}
	// Bools accept any number format.
	if err := c.Set(ctx, tracker("load-state"), mustNum(wire.Int16, 1)); err != nil || !r.loadState.Value().Bool() {
		t.Fatalf("bool from INT16: %v", err)
	}
	if err := c.Set(ctx, tracker("load-state"), mustNum(wire.Boolean, 0)); err != nil || r.loadState.Value().Bool() {
		t.Fatalf("bool from BOOLEAN: %v", err)
	}
	if st := r.srv.Stats(); st.Writes != 8 || st.Errors < 9 {
		t.Errorf("stats %+v", st)
	}
}

func mustNum(f wire.Format, xs ...float64) wire.Data {
	d, err := wire.NumberData(f, xs...)
	if err != nil {
		panic(err)
	}
	return d
}

// TestWriteAccessLists: with user and network allow-lists, everyone may
// read, and only listed users from listed networks may write (code 105).
func TestWriteAccessLists(t *testing.T) {
	ctx := ctxT(t)
	for _, tc := range []struct {
		name  string
		cfg   tine.Config
		user  string
		allow bool
	}{
		{"user listed", tine.Config{WriteUsers: []string{"operator", "mxcube"}}, "Operator", true},
		{"user not listed", tine.Config{WriteUsers: []string{"mxcube"}}, "operator", false},
		{"network listed", tine.Config{WriteNets: []string{"10.0.0.0/8", "127.0.0.0/8"}}, "anyone", true},
		{"network not listed", tine.Config{WriteNets: []string{"192.168.14.0/24", "10.1.2.3"}}, "anyone", false},
		{"both, network fails", tine.Config{WriteUsers: []string{"operator"}, WriteNets: []string{"10.0.0.0/8"}}, "operator", false},
		{"both pass", tine.Config{WriteUsers: []string{"operator"}, WriteNets: []string{"127.0.0.1"}}, "operator", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.cfg)
			c := r.dial(t, client.Options{User: tc.user})
			if _, err := c.Get(ctx, tioga("threshold"), wire.Double, 1); err != nil {
				t.Fatalf("read refused: %v", err)
			}
			err := c.Set(ctx, tioga("threshold"), mustNum(wire.Double, 1))
			if tc.allow {
				if err != nil || r.threshold.Value().Float() != 1 {
					t.Fatalf("write refused: %v", err)
				}
				return
			}
			e := wantCode(t, err, wire.AccessDenied)
			if !strings.Contains(e.Status, strings.ToUpper(tc.user)) || r.threshold.Value().Float() != 0.5 {
				t.Errorf("status %q, threshold %v", e.Status, r.threshold.Value())
			}
			if st := r.srv.Stats(); st.WritesRefused != 1 {
				t.Errorf("refused writes counted %d", st.WritesRefused)
			}
		})
	}
	if _, err := tine.NewServer(newTree(&rig{}), tine.Config{WriteNets: []string{"not-a-net"}, Logger: logger(t)}); err == nil {
		t.Error("bad network accepted")
	}
}

// TestStockAndMetaProperties: what generic TINE clients ask every server.
func TestStockAndMetaProperties(t *testing.T) {
	r := newRig(t, tine.Config{Version: "4.5.6:test", FECName: "TIOGAFEC", PortOffset: 7})
	c := r.dial(t, client.Options{})
	ctx := ctxT(t)
	names, err := c.PropertyNames(ctx, rideau, "tioga")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "average-speed,dozor-pass,frame-count,reset,spectrum,spot-list,status,threshold" {
		t.Errorf("PROPS = %s", got)
	}
	infos, err := c.Properties(ctx, rideau, "tioga")
	if err != nil || len(infos) != 8 {
		t.Fatalf("%d records, %v", len(infos), err)
	}
	byName := map[string]wire.PropertyInfo{}
	for _, in := range infos {
		byName[in.Name] = in
	}
	th := byName["threshold"]
	if th.FormatOut != wire.Double || th.FormatIn != wire.Double || th.Access != 3 || th.Units != "sigma" || th.Min != 0 || th.Max != 10 ||
		th.SizeOut != 1 || th.SizeIn != 1 || th.Description != "spot detection threshold" {
		t.Errorf("threshold %+v", th)
	}
	dz := byName["dozor-pass"]
	if dz.FormatOut != wire.Float || dz.ArrayType != wire.ArrayRecords || dz.RowSize != 4 || dz.NumRows != 32767 || dz.SizeOut != 8_000_000 ||
		dz.Units != "A" || dz.Access != 1 || dz.FormatIn != wire.Null {
		t.Errorf("dozor-pass %+v", dz)
	}
	if sl := byName["spot-list"]; sl.FormatIn != wire.Int32 || sl.SizeIn != 1 || sl.Access != 1 {
		t.Errorf("spot-list %+v", sl)
	}
	if rs := byName["reset"]; rs.Access != 2 || rs.FormatIn != wire.Int32 {
		t.Errorf("reset %+v", rs)
	}
	if st := byName["status"]; st.FormatOut != wire.Text || st.SizeOut != 64 || st.Units != "none" || st.Max != 10 {
		t.Errorf("status %+v", st)
	}
	// PROPS with a property name as input: that one only.
	name := wire.TextData("threshold")
	rep, err := c.Call(ctx, client.Request{Address: tioga("PROPS"), Format: wire.Struct, Size: 10 * wire.PropInfoSize, Tag: wire.PropInfoTag, Input: &name})
	if err != nil {
		t.Fatal(err)
	}
	if one, _ := wire.ParsePropertyInfo(rep.Data.Bytes); len(one) != 1 || one[0].Name != "threshold" {
		t.Errorf("PROPS(threshold) = %+v", one)
	}
	devs, err := c.Devices(ctx, imgtrk)
	if err != nil || strings.Join(devs, ",") != "img-tracker" {
		t.Errorf("DEVICES = %v %v", devs, err)
	}
	for _, tc := range []struct {
		a    client.Address
		f    wire.Format
		n    int
		want string
	}{
		{tioga("threshold.EGU"), wire.Text, 16, "sigma"},
		{tioga("threshold.max"), wire.Double, 1, "10"},
		{tioga("threshold.MIN"), wire.Float, 1, "0"},
		{tioga("threshold.DESC"), wire.Text, 64, "spot detection threshold"},
		{tioga("frame-count.EGU"), wire.Text, 16, "none"},
		{tioga("dozor-pass.EGU"), wire.Text, 16, "A"},
		{tioga("SRVVERSION"), wire.Text, 32, "4.5.6:test"},
		{tioga("NPROPERTIES"), wire.Int16, 1, "8"},
		{client.Address{Module: rideau, Device: "#0", Property: "NDEVICES"}, wire.Int16, 1, "1"},
		{client.Address{Module: rideau, Property: "SRVDESC"}, wire.Text, 64, "Tioga streaming server"},
		{client.Address{Module: rideau, Property: "SRVSTARTTIME"}, wire.Int32, 1, itoa(r.srv.StartTime().Unix())},
	} {
		d, err := c.Get(ctx, tc.a, tc.f, tc.n)
		if err != nil {
			t.Fatalf("%s: %v", tc.a, err)
		}
		if d.String() != tc.want {
			t.Errorf("%s = %q, want %q", tc.a, d.String(), tc.want)
		}
	}
	stock, _ := c.Get(ctx, tioga("STOCKPROPS"), wire.Name16, 100)
	if len(stock.Names()) != len(tine.StockProperties()) {
		t.Errorf("STOCKPROPS %v", stock.Names())
	}
	// ADDRESSDB: every server name of the process, aliases included.
	db, err := c.Get(ctx, client.Address{Module: "ANY", Property: "ADDRESSDB"}, wire.Text, 8192)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := addrdb.ParseServers(db.Text())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range rows {
		got = append(got, "/"+s.Context+"/"+s.Name+"="+s.Module+"@"+s.FEC)
	}
	if strings.Join(got, " ") != "/P14/rideau=RIDEAU@TIOGAFEC /P14/tioga=RIDEAU@TIOGAFEC /P14/image-tracker=IMGTRK@TIOGAFEC" {
		t.Errorf("ADDRESSDB rows %v", got)
	}
}

func itoa(n int64) string {
	d, _ := wire.NumberData(wire.Int64, float64(n))
	return d.String()
}

// TestCallManyShareADatagram: several SINGLE requests go out in one
// datagram and their replies come back in one. The server's counters are
// compared, so nothing else may reach it: no watchdog link (its renewals
// flaked this under load), and a timeout long enough that a slow reply is
// never asked for twice.
func TestCallManyShareADatagram(t *testing.T) {
	r := newRig(t, tine.Config{})
	c := r.dial(t, client.Options{Watchdog: -1, Timeout: time.Minute, Retries: -1})
	ctx := ctxT(t)
	r.frameCount.SetInt32(42)
	before := r.srv.Stats()
	reps, err := c.CallMany(ctx, []client.Request{
		{Address: tioga("frame-count"), Format: wire.Int32, Size: 1},
		{Address: tioga("status"), Format: wire.Text, Size: 64},
		{Address: tioga("threshold"), Format: wire.Double, Size: 1},
		{Address: tioga("nothing"), Format: wire.Int32, Size: 1},
		{Address: tracker("load-state"), Format: wire.Int16, Size: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rep := range reps {
		if rep.Err() != nil {
			got = append(got, rep.Code.String())
		} else {
			got = append(got, rep.Data.String())
		}
	}
	if strings.Join(got, "|") != "42|idle|0.5|illegal property|0" {
		t.Errorf("replies %v", got)
	}
	after := r.srv.Stats()
	if after.Datagrams-before.Datagrams != 1 || after.Requests-before.Requests != 5 || after.Replies-before.Replies != 1 {
		t.Errorf("%d datagrams carried %d requests, answered by %d datagrams; want 1, 5, 1",
			after.Datagrams-before.Datagrams, after.Requests-before.Requests, after.Replies-before.Replies)
	}
}

// TestMultiBlockBothWays: a 1,000,000-record dozor-pass (16 MB, 11,236
// datagrams) read in one call arrives complete, over UDP (the server's
// max_udp_blocks lifted: this client asks for a 32 MB receive buffer) and
// over TCP; an input of 160,000 floats goes up in 517 blocks and is
// reassembled.
func TestMultiBlockBothWays(t *testing.T) {
	r := newRig(t, tine.Config{TCP: true, MaxUDPBlocks: -1})
	ctx := ctxT(t)
	const rows = 1_000_000
	rec := make([]float32, rows*4)
	for i := 0; i < rows; i++ {
		rec[4*i], rec[4*i+1], rec[4*i+2], rec[4*i+3] = float32(i), float32(i%97), float32(i%13)*0.25, 1.5+float32(i%7)
	}
	if err := r.dozor.Set(properties.Float32Records(4, rec)); err != nil {
		t.Fatal(err)
	}
	for _, tcp := range []bool{false, true} {
		c := r.dial(t, client.Options{TCP: tcp, Timeout: 10 * time.Second})
		rep, err := c.Call(ctx, client.Request{Address: tioga("dozor-pass"), Format: wire.Float, Size: rows * 4})
		if err != nil {
			t.Fatalf("tcp=%v: %v", tcp, err)
		}
		if rep.Blocks != 11236 || len(rep.Data.Bytes) != rows*16 {
			t.Fatalf("tcp=%v: %d blocks, %d bytes", tcp, rep.Blocks, len(rep.Data.Bytes))
		}
		for i, x := range rec {
			if got := math.Float32frombits(uint32(rep.Data.Bytes[4*i]) | uint32(rep.Data.Bytes[4*i+1])<<8 | uint32(rep.Data.Bytes[4*i+2])<<16 | uint32(rep.Data.Bytes[4*i+3])<<24); got != x {
				t.Fatalf("tcp=%v: element %d = %v, want %v", tcp, i, got, x)
			}
		}
	}
	// A 640 kB input in 450 blocks: on a loaded machine the server may
	// take longer than the default timeout to collect it.
	c := r.dial(t, client.Options{Timeout: 10 * time.Second})
	up := make([]float64, 160_000)
	for i := range up {
		up[i] = float64(i) / 4
	}
	in, _ := wire.NumberData(wire.Float, up...)
	if err := c.Set(ctx, tioga("spectrum"), in); err != nil {
		t.Fatal(err)
	}
	got := r.spectrum.Value().Float32s
	if len(got) != len(up) {
		t.Fatalf("%d elements arrived", len(got))
	}
	for i := range up {
		if float64(got[i]) != up[i] {
			t.Fatalf("element %d = %v", i, got[i])
		}
	}
}

// TestLargeOverUDPRefused: with the server's default max_udp_blocks, a
// transfer too large for a default client receive buffer is refused before
// any block leaves, with code 22 (resort to stream transport) and a status
// that names size and limit; the same read over TCP arrives complete, and
// one just within the limit over UDP too.
func TestLargeOverUDPRefused(t *testing.T) {
	r := newRig(t, tine.Config{TCP: true})
	ctx := ctxT(t)
	const rows = 20_000 // 320,000 bytes: 225 blocks of 1424
	rec := make([]float32, rows*4)
	for i := range rec {
		rec[i] = float32(i)
	}
	if err := r.dozor.Set(properties.Float32Records(4, rec)); err != nil {
		t.Fatal(err)
	}
	udp := r.dial(t, client.Options{Timeout: 5 * time.Second})
	_, err := udp.Call(ctx, client.Request{Address: tioga("dozor-pass"), Format: wire.Float, Size: rows * 4})
	var te *client.Error
	want := "resort to stream transport: 320000 bytes = 225 blocks over UDP, max_udp_blocks 48"
	if !errors.As(err, &te) || te.Code != wire.StreamTransport || !strings.HasPrefix(te.Status, want) || !strings.Contains(te.Status, "CM_STREAM") {
		t.Fatalf("over UDP: %v, want code %d %q...", err, wire.StreamTransport, want)
	}
	if st := r.srv.Stats(); st.TooLarge != 1 {
		t.Errorf("TooLarge = %d", st.TooLarge)
	}
	tcp := r.dial(t, client.Options{TCP: true, Timeout: 5 * time.Second})
	rep, err := tcp.Call(ctx, client.Request{Address: tioga("dozor-pass"), Format: wire.Float, Size: rows * 4})
	if err != nil || rep.Err() != nil || len(rep.Data.Bytes) != rows*16 {
		t.Fatalf("over TCP: %v %v, %d bytes", err, rep.Err(), len(rep.Data.Bytes))
	}
	// 48 blocks of 1424 bytes: 4,272 records, the most UDP carries.
	rep, err = udp.Call(ctx, client.Request{Address: tioga("dozor-pass"), Format: wire.Float, Size: 48 * 1424 / 4})
	if err != nil || rep.Err() != nil || rep.Blocks != 48 {
		t.Fatalf("48 blocks over UDP: %v %v, %d blocks", err, rep.Err(), rep.Blocks)
	}
}

// TestIncompleteReplySaysSo: when blocks of a multi-block reply are lost
// on the way (a relay drops block 5 of every transfer, as an overrun
// receive buffer drops datagrams), the call gives up with ErrIncomplete
// saying how many blocks arrived, not with "no reply".
func TestIncompleteReplySaysSo(t *testing.T) {
	r := newRig(t, tine.Config{MaxUDPBlocks: -1})
	rec := make([]float32, 4*2000) // 32,000 bytes: 23 blocks
	for i := range rec {
		rec[i] = float32(i)
	}
	if err := r.dozor.Set(properties.Float32Records(4, rec)); err != nil {
		t.Fatal(err)
	}
	relay, err := tinecap.Start("127.0.0.1:0", r.srv.Addr().String(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	relay.DropReply = func(b []byte) bool {
		blocks, err := wire.ParseReply(b, nil)
		return err == nil && len(blocks) == 1 && blocks[0].Header.NumBlocks > 1 && blocks[0].Header.BlockNum == 5
	}
	t.Cleanup(relay.Close)
	c, err := client.Dial(relay.Addr().String(), client.Options{Timeout: 300 * time.Millisecond, Retries: 1, Watchdog: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, err = c.Call(ctxT(t), client.Request{Address: tioga("dozor-pass"), Format: wire.Float, Size: len(rec)})
	if !errors.Is(err, client.ErrIncomplete) || errors.Is(err, client.ErrTimeout) ||
		!strings.Contains(err.Error(), "22 of 23 blocks arrived, in 2 attempts") {
		t.Fatalf("got %v, want ErrIncomplete with 22 of 23 blocks", err)
	}
	if c.Abandoned() == 0 {
		t.Error("the incomplete transfer was not counted as abandoned")
	}
}
