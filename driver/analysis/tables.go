package analysis

import (
	"fmt"
	"math"

	"tioga/device/detectormodel"
)

// excludedShell marks a pixel that is never analysed: a module gap, a
// masked pixel, the beamstop rectangle, or outside the resolution range.
// Folding every static mask into the shell table means the per-frame passes
// test one byte per pixel for all of them.
const excludedShell = 255

// Masks are the static masks of a series, besides the all-ones pixels that
// every frame carries (those are excluded frame by frame).
type Masks struct {
	// Pixel is the detector's pixel mask from the series header (Stream V1
	// dpixelmask, V2 pixel_mask): Width*Height entries, row-major; a pixel
	// with any bit set is excluded. nil means none.
	Pixel []uint32
	// Exclude is an optional user mask: pixels for which it returns true
	// are excluded. It is called once per pixel while tables are built.
	Exclude func(x, y int) bool
	// NoGaps turns off the module-gap mask that NewTables otherwise takes
	// from the EIGER profile matching the frame size (detectormodel.BySize).
	// Gap pixels arrive as all-ones anyway; the static mask only saves the
	// per-frame work of finding them again.
	NoGaps bool
	// Hot is the pipeline's hot-pixel map (hot.go), shared by every series'
	// tables; nil means none.
	Hot *HotMap
}

// Tables are the per-series lookup tables: the resolution shell of every
// pixel (with every static mask folded in) and the parameters. They are
// built once when a series starts and are read-only afterwards, so one
// Tables is shared by all workers' Analysers.
type Tables struct {
	geom   Geometry
	params Params
	masks  Masks

	shell       []uint8     // per pixel: shell index, or excludedShell
	uniform     []uint64    // bit per pixel: it and its eight neighbours are in one shell (growSpots)
	blocks      blockTables // the strong-pixel block scan's (strongblocks.go)
	nShells     int         // regular shells plus ice bands
	nRegular    int         // regular shells: 0..nRegular-1; ice bands follow
	ice         []iceBand
	qLo, qStep  float64    // shell s covers 1/d² in [qLo + s*qStep, qLo + (s+1)*qStep)
	qHi         float64    // 1/d² of the highest-resolution analysed pixel
	shellPixels []int      // analysed pixels per shell
	steps       []uint16   // the background sample (see sampleStride), as steps (sampleSteps)
	stride      [256]int32 // per shell: one pixel in stride is in the sample
	analysed    int        // pixels not excluded
	profile     string     // EIGER profile whose gaps were masked, "" if none
}

