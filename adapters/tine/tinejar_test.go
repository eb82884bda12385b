//go:build tinejar

package tine

// The opt-in check against DESY's Java TINE library (make check-tinejar):
// the tine.jar client (testdata/tinejar/Probe.java) against this server,
// and against a tiny tine.jar server (testdata/tinejar/RefServer.java)
// with the same properties, for comparison. tine.jar is public but never
// committed: TINE_JAR names it.
//
// With TINEJAR_UPDATE=1 the exchanges of the captured steps are written to
// testdata/tinejar (ours) and testdata/tinejar-ref (tine.jar's server),
// which TestReplayTineJar replays in make test without Java.

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"tioga/adapters/tine/addrdb"
	"tioga/adapters/tine/internal/tinecap"
	"tioga/adapters/tine/wire"
)

func tineJar(t *testing.T) string {
	jar := os.Getenv("TINE_JAR")
	if jar == "" {
		jar = "../../out/tine.jar"
	}
	if _, err := os.Stat(jar); err != nil {
		t.Fatalf("tine.jar not found at %s (TINE_JAR): it is DESY's public Java TINE library, never committed here; "+
			"get it with `git clone --depth 1 https://github.com/KIT-IBPT/epics-cs-shell-flute /tmp/flute && cp /tmp/flute/lib/tine.jar out/` "+
			"or run make check-tinejar TINE_JAR=/path/to/tine.jar", jar)
	}
	abs, _ := filepath.Abs(jar)
	return abs
}

// portsFree reports whether the TINE ports of offset o are free on
// loopback: UDP 9003+o, TCP 8503+o, 10003+o and 10503+o.
func portsFree(o int) bool {
	u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", wire.UDPBasePort+o))
	if err != nil {
		return false
	}
	defer u.Close()
	for _, base := range []int{8503, 10003, 10503} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+o))
		if err != nil {
			return false
		}
		defer l.Close()
	}
	return true
}

// freeOffsets finds n port offsets whose ports are all free, far from the
// usual ones.
func freeOffsets(t *testing.T, n int) []int {
	var out []int
	for try := 0; len(out) < n && try < 200; try++ {
		o := 20000 + rand.IntN(2000)*10
		if portsFree(o) {
			out = append(out, o)
		}
	}
	if len(out) < n {
		t.Fatal("no free TINE port offsets")
	}
	return out
}

type javaEnv struct {
	t       *testing.T
	jar     string
	classes string
	home    string // TINE_HOME = TINE_CACHE/tine/cache
	cache   string
}

