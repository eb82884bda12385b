package writer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"tioga/driver/cbf"
	"tioga/internal/testenv"
)

// TestWriteAllocatesNothingPerFrame pins the writer's part of the frame
// path: once warm, Write (encode, create the temporary, write, fsync when
// the policy says so, link, remove the temporary, the free-space check
// every FreeCheckEvery frames) allocates nothing but a path block per
// hundred frames or so (framePaths). Before, every frame cost 11
// allocations: 4 for the path strings, 6 in package os (a NUL-terminated
// copy of each path handed to the system, the *os.File) and the
// data block name. Every returned path stays what it was when returned
// while later frames are written (the path blocks are never written
// again), and names a complete file.
func TestWriteAllocatesNothingPerFrame(t *testing.T) {
	testenv.SkipIfShort(t) // 300 frames x 3; and the race detector allocates
	for _, c := range []struct {
		format Format
		fsync  FsyncPolicy
	}{
		{FormatCBFGzip, FsyncNever},
		{FormatCBF, FsyncFile},
		{FormatTIFF, FsyncSeries},
	} {
		t.Run(string(c.format)+"/"+string(c.fsync), func(t *testing.T) {
			s := open(t, Config{Directory: t.TempDir(), Prefix: "a", Run: 1, Format: c.format, Fsync: c.fsync, FreeCheckEvery: 7})
			fr := tinyFrames(2)
			var sc Scratch
			const warm, runs = 3, 300
			paths := make([]string, 0, warm+runs)
			write := func() {
				i := len(paths)
				p, err := s.Write(&sc, i, fr[i%len(fr)])
				if err != nil {
					t.Fatal(err)
				}
				paths = append(paths, p)
			}
			for range warm {
				write()
			}
			runtime.GC() // the collector's own first allocations are not the writer's
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mallocs := ms.Mallocs
			for range runs {
				write()
			}
			runtime.ReadMemStats(&ms)
			mallocs = ms.Mallocs - mallocs
			// Allowed: the path blocks (both paths of a frame take
			// 2 x len(path) + len(".part") + 1 bytes, about one block
			// per hundred frames) and the runtime's own, which
			// MemStats counts too: a thread started when the system
			// monitor hands a P on from a write blocked in the
			// kernel costs 7, now and then. An allocation per frame
			// would be 300.
			perFrame := 2*len(paths[0]) + len(".part") + 1
			blocks := runs*perFrame/(pathBlockSize-2*perFrame) + 1
			allowed := uint64(runs / 10)
			t.Logf("%d allocations in %d frames (path blocks: about %d)", mallocs, runs, blocks)
			if mallocs > allowed {
				t.Errorf("%d allocations in %d frames, want at most %d (path blocks, the runtime's threads)", mallocs, runs, allowed)
			}
			for i, p := range paths {
				if want := s.Path(i); p != want {
					t.Fatalf("frame %d: path %q changed, want %q", i, p, want)
				}
			}
			for _, i := range []int{0, warm + runs - 1} {
				checkImage(t, paths[i], fr[i%len(fr)], i)
				if c.format != FormatTIFF {
					img, err := cbf.ReadFile(paths[i])
					if want := fmt.Sprintf("a_1_%05d", i+1); err != nil || img.Name != want {
						t.Errorf("%s: data block %q, want %q (%v)", paths[i], img.Name, want, err)
					}
				}
			}
			if tmp, _ := filepath.Glob(filepath.Join(s.Stats().Directory, ".*")); len(tmp) > 0 {
				t.Errorf("temporaries left: %v", tmp)
			}
		})
	}
}

// The system calls of OS give the errors package os gives, so that
// CauseOf, the create retry (ErrExist, ErrNotExist) and linkUnsupported
// see the same values.
func TestOSErrors(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	f, err := OS.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second close: %v", err)
	}
	if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o640&^umask(t) || fi.Size() != 5 {
		t.Errorf("file: %v, %v", fi, err)
	}

	var pe *fs.PathError
	var le *os.LinkError
	_, err = OS.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if !errors.Is(err, fs.ErrExist) || !errors.As(err, &pe) || pe.Op != "open" || pe.Path != name {
		t.Errorf("create an existing file: %#v", err)
	}
	missing := filepath.Join(dir, "no", "f")
	if _, err = OS.OpenFile(missing, os.O_WRONLY|os.O_CREATE, 0o644); !errors.Is(err, fs.ErrNotExist) || CauseOf(err) != CauseMissing {
		t.Errorf("create in a missing directory: %v (%v)", err, CauseOf(err))
	}
	if err := OS.Link(name, name); !errors.Is(err, fs.ErrExist) || !errors.As(err, &le) || le.Op != "link" || le.Old != name || le.New != name {
		t.Errorf("link onto an existing file: %#v", err)
	}
	if err := OS.Link(missing, name+"2"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("link of a missing file: %v", err)
	}
	if err := OS.Link(name, name+"2"); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(name + "2"); string(data) != "hello" {
		t.Errorf("linked file: %q, %v", data, err)
	}
	if err := OS.Remove(missing); !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "remove" {
		t.Errorf("remove a missing file: %#v", err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := OS.Remove(sub); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("remove a full directory: %v, want ENOTEMPTY as os.Remove says", err)
	}
	if err := OS.Remove(filepath.Join(sub, "x")); err != nil {
		t.Fatal(err)
	}
	if err := OS.Remove(sub); err != nil {
		t.Errorf("remove an empty directory: %v", err)
	}
	if _, err := OS.OpenFile(string(make([]byte, 5000)), os.O_RDONLY, 0); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("too long a name: %v", err)
	}
	if _, err := OS.OpenFile(name+"\x00x", os.O_RDONLY, 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("a NUL in a name: %v", err)
	}
	if err := OS.SyncDir(dir); err != nil {
		t.Error(err)
	}
	if err := OS.SyncDir(name); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("sync a file as a directory: %v", err)
	}
	if _, err := OS.FreeBytes(missing); CauseOf(err) != CauseMissing {
		t.Errorf("free bytes of a missing directory: %v", err)
	}
	if free, err := OS.FreeBytes(dir); err != nil || free == 0 {
		t.Errorf("free bytes: %d, %v", free, err)
	}

	// A read-only descriptor refuses writes with the path named.
	r, err := OS.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, syscall.EBADF) || !errors.As(err, &pe) || pe.Op != "write" || pe.Path != name {
		t.Errorf("write to a read-only file: %#v", err)
	}
	r.Close()

	if os.Geteuid() != 0 { // root may create files anywhere
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		if _, err := OS.OpenFile(filepath.Join(ro, "f"), os.O_WRONLY|os.O_CREATE, 0o644); CauseOf(err) != CausePermission {
			t.Errorf("create in a read-only directory: %v (%v)", err, CauseOf(err))
		}
	}
}

func umask(t *testing.T) fs.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m)
}
