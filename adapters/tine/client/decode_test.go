package client

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"tioga/adapters/tine/wire"
	"tioga/sim/fixtures"
)

// stepReplies feeds a step's captured reply datagrams, in capture order, to
// one Assembler and returns the complete transfers.
func stepReplies(t *testing.T, step string) []Reply {
	t.Helper()
	dir := fixtures.Path(t, "tine")
	files, _ := filepath.Glob(filepath.Join(dir, step+".rep*.bin"))
	if len(files) == 0 {
		t.Fatalf("no captured replies for %s", step)
	}
	sort.Strings(files)
	a := NewAssembler()
	var out []Reply
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := a.Add(b)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		out = append(out, rs...)
	}
	if a.Abandoned != 0 {
		t.Fatalf("%s: %d transfers abandoned", step, a.Abandoned)
	}
	return out
}

var (
	stepLine = regexp.MustCompile(`^STEP (\S+) OK (.*)$`)
	propLine = regexp.MustCompile(`^\s+PROP (\S+) (.*)$`)
	kvPair   = regexp.MustCompile(`(\w+)=("[^"]*"|\[[^\]]*\]|\S+)`)
)

func fields(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range kvPair.FindAllStringSubmatch(s, -1) {
		m[kv[1]] = kv[2]
	}
	return m
}

