package writer

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
)

var (
	// ErrExists: the file to write exists and the overwrite policy refuses
	// to replace it.
	ErrExists = errors.New("file exists (refusing to overwrite)")
	// ErrDiskNearlyFull: the file system has less free space than the
	// configured minimum, so a series may not start.
	ErrDiskNearlyFull = errors.New("disk nearly full")
	// ErrClosed: the series has been closed.
	ErrClosed = errors.New("series closed")
	// ErrConfig wraps configuration errors.
	ErrConfig = errors.New("bad writer configuration")
)

// Cause classifies a failure for counters and status texts: operators act
// differently on a full disk, a permission problem or a missing directory.
type Cause int

const (
	CauseOther      Cause = iota
	CauseNoSpace          // ENOSPC, EDQUOT: disk or quota full
	CausePermission       // EACCES, EPERM
	CauseReadOnly         // EROFS
	CauseMissing          // ENOENT, ENOTDIR: directory missing or not a directory
	CauseExists           // refused to overwrite
	CauseInput            // the frame itself was invalid (size, header)
	// NumCauses is the number of causes (the length of Stats.FailedBy).
	NumCauses
)

var causeNames = [NumCauses]string{"other", "disk full", "permission denied", "read-only file system",
	"directory missing", "file exists", "invalid frame"}

func (c Cause) String() string {
	if c >= 0 && c < NumCauses {
		return causeNames[c]
	}
	return "cause " + strconv.Itoa(int(c))
}

// CauseOf classifies an error.
func CauseOf(err error) Cause {
	var e *Error
	if errors.As(err, &e) && e.Cause != CauseOther {
		return e.Cause
	}
	var errno syscall.Errno
	switch {
	case errors.Is(err, ErrExists):
		return CauseExists
	case errors.As(err, &errno):
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT:
			return CauseNoSpace
		case syscall.EACCES, syscall.EPERM:
			return CausePermission
		case syscall.EROFS:
			return CauseReadOnly
		case syscall.ENOENT, syscall.ENOTDIR:
			return CauseMissing
		}
	case errors.Is(err, fs.ErrPermission):
		return CausePermission
	case errors.Is(err, fs.ErrNotExist):
		return CauseMissing
	}
	return CauseOther
}

// Error is a failure to write a frame or a per-series output. It names the
// final path, the step that failed and the cause; Unwrap gives the
// operating system's error (which names the temporary file, if that is
// where it happened).
type Error struct {
	Frame int    // frame number, -1 for per-series outputs
	Path  string // the file that was to be written
	Op    string // "encode", "create", "write", "sync", "close", "publish", "flush", ...
	Cause Cause
	Err   error
}

func (e *Error) Error() string {
	s := "writer: "
	if e.Frame >= 0 {
		s += "frame " + strconv.Itoa(e.Frame) + ": "
	}
	s += e.Op + " " + e.Path + ": "
	// The cause once: most system errors ("mkdir /d: permission denied")
	// and ErrExists already say it.
	msg := e.Err.Error()
	if cause := e.Cause.String(); !strings.Contains(msg, cause) {
		s += cause + ": "
	}
	return s + msg
}

func (e *Error) Unwrap() error { return e.Err }

func newError(frame int, path, op string, err error) *Error {
	return &Error{Frame: frame, Path: path, Op: op, Cause: CauseOf(err), Err: err}
}
