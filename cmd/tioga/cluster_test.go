//go:build cluster

// The downstream check with real peers (issue 18, "make check-cluster"):
// opt-in because it needs Debian's slurm-wlm, munge and dials and minutes
// of CPU. Run with
//
//	go test -tags cluster -count=1 -timeout 60m -run Cluster -v ./cmd/tioga/
//
// It starts a single-node SLURM (munged, slurmctld, slurmd, configured in
// a temporary directory, stopped by PID at the end), streams a serial
// series from the simulator through the assembled server, lets the real
// SLURM run the real DIALS jobs, and reads the results back over TINE and
// from the files. Then the same with the local executor.

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"tioga/adapters/tine/client"
	"tioga/adapters/tine/wire"
	"tioga/device/detectormodel"
	"tioga/sim"
	"tioga/sim/diffraction"
	"tioga/sim/truth"
)

// clusterPorts: slurmctld and slurmd listen on loopback at these ports
// (override with TIOGA_SLURM_PORT for a machine where they are taken).
func clusterPorts() (int, int) {
	base := 28817
	if v, err := strconv.Atoi(os.Getenv("TIOGA_SLURM_PORT")); err == nil && v > 0 {
		base = v
	}
	return base, base + 1
}

// daemon is a process the test started and stops by its PID.
type daemon struct {
	name string
	cmd  *exec.Cmd
}

func startDaemon(t *testing.T, dir, name string, cred *syscall.Credential, args ...string) *daemon {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		out.Close()
		t.Logf("stopped %s (pid %d)", name, cmd.Process.Pid)
	})
	return d
}

// startSlurm writes a single-node slurm.conf in a temporary directory and
// starts munged (as the munge user, on its own socket there), slurmctld
// and slurmd in the foreground; SLURM_CONF points the client commands at
// it for the rest of the test.
func startSlurm(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "sbatch", "squeue", "sinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: make check-cluster installs slurm-wlm and munge", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("the single-node SLURM of this check runs its daemons as root (slurmd must start jobs): run as root")
	}
	mu, err := user.Lookup("munge")
	if err != nil {
		t.Fatalf("munge user: %v", err)
	}
	uid, _ := strconv.Atoi(mu.Uid)
	gid, _ := strconv.Atoi(mu.Gid)
	dir, err := os.MkdirTemp("", "tioga-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(dir, "munge")
	for _, d := range []string{mdir, filepath.Join(dir, "state"), filepath.Join(dir, "spool")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// munged wants its socket directory owned by it and searchable by all.
	if err := os.Chown(mdir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(mdir, 0o711); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(mdir, "munge.sock")
	startDaemon(t, dir, "munged", &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		"/usr/sbin/munged", "--foreground", "--socket="+sock, "--pid-file="+filepath.Join(mdir, "munged.pid"),
		"--log-file="+filepath.Join(mdir, "munged.log"), "--seed-file="+filepath.Join(mdir, "seed"))
	waitFile(t, sock)

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ = strings.Cut(host, ".")
	ctldPort, dPort := clusterPorts()
	conf := filepath.Join(dir, "slurm.conf")
	text := fmt.Sprintf(`ClusterName=tioga
SlurmctldHost=%[1]s(127.0.0.1)
SlurmctldPort=%[3]d
SlurmdPort=%[4]d
AuthType=auth/munge
AuthInfo=socket=%[5]s
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=%[2]s/state
SlurmdSpoolDir=%[2]s/spool
SlurmctldPidFile=%[2]s/slurmctld.pid
SlurmdPidFile=%[2]s/slurmd.pid
SlurmctldLogFile=%[2]s/slurmctld.log
SlurmdLogFile=%[2]s/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=%[2]s/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
ReturnToService=2
NodeName=%[1]s NodeAddr=127.0.0.1 CPUs=%[6]d State=UNKNOWN
PartitionName=tioga Nodes=%[1]s Default=YES MaxTime=INFINITE State=UP
`, host, dir, ctldPort, dPort, sock, max(2, runtimeCPUs()))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLURM_CONF", conf)
	startDaemon(t, dir, "slurmctld", nil, "/usr/sbin/slurmctld", "-D", "-f", conf)
	startDaemon(t, dir, "slurmd", nil, "/usr/sbin/slurmd", "-D", "-f", conf)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command("sinfo", "--noheader", "--format=%T").CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) == "idle" {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "slurmctld.log"))
			t.Fatalf("SLURM node not idle: %s %v\n%s", out, err, log)
		}
	}
	t.Logf("single-node SLURM up: %s", conf)
	return dir
}

func runtimeCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 2
	}
	return strings.Count(string(b), "\nprocessor") + 1
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
	}
}

func TestClusterDownstream(t *testing.T) {
	if _, err := exec.LookPath("dials.ssx_index"); err != nil {
		t.Fatal("dials.ssx_index not found: make check-cluster installs Debian's dials")
	}
	t.Run("slurm", func(t *testing.T) {
		startSlurm(t)
		runDownstreamSeries(t, "slurm", 11)
	})
	t.Run("local", func(t *testing.T) {
		runDownstreamSeries(t, "local", 12)
	})
}

