package writer

import (
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FS is the part of the file system the writer uses. The real one is OS;
// tests substitute one that fails on demand (ENOSPC, EACCES, ...), so that
// the error handling is exercised even where a test may not mount a full or
// read-only file system.
type FS interface {
	MkdirAll(dir string, perm fs.FileMode) error
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Link makes newname a second name of oldname and fails with an
	// fs.ErrExist error when newname exists: publishing a file this way can
	// never replace another one.
	Link(oldname, newname string) error
	Rename(oldname, newname string) error
	Remove(name string) error
	Lstat(name string) (fs.FileInfo, error)
	ReadDir(dir string) ([]fs.DirEntry, error)
	// FreeBytes is the space available to unprivileged users on the file
	// system holding dir.
	FreeBytes(dir string) (uint64, error)
	// SyncDir makes the directory entries of dir durable (fsync on dir).
	SyncDir(dir string) error
	// SyncFS makes everything written to the file system holding dir
	// durable (syncfs), cheaper than an fsync per file at the end of a
	// series.
	SyncFS(dir string) error
	// Truncate cuts a file to size bytes: a result line that a full disk
	// cut short is taken back, so that a reader never sees half a record.
	Truncate(name string, size int64) error
}

// File is an open file of an FS.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// OS is the operating system's file system.
//
// The calls a frame makes (OpenFile, File.Write, Sync and Close, Link,
// Remove) and FreeBytes go to the system directly rather than through
// package os, so that a frame costs no allocation: os converts every path
// to a new NUL-terminated copy on the heap and makes an *os.File per open.
// Here a path is copied to the stack for the call, and a File is a raw
// file descriptor in a pooled value. Errors are the same *fs.PathError and
// *os.LinkError values with the same system errors as os gives (they
// allocate, on the failure path only).
var OS FS = osFS{}

type osFS struct{}

func (osFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	var p cpath
	if err := p.set(name); err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	for {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(&p.b[0])), uintptr(flag|unix.O_CLOEXEC|unix.O_LARGEFILE), uintptr(sysMode(perm)), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: e}
		}
		f := freeFiles.get()
		f.fd, f.name = int(r), name
		return f, nil
	}
}

func (osFS) Link(oldname, newname string) error {
	var o, n cpath
	err := o.set(oldname)
	if err == nil {
		err = n.set(newname)
	}
	if err == nil {
		err = ignoringEINTR(func() error {
			return errnoErr(unix.Syscall6(unix.SYS_LINKAT, atFDCWD, uintptr(unsafe.Pointer(&o.b[0])), atFDCWD, uintptr(unsafe.Pointer(&n.b[0])), 0, 0))
		})
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// Remove removes a file or an empty directory, as os.Remove does (and
// reports the same error when both fail).
func (osFS) Remove(name string) error {
	var p cpath
	if err := p.set(name); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	e := ignoringEINTR(func() error {
		return errnoErr(unix.Syscall(unix.SYS_UNLINKAT, atFDCWD, uintptr(unsafe.Pointer(&p.b[0])), 0))
	})
	if e == nil {
		return nil
	}
	e1 := ignoringEINTR(func() error {
		return errnoErr(unix.Syscall(unix.SYS_UNLINKAT, atFDCWD, uintptr(unsafe.Pointer(&p.b[0])), unix.AT_REMOVEDIR))
	})
	if e1 == nil {
		return nil
	}
	if e1 != unix.ENOTDIR {
		e = e1
	}
	return &fs.PathError{Op: "remove", Path: name, Err: e}
}

func (osFS) Rename(oldname, newname string) error      { return os.Rename(oldname, newname) }
func (osFS) Truncate(name string, size int64) error    { return os.Truncate(name, size) }
func (osFS) Lstat(name string) (fs.FileInfo, error)    { return os.Lstat(name) }
func (osFS) ReadDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }

func (osFS) FreeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	var p cpath
	err := p.set(dir)
	if err == nil {
		err = ignoringEINTR(func() error {
			return errnoErr(unix.Syscall(unix.SYS_STATFS, uintptr(unsafe.Pointer(&p.b[0])), uintptr(unsafe.Pointer(&st)), 0))
		})
	}
	if err != nil {
		return 0, &fs.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// SyncDir opens, fsyncs and closes dir without package os: FsyncFile
// does it for every frame.
func (osFS) SyncDir(dir string) error {
	var p cpath
	if err := p.set(dir); err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	var fd uintptr
	err := ignoringEINTR(func() error {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(&p.b[0])), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0, 0, 0)
		fd = r
		return errnoErr(0, 0, e)
	})
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	err = ignoringEINTR(func() error { return unix.Fsync(int(fd)) })
	if cerr := unix.Close(int(fd)); err == nil && cerr != nil {
		return &fs.PathError{Op: "close", Path: dir, Err: cerr}
	}
	if err != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: err}
	}
	return nil
}