// NewTables validates the geometry and parameters and builds the tables.
// It keeps m.Pixel (without copying) for Tables.WithParams: the caller
// must not modify it afterwards.
func NewTables(g Geometry, p Params, m Masks) (*Tables, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	n := g.Width * g.Height
	if m.Pixel != nil && len(m.Pixel) != n {
		return nil, fmt.Errorf("analysis: pixel mask has %d entries, frame %d x %d has %d pixels", len(m.Pixel), g.Width, g.Height, n)
	}
	t := &Tables{geom: g, params: p, masks: m, nShells: p.Shells, nRegular: p.Shells}
	t.shell = make([]uint8, n)

	var prof detectormodel.Profile
	gaps := false
	if !m.NoGaps {
		prof, gaps = detectormodel.BySize(g.Width, g.Height)
		if gaps {
			t.profile = prof.Name
		}
	}

	// Pass 1: static exclusion (masks, beamstop, resolution range) and the
	// 1/d² range of what is left. 0 and 255 are placeholders for "kept"
	// and "excluded"; pass 2 replaces "kept" by the shell index.
	qMaxLimit := math.Inf(1)
	if p.DMin > 0 {
		qMaxLimit = 1 / (p.DMin * p.DMin)
	}
	qMinLimit := 0.0
	if p.DMax > 0 {
		qMinLimit = 1 / (p.DMax * p.DMax)
	}
	qLo, qHi := math.Inf(1), math.Inf(-1)
	for y := 0; y < g.Height; y++ {
		row := t.shell[y*g.Width : (y+1)*g.Width]
		gapRow := gaps && prof.IsGapRow(y)
		for x := range row {
			i := y*g.Width + x
			excl := gapRow || (gaps && prof.IsGapColumn(x)) ||
				(m.Pixel != nil && m.Pixel[i] != 0) ||
				p.Beamstop.Contains(x, y) ||
				(m.Exclude != nil && m.Exclude(x, y))
			if !excl {
				q := g.InvD2(float64(x), float64(y))
				if q < qMinLimit || q > qMaxLimit {
					excl = true
				} else {
					qLo = math.Min(qLo, q)
					qHi = math.Max(qHi, q)
				}
			}
			if excl {
				row[x] = excludedShell
			}
		}
	}
	if qLo > qHi {
		return nil, fmt.Errorf("analysis: every pixel of the %d x %d frame is excluded (masks, beamstop, resolution range %v-%v Å)", g.Width, g.Height, p.DMax, p.DMin)
	}

	// Pass 2: shells equally spaced in 1/d² between the extremes of the
	// analysed pixels: equal solid angles, so every complete ring holds
	// about the same number of pixels (more at high angle on a flat
	// detector).
	t.qLo, t.qHi = qLo, qHi
	t.qStep = (qHi - qLo) / float64(p.Shells)
	if t.qStep <= 0 {
		t.qStep = 1 // a single ring of pixels: everything in shell 0
	}
	// Ice bands (ice.go) are shells of their own, after the regular ones.
	last := p.Shells - 1
	t.ice = iceBands(p.IceRingWidth, qLo, qHi)
	if len(t.ice) > maxShells-p.Shells {
		t.ice = t.ice[:maxShells-p.Shells]
	}
	for j := range t.ice {
		b := &t.ice[j]
		b.shell = p.Shells + j
		f := ((b.qLo+b.qHi)/2-qLo)/t.qStep - 0.5
		b.ref = max(0, min(int(math.Floor(f)), last-1))
		b.refW = math.Max(0, math.Min(f-float64(b.ref), 1))
	}
	t.nShells = p.Shells + len(t.ice)
	t.shellPixels = make([]int, t.nShells)
	// The ice bands that overlap each regular shell (bands[from[s]:to[s]]),
	// so that a pixel is tested against the one or two bands near it, not
	// searched for among all of them: on a 16M frame the search was a third
	// of the time NewTables takes. The shell's range is widened by a hair
	// so that rounding in s never hides a band.
	from, to := make([]int, p.Shells), make([]int, p.Shells)
	for s := range from {
		lo := qLo + (float64(s)-1e-6)*t.qStep
		hi := qLo + (float64(s)+1+1e-6)*t.qStep
		from[s] = len(t.ice)
		for j := range t.ice {
			if t.ice[j].qHi >= lo && t.ice[j].qLo <= hi {
				from[s] = min(from[s], j)
				to[s] = j + 1
			}
		}
		if to[s] < from[s] {
			to[s] = from[s]
		}
	}
	for y := 0; y < g.Height; y++ {
		row := t.shell[y*g.Width : (y+1)*g.Width]
		for x := range row {
			if row[x] == excludedShell {
				continue
			}
			q := g.InvD2(float64(x), float64(y))
			s := int((q - qLo) / t.qStep)
			s = max(0, min(s, last))
			for j := from[s]; j < to[s]; j++ {
				if b := &t.ice[j]; b.qLo <= q && q <= b.qHi {
					s = b.shell
					break
				}
			}
			row[x] = uint8(s)
			t.shellPixels[s]++
			t.analysed++
		}
	}
	t.steps = sampleSteps(backgroundSample(t), t.shell)
	t.uniform = uniformShells(t.shell, g.Width, g.Height)
	t.blocks = newBlockTables(t.shell, t.nRegular)
	return t, nil
}

// uniformShells marks the pixels off the frame's border whose eight
// neighbours are in their own shell: growSpots tests those neighbours
// against the seed's thresholds without reading the neighbours' shells,
// which costs two more cache lines per seed than the pixels themselves.
func uniformShells(shell []uint8, w, h int) []uint64 {
	u := make([]uint64, (w*h+63)/64)
	for y := 1; y < h-1; y++ {
		up, row, dn := shell[(y-1)*w:y*w], shell[y*w:(y+1)*w], shell[(y+1)*w:(y+2)*w]
		for x := 1; x < w-1; x++ {
			s := row[x]
			if row[x-1] == s && row[x+1] == s && up[x-1] == s && up[x] == s && up[x+1] == s &&
				dn[x-1] == s && dn[x] == s && dn[x+1] == s {
				i := y*w + x
				u[i>>6] |= 1 << (i & 63)
			}
		}
	}
	return u
}

// minShellSample is the number of pixels a shell's background sample keeps
// at least (all of them when the shell is smaller): enough that the clipped
// mean and sigma of a shell carry a relative error of about 1 % of sigma,
// far below what moves an integer threshold of mean + 6 sigma.
const minShellSample = 4096

