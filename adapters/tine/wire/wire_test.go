package wire

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"tioga/sim/fixtures"
)

// captures returns the names of every captured datagram file, requests and
// replies, sorted.
func captures(t testing.TB) (reqs, reps []string) {
	t.Helper()
	dir := fixtures.Path(t, "tine")
	all, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		name := filepath.Base(p)
		switch {
		case strings.Contains(name, ".req"):
			reqs = append(reqs, name)
		case strings.Contains(name, ".rep"):
			reps = append(reps, name)
		}
	}
	sort.Strings(reqs)
	sort.Strings(reps)
	if len(reqs) != 38 || len(reps) != 345 {
		t.Fatalf("expected 38 requests and 345 replies in the TINE fixtures, found %d and %d", len(reqs), len(reps))
	}
	return reqs, reps
}

// TestRequestsRoundTrip decodes every captured request and encodes it back:
// the bytes up to the declared total must come out identical, and the
// padding tine.jar adds after the total must be ignored.
func TestRequestsRoundTrip(t *testing.T) {
	reqs, _ := captures(t)
	var r Request
	for _, name := range reqs {
		b := fixtures.Read(t, "tine", name)
		if err := r.Parse(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := AppendRequest(nil, r.Header.User, r.Links)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(out, b[:r.Header.TotalSize]) {
			t.Errorf("%s: re-encoded request differs\n got %x\nwant %x", name, out, b[:r.Header.TotalSize])
		}
	}
}

// TestRepliesRoundTrip decodes every captured reply and encodes it back.
func TestRepliesRoundTrip(t *testing.T) {
	_, reps := captures(t)
	var blocks []ReplyBlock
	for _, name := range reps {
		b := fixtures.Read(t, "tine", name)
		var err error
		blocks, err = ParseReply(b, blocks)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := []byte{0, 0}
		for i := range blocks {
			out = AppendReplyHeader(out, &blocks[i].Header)
			out = append(out, blocks[i].Status...)
			out = append(out, blocks[i].Data...)
		}
		le.PutUint16(out, uint16(len(out)))
		if !bytes.Equal(out, b) {
			t.Errorf("%s: re-encoded reply differs", name)
		}
	}
}

// TestDecodeMatchesIndex checks every field our decoders produce against
// the decoded lines of fixtures/tine/INDEX.md, which were written by the
// capture harness's own decoder: a second, independent reading of the same
// bytes.
func TestDecodeMatchesIndex(t *testing.T) {
	entries := parseIndex(t)
	reqs, reps := captures(t)
	seen := 0
	for _, name := range append(append([]string(nil), reqs...), reps...) {
		e, ok := entries[name]
		if !ok {
			t.Fatalf("%s not described in INDEX.md", name)
		}
		b := fixtures.Read(t, "tine", name)
		if strings.Contains(name, ".req") {
			var r Request
			if err := r.Parse(b); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{
				"total": itoa(r.Header.TotalSize), "user": r.Header.User,
				"protocol": itoa(r.Header.Protocol), "revision": itoa(r.Header.Revision),
			}
			for i, l := range r.Links {
				p := fmt.Sprintf("%d.", i)
				got[p+"msgSize"] = itoa(l.MsgSize)
				got[p+"ext"] = itoa(l.ExtSize)
				got[p+"mtu"] = itoa(l.MTU)
				got[p+"numblks"] = itoa(l.NumBlocks)
				got[p+"blknum"] = itoa(l.BlockNum)
				got[p+"linkId"] = itoa(l.LinkID)
				got[p+"mode"] = fmt.Sprintf("0x%04x", uint16(l.Mode))
				got[p+"blkid"] = itoa(l.BlockID)
				got[p+"pollingInterval"] = itoa(l.PollingInterval)
				got[p+"starttime"] = itoa(l.StartTime)
				got[p+"property"] = l.Property
				got[p+"device"] = l.Device
				got[p+"eqm"] = l.EqmName
				got[p+"sizeIn"] = itoa(l.SizeIn)
				got[p+"sizeOut"] = itoa(l.SizeOut)
				got[p+"hEqm"] = itoa(l.HEqmName)
				got[p+"access"] = fmt.Sprintf("0x%02x", uint8(l.Access))
				got[p+"fmtIn"] = itoa(uint8(l.FormatIn))
				got[p+"fmtOut"] = itoa(uint8(l.FormatOut))
				got[p+"tagIn"] = l.TagIn
				got[p+"tagOut"] = l.TagOut
				got[p+"inputDataBytes"] = itoa(len(l.Input))
				if len(l.Input) > 0 {
					got[p+"input"] = fmt.Sprintf("%x", l.Input)
				}
			}
			seen += compareFields(t, name, e, got)
			continue
		}
		blocks, err := ParseReply(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{"total": itoa(le.Uint16(b))}
		for i, blk := range blocks {
			h := blk.Header
			p := fmt.Sprintf("%d.", i)
			got[p+"msgSize"] = itoa(h.MsgSize)
			got[p+"linkId"] = itoa(h.SubID)
			got[p+"cc"] = itoa(uint16(h.CompCode))
			got[p+"numblks"] = itoa(h.NumBlocks)
			got[p+"blknum"] = itoa(h.BlockNum)
			got[p+"mtu"] = itoa(h.MTU)
			got[p+"fmt"] = itoa(h.Format)
			got[p+"counter"] = itoa(h.Counter)
			got[p+"protocol"] = itoa(h.Protocol)
			got[p+"xferReason"] = fmt.Sprintf("0x%x", uint16(h.XferReason))
			got[p+"starttime"] = itoa(h.StartTime)
			got[p+"stsSize"] = itoa(h.StsSize)
			got[p+"stsCode"] = itoa(uint16(h.StsCode))
			got[p+"time"] = fmt.Sprintf("%d.%06d", h.Timestamp, h.TimestampUSec)
			got[p+"usrStamp"] = itoa(h.UsrStamp)
			got[p+"sysStamp"] = itoa(h.SysStamp)
			if len(blk.Status) > 0 {
				got[p+"status"] = blk.StatusText()
			}
			if len(blk.Data) > 0 {
				got[p+"dataBytes"] = itoa(len(blk.Data))
				n := min(len(blk.Data), 48)
				got[p+"dataHex"] = fmt.Sprintf("%x", blk.Data[:n])
			}
		}
		seen += compareFields(t, name, e, got)
	}
	if seen < 383*10 {
		t.Fatalf("only %d fields compared; INDEX.md parsing broke", seen)
	}
}

func itoa[T ~int | ~int32 | ~uint8 | ~uint16 | ~uint32](v T) string {
	return strconv.FormatInt(int64(v), 10)
}

func compareFields(t *testing.T, name string, want, got map[string]string) int {
	t.Helper()
	n := 0
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: field %s missing from our decoding (INDEX says %q)", name, k, w)
			continue
		}
		if g != w {
			t.Errorf("%s: %s = %q, INDEX.md says %q", name, k, g, w)
		}
		n++
	}
	return n
}

