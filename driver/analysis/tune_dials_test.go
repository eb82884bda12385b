//go:build dials

package analysis

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dialsCached runs dials.find_spots once per real frame (defaults, as
// TestCompareDIALSRealFrames) and keeps its result in the directory
// ZZDIALSCACHE, so that tuning runs compare with DIALS' spots without
// running DIALS again.
func dialsCached(t *testing.T, name string, f realFrame) dialsFrameResult {
	t.Helper()
	cache := os.Getenv("ZZDIALSCACHE")
	p := filepath.Join(cache, name+".json")
	var d dialsFrameResult
	if b, err := os.ReadFile(p); err == nil {
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	dir := t.TempDir()
	img, _ := realFrameFile(t, name, dir, f)
	cmd := exec.Command("/usr/bin/python3", "-c", dialsRealFrame, img, "1")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	line := out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:]
	if err := json.Unmarshal(line, &d); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, line, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTuneRealDIALS is the real-frame half of a tuning run, by hand: our
// spots with the defaults changed by ZP ("name=value,name=value") beside
// DIALS' on the same real frames, per frame: counts, spots shared (2 px),
// resolution both ways. No real frame has a ground truth, so this is the
// check that a change which helps on the simulator does not add spots on
// real frames that DIALS does not find. grow-level was chosen with it:
//
//	ZZDIALSCACHE=/tmp/dials ZP=grow-level=2.5 go test -tags dials -run TuneRealDIALS -v ./driver/analysis/
func TestTuneRealDIALS(t *testing.T) {
	if os.Getenv("ZZDIALSCACHE") == "" {
		t.Skip("a tuning run by hand: set ZZDIALSCACHE to a directory for DIALS' results")
	}
	p := DefaultParams()
	for _, kv := range strings.Split(os.Getenv("ZP"), ",") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Set(k, x); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"eiger2-thaumatin-grid", "eiger2xe-very-weak", "pilatus-weak-ice", "pilatus-high-background", "pilatus-thaumatin-still"}
	if n := os.Getenv("ZZFRAMES"); n != "" {
		names = strings.Split(n, ",")
	}
	for _, name := range names {
		f := loadRealFrame(t, name)
		d := dialsCached(t, name, f)
		tab, err := NewTables(f.geom, p, Masks{Hot: NewHotMap()})
		if err != nil {
			t.Fatal(err)
		}
		res := analyseReal(t, f, tab)
		sh := sharedSpots(res.SpotList, d.X, d.Y, 2)
		fmt.Printf("%-24s DIALS %4d ours %4d ratio %.2f shared %4d (%.0f%% of ours, %.0f%% of DIALS') res %.2f (DIALS d_min %.2f) shape %d frag %d ice %d cand %d strong %d\n",
			name, len(d.X), res.Spots, float64(res.Spots)/float64(len(d.X)), sh, 100*float64(sh)/float64(max(res.Spots, 1)), 100*float64(sh)/float64(max(len(d.X), 1)),
			res.Resolution, d.DMin, res.ShapeRejected, res.BlobFragments, res.IceSpots, res.Candidates, res.StrongPixels)
	}
}
