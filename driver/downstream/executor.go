package downstream

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Job is one attempt at processing one chunk: a rendered script in its own
// directory. The script records its exit status in ExitStatusFile (the
// templates install a trap for it), so that an executor that cannot see
// the process (SLURM) still learns how it ended.
type Job struct {
	Name      string        // tioga-<series>-<chunk>[-<attempt>]: shows in squeue
	Dir       string        // working directory, on a file system the job's host shares
	Script    string        // the job script (bash)
	Log       string        // stdout and stderr of the job
	CPUs      int           // CPUs the job may use
	TimeLimit time.Duration // 0: the executor's default
}

// ExitStatusFile is the file, in the job's directory, where its script
// writes its exit status as the last thing it does.
const ExitStatusFile = "exit_status"

// State is where a job is.
type State int

// Job states. Done and Failed are final.
const (
	Queued State = iota
	Running
	Done
	Failed
)

func (s State) String() string {
	switch s {
	case Queued:
		return "queued"
	case Running:
		return "running"
	case Done:
		return "done"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Status is a job's state and, when it failed, why.
type Status struct {
	State  State
	Reason string
}

// Executor runs job scripts somewhere: on a SLURM cluster (Slurm) or as
// processes of this host (Local). Submit must not wait for the job.
type Executor interface {
	// Name is "slurm", "local", ... (the executor property).
	Name() string
	// Submit starts or queues the job and returns its id.
	Submit(ctx context.Context, j Job) (id string, err error)
	// Status reports the state of each job in jobs (id → job). A job the
	// executor does not know any more must be reported Done or Failed from
	// what it left behind (its exit status file).
	Status(ctx context.Context, jobs map[string]Job) (map[string]Status, error)
	// Cancel stops a queued or running job; its status becomes Failed.
	Cancel(ctx context.Context, id string) error
	// Close stops everything the executor owns (the local executor's
	// processes); jobs on a cluster keep running.
	Close() error
}

// readExitStatus reads the exit status a job script left in dir: ok is
// false when there is none (the job did not finish its script).
func readExitStatus(dir string) (code int, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, ExitStatusFile))
	if err != nil {
		return 0, false
	}
	code, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return code, true
}

// exitStatus turns an exit status into a final Status.
func exitStatus(code int, log string) Status {
	if code == 0 {
		return Status{State: Done}
	}
	return Status{State: Failed, Reason: fmt.Sprintf("exit status %d (log %s)", code, log)}
}
