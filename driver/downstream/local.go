package downstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Local runs jobs as processes of this host (bash <script>), at most
// MaxJobs at a time; the others wait in its queue. It is the executor of
// a beamline without a cluster, and runs exactly the scripts the SLURM
// executor submits.
type Local struct {
	maxJobs   int
	timeLimit time.Duration

	mu      sync.Mutex
	slot    *sync.Cond // signalled when a job ends or leaves the queue
	next    int
	jobs    map[string]*localJob
	waiting []*localJob // first in, first out: the oldest chunk runs first
	running int
	closed  bool
	wg      sync.WaitGroup
}

type localJob struct {
	status Status
	cancel context.CancelFunc
}

// NewLocal returns a local executor running up to maxJobs jobs at once
// (default 1), each stopped after timeLimit (0: a job's own TimeLimit, else
// no limit).
func NewLocal(maxJobs int, timeLimit time.Duration) *Local {
	if maxJobs <= 0 {
		maxJobs = 1
	}
	l := &Local{maxJobs: maxJobs, timeLimit: timeLimit, jobs: map[string]*localJob{}}
	l.slot = sync.NewCond(&l.mu)
	return l
}

// Name implements Executor.
func (l *Local) Name() string { return "local" }

// Submit queues the job; it starts when fewer than MaxJobs run.
func (l *Local) Submit(_ context.Context, j Job) (string, error) {
	if _, err := os.Stat(j.Script); err != nil {
		return "", fmt.Errorf("local executor: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errors.New("local executor closed")
	}
	l.next++
	id := strconv.Itoa(l.next)
	limit := j.TimeLimit
	if limit == 0 {
		limit = l.timeLimit
	}
	ctx, cancel := context.WithCancel(context.Background())
	lj := &localJob{status: Status{State: Queued}, cancel: cancel}
	l.jobs[id] = lj
	l.waiting = append(l.waiting, lj)
	// A cancel while queued must wake the waiter.
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.slot.Broadcast()
		l.mu.Unlock()
	})
	l.wg.Add(1)
	go l.run(ctx, id, lj, j, limit)
	return id, nil
}

func (l *Local) set(lj *localJob, s Status) {
	l.mu.Lock()
	lj.status = s
	l.mu.Unlock()
}

// run waits for a slot, then runs the script in its own process group so
// that a cancel or a time limit stops everything it started.
func (l *Local) run(ctx context.Context, id string, lj *localJob, j Job, limit time.Duration) {
	defer l.wg.Done()
	defer lj.cancel()
	l.mu.Lock()
	for ctx.Err() == nil && (l.running >= l.maxJobs || l.waiting[0] != lj) {
		l.slot.Wait()
	}
	for i, w := range l.waiting {
		if w == lj {
			l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
			break
		}
	}
	if ctx.Err() != nil {
		lj.status = Status{State: Failed, Reason: "cancelled while queued"}
		l.slot.Broadcast()
		l.mu.Unlock()
		return
	}
	l.running++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.running--
		l.slot.Broadcast()
		l.mu.Unlock()
	}()
	l.set(lj, Status{State: Running})

	runCtx := ctx
	if limit > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	log, err := os.OpenFile(j.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.set(lj, Status{State: Failed, Reason: fmt.Sprintf("job log: %v", err)})
		return
	}
	defer log.Close()
	cmd := exec.Command("bash", j.Script)
	cmd.Dir = j.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "TIOGA_JOB_ID="+id, "TIOGA_CPUS="+strconv.Itoa(max(j.CPUs, 1)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.set(lj, Status{State: Failed, Reason: fmt.Sprintf("start %s: %v", j.Script, err)})
		return
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-runCtx.Done():
		// SIGTERM to the group (the script's trap records the status),
		// SIGKILL if it does not go.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		reason := "cancelled"
		if ctx.Err() == nil {
			reason = fmt.Sprintf("time limit %s reached", limit)
		}
		l.set(lj, Status{State: Failed, Reason: fmt.Sprintf("%s (log %s)", reason, j.Log)})
		return
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			l.set(lj, Status{State: Failed, Reason: fmt.Sprintf("%v (log %s)", err, j.Log)})
			return
		}
		code = ee.ExitCode()
	}
	l.set(lj, exitStatus(code, j.Log))
}

// Status implements Executor.
func (l *Local) Status(_ context.Context, jobs map[string]Job) (map[string]Status, error) {
	out := make(map[string]Status, len(jobs))
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range jobs {
		lj, ok := l.jobs[id]
		if !ok {
			out[id] = Status{State: Failed, Reason: "unknown to the local executor"}
			continue
		}
		out[id] = lj.status
		if lj.status.State == Done || lj.status.State == Failed {
			delete(l.jobs, id)
		}
	}
	return out, nil
}

// Cancel implements Executor.
func (l *Local) Cancel(_ context.Context, id string) error {
	l.mu.Lock()
	lj, ok := l.jobs[id]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("local executor: no job %s", id)
	}
	lj.cancel()
	return nil
}

// Close cancels every job and waits for their processes to end.
func (l *Local) Close() error {
	l.mu.Lock()
	l.closed = true
	for _, lj := range l.jobs {
		lj.cancel()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}