// indexedRecord is a line of <prefix>_<run>_indexed.jsonl.
type indexedRecord struct {
	Frame   int       `json:"frame"`
	File    string    `json:"file"`
	Indexed bool      `json:"indexed"`
	Cell    []float64 `json:"cell"`
	Status  string    `json:"status"`
	Chunk   int       `json:"chunk"`
	Latency float64   `json:"latency_s"`
}

// runDownstreamSeries streams a serial EIGER 4M series (about 24 hits of
// one crystal form) through the server with the given executor, waits for
// the downstream status to settle, and checks the results.
func runDownstreamSeries(t *testing.T, executor string, seed uint64) {
	prof, _ := detectormodel.ByName("eiger4m")
	sample := diffraction.DefaultConfig(prof)
	sample.Seed = seed
	sample.HitFraction = 0.5
	nimages := 48
	if v, err := strconv.Atoi(os.Getenv("TIOGA_CLUSTER_FRAMES")); err == nil && v > 0 {
		nimages = v
	}
	gen, err := diffraction.New(sample)
	if err != nil {
		t.Fatal(err)
	}
	c := gen.Cell()
	cell := []float64{c.A, c.B, c.C, c.Alpha, c.Beta, c.Gamma}

	dir := t.TempDir()
	truthPath := filepath.Join(dir, "truth.jsonl")
	det, err := sim.Start(sim.Config{Profile: prof, Format: "legacy", NImages: nimages, Sample: &sample, TruthPath: truthPath,
		FrameTime: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()

	cfg := DefaultConfig()
	cfg.Stream.Endpoint = det.StreamEndpoint()
	cfg.Detector.SimplonURL = det.RESTURL()
	cfg.Writer.Directory = filepath.Join(dir, "data")
	cfg.Writer.Prefix = "ssx"
	cfg.Writer.MinFreeBytes = -1
	cfg.Tracker.Enabled = false
	cfg.OPCUA.Enabled = false
	cfg.TINE.PortOffset = freeTINEOffset(t)
	cfg.TINE.Listen = "127.0.0.1"
	d := &cfg.Downstream
	d.Enabled = true
	d.Executor = executor
	d.Cell = fmt.Sprintf("%.4f %.4f %.4f %.4f %.4f %.4f", cell[0], cell[1], cell[2], cell[3], cell[4], cell[5])
	d.SpaceGroup = "P1"
	d.ChunkHits = 8
	d.ChunkPeriod = Duration(20 * time.Second)
	d.PollPeriod = Duration(time.Second)
	d.CPUs = 1
	d.TimeLimit = Duration(30 * time.Minute)
	d.Local.MaxJobs = 2
	d.Slurm.Partition = "tioga"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "tioga.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	log := zerolog.New(logFile).With().Timestamp().Logger()

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- run(ctx, cfg, log) }()
	defer func() {
		cancel()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("server did not stop")
		}
	}()

	tc, err := client.DialServer("127.0.0.1", cfg.TINE.PortOffset, client.Options{User: "TEST"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tctx, tcancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer tcancel()
	get := func(prop string, f wire.Format, n int) wire.Data {
		t.Helper()
		v, err := tc.Get(tctx, client.Address{Module: "TIOGA", Device: "downstream", Property: prop}, f, n)
		if err != nil {
			t.Fatalf("TINE %s: %v", prop, err)
		}
		return v
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := tc.Get(tctx, client.Address{Module: "TIOGA", Device: "downstream", Property: "status"}, wire.Text, 64); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("server not answering over TINE: %v", err)
		}
	}
	start := time.Now()
	if _, err := det.RunSeries(tctx); err != nil {
		t.Fatal(err)
	}
	streamed := time.Since(start)

	var status string
	last := ""
	for deadline := time.Now().Add(40 * time.Minute); ; time.Sleep(2 * time.Second) {
		status = get("status", wire.Text, 1024).Text()
		q, _ := get("jobs-queued", wire.Int32, 1).Ints()
		r, _ := get("jobs-running", wire.Int32, 1).Ints()
		dn, _ := get("jobs-done", wire.Int32, 1).Ints()
		if line := fmt.Sprintf("%s: queued %v running %v done %v", status, q, r, dn); line != last {
			t.Logf("%6.0f s  %s", time.Since(start).Seconds(), line)
			last = line
		}
		if status == "done" || strings.HasPrefix(status, "error") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("downstream still %q after 40 minutes", status)
		}
	}
	took := time.Since(start)
	if status != "done" {
		t.Errorf("downstream status %q", status)
	}

	// The truth: which frames are hits, and their cell.
	tf, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := truth.ReadAll(tf)
	tf.Close()
	if err != nil {
		t.Fatal(err)
	}
	trueHits := map[int]bool{}
	for _, f := range frames {
		if f.Hit {
			trueHits[f.Frame] = true
			for k := range cell {
				if f.Cell[k] != cell[k] {
					t.Fatalf("truth frame %d: cell %v, want %v", f.Frame, f.Cell, cell)
				}
			}
		}
	}

	// The server's hits: every one in exactly one chunk (the first attempt
	// of each chunk; a retry runs the same list again) and one line of the
	// indexed file.
	hitList, err := os.ReadFile(filepath.Join(cfg.Writer.Directory, "ssx_1_hits.lst"))
	if err != nil {
		t.Fatal(err)
	}
	serverHits := strings.Fields(string(hitList))
	chunkOf := map[string][]string{}
	lists, _ := filepath.Glob(filepath.Join(cfg.Writer.Directory, "ssx_1_downstream", "chunk-*.1", "files.lst"))
	for _, l := range lists {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range strings.Fields(string(b)) {
			chunkOf[p] = append(chunkOf[p], l)
		}
	}
	for _, h := range serverHits {
		if len(chunkOf[h]) != 1 {
			t.Errorf("hit %s in %d jobs %v, want exactly 1", h, len(chunkOf[h]), chunkOf[h])
		}
	}
	if len(chunkOf) != len(serverHits) {
		t.Errorf("%d files in jobs, %d hits", len(chunkOf), len(serverHits))
	}

	f, err := os.Open(filepath.Join(cfg.Writer.Directory, "ssx_1_indexed.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []indexedRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r indexedRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) != len(serverHits) {
		t.Errorf("indexed file: %d lines, %d hits", len(recs), len(serverHits))
	}
	indexedTrue := 0
	var cells [6][]float64
	var lat []float64
	for _, r := range recs {
		if r.Status == "indexed" || r.Status == "not indexed" {
			lat = append(lat, r.Latency)
		}
		if !r.Indexed {
			continue
		}
		if trueHits[r.Frame] {
			indexedTrue++
		}
		for k := range cells {
			cells[k] = append(cells[k], r.Cell[k])
		}
	}
	rate := float64(indexedTrue) / float64(len(trueHits))
	var med [6]float64
	var errPct [6]float64
	for k := range cells {
		if len(cells[k]) == 0 {
			break
		}
		sort.Float64s(cells[k])
		med[k] = cells[k][len(cells[k])/2]
		if n := len(cells[k]); n%2 == 0 {
			med[k] = (cells[k][n/2-1] + cells[k][n/2]) / 2
		}
		errPct[k] = 100 * (med[k]/cell[k] - 1)
	}
	sort.Float64s(lat)
	meanLat := 0.0
	for _, v := range lat {
		meanLat += v
	}
	if len(lat) > 0 {
		meanLat /= float64(len(lat))
	}

	// The same figures over TINE.
	idx, _ := get("indexed-frames", wire.Int32, 1).Ints()
	rateProp, _ := get("indexing-rate", wire.Float, 1).Floats()
	ucell, _ := get("unit-cell", wire.Double, 6).Floats()
	spread, _ := get("unit-cell-spread", wire.Double, 6).Floats()
	latProp, _ := get("latency", wire.Double, 3).Floats()
	failed, _ := get("jobs-failed", wire.Int32, 1).Ints()
	done, _ := get("jobs-done", wire.Int32, 1).Ints()

	t.Logf("executor %s: %d frames streamed in %.1f s; %d simulated hits, %d found by the server; %d jobs done, %d failed",
		executor, nimages, streamed.Seconds(), len(trueHits), len(serverHits), done[0], failed[0])
	t.Logf("indexed %d of %d simulated hits (%.1f %%); indexing-rate property %.1f %%, indexed-frames %v",
		indexedTrue, len(trueHits), 100*rate, rateProp[0], idx)
	t.Logf("median cell %.3f %.3f %.3f %.3f %.3f %.3f (truth %.3f %.3f %.3f %.3f %.3f %.3f)",
		med[0], med[1], med[2], med[3], med[4], med[5], cell[0], cell[1], cell[2], cell[3], cell[4], cell[5])
	t.Logf("cell error %+.3f %+.3f %+.3f %+.3f %+.3f %+.3f %%; unit-cell property %.3f, spread %.3f",
		errPct[0], errPct[1], errPct[2], errPct[3], errPct[4], errPct[5], ucell, spread)
	if len(lat) > 0 {
		t.Logf("hit on disk to indexing result: median %.1f s, mean %.1f s, max %.1f s (latency property %.1f); series end to all results %.1f s",
			lat[len(lat)/2], meanLat, lat[len(lat)-1], latProp, (took - streamed).Seconds())
	}

	if rate < 0.8 {
		t.Errorf("%.1f %% of the simulated hits indexed, want >= 80 %%", 100*rate)
	}
	for k := range errPct {
		if math.Abs(errPct[k]) > 1 || med[k] == 0 {
			t.Errorf("median cell %v differs from the simulator's %v by more than 1 %%", med, cell)
			break
		}
	}
	if int(idx[0]) != len(cells[0]) || math.Abs(float64(ucell[0])-med[0]) > 1e-6 {
		t.Errorf("properties (indexed %v, cell %v) disagree with the file (%d, %v)", idx, ucell, len(cells[0]), med)
	}
}