func newJavaEnv(t *testing.T) *javaEnv {
	jar := tineJar(t)
	dir := t.TempDir()
	e := &javaEnv{t: t, jar: jar, classes: filepath.Join(dir, "classes"), cache: filepath.Join(dir, "cache")}
	e.home = filepath.Join(e.cache, "tine", "cache")
	srcs, _ := filepath.Glob("testdata/tinejar/*.java")
	out, err := exec.Command("javac", append([]string{"-nowarn", "-cp", jar, "-d", e.classes}, srcs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	return e
}

func (e *javaEnv) cmd(args ...string) *exec.Cmd {
	c := exec.Command("java", append([]string{"-cp", e.jar + string(os.PathListSeparator) + e.classes}, args...)...)
	c.Env = append(os.Environ(), "TINE_HOME="+e.home, "TINE_CACHE="+e.cache)
	return c
}

var stepLine = regexp.MustCompile(`^STEP (\S+) (.*)$`)

// probe runs Probe with the steps; onStep is called as each step's line
// arrives (while the JVM runs on). It returns each step's result.
func (e *javaEnv) probe(onStep func(step string), steps ...string) map[string]string {
	e.t.Helper()
	c := e.cmd(append([]string{"Probe"}, steps...)...)
	stdout, err := c.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	res := map[string]string{}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := stepLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		e.t.Logf("%s: %s", m[1], m[2])
		res[m[1]] = m[2]
		if onStep != nil {
			onStep(m[1])
		}
	}
	if err := c.Wait(); err != nil {
		e.t.Fatalf("Probe: %v\n%s", err, stderr.String())
	}
	for _, s := range steps {
		if _, ok := res[s]; !ok {
			e.t.Errorf("step %s printed nothing\n%s", s, stderr.String())
		}
	}
	return res
}

// field returns the value of key=value in a step result.
func field(res, key string) string {
	for _, f := range strings.Fields(res) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// tineJarRig is everything the tine.jar checks run against: this server
// (TIOGA, and CAPTIOGA through a capture relay), a tine.jar server (REFSRV,
// and CAPREF through a relay), and the address database where tine.jar
// looks.
type tineJarRig struct {
	env         *javaEnv
	ct          *checkTree
	s           *Server
	pOurs, pRef *tinecap.Proxy
}

func newTineJarRig(t *testing.T) *tineJarRig {
	env := newJavaEnv(t)
	offs := freeOffsets(t, 4)
	ours, capOurs, ref, capRef := offs[0], offs[1], offs[2], offs[3]
	ct := newCheckTree(t, checkBigRecords)
	maxUDP, _ := strconv.Atoi(os.Getenv("TINEJAR_MAX_UDP_BLOCKS"))
	s := startServer(t, ct.tree, Config{PortOffset: ours, TCP: true, UDPPort: wire.UDPBasePort + ours,
		TCPPort: wire.TCPBasePort + ours, StreamPort: wire.StreamBasePort + ours, MaxUDPBlocks: maxUDP})
	// Address database where tine.jar looks (item: tioga-ctl csv --dir).
	lo := "127.0.0.1"
	servers := AddressRows(ct.tree, Config{})
	servers = append(servers,
		addrdb.ServerRow{Context: "TEST", Name: "CAPTIOGA", Module: "TIOGA", FEC: "CAPTIOGA", Description: "ours through the capture relay"},
		addrdb.ServerRow{Context: "TEST", Name: "REFSRV", Module: "REFEQM", FEC: "REFFEC", Description: "tine.jar server"},
		addrdb.ServerRow{Context: "TEST", Name: "CAPREF", Module: "REFEQM", FEC: "CAPREF", Description: "tine.jar server through the capture relay"})
	fecs := []addrdb.FEC{{Name: "TIOGA", IP: lo, PortOffset: ours}, {Name: "CAPTIOGA", IP: lo, PortOffset: capOurs},
		{Name: "REFFEC", IP: lo, PortOffset: ref}, {Name: "CAPREF", IP: lo, PortOffset: capRef}}
	if err := addrdb.WriteDir(env.home, servers, fecs); err != nil {
		t.Fatal(err)
	}

	// The tine.jar reference server, with its own TINE_HOME.
	refDir := t.TempDir()
	rc := exec.Command("java", "-cp", env.jar+string(os.PathListSeparator)+env.classes, "RefServer", strconv.Itoa(ref))
	rc.Env = append(os.Environ(), "TINE_HOME="+refDir, "TINE_CACHE="+refDir, "TINE_STANDALONE=TRUE")
	rout, _ := rc.StdoutPipe()
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Process.Kill(); _ = rc.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(rout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "RefServer ready") {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("RefServer did not start")
	}

	pOurs, err := tinecap.Start(fmt.Sprintf("%s:%d", lo, wire.UDPBasePort+capOurs), s.Addr().String(),
		fmt.Sprintf("%s:%d", lo, wire.StreamBasePort+capOurs), s.StreamAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pOurs.Close() })
	pRef, err := tinecap.Start(fmt.Sprintf("%s:%d", lo, wire.UDPBasePort+capRef), fmt.Sprintf("%s:%d", lo, wire.UDPBasePort+ref),
		fmt.Sprintf("%s:%d", lo, wire.StreamBasePort+capRef), fmt.Sprintf("%s:%d", lo, wire.StreamBasePort+ref))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pRef.Close() })

	return &tineJarRig{env: env, ct: ct, s: s, pOurs: pOurs, pRef: pRef}
}

