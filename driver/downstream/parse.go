package downstream

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Cell is a unit cell: a, b, c in Å, alpha, beta, gamma in degrees.
type Cell [6]float64

// Indexing is what a job found for one image.
type Indexing struct {
	Cell     Cell
	Crystals int // lattices found on the image (1 for most stills)
}

// maxOutputBytes bounds what is read of a job's output file: an
// experiment list of a 1000-image chunk is a few MB.
const maxOutputBytes = 256 << 20

// ParseOutput reads the result a job of the given kind left in dir, keyed
// by image path as the job saw it. A job that indexed nothing may leave no
// file: that is an empty result, not an error.
func ParseOutput(kind Output, dir string) (map[string]Indexing, error) {
	var name string
	var parse func(io.Reader) (map[string]Indexing, error)
	switch kind {
	case OutputDIALS:
		name, parse = "indexed.expt", ParseExperiments
	case OutputCrystFEL:
		name, parse = "chunk.stream", ParseStream
	default:
		return nil, fmt.Errorf("output %q: no parser", kind)
	}
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Indexing{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := parse(io.LimitReader(f, maxOutputBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return res, nil
}

// experimentList is the part of a DIALS experiment list (.expt, JSON) that
// says which image each crystal model was found on.
type experimentList struct {
	Experiment []struct {
		Crystal  *int `json:"crystal"`
		Imageset *int `json:"imageset"`
		// Stills processed from a multi-image set name the image.
		Image *int `json:"image_index"`
	} `json:"experiment"`
	Imageset []struct {
		Images   []string `json:"images"`
		Template string   `json:"template"`
	} `json:"imageset"`
	Crystal []struct {
		A []float64 `json:"real_space_a"`
		B []float64 `json:"real_space_b"`
		C []float64 `json:"real_space_c"`
	} `json:"crystal"`
}

// ParseExperiments reads a DIALS experiment list (indexed.expt of
// dials.ssx_index or dials.stills_process) and returns, per image path,
// the cell of its first crystal (from the real-space axes) and the number
// of crystals found on it.
func ParseExperiments(r io.Reader) (map[string]Indexing, error) {
	var el experimentList
	dec := json.NewDecoder(r)
	if err := dec.Decode(&el); err != nil {
		return nil, fmt.Errorf("experiment list: %w", err)
	}
	out := map[string]Indexing{}
	for i, e := range el.Experiment {
		if e.Crystal == nil || e.Imageset == nil {
			continue // not indexed (an imported experiment)
		}
		c, s := *e.Crystal, *e.Imageset
		if c < 0 || c >= len(el.Crystal) || s < 0 || s >= len(el.Imageset) {
			return nil, fmt.Errorf("experiment %d: crystal %d or imageset %d out of range", i, c, s)
		}
		images := el.Imageset[s].Images
		k := 0
		if e.Image != nil {
			k = *e.Image
		}
		if k < 0 || k >= len(images) {
			return nil, fmt.Errorf("experiment %d: image %d of an imageset of %d", i, k, len(images))
		}
		x := el.Crystal[c]
		cell, err := cellFromAxes(x.A, x.B, x.C)
		if err != nil {
			return nil, fmt.Errorf("experiment %d: %w", i, err)
		}
		path := images[k]
		got := out[path]
		if got.Crystals == 0 {
			got.Cell = cell
		}
		got.Crystals++
		out[path] = got
	}
	return out, nil
}

// cellFromAxes computes a, b, c, alpha, beta, gamma from real-space axes.
func cellFromAxes(a, b, c []float64) (Cell, error) {
	if len(a) != 3 || len(b) != 3 || len(c) != 3 {
		return Cell{}, errors.New("crystal: real-space axes must have 3 components")
	}
	dot := func(u, v []float64) float64 { return u[0]*v[0] + u[1]*v[1] + u[2]*v[2] }
	la, lb, lc := math.Sqrt(dot(a, a)), math.Sqrt(dot(b, b)), math.Sqrt(dot(c, c))
	if !(la > 0 && lb > 0 && lc > 0) || math.IsInf(la+lb+lc, 0) {
		return Cell{}, errors.New("crystal: degenerate real-space axes")
	}
	angle := func(u, v []float64, lu, lv float64) float64 {
		return math.Acos(max(-1, min(1, dot(u, v)/(lu*lv)))) * 180 / math.Pi
	}
	return Cell{la, lb, lc, angle(b, c, lb, lc), angle(a, c, la, lc), angle(a, b, la, lb)}, nil
}

// ParseStream reads a CrystFEL stream: per chunk, "Image filename:" and,
// for indexed chunks, a crystal with "Cell parameters a b c nm, al be ga
// deg" (CrystFEL's stream format, 0.9 and later; written from its
// documentation: CrystFEL is not packaged for Debian, so no real stream was
// at hand).
func ParseStream(r io.Reader) (map[string]Indexing, error) {
	out := map[string]Indexing{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	image := ""
	inChunk := false
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "----- Begin chunk -----":
			inChunk, image = true, ""
		case s == "----- End chunk -----":
			inChunk = false
		case inChunk && strings.HasPrefix(s, "Image filename:"):
			image = strings.TrimSpace(strings.TrimPrefix(s, "Image filename:"))
		case inChunk && strings.HasPrefix(s, "Cell parameters"):
			if image == "" {
				return nil, fmt.Errorf("line %d: crystal before the image filename", line)
			}
			cell, err := parseStreamCell(s)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			got := out[image]
			if got.Crystals == 0 {
				got.Cell = cell
			}
			got.Crystals++
			out[image] = got
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseStreamCell reads "Cell parameters 7.90 7.90 3.80 nm, 90.0 90.0 90.0 deg".
func parseStreamCell(s string) (Cell, error) {
	f := strings.Fields(strings.NewReplacer(",", " ").Replace(strings.TrimPrefix(s, "Cell parameters")))
	if len(f) != 8 || f[3] != "nm" || f[7] != "deg" {
		return Cell{}, fmt.Errorf("cell parameters %q: want 'a b c nm, al be ga deg'", s)
	}
	var c Cell
	for i, k := range []int{0, 1, 2, 4, 5, 6} {
		v, err := strconv.ParseFloat(f[k], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return Cell{}, fmt.Errorf("cell parameters %q: bad number %q", s, f[k])
		}
		c[i] = v
	}
	for i := 0; i < 3; i++ {
		c[i] *= 10 // nm → Å
	}
	return c, nil
}