var (
	entryRe = regexp.MustCompile("^- `([^`]+\\.bin)`")
	kvRe    = regexp.MustCompile(`(\w+)=('[^']*'|\S+)`)
	partRe  = regexp.MustCompile(`(sub|contract|blk|data|input data|status text)\[(\d+)\](?:@\d+)?: (.*)`)
)

// parseIndex reads INDEX.md into file name -> field -> value, with
// per-link fields prefixed by the link number ("0.mtu").
func parseIndex(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(fixtures.Path(t, "tine", "INDEX.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := entryRe.FindStringSubmatch(line); m != nil {
			cur = map[string]string{}
			out[m[1]] = cur
		}
		if cur == nil {
			continue
		}
		s := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- "))
		if strings.HasPrefix(s, "reqhdr:") {
			for _, kv := range kvRe.FindAllStringSubmatch(strings.SplitN(s, ";", 2)[0], -1) {
				cur[kv[1]] = strings.Trim(kv[2], "'")
			}
			continue
		}
		if strings.HasPrefix(s, "total=") {
			cur["total"] = strings.Fields(strings.TrimPrefix(s, "total="))[0]
			continue
		}
		for _, m := range partRe.FindAllStringSubmatch(s, -1) {
			kind, idx, rest := m[1], m[2]+".", m[3]
			switch kind {
			case "sub", "contract", "blk":
				for _, kv := range kvRe.FindAllStringSubmatch(rest, -1) {
					k, v := kv[1], strings.Trim(kv[2], "'")
					if k == "mode" || k == "fmtIn" || k == "fmtOut" || k == "fmt" {
						v = strings.SplitN(v, "(", 2)[0]
					}
					cur[idx+k] = v
				}
			case "input data":
				cur[idx+"input"] = strings.TrimSpace(rest)
			case "status text":
				cur[idx+"status"] = strings.Trim(strings.TrimSpace(rest), "'")
			case "data":
				fs := strings.Fields(rest)
				cur[idx+"dataBytes"] = fs[0]
				cur[idx+"dataHex"] = fs[2]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFormatSizesAndMTU(t *testing.T) {
	for _, c := range []struct {
		f        Format
		size, mt int
	}{
		{Int32, 4, 1424}, {Float, 4, 1424}, {Double, 8, 1424}, {Text, 1, 1426},
		{Int16, 2, 1426}, {Null, 0, 1426}, {Name64, 64, 1408}, {Struct, 1, 1426},
	} {
		if c.f.Size() != c.size || c.f.BlockMTU() != c.mt {
			t.Errorf("%s: size %d mtu %d, want %d %d", c.f, c.f.Size(), c.f.BlockMTU(), c.size, c.mt)
		}
	}
	if Double.InputMTU() != 1240 || Null.InputMTU() != 1246 {
		t.Errorf("input mtu DOUBLE %d NULL %d", Double.InputMTU(), Null.InputMTU())
	}
	if FormatField(Null) != 0xFFFF || FormatField(Int32) != 3 {
		t.Error("format field")
	}
	for _, s := range []string{"int32", "CF_INT32", "3", "long"} {
		if f, err := ParseFormat(s); err != nil || f != Int32 {
			t.Errorf("ParseFormat(%q) = %v %v", s, f, err)
		}
	}
	if _, err := ParseFormat("bogus"); err == nil {
		t.Error("bogus format parsed")
	}
}

func TestNumberConversions(t *testing.T) {
	// §8.1: FLOAT 12.5 read as INT32 is 12; huge values saturate.
	cases := []struct {
		f    Format
		x    float64
		want int64
	}{
		{Int32, 12.5, 12}, {Int32, -12.9, -12}, {Int32, 1e12, math.MaxInt32}, {Int16, 70000, math.MaxInt16},
		{Int16, -70000, math.MinInt16}, {Byte, -1, -1}, {Byte, 1000, -1 /* 255 read signed */}, {Int64, 1e30, math.MaxInt64},
		{Boolean, 0.5, 0}, {Boolean, 2, 1}, {Int32, math.NaN(), 0},
	}
	for _, c := range cases {
		b := AppendFloat(nil, c.f, c.x)
		if len(b) != c.f.Size() {
			t.Fatalf("%s: %d bytes", c.f, len(b))
		}
		if got := IntAt(b, c.f, 0); got != c.want {
			t.Errorf("%g as %s = %d, want %d", c.x, c.f, got, c.want)
		}
	}
	d, _ := NumberData(Double, 2.75)
	if fmt.Sprintf("%x", d.Bytes) != "0000000000000640" {
		t.Errorf("2.75 as DOUBLE = %x (write-threshold.req001.bin carries 0000000000000640)", d.Bytes)
	}
	if s := (Data{Format: Name16, Bytes: AppendName(AppendName(nil, "a", 16), "bc", 16)}).String(); s != "a,bc" {
		t.Errorf("names %q", s)
	}
}

func TestPropertyInfoRoundTrip(t *testing.T) {
	b := append(fixtures.Read(t, "tine", "query-propinfo.rep002.bin")[2+ReplyHeaderSize:],
		fixtures.Read(t, "tine", "query-propinfo.rep003.bin")[2+ReplyHeaderSize:]...)
	infos, err := ParsePropertyInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 6 {
		t.Fatalf("%d records", len(infos))
	}
	// client-output.txt: PROP dozor-pass size=32 fmt=FLOAT ... arrayType=4 rows=8 rowSize=4
	d := infos[2]
	if d.Name != "dozor-pass" || d.SizeOut != 32 || d.FormatOut != Float || d.ArrayType != 4 || d.NumRows != 8 || d.RowSize != 4 ||
		d.Units != "none" || d.Min != 0 || d.Max != 10 || d.Description != "dozor pass records (img,spots,score,res)" {
		t.Errorf("dozor-pass record %+v", d)
	}
	th := infos[5]
	if th.Name != "threshold" || th.Access != 3 || th.FormatIn != Double || th.SizeIn != 1 {
		t.Errorf("threshold record %+v", th)
	}
	var out []byte
	for i := range infos {
		out = AppendPropertyInfo(out, &infos[i])
	}
	if !bytes.Equal(out, b) {
		t.Error("re-encoded records differ")
	}
	if _, err := ParsePropertyInfo(b[:100]); err == nil {
		t.Error("truncated record accepted")
	}
}

func TestParseRejectsInconsistentSizes(t *testing.T) {
	good := fixtures.Read(t, "tine", "read-frame-count.req.bin")
	var r Request
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	for name, b := range map[string][]byte{
		"short":              good[:21],
		"total beyond bytes": mut(func(b []byte) { le.PutUint16(b, 400) }),
		"total below a link": mut(func(b []byte) { le.PutUint16(b, 100) }),
		"msgSize too small":  mut(func(b []byte) { le.PutUint16(b[22:], 100) }),
		"ext beyond msg":     mut(func(b []byte) { le.PutUint16(b[24:], 10) }),
		"stray bytes":        append(mut(func(b []byte) { le.PutUint16(b, 236) }), make([]byte, 10)...),
	} {
		if err := r.Parse(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := r.Parse(mut(func(b []byte) { le.PutUint16(b[18:], 5) })); err == nil || !strings.Contains(err.Error(), "protocol") {
		t.Errorf("level 5 header: %v", err)
	}
}

func TestLongDeviceNameUsesExtension(t *testing.T) {
	dev := strings.Repeat("d", 70)
	l := Link{Subscription: Subscription{LinkID: 1, Mode: Single, NumBlocks: 1, BlockNum: 1},
		Contract: Contract{Property: "p", Device: dev, EqmName: "E", FormatIn: Null, FormatOut: Int32, SizeOut: 1, Access: AccessRead}}
	b, err := AppendRequest(nil, "ME", []Link{l})
	if err != nil {
		t.Fatal(err)
	}
	var r Request
	if err := r.Parse(b); err != nil {
		t.Fatal(err)
	}
	if r.Links[0].Device != dev || r.Links[0].ExtSize != 8 {
		t.Fatalf("device %q ext %d", r.Links[0].Device, r.Links[0].ExtSize)
	}
}