func list(s string) []string {
	s = strings.Trim(s, "[]")
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func floats(t *testing.T, d wire.Data) []float64 {
	t.Helper()
	xs, err := d.Floats()
	if err != nil {
		t.Fatal(err)
	}
	return xs
}

func fmtFloat(x float64) string {
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// TestDecodeCapturedReplies decodes every captured reply with the client's
// assembler and checks the values against what DESY's own client printed
// for the same datagrams (client-output.txt).
func TestDecodeCapturedReplies(t *testing.T) {
	f, err := os.Open(fixtures.Path(t, "tine", "client-output.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var props []map[string]string
	var propNames []string
	steps := map[string]map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := stepLine.FindStringSubmatch(sc.Text()); m != nil {
			steps[m[1]] = fields(m[2])
		}
		if m := propLine.FindStringSubmatch(sc.Text()); m != nil {
			propNames = append(propNames, m[1])
			props = append(props, fields(m[2]))
		}
	}
	if len(steps) != 23 || len(props) != 6 {
		t.Fatalf("client-output.txt: %d steps, %d PROP lines", len(steps), len(props))
	}
	checked := 0
	scalar := func(step string, want string) {
		t.Helper()
		rs := stepReplies(t, step)
		if len(rs) != 1 || rs[0].Err() != nil {
			t.Fatalf("%s: %d transfers, err %v", step, len(rs), rs[0].Err())
		}
		got := rs[0].Data.String()
		if rs[0].Data.Format == wire.Double || rs[0].Data.Format == wire.Float {
			got = fmtFloat(floats(t, rs[0].Data)[0])
		}
		if got != want {
			t.Errorf("%s: decoded %q, tine.jar printed %q", step, got, want)
		}
		if want := steps[step]["fmt"]; want != "" && rs[0].Data.Format.String() != want {
			t.Errorf("%s: format %s, tine.jar printed %s", step, rs[0].Data.Format, want)
		}
		checked++
	}
	for _, step := range []string{"read-frame-count", "read-frame-count-as-double", "read-average-speed", "read-average-speed-as-int32",
		"read-threshold", "read-threshold-as-float", "query-nprops"} {
		scalar(step, steps[step]["value"])
	}
	for _, step := range []string{"read-status", "read-status-short", "query-srvversion"} {
		scalar(step, strings.Trim(steps[step]["value"], `"`))
	}
	for _, step := range []string{"read-dozor-pass", "read-dozor-pass-as-double"} {
		rs := stepReplies(t, step)
		want := list(steps[step]["values"])
		xs := floats(t, rs[0].Data)
		if len(xs) != len(want) {
			t.Fatalf("%s: %d values, want %d", step, len(xs), len(want))
		}
		for i, x := range xs {
			if fmtFloat(x) != want[i] {
				t.Errorf("%s[%d] = %v, want %s", step, i, x, want[i])
			}
		}
		checked++
	}
	// write-threshold: the write's empty reply, then the read-back.
	if rs := stepReplies(t, "write-threshold"); len(rs) != 2 || rs[0].Err() != nil || len(rs[0].Data.Bytes) != 0 ||
		rs[0].Data.Format != wire.Null || fmtFloat(floats(t, rs[1].Data)[0]) != steps["write-threshold-readback"]["value"] {
		t.Errorf("write-threshold: %+v", rs)
	} else {
		checked++
	}
	for step, n := range map[string]int{"read-big-array": 100000, "read-big-array-1000": 1000} {
		rs := stepReplies(t, step)
		if len(rs) != 1 {
			t.Fatalf("%s: %d transfers", step, len(rs))
		}
		xs := floats(t, rs[0].Data)
		if len(xs) != n || strconv.Itoa(len(xs)) != steps[step]["n"] {
			t.Fatalf("%s: %d values", step, len(xs))
		}
		if fmtFloat(xs[n-1]) != steps[step]["last"] || xs[0] != 0 || xs[1] != 0.5 || xs[3] != 1.5 {
			t.Errorf("%s: first %v last %v", step, xs[:4], xs[n-1])
		}
		for i, x := range xs {
			if x != float64(i)*0.5 {
				t.Fatalf("%s[%d] = %v", step, i, x)
			}
		}
		if want := (n*4 + 1423) / 1424; rs[0].Blocks != want {
			t.Errorf("%s: %d blocks, want %d", step, rs[0].Blocks, want)
		}
		checked++
	}
	if rs := stepReplies(t, "read-unknown-property"); len(rs) != 1 {
		t.Fatal("read-unknown-property")
	} else if e, ok := rs[0].Err().(*Error); !ok || e.Code != 36 || e.Status != "illegal property" || steps["read-unknown-property"]["cc"] != "36(illegal" {
		t.Errorf("read-unknown-property: %v", rs[0].Err())
	} else {
		checked++
	}
	rs := stepReplies(t, "query-props")
	if names := rs[1].Data.Names(); strings.Join(names, ", ") != strings.Trim(steps["query-props"]["names"], "[]") || rs[0].Data.String() != "6" {
		t.Errorf("query-props: %v %v", rs[0].Data, names)
	} else {
		checked++
	}
	rs = stepReplies(t, "query-devices")
	if names := rs[1].Data.Names(); fmt.Sprint(names) != steps["query-devices"]["names"] || rs[0].Data.String() != "1" {
		t.Errorf("query-devices: %v %v", rs[0].Data, names)
	} else {
		checked++
	}
	rs = stepReplies(t, "query-propinfo")
	if len(rs) != 2 || rs[1].Blocks != 2 {
		t.Fatalf("query-propinfo: %d transfers", len(rs))
	}
	infos, err := wire.ParsePropertyInfo(rs[1].Data.Bytes)
	if err != nil || len(infos) != len(props) {
		t.Fatalf("query-propinfo: %v, %d records", err, len(infos))
	}
	for i, in := range infos {
		w := props[i]
		got := map[string]string{
			"size": strconv.Itoa(int(in.SizeOut)), "fmt": in.FormatOut.String(), "sizeIn": strconv.Itoa(int(in.SizeIn)),
			"fmtIn": in.FormatIn.String(), "access": strconv.Itoa(int(in.Access)), "arrayType": strconv.Itoa(int(in.ArrayType)),
			"rows": strconv.Itoa(int(in.NumRows)), "rowSize": strconv.Itoa(int(in.RowSize)), "min": fmtFloat(float64(in.Min)),
			"max": fmtFloat(float64(in.Max)), "units": `"` + in.Units + `"`, "desc": `"` + in.Description + `"`,
		}
		if in.Name != propNames[i] {
			t.Errorf("record %d: name %s, want %s", i, in.Name, propNames[i])
		}
		for k, v := range w {
			if got[k] != v {
				t.Errorf("PROP %s: %s = %s, tine.jar printed %s", in.Name, k, got[k], v)
			}
		}
	}
	checked++
	// Links: the values the callbacks of tine.jar's client saw, in order.
	for step, link := range map[string]uint16{"poll-frame-count": 1, "datachange-frame-count": 1, "event-frame-count": 1} {
		var got []string
		for _, r := range stepReplies(t, step) {
			if r.SubID == link {
				if r.Err() != nil {
					t.Fatalf("%s: %v", step, r.Err())
				}
				got = append(got, r.Data.String())
			}
		}
		if want := steps[step]["values"]; "["+strings.Join(got, ", ")+"]" != want {
			t.Errorf("%s: values %v, tine.jar's callbacks saw %s", step, got, want)
		}
		checked++
	}
	if checked != 22 {
		t.Errorf("%d steps checked", checked)
	}
}

// TestAssemblerRejectsInconsistentBlocks: a block whose size contradicts
// its header is an error, not a panic or a silently short array.
func TestAssemblerRejectsInconsistentBlocks(t *testing.T) {
	b := fixtures.Read(t, "tine", "read-big-array.rep002.bin")
	bad := append([]byte(nil), b[:len(b)-4]...) // block 2 of 281 four bytes short
	bad[0], bad[1] = byte(len(bad)), byte(len(bad)>>8)
	bad[2], bad[3] = byte(len(bad)-2), byte((len(bad)-2)>>8)
	if _, err := NewAssembler().Add(bad); err == nil {
		t.Fatal("short middle block accepted")
	}
	a := NewAssembler()
	a.MaxBytes = 1000
	if _, err := a.Add(b); err == nil {
		t.Fatal("transfer beyond MaxBytes accepted")
	}
}

// TestAssemblerSweepsStaleTransfers: a transfer whose last blocks never
// come is dropped by Sweep, not kept forever.
func TestAssemblerSweepsStaleTransfers(t *testing.T) {
	a := NewAssembler()
	for i := 1; i <= 3; i++ {
		if rs, err := a.Add(fixtures.Read(t, "tine", fmt.Sprintf("read-big-array.rep%03d.bin", i))); err != nil || len(rs) != 0 {
			t.Fatalf("block %d: %v %v", i, rs, err)
		}
	}
	if a.Partial() != 1 {
		t.Fatalf("%d partial transfers", a.Partial())
	}
	a.Sweep(time.Now().Add(-time.Hour))
	if a.Partial() != 1 {
		t.Fatal("a fresh transfer was swept")
	}
	a.Sweep(time.Now().Add(time.Second))
	if a.Partial() != 0 || a.Abandoned != 1 {
		t.Fatalf("partial %d, abandoned %d", a.Partial(), a.Abandoned)
	}
}