func (osFS) SyncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return &fs.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// osFile is an open file of OS: a file descriptor. Close puts it back on
// freeFiles for the next OpenFile, so it must not be used after Close.
type osFile struct {
	fd   int
	name string
}

// freeFiles holds the closed osFiles, as many as were ever open at once
// (a few per worker). Not a sync.Pool: that drops its items at every
// garbage collection and allocates again afterwards.
var freeFiles fileList

type fileList struct {
	mu   sync.Mutex
	free []*osFile
}

func (l *fileList) get() *osFile {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		f := l.free[n-1]
		l.free = l.free[:n-1]
		return f
	}
	return new(osFile)
}

func (l *fileList) put(f *osFile) {
	l.mu.Lock()
	l.free = append(l.free, f)
	l.mu.Unlock()
}

// Write writes all of p, as os.File.Write does (a regular file takes at
// most 2 GiB - 4 KiB per write(2)).
func (f *osFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(f.fd, p[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, &fs.PathError{Op: "write", Path: f.name, Err: err}
		}
		if m == 0 {
			return n, &fs.PathError{Op: "write", Path: f.name, Err: io.ErrShortWrite}
		}
		n += m
	}
	return n, nil
}

func (f *osFile) Sync() error {
	if err := ignoringEINTR(func() error { return unix.Fsync(f.fd) }); err != nil {
		return &fs.PathError{Op: "sync", Path: f.name, Err: err}
	}
	return nil
}

// Close closes the descriptor (not retried on EINTR: Linux has released
// it by then) and returns f to the pool.
func (f *osFile) Close() error {
	if f.fd < 0 {
		return &fs.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	err := unix.Close(f.fd)
	name := f.name
	f.fd, f.name = -1, ""
	freeFiles.put(f)
	if err != nil {
		return &fs.PathError{Op: "close", Path: name, Err: err}
	}
	return nil
}

// cpath is a path as the system takes it, NUL-terminated, on the caller's
// stack: a call keeps no pointer to it past its return. Its address goes to
// the system call as uintptr(unsafe.Pointer(&p.b[0])) written in the call's
// own argument list, the one place where the compiler keeps the object
// alive and in place until the (assembly) call returns (unsafe.Pointer
// rule 4); a helper returning the uintptr would not be covered.
type cpath struct {
	b [unix.PathMax]byte
}

func (p *cpath) set(name string) error {
	if len(name) >= len(p.b) {
		return unix.ENAMETOOLONG
	}
	if strings.IndexByte(name, 0) >= 0 {
		return unix.EINVAL // what os reports for a NUL in a path
	}
	p.b[copy(p.b[:], name)] = 0
	return nil
}

// atFDCWD is AT_FDCWD as a system call argument: paths relative to the
// working directory.
var atFDCWD = func() uintptr { fd := unix.AT_FDCWD; return uintptr(fd) }()

func errnoErr(_, _ uintptr, e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// sysMode is os's translation of a FileMode to open(2)'s mode bits.
func sysMode(m fs.FileMode) uint32 {
	o := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		o |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		o |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		o |= unix.S_ISVTX
	}
	return o
}
