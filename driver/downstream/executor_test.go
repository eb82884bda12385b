package downstream

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeScript writes a job directory with the given script body after the
// templates' exit-status trap.
func writeScript(t *testing.T, root, name, body string) Job {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	j := Job{Name: name, Dir: dir, Script: filepath.Join(dir, "job.sh"), Log: filepath.Join(dir, "job.log"), CPUs: 1}
	script := "#!/bin/bash\ntrap 'echo $? > " + dir + "/exit_status' EXIT\n" + body + "\n"
	if err := os.WriteFile(j.Script, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return j
}

// waitState polls the executor until job id reaches one of the states
// (the local executor reports what its processes did; the processes
// themselves are synchronised through files).
func waitState(t *testing.T, e Executor, id string, j Job, want ...State) Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := e.Status(context.Background(), map[string]Job{id: j})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if st[id].State == w {
				return st[id]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %v, want %v", id, st[id], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLocalExecutor(t *testing.T) {
	root := t.TempDir()
	e := NewLocal(1, 0)
	defer e.Close()
	ctx := context.Background()

	gate := filepath.Join(root, "go")
	slow := writeScript(t, root, "slow", "echo started; while [ ! -e "+gate+" ]; do sleep 0.02; done; echo $TIOGA_CPUS")
	ok := writeScript(t, root, "ok", "echo fine")
	bad := writeScript(t, root, "bad", "echo broken >&2; exit 3")

	ids := map[string]Job{}
	for _, j := range []Job{slow, ok, bad} {
		id, err := e.Submit(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		ids[j.Name] = j
		ids[j.Name+"-id"] = Job{Name: id}
	}
	slowID, okID, badID := ids["slow-id"].Name, ids["ok-id"].Name, ids["bad-id"].Name
	waitState(t, e, slowID, slow, Running)
	// One slot: the others wait while the first runs.
	st, _ := e.Status(ctx, map[string]Job{okID: ok, badID: bad})
	if st[okID].State != Queued || st[badID].State != Queued {
		t.Fatalf("with the slot taken: %v", st)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if s := waitState(t, e, slowID, slow, Done, Failed); s.State != Done {
		t.Fatalf("slow: %v", s)
	}
	if s := waitState(t, e, okID, ok, Done, Failed); s.State != Done {
		t.Fatalf("ok: %v", s)
	}
	s := waitState(t, e, badID, bad, Done, Failed)
	if s.State != Failed || !strings.Contains(s.Reason, "exit status 3") || !strings.Contains(s.Reason, bad.Log) {
		t.Fatalf("bad: %v", s)
	}
	log, _ := os.ReadFile(slow.Log)
	if string(log) != "started\n1\n" {
		t.Fatalf("slow log %q", log)
	}
	if code, ok := readExitStatus(bad.Dir); !ok || code != 3 {
		t.Fatalf("exit status file: %d %v", code, ok)
	}
}

func TestLocalExecutorCancelAndTimeLimit(t *testing.T) {
	root := t.TempDir()
	e := NewLocal(2, 0)
	defer e.Close()
	ctx := context.Background()
	marker := filepath.Join(root, "child-alive")
	// The script starts a child that would outlive a plain kill of bash.
	hang := writeScript(t, root, "hang", "(while true; do touch "+marker+"; sleep 0.05; done) & wait")
	id, err := e.Submit(ctx, hang)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, e, id, hang, Running)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(marker); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("the job's child never ran")
		}
	}
	if err := e.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	s := waitState(t, e, id, hang, Failed, Done)
	if s.State != Failed || !strings.Contains(s.Reason, "cancelled") {
		t.Fatalf("cancelled job: %v", s)
	}

	limited := writeScript(t, root, "limited", "sleep 30")
	limited.TimeLimit = 200 * time.Millisecond
	id, err = e.Submit(ctx, limited)
	if err != nil {
		t.Fatal(err)
	}
	s = waitState(t, e, id, limited, Failed, Done)
	if s.State != Failed || !strings.Contains(s.Reason, "time limit") {
		t.Fatalf("time-limited job: %v", s)
	}
	// The whole process group went: the child stops touching its marker.
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the cancelled job's child process is still running")
	}
}

// fakeSlurm writes sbatch, squeue, sacct and scancel stand-ins that log
// their arguments and answer from files, to pin the command lines and the
// state mapping without a cluster (make check-cluster runs the real one).
func fakeSlurm(t *testing.T) (SlurmConfig, string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/bash\necho \"$@\" >> "+dir+"/"+name+".args\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := SlurmConfig{
		Partition: "cryst", Account: "p14", TimeLimit: 90 * time.Minute, ExtraArgs: []string{"--qos=express"},
		Sbatch:  write("sbatch", "echo '4242;cluster1'"),
		Squeue:  write("squeue", "cat "+dir+"/queue 2>/dev/null; true"),
		Sacct:   write("sacct", "echo 'TIMEOUT|0:15'"),
		Scancel: write("scancel", "true"),
		Settle:  time.Nanosecond,
	}
	return cfg, dir
}

