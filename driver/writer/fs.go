package writer

import (
	"io"
	"io/fs"
	"os"

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
var OS FS = osFS{}

type osFS struct{}

func (osFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	return os.OpenFile(name, flag, perm)
}
func (osFS) Link(oldname, newname string) error        { return os.Link(oldname, newname) }
func (osFS) Rename(oldname, newname string) error      { return os.Rename(oldname, newname) }
func (osFS) Remove(name string) error                  { return os.Remove(name) }
func (osFS) Truncate(name string, size int64) error    { return os.Truncate(name, size) }
func (osFS) Lstat(name string) (fs.FileInfo, error)    { return os.Lstat(name) }
func (osFS) ReadDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }

func (osFS) FreeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, &fs.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return st.Bavail * uint64(st.Bsize), nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