// TestTineJarSteps runs the Probe steps of TINEJAR_STEPS (space-separated)
// against the rig, for investigations: TINEJAR_STEPS="loop:/TEST/TIOGA/tioga/frame-count:100"
// go test -tags tinejar -run TestTineJarSteps -v ./adapters/tine/
func TestTineJarSteps(t *testing.T) {
	steps := strings.Fields(os.Getenv("TINEJAR_STEPS"))
	if len(steps) == 0 {
		t.Skip("TINEJAR_STEPS not set")
	}
	r := newTineJarRig(t)
	if d, err := time.ParseDuration(os.Getenv("TINEJAR_DELAY")); err == nil {
		r.pOurs.ReplyDelay = d
	}
	r.pOurs.Packets()
	r.pRef.Packets()
	r.env.probe(nil, steps...)
	if os.Getenv("TINEJAR_DUMP") != "" {
		for _, x := range []struct {
			name string
			p    *tinecap.Proxy
		}{{"ours", r.pOurs}, {"ref", r.pRef}} {
			pk := x.p.Packets()
			// Gaps: request to reply (server), reply to next request (client).
			var srv, cli []time.Duration
			var big []string
			for i := 1; i < len(pk); i++ {
				d := pk[i].At.Sub(pk[i-1].At)
				if pk[i-1].ToServer && !pk[i].ToServer {
					srv = append(srv, d)
				} else if !pk[i-1].ToServer && pk[i].ToServer {
					cli = append(cli, d)
				}
				if d > 20*time.Millisecond {
					big = append(big, fmt.Sprintf("#%d %v->%v %v", i, pk[i-1].ToServer, pk[i].ToServer, d))
				}
			}
			sum := func(ds []time.Duration) (tot time.Duration) {
				for _, d := range ds {
					tot += d
				}
				return
			}
			t.Logf("%s: %d packets; server %d gaps total %v; client %d gaps total %v; gaps > 20ms: %v", x.name, len(pk), len(srv), sum(srv), len(cli), sum(cli), big)
			for i, k := range pk {
				if i > 6 && os.Getenv("TINEJAR_DUMP") != "all" {
					break
				}
				dt := k.At.Sub(pk[0].At)
				if k.ToServer {
					var q wire.Request
					err := q.Parse(k.Data)
					if os.Getenv("TINEJAR_DUMP") == "all" && err == nil && len(q.Links) > 0 {
						t.Logf("%s %9.3fms %s req blk %d link %d start %d", x.name, dt.Seconds()*1000, k.Client, q.Links[0].Subscription.BlockID, q.Links[0].Subscription.LinkID, q.Links[0].Subscription.StartTime)
						continue
					}
					t.Logf("%s %9.3fms %s req %d B %v %+v", x.name, dt.Seconds()*1000, k.Client, len(k.Data), err, q)
				} else {
					bl, err := wire.ParseReply(k.Data, nil)
					if os.Getenv("TINEJAR_DUMP") == "all" && err == nil && len(bl) > 0 {
						t.Logf("%s %9.3fms %s rep cc %d link %d", x.name, dt.Seconds()*1000, k.Client, bl[0].Header.CompCode, bl[0].Header.SubID)
						continue
					}
					t.Logf("%s %9.3fms %s rep %d B %v %+v", x.name, dt.Seconds()*1000, k.Client, len(k.Data), err, bl)
				}
			}
		}
	}
}