func TestSlurmExecutor(t *testing.T) {
	cfg, dir := fakeSlurm(t)
	e := NewSlurm(cfg)
	ctx := context.Background()
	j := writeScript(t, t.TempDir(), "tioga-3-0001", "true")
	j.CPUs = 4
	id, err := e.Submit(ctx, j)
	if err != nil || id != "4242" {
		t.Fatalf("submit: %q %v", id, err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "sbatch.args"))
	want := "--parsable --job-name=tioga-3-0001 --output=" + j.Log + " --chdir=" + j.Dir +
		" --partition=cryst --account=p14 --cpus-per-task=4 --time=01:30:00 --qos=express " + j.Script + "\n"
	if string(args) != want {
		t.Fatalf("sbatch %q\nwant   %q", args, want)
	}
	status := func() Status {
		st, err := e.Status(ctx, map[string]Job{id: j})
		if err != nil {
			t.Fatal(err)
		}
		return st[id]
	}
	queue := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "queue"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	queue("4241|RUNNING|None\n4242|PENDING|Priority\n")
	if s := status(); s.State != Queued {
		t.Fatalf("pending: %v", s)
	}
	queue("4242|RUNNING|None\n")
	if s := status(); s.State != Running {
		t.Fatalf("running: %v", s)
	}
	// Gone from the queue without an exit status: sacct says why (after
	// the settle time, here 1 ns: first seen missing, then failed).
	queue("")
	status()
	if s := status(); s.State != Failed || !strings.Contains(s.Reason, "TIMEOUT") || !strings.Contains(s.Reason, j.Log) {
		t.Fatalf("gone: %v", s)
	}
	// With the exit status written, the job is judged by it.
	if err := os.WriteFile(filepath.Join(j.Dir, ExitStatusFile), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := status(); s.State != Done {
		t.Fatalf("finished: %v", s)
	}
	if err := e.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "scancel.args")); string(b) != "4242\n" {
		t.Fatalf("scancel %q", b)
	}

	// sbatch failing (controller down) is an error with its message.
	cfg.Sbatch = filepath.Join(dir, "sbatch-down")
	if err := os.WriteFile(cfg.Sbatch, []byte("#!/bin/bash\necho 'sbatch: error: Batch job submission failed: Unable to contact slurm controller' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSlurm(cfg).Submit(ctx, j); err == nil || !strings.Contains(err.Error(), "Unable to contact slurm controller") {
		t.Fatalf("sbatch down: %v", err)
	}
}

func TestSlurmDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Minute:                  "00:30:00",
		90*time.Second + time.Millisecond: "00:01:31",
		50 * time.Hour:                    "2-02:00:00",
	} {
		if got := slurmDuration(d); got != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
	}
}

func TestTemplates(t *testing.T) {
	tpl, err := ParseTemplate("dials", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Render(JobData{Name: "tioga-1-0001", Dir: "/data/my run/w", List: "/data/my run/w/files.lst", Files: []string{"a"},
		CPUs: 2, Cell: "79.1,79.1,38,90,90,90", SpaceGroup: "P43212", MaxCell: 250, Python: "/usr/bin/python3"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"cd '/data/my run/w'",
		"mapfile -t files < '/data/my run/w/files.lst'",
		"dials.ssx_index imported.expt strong.refl nproc=2 unit_cell=79.1,79.1,38,90,90,90 space_group=P43212 indexing.max_cell=250",
		"xfel_mono_sim_ext",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("DIALS script lacks %q:\n%s", want, s)
		}
	}
	tpl, err = ParseTemplate("crystfel", "")
	if err != nil || tpl.Output != OutputCrystFEL {
		t.Fatal(err)
	}
	out, _ = tpl.Render(JobData{Dir: "/w", List: "/w/files.lst", Geometry: "/w/detector.geom", CellFile: "/w/known.cell", CPUs: 8, Files: []string{"a"}})
	if !strings.Contains(string(out), "indexamajig -i /w/files.lst -g /w/detector.geom -o chunk.stream -j 8") || !strings.Contains(string(out), "-p /w/known.cell") {
		t.Errorf("CrystFEL script:\n%s", out)
	}
	// A site's own template: the output kind must be given, and errors in
	// it show at start-up.
	own := filepath.Join(t.TempDir(), "job.tmpl")
	if err := os.WriteFile(own, []byte("#!/bin/bash\nrun {{.List}} {{.Nope}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseTemplate(own, OutputDIALS); err == nil {
		t.Error("template with an unknown field accepted")
	}
	if _, err := ParseTemplate(own, ""); err == nil {
		t.Error("own template without an output kind accepted")
	}
}