// sampleStride returns the background sampling of a shell of n pixels:
// every stride-th pixel, 1 (all), 2 or 4.
//
// Why sample at all: histogramming every pixel was two thirds of the
// threshold method's time (about 2 ns per pixel on the 2-core AMD EPYC
// machine of issue 14), while the background of a shell of 40 000 pixels is
// known as well from 10 000. The strong-pixel test still looks at every
// pixel. Small shells (ice bands, corners, small detectors) keep every
// pixel.
func sampleStride(n int) int32 {
	switch {
	case n >= 4*minShellSample:
		return 4
	case n >= 2*minShellSample:
		return 2
	}
	return 1
}

// backgroundSample lists the pixels whose histograms give the shells'
// backgrounds: in a shell of stride k, the pixels with (x + y) mod k = 0, a
// diagonal lattice that takes every row and every column equally, so that
// no row or column pattern of the detector (chip borders, module edges)
// weighs more than its share.
func backgroundSample(t *Tables) []int32 {
	stride := &t.stride
	for s := range stride {
		stride[s] = 1
	}
	for s, c := range t.shellPixels {
		stride[s] = sampleStride(c)
	}
	// Ice bands and the shells they are compared with keep every pixel:
	// a continuous ring is a band background a few percent above its
	// neighbours', which sampling noise would imitate (ice.go).
	for _, b := range t.ice {
		stride[b.shell], stride[b.ref] = 1, 1
		stride[min(b.ref+1, t.nRegular-1)] = 1
	}
	n := 0
	for s, c := range t.shellPixels {
		n += (c + int(stride[s]) - 1) / int(stride[s])
	}
	sample := make([]int32, 0, n+t.geom.Height)
	w := t.geom.Width
	for y := 0; y < t.geom.Height; y++ {
		row := t.shell[y*w : (y+1)*w]
		for x, s := range row {
			if s != excludedShell && int32(x+y)%stride[s] == 0 {
				sample = append(sample, int32(y*w+x))
			}
		}
	}
	return sample
}

// sampleSteps encodes the background sample for fill: a step per sampled
// pixel, its distance from the previous one (from pixel 0 for the first)
// in the low byte and its shell in the high byte. A distance of more than
// 255 pixels (module gaps, masks) starts with steps of 255 in
// excludedShell, whose histogram fill counts and no one reads.
func sampleSteps(sample []int32, shell []uint8) []uint16 {
	steps := make([]uint16, 0, len(sample)+len(sample)/64)
	prev := int32(0)
	for _, i := range sample {
		d := i - prev
		for ; d > 0xff; d -= 0xff {
			steps = append(steps, 0xff|excludedShell<<8)
		}
		steps = append(steps, uint16(d)|uint16(shell[i])<<8)
		prev = i
	}
	return steps
}

// WithParams returns tables for new parameters. When only per-frame
// parameters changed (ParamInfo.Series false) the shell table is shared,
// so the switch is instantaneous; otherwise the tables are rebuilt with the
// same geometry and masks.
func (t *Tables) WithParams(p Params) (*Tables, error) {
	if !p.seriesEqual(t.params) {
		return NewTables(t.geom, p, t.masks)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	u := *t
	u.params = p
	return &u, nil
}

// Geometry returns the geometry the tables were built for.
func (t *Tables) Geometry() Geometry { return t.geom }

// Params returns the parameters in force.
func (t *Tables) Params() Params { return t.params }

// Shells returns the number of regular resolution shells (Params.Shells);
// the ice bands' shells follow them (IceRings).
func (t *Tables) Shells() int { return t.nRegular }

// AnalysedPixels returns the number of pixels not excluded by a static mask.
func (t *Tables) AnalysedPixels() int { return t.analysed }

// GapProfile names the EIGER profile whose module gaps were masked, or ""
// when the frame size matched none (or Masks.NoGaps was set).
func (t *Tables) GapProfile() string { return t.profile }

// Shell returns the shell of pixel (x, y), or -1 when it is excluded.
func (t *Tables) Shell(x, y int) int {
	if x < 0 || y < 0 || x >= t.geom.Width || y >= t.geom.Height {
		return -1
	}
	s := t.shell[y*t.geom.Width+x]
	if s == excludedShell {
		return -1
	}
	return int(s)
}

// ShellRange returns the resolution range of shell s: dLow > dHigh (Å).
// Shells from Shells() on are the ice bands; a regular shell's range
// includes the bands inside it, whose pixels it does not hold.
func (t *Tables) ShellRange(s int) (dLow, dHigh float64) {
	q0 := t.qLo + float64(s)*t.qStep
	q1 := q0 + t.qStep
	if b := s - t.nRegular; b >= 0 && b < len(t.ice) {
		q0, q1 = t.ice[b].qLo, t.ice[b].qHi
	}
	dLow = math.Inf(1)
	if q0 > 0 {
		dLow = 1 / math.Sqrt(q0)
	}
	return dLow, 1 / math.Sqrt(q1)
}