func TestTineJar(t *testing.T) {
	r := newTineJarRig(t)
	env, s, pOurs, pRef := r.env, r.s, r.pOurs, r.pRef

	// Captured steps: the same requests to both servers.
	type stepDef struct{ name, ours, ref string }
	var defs []stepDef
	add := func(name, f string) {
		defs = append(defs, stepDef{name, strings.ReplaceAll(f, "$S", "CAPTIOGA"), strings.ReplaceAll(f, "$S", "CAPREF")})
	}
	for _, p := range []string{"frame-count", "dozor-pass", "beam-xy", "spot-level", "status"} {
		add("default-"+p, "read:/TEST/$S/tioga/"+p)
	}
	add("as-double", "readas:/TEST/$S/tioga/frame-count:0:1")
	add("propinfo", "pinfo:TEST:$S:tioga:dozor-pass")
	add("propinfo-x", "pinfox:TEST:$S:tioga:spot-level")
	add("stockprops", "stock:TEST:$S")
	add("metaprops", "meta:TEST:$S")
	add("appversion", "appver:TEST:$S")
	add("thresholds", "thresh:TEST:$S:spot-level")
	add("write", "write:/TEST/$S/tioga/spot-level:6")
	add("sync-reads", "loop:/TEST/$S/tioga/frame-count:20")
	runCaptured := func(p *tinecap.Proxy, pick func(stepDef) string, dir string) map[string]string {
		byArg := map[string]string{}
		var args []string
		for _, d := range defs {
			byArg[pick(d)] = d.name
			args = append(args, pick(d))
		}
		p.Packets()
		caps := map[string][]tinecap.Packet{}
		out := map[string]string{}
		res := env.probe(func(step string) { caps[byArg[step]] = p.Packets() }, args...)
		for arg, r := range res {
			out[byArg[arg]] = r
		}
		if os.Getenv("TINEJAR_UPDATE") != "" {
			var order []string
			for _, d := range defs {
				order = append(order, d.name)
			}
			if err := writeSession(dir, order, caps); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	got := runCaptured(pOurs, func(d stepDef) string { return d.ours }, "testdata/tinejar/session")
	want := runCaptured(pRef, func(d stepDef) string { return d.ref }, "testdata/tinejar/ref-session")

	// Default-format reads and thresholds: the same answer as tine.jar's
	// server. (Its RefServer handlers answer reads in another format and
	// writes with code failure 66: those are checked on ours alone.)
	for _, name := range []string{"default-frame-count", "default-dozor-pass", "default-beam-xy", "default-spot-level", "default-status", "thresholds"} {
		if got[name] != want[name] || !strings.HasPrefix(got[name], "cc=0 ") {
			t.Errorf("%s: ours %q, tine.jar's server %q", name, got[name], want[name])
		}
	}
	if got["as-double"] != `cc=0 err="success" fmt=DOUBLE n=1 val=[42.0]` {
		t.Errorf("as-double: %s", got["as-double"])
	}
	if got["write"] != `cc=0 err="success"` {
		t.Errorf("write: %s", got["write"])
	}
	if !strings.HasPrefix(got["propinfo"], "n=5 name=dozor-pass fmt=FLOAT size=32 ") || !strings.Contains(got["propinfo"], "rows=8 rowSize=4") {
		t.Errorf("getDevicePropertyInformation: %s (tine.jar's server: %s)", got["propinfo"], want["propinfo"])
	}
	if !strings.HasPrefix(got["propinfo-x"], "n=5 name=spot-level fmt=FLOAT size=1 fmtIn=5 sizeIn=1 access=3 ") {
		t.Errorf("getDevicePropertyInformationX: %s (tine.jar's server: %s)", got["propinfo-x"], want["propinfo-x"])
	}
	for _, p := range []string{"NSTOCKPROPS", "STOCKPROPS", "METAPROPS", "APPVERSION", "PROPS"} {
		if !strings.Contains(got["stockprops"], p) {
			t.Errorf("getStockProperties lacks %s: %s", p, got["stockprops"])
		}
	}
	if !strings.Contains(got["metaprops"], "spot-level.DESC") {
		t.Errorf("getMetaProperties: %s (tine.jar's server: %s)", got["metaprops"], want["metaprops"])
	}
	if got["appversion"] != `"Appl version : tioga"` {
		t.Errorf("getAppVersion: %s", got["appversion"])
	}

	// The 1,000,000-record array over TCP (CM_STREAM, port 10003+offset);
	// over UDP, on this default-tuned machine, refused with code 22 and a
	// status that says why (udplimit.go), while 48 blocks (4272 records,
	// the default max_udp_blocks) arrive complete; then synchronous read
	// rates, alternating between the servers.
	const udpOK, udpBig = "big:/TEST/TIOGA/big/dozor-pass:4272:udp", "big:/TEST/TIOGA/big/dozor-pass:1000000:udp"
	big := env.probe(nil, "big:/TEST/TIOGA/big/dozor-pass:1000000:tcp", udpBig, udpOK,
		"loop:/TEST/TIOGA/tioga/frame-count:1000:1", "loop:/TEST/REFSRV/tioga/frame-count:1000:1",
		"loop:/TEST/TIOGA/tioga/frame-count:1000:2", "loop:/TEST/REFSRV/tioga/frame-count:1000:2")
	tcp := big["big:/TEST/TIOGA/big/dozor-pass:1000000:tcp"]
	if field(tcp, "cc") != "0" || field(tcp, "records_ok") != "1000000" {
		t.Errorf("1,000,000 records over TCP: %s", tcp)
	}
	udp := big[udpBig]
	if field(udp, "cc") != "22" || !strings.Contains(udp, "max_udp_blocks 48") {
		t.Errorf("1,000,000 records over UDP: %s, want code 22 and a status naming max_udp_blocks", udp)
	}
	if field(big[udpOK], "cc") != "0" || field(big[udpOK], "records_ok") != "4272" {
		t.Errorf("4272 records (48 blocks) over UDP: %s", big[udpOK])
	}
	fmt.Printf("tine.jar: 1,000,000 records over TCP: %s\n", tcp)
	fmt.Printf("tine.jar: 1,000,000 records over UDP: %s\n", udp)
	fmt.Printf("tine.jar: 4272 records (48 blocks) over UDP: %s\n", big[udpOK])
	// Synchronous reads: the first round against this server includes
	// the one stall (a timeout) after which the client's replies are
	// held (hold.go).
	for _, round := range []string{"1", "2"} {
		for _, srv := range []string{"TIOGA", "REFSRV"} {
			k := "loop:/TEST/" + srv + "/tioga/frame-count:1000:" + round
			if field(big[k], "failed") != "0" {
				t.Errorf("%s: %s", k, big[k])
			}
			who := "Tioga"
			if srv == "REFSRV" {
				who = "tine.jar server"
			}
			fmt.Printf("tine.jar: 1000 synchronous INT32 reads against the %s, round %s: %s\n", who, round, big[k])
		}
	}
	st := s.Stats()
	fmt.Printf("tine.jar: server: %d transfers refused over UDP (too large), %d reply holds raised (tine.jar's early-reply race)\n", st.TooLarge, st.Held)
}

// writeSession writes the packets of every step, in the order they
// crossed the relay, as NNN-<step>.req.bin / .rep.bin (numbered across the
// whole session: a reply can arrive after the step that asked for it has
// printed its result).
func writeSession(dir string, order []string, caps map[string][]tinecap.Packet) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	n := 0
	for _, step := range order {
		for _, p := range caps[step] {
			n++
			kind := "rep"
			if p.ToServer {
				kind = "req"
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d-%s.%s.bin", n, step, kind)), p.Data, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ = context.Background
