package downstream

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"os/user"
	"strings"
	"sync"
	"time"
)

// SlurmConfig says how jobs are submitted to a SLURM cluster.
type SlurmConfig struct {
	Partition string        // sbatch --partition ("" = the cluster's default)
	Account   string        // sbatch --account
	TimeLimit time.Duration // sbatch --time when the job has none (0 = the partition's limit)
	ExtraArgs []string      // more sbatch options, e.g. --qos=..., --mem=8G
	// Commands (default: found on PATH). A site that reaches its cluster
	// through a wrapper (ssh to a submit host) points these at it.
	Sbatch, Squeue, Sacct, Scancel string
	// Settle is how long a job that left squeue may take to show its exit
	// status file (shared file systems publish files with a delay) before
	// it is declared failed (default 30 s).
	Settle time.Duration
	// CommandTimeout bounds each sbatch/squeue/sacct/scancel call (default 30 s).
	CommandTimeout time.Duration
}

// Slurm submits jobs with sbatch and follows them with squeue; a job that
// has left the queue is judged by the exit status its script wrote, and
// sacct (when the cluster keeps accounting) says why one without it ended.
type Slurm struct {
	cfg  SlurmConfig
	user string

	mu   sync.Mutex
	gone map[string]time.Time // job id → when it was first missing from squeue
}

// NewSlurm returns the SLURM executor.
func NewSlurm(cfg SlurmConfig) *Slurm {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.Sbatch, "sbatch")
	def(&cfg.Squeue, "squeue")
	def(&cfg.Sacct, "sacct")
	def(&cfg.Scancel, "scancel")
	if cfg.Settle <= 0 {
		cfg.Settle = 30 * time.Second
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 30 * time.Second
	}
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return &Slurm{cfg: cfg, user: name, gone: map[string]time.Time{}}
}

// Name implements Executor.
func (s *Slurm) Name() string { return "slurm" }

func (s *Slurm) command(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return "", fmt.Errorf("%s: %v: %s", name, err, msg)
	}
	return out.String(), nil
}

// Submit implements Executor: sbatch --parsable.
func (s *Slurm) Submit(ctx context.Context, j Job) (string, error) {
	args := []string{"--parsable", "--job-name=" + j.Name, "--output=" + j.Log, "--chdir=" + j.Dir}
	if s.cfg.Partition != "" {
		args = append(args, "--partition="+s.cfg.Partition)
	}
	if s.cfg.Account != "" {
		args = append(args, "--account="+s.cfg.Account)
	}
	if j.CPUs > 0 {
		args = append(args, fmt.Sprintf("--cpus-per-task=%d", j.CPUs))
	}
	limit := j.TimeLimit
	if limit == 0 {
		limit = s.cfg.TimeLimit
	}
	if limit > 0 {
		args = append(args, "--time="+slurmDuration(limit))
	}
	args = append(args, s.cfg.ExtraArgs...)
	args = append(args, j.Script)
	out, err := s.command(ctx, s.cfg.Sbatch, args...)
	if err != nil {
		return "", err
	}
	// --parsable prints "<id>" or "<id>;<cluster>".
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("sbatch: unexpected output %q", out)
	}
	return id, nil
}

// slurmDuration formats a time limit as sbatch's [days-]hours:minutes:seconds.
func slurmDuration(d time.Duration) string {
	sec := int64((d + time.Second - 1) / time.Second)
	days, sec := sec/86400, sec%86400
	h, m, x := sec/3600, sec%3600/60, sec%60
	if days > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, h, m, x)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, x)
}

// squeueState maps squeue's long state names.
func squeueState(st string) (State, bool) {
	switch st {
	case "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED":
		return Queued, true
	case "RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING":
		return Running, true
	}
	return 0, false // finished states: judged by the exit status file
}

// Status implements Executor: one squeue call for all the user's jobs.
func (s *Slurm) Status(ctx context.Context, jobs map[string]Job) (map[string]Status, error) {
	args := []string{"--noheader", "--format=%i|%T|%r"}
	if s.user != "" {
		args = append(args, "--user="+s.user)
	}
	out, err := s.command(ctx, s.cfg.Squeue, args...)
	if err != nil {
		return nil, err
	}
	queued := map[string]Status{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) < 2 {
			continue
		}
		if st, ok := squeueState(f[1]); ok {
			queued[f[0]] = Status{State: st}
		}
	}
	res := make(map[string]Status, len(jobs))
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, j := range jobs {
		if st, ok := queued[id]; ok {
			res[id] = st
			delete(s.gone, id)
			continue
		}
		if code, ok := readExitStatus(j.Dir); ok {
			res[id] = exitStatus(code, j.Log)
			delete(s.gone, id)
			continue
		}
		first, seen := s.gone[id]
		if !seen {
			s.gone[id] = now
			first = now
		}
		if now.Sub(first) < s.cfg.Settle {
			res[id] = Status{State: Running} // finishing: the exit status may not be visible yet
			continue
		}
		delete(s.gone, id)
		res[id] = Status{State: Failed, Reason: s.whyGone(ctx, id, j)}
	}
	return res, nil
}

// whyGone asks sacct how a job without an exit status ended (cancelled,
// timed out, node failure, out of memory): from the accounting database
// when the cluster keeps one, else from the job completion log (sacct -c,
// JobCompType=jobcomp/filetxt).
func (s *Slurm) whyGone(ctx context.Context, id string, j Job) string {
	reason := "ended without an exit status"
	for _, args := range [][]string{
		{"--noheader", "--parsable2", "--allocations", "--jobs=" + id, "--format=State,ExitCode"},
		{"--completion", "--noheader", "--parsable2", "--jobs=" + id, "--format=State,ExitCode"},
	} {
		out, err := s.command(ctx, s.cfg.Sacct, args...)
		if err != nil {
			continue
		}
		if f := strings.Split(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), "|"); len(f) == 2 && f[0] != "" {
			reason = fmt.Sprintf("SLURM state %s, exit code %s", f[0], f[1])
			break
		}
	}
	return fmt.Sprintf("%s (log %s)", reason, j.Log)
}

// Cancel implements Executor: scancel.
func (s *Slurm) Cancel(ctx context.Context, id string) error {
	_, err := s.command(ctx, s.cfg.Scancel, id)
	return err
}

// Close implements Executor; jobs on the cluster keep running.
func (s *Slurm) Close() error { return nil }
