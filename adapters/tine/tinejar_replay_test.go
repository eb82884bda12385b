package tine

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"tioga/adapters/tine/wire"
)

// TestReplayTineJar replays the exchanges the opt-in tine.jar check
// recorded between DESY's tine.jar client and this server
// (testdata/tinejar/session/NNN-<step>.req.bin and .rep.bin, in the order
// they crossed the wire, the step in the name approximate; TINEJAR_UPDATE=1 make check-tinejar rewrites them):
// default-format reads (CF_DEFAULT, size 65535), the TQuery helpers'
// queries (NPROPERTIES, PROPS with XPQS, NSTOCKPROPS, STOCKPROPS names and
// records, METAPROPS, APPVERSION, <property>.TMAX/.TMIN), a write and a
// synchronous read loop. Each request goes over real UDP, in order, to a
// server serving the same tree, and each reply must equal the recorded one
// field by field (data timestamps excepted: they are the time of the data,
// which differs between runs).
func TestReplayTineJar(t *testing.T) {
	files := sessionFiles(t, "testdata/tinejar/session")
	ct := newCheckTree(t, 8)
	s := startServer(t, ct.tree, Config{})
	c := newUDPClient(t, s)
	sent, compared := false, 0
	steps := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(f, ".req.bin"):
			c.send(b)
			sent = true
		case sent:
			got := c.recv(2 * time.Second)
			if got == nil {
				t.Fatalf("%s: no reply", f)
			}
			compareTineJarReply(t, filepath.Base(f), got, b)
			compared++
			steps[stepOf(f)] = true
		}
	}
	if len(steps) < 14 {
		t.Errorf("replies of %d steps compared, want the 14 make check-tinejar records", len(steps))
	}
	t.Logf("%d replies of %d steps equal to the recorded ones", compared, len(steps))
}

func sessionFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded tine.jar exchanges in %s (make check-tinejar TINEJAR_UPDATE=1 records them): %v", dir, err)
	}
	sort.Strings(files)
	return files
}

// stepOf is the step name in NNN-<step>.req.bin.
func stepOf(f string) string {
	b := filepath.Base(f)
	b = b[strings.IndexByte(b, '-')+1:]
	return b[:strings.IndexByte(b, '.')]
}

func compareTineJarReply(t *testing.T, name string, got, want []byte) {
	t.Helper()
	g, err := wire.ParseReply(got, nil)
	if err != nil {
		t.Fatalf("%s: our reply: %v", name, err)
	}
	w, err := wire.ParseReply(want, nil)
	if err != nil {
		t.Fatalf("%s: recorded reply: %v", name, err)
	}
	if len(g) != len(w) {
		t.Fatalf("%s: %d blocks, recorded %d", name, len(g), len(w))
	}
	for i := range g {
		gh, wh := g[i].Header, w[i].Header
		gh.Timestamp, gh.TimestampUSec, wh.Timestamp, wh.TimestampUSec = 0, 0, 0, 0
		if gh != wh {
			t.Errorf("%s block %d: header\n got  %+v\n want %+v", name, i, gh, wh)
		}
		if !bytes.Equal(g[i].Status, w[i].Status) {
			t.Errorf("%s block %d: status %q, recorded %q", name, i, g[i].StatusText(), w[i].StatusText())
		}
		if !bytes.Equal(g[i].Data, w[i].Data) {
			t.Errorf("%s block %d: data\n got  %x\n want %x", name, i, g[i].Data, w[i].Data)
		}
	}
}

// TestTineJarServerAgrees compares the replies this server gave tine.jar
// (testdata/tinejar) with those tine.jar's own server gave to the same
// calls on a device with the same properties and values
// (testdata/tinejar/ref-session, recorded by make check-tinejar from
// testdata/tinejar/RefServer.java), field by field: the default-format
// reads and the synchronous read loop must be indistinguishable except
// for link ids, start times and data timestamps.
func TestTineJarServerAgrees(t *testing.T) {
	for _, c := range []struct {
		prop   string
		format wire.Format
	}{
		{"frame-count", wire.Default}, {"dozor-pass", wire.Default}, {"beam-xy", wire.Default}, {"spot-level", wire.Default},
		{"frame-count", wire.Int32}, // the synchronous read loop
	} {
		step := c.prop + " as " + c.format.String()
		match := func(con *wire.Contract) bool { return con.Property == c.prop && con.FormatOut == c.format }
		ours := replyTo(t, "testdata/tinejar/session", match)
		ref := replyTo(t, "testdata/tinejar/ref-session", match)
		if len(ours) != 1 || len(ref) != 1 {
			t.Fatalf("%s: %d and %d blocks", step, len(ours), len(ref))
		}
		o, r := ours[0].Header, ref[0].Header
		for _, h := range []*wire.ReplyHeader{&o, &r} {
			h.SubID, h.StartTime, h.Timestamp, h.TimestampUSec = 0, 0, 0, 0
		}
		if o != r {
			t.Errorf("%s: header\n ours     %+v\n tine.jar %+v", step, o, r)
		}
		if !bytes.Equal(ours[0].Data, ref[0].Data) {
			t.Errorf("%s: data\n ours     %x\n tine.jar %x", step, ours[0].Data, ref[0].Data)
		}
	}
}

// replyTo is the reply that follows the first recorded request matching.
func replyTo(t *testing.T, dir string, match func(*wire.Contract) bool) []wire.ReplyBlock {
	t.Helper()
	found := false
	for _, f := range sessionFiles(t, dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".req.bin") {
			var req wire.Request
			if err := req.Parse(b); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			found = found || (len(req.Links) == 1 && match(&req.Links[0].Contract))
			continue
		}
		if found {
			blocks, err := wire.ParseReply(b, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			return blocks
		}
	}
	t.Fatalf("%s: no reply to the request recorded", dir)
	return nil
}
