package pipeline

import (
	"slices"
	"sync"

	"tioga/driver/analysis"
)

// tableCache keeps the last series' analysis tables so that a series whose
// geometry, series-level parameters and masks are those of the previous one
// starts without rebuilding them: NewTables runs in the dispatcher while
// every worker waits (about 0.35 CPU-s for a 4M, 1.5 for a 16M, i.e. a few
// hundred frames queued at 500 frames/s). A wrong reuse is worse than the
// cost, so the key is exact: the geometry compared field by field, the
// pixel mask compared entry by entry (same slice or equal contents; a few
// ms for a 4M, against the ~350 ms of a build), the hot map by pointer
// (its contents are read per frame, not folded into the tables), and the
// series-level parameters (analysis.ParamInfo.Series) by value. Per-frame
// parameters may differ: Tables.WithParams shares the shell table then.
type tableCache struct {
	mu     sync.Mutex
	t      *analysis.Tables
	pixel  []uint32 // the pixel mask t was built with (kept by t anyway)
	hot    *analysis.HotMap
	reused int // series that started with the previous tables (tests)
	built  int // series whose tables were built (tests)
}

// tables returns the tables for g, params and m, reusing the cached ones
// when nothing they depend on changed, and whether they were reused.
// m.Exclude (a function, not comparable) is never set by the pipeline;
// masks with one are always built.
func (c *tableCache) tables(g analysis.Geometry, params analysis.Params, m analysis.Masks) (*analysis.Tables, bool, error) {
	c.mu.Lock()
	prev, prevPixel, prevHot := c.t, c.pixel, c.hot
	c.mu.Unlock()

	var t *analysis.Tables
	reused := false
	if prev != nil && m.Exclude == nil && !m.NoGaps && m.Hot == prevHot &&
		prev.Geometry() == g && seriesParamsEqual(prev.Params(), params) &&
		samePixelMask(prevPixel, m.Pixel) {
		nt, err := prev.WithParams(params)
		if err != nil {
			return nil, false, err
		}
		t, reused = nt, true
	} else {
		nt, err := analysis.NewTables(g, params, m)
		if err != nil {
			return nil, false, err
		}
		t = nt
	}

	c.mu.Lock()
	if m.Exclude == nil && !m.NoGaps {
		c.t, c.hot = t, m.Hot
		if !reused {
			c.pixel = m.Pixel
		}
	} else {
		c.t, c.pixel, c.hot = nil, nil, nil
	}
	if reused {
		c.reused++
	} else {
		c.built++
	}
	c.mu.Unlock()
	return t, reused, nil
}

// counts returns how many series reused and built their tables.
func (c *tableCache) counts() (reused, built int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reused, c.built
}

// samePixelMask reports whether two pixel masks exclude the same pixels
// the same way: both absent, the same slice, or equal entries.
func samePixelMask(a, b []uint32) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return slices.Equal(a, b)
}

// seriesParamsEqual reports whether p and q agree on every parameter that
// shapes the per-series tables (analysis.ParamInfo.Series).
func seriesParamsEqual(p, q analysis.Params) bool {
	for _, info := range analysis.ParamTable() {
		if !info.Series {
			continue
		}
		a, err1 := p.Get(info.Name)
		b, err2 := q.Get(info.Name)
		if err1 != nil || err2 != nil || a != b {
			return false
		}
	}
	return true
}
