package writer

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"tioga/driver/cbf/cbftest"
)

// mountTmpfs mounts a fresh tmpfs of the given size on a temporary
// directory and unmounts it when the test ends. Mounting needs root (CI
// runs as root); elsewhere the test is skipped, since TestInjectedFaults
// covers the same logic through an injected file system.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs; TestInjectedFaults covers the logic without mounting")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestInjectedFaults covers the logic", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func remount(t *testing.T, dir string, flags uintptr) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|flags, ""); err != nil {
		t.Fatalf("remount %s: %v", dir, err)
	}
}

// A really full file system: the series starts only when the minimum free
// space is disabled, frames fail with ENOSPC once the 512 KiB are used,
// the failures name the path, the files reported before stay intact, no
// temporary is left behind, and freeing space lets writing resume.
func TestFullFileSystem(t *testing.T) {
	dir := mountTmpfs(t, "512k")

	// With the default minimum free space (2 GiB) the series cannot start.
	if _, err := Open(Config{Directory: dir, Prefix: "x", Run: 1}, cbftest.Header()); !errors.Is(err, ErrDiskNearlyFull) {
		t.Fatalf("series started on a 512 KiB file system: %v", err)
	}

	s := open(t, Config{Directory: dir, Prefix: "x", Run: 1, Format: FormatCBF, MinFreeBytes: -1})
	fr := tinyFrames(12)
	var sc Scratch
	written := map[int]string{}
	var failures []error
	for i, p := range fr {
		path, err := s.Write(&sc, i, p)
		if err != nil {
			failures = append(failures, err)
			continue
		}
		written[i] = path
		s.AddResult(Result{Frame: i, File: path}, nil)
	}
	if len(written) < 3 || len(failures) == 0 {
		t.Fatalf("%d written, %d failed: expected the disk to fill", len(written), len(failures))
	}
	for _, err := range failures {
		var we *Error
		if !errors.As(err, &we) || we.Cause != CauseNoSpace || !strings.Contains(err.Error(), we.Path) ||
			!strings.Contains(err.Error(), "no space left on device") {
			t.Fatalf("failure on a full disk: %v", err)
		}
	}
	st := s.Stats()
	if st.Written != uint64(len(written)) || st.Failed != uint64(len(failures)) || st.FailedBy[CauseNoSpace] != uint64(len(failures)) {
		t.Fatalf("stats %+v", st)
	}
	noTemporaries(t, dir)
	for i, p := range written {
		checkImage(t, p, fr[i], i)
	}

	// Make room: the next frame goes through.
	for i := 0; i < 2; i++ {
		os.Remove(written[i])
		delete(written, i)
	}
	path, err := s.Write(&sc, 100, fr[0])
	if err != nil {
		t.Fatalf("writing after space was freed: %v", err)
	}
	checkImage(t, path, fr[0], 100)
	s.Close()
	for i, p := range written {
		checkImage(t, p, fr[i], i)
	}
}

// A file system remounted read-only mid-series: EROFS for each frame, the
// series goes on, and writing resumes when it is writable again.
func TestReadOnlyFileSystem(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	s := open(t, Config{Directory: dir, Prefix: "x", Run: 1, Format: FormatCBF})
	fr := tinyFrames(6)
	var sc Scratch
	for i := 0; i < 2; i++ {
		if _, err := s.Write(&sc, i, fr[i]); err != nil {
			t.Fatal(err)
		}
	}
	remount(t, dir, syscall.MS_RDONLY)
	for i := 2; i < 4; i++ {
		_, err := s.Write(&sc, i, fr[i])
		if CauseOf(err) != CauseReadOnly || !strings.Contains(err.Error(), s.Path(i)) || !strings.Contains(err.Error(), "read-only file system") {
			t.Fatalf("frame %d on a read-only file system: %v", i, err)
		}
	}
	if st := s.Stats(); st.Failed != 2 || st.FailedBy[CauseReadOnly] != 2 || !strings.Contains(st.LastError, s.Path(3)) {
		t.Fatalf("stats %+v", st)
	}
	remount(t, dir, 0)
	for i := 4; i < 6; i++ {
		if _, err := s.Write(&sc, i, fr[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 4, 5} {
		checkImage(t, s.Path(i), fr[i], i)
	}
	noTemporaries(t, dir)
}
