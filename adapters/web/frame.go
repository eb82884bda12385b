package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"tioga/device"
	"tioga/properties"
)

// Spot is one spot to draw on a frame: its centroid in pixels.
type Spot struct{ X, Y float64 }

// FrameOptions say how to draw a frame.
type FrameOptions struct {
	// Scale maps counts to colour: "log" (default) or "sqrt".
	Scale string
	// MaxSize is the longest side of the picture in pixels; larger frames
	// are reduced by an integer factor, keeping the brightest pixel of each
	// block so that no spot vanishes (0 = full size).
	MaxSize int
	// Spots are circled.
	Spots []Spot
}

// FrameRenderer draws an image file as a PNG: counts on the chosen scale,
// masked and gap pixels grey, the spots circled, resolution rings labelled
// in Å from the file's own geometry. The command wires it to the driver
// that reads the files the writer wrote.
type FrameRenderer interface {
	RenderFrame(ctx context.Context, path string, opt FrameOptions) ([]byte, error)
}

// HeatMap is the score grid of a raster with what its figure's title says.
type HeatMap struct {
	Lines, FramesPerLine int
	Serpentine           bool
	// Scores are laid out lines x frames-per-line, row-major by line
	// (serpentine undone); a negative score is a cell not measured.
	Scores    []float32
	BestFrame int // -1 when none
	Prefix    string
	Run       int
	Series    int
	Date      time.Time
}

// HeatMapRenderer draws the heat-map figure (the same figure the pipeline
// writes beside the images) as a PNG.
type HeatMapRenderer interface {
	RenderHeatMap(ctx context.Context, m HeatMap) ([]byte, error)
}

// frameInfo is what the page shows beside a frame.
type frameInfo struct {
	Frame      int
	Path       string
	Score      float64
	Spots      int
	Resolution float64
	Known      bool // the frame has a dozor-pass record
	SpotsNote  string
	SpotXY     []Spot
}

// resolveFrame turns "best" or a frame number into the frame, its file and
// its results. "best" is the frame the image tracker shows (its last shown
// path, found in its queue), else the scan's best frame, else the top of
// the tracker's queue.
func (s *Server) resolveFrame(ctx context.Context, arg string) (frameInfo, error) {
	fi := frameInfo{Frame: -1}
	paths := s.trackerPaths()
	switch strings.TrimSpace(arg) {
	case "", "best":
		if shown := s.text(s.cfg.Tracker, "shown"); shown != "" {
			for f, p := range paths {
				if p == shown {
					fi.Frame, fi.Path = f, p
				}
			}
		}
		if fi.Frame < 0 {
			if v, ok := s.value(s.cfg.Scan, "best-frame"); ok && v.Int() >= 0 {
				fi.Frame = v.Int()
			}
		}
		if fi.Frame < 0 {
			if v, ok := s.value(s.cfg.Tracker, "queue"); ok && v.Len() > 0 {
				fi.Frame = int(v.Float64At(0))
			}
		}
		if fi.Frame < 0 {
			return fi, errors.New("no frame analysed yet")
		}
	default:
		n, err := strconv.Atoi(strings.TrimSpace(arg))
		if err != nil || n < 0 {
			return fi, fmt.Errorf("frame %q: want a frame number (0-based) or best", arg)
		}
		fi.Frame = n
	}
	if fi.Path == "" {
		fi.Path = paths[fi.Frame]
	}
	if fi.Path == "" {
		fi.Path = s.templatePath(fi.Frame)
	}
	if v, ok := s.value(s.cfg.Stream, propDozorPass); ok {
		if row, found := findRecord(v, fi.Frame); found {
			fi.Known = true
			fi.Spots = int(v.Float64At(row*4 + 1))
			fi.Score = v.Float64At(row*4 + 2)
			fi.Resolution = v.Float64At(row*4 + 3)
		}
	}
	if p, ok := s.prop(s.cfg.Stream, "frame-spots"); ok {
		v, err := p.Query(ctx, properties.Int32Value(int32(fi.Frame)))
		if err != nil {
			fi.SpotsNote = err.Error()
		} else {
			w := v.Width
			if w < 2 {
				w = 5
			}
			for i := 0; i+1 < v.Len(); i += w {
				fi.SpotXY = append(fi.SpotXY, Spot{X: v.Float64At(i), Y: v.Float64At(i + 1)})
			}
		}
	}
	return fi, nil
}

// findRecord finds the row of frame in dozor-pass records [frame, spots,
// score, resolution]: row n is frame n when no frame went missing, else a
// binary search (the committer publishes in frame order).
func findRecord(v properties.Value, frame int) (int, bool) {
	rows := v.Len() / 4
	if frame < rows && int(v.Float64At(frame*4)) == frame {
		return frame, true
	}
	i := sort.Search(rows, func(i int) bool { return int(v.Float64At(i*4)) >= frame })
	if i < rows && int(v.Float64At(i*4)) == frame {
		return i, true
	}
	return 0, false
}

// trackerPaths maps the frames of the tracker's queue to their paths.
func (s *Server) trackerPaths() map[int]string {
	out := map[int]string{}
	q, ok := s.value(s.cfg.Tracker, "queue")
	if !ok {
		return out
	}
	lines := strings.Split(s.text(s.cfg.Tracker, "queue-paths"), "\n")
	w := q.Width
	if w <= 0 {
		w = 4
	}
	for row := 0; row*w < q.Len() && row < len(lines); row++ {
		if p := strings.TrimSpace(lines[row]); p != "" {
			out[int(q.Float64At(row*w))] = p
		}
	}
	return out
}

// templatePath is the path of frame in the current series: the writer's
// template with the first image number added.
func (s *Server) templatePath(frame int) string {
	tmpl := s.text(s.cfg.Stream, "writer-template")
	if tmpl == "" || !strings.Contains(tmpl, "%05d") {
		return ""
	}
	first := 0
	if v, ok := s.value(s.cfg.Stream, "writer-first-image"); ok {
		first = v.Int()
	}
	n := strconv.Itoa(first + frame)
	if len(n) < 5 {
		n = strings.Repeat("0", 5-len(n)) + n
	}
	return strings.Replace(tmpl, "%05d", n, 1)
}

func (s *Server) handleFrameInfo(w http.ResponseWriter, r *http.Request) {
	fi, err := s.resolveFrame(r.Context(), r.URL.Query().Get("frame"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	b := []byte(`{"frame":`)
	b = strconv.AppendInt(b, int64(fi.Frame), 10)
	b = append(b, `,"path":`...)
	b = appendString(b, fi.Path)
	b = append(b, `,"file":`...)
	b = appendString(b, filepath.Base(fi.Path))
	b = append(b, `,"known":`...)
	b = strconv.AppendBool(b, fi.Known)
	b = append(b, `,"score":`...)
	b = appendFloat(b, fi.Score, 32)
	b = append(b, `,"spots":`...)
	b = strconv.AppendInt(b, int64(fi.Spots), 10)
	b = append(b, `,"resolution":`...)
	b = appendFloat(b, fi.Resolution, 32)
	b = append(b, `,"spotsDrawn":`...)
	b = strconv.AppendInt(b, int64(len(fi.SpotXY)), 10)
	b = append(b, `,"spotsNote":`...)
	b = appendString(b, fi.SpotsNote)
	b = append(b, `,"render":`...)
	b = strconv.AppendBool(b, s.cfg.Frames != nil && fi.Path != "")
	writeJSON(w, http.StatusOK, append(b, '}'))
}

func (s *Server) handleFramePNG(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Frames == nil {
		writeError(w, http.StatusNotImplemented, errors.New("no frame renderer configured"))
		return
	}
	q := r.URL.Query()
	fi, err := s.resolveFrame(r.Context(), q.Get("frame"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if fi.Path == "" {
		writeError(w, http.StatusNotFound, fmt.Errorf("frame %d: no file path known (writer off, or no series yet)", fi.Frame))
		return
	}
	opt := FrameOptions{Scale: q.Get("scale"), MaxSize: 1024, Spots: fi.SpotXY}
	switch opt.Scale {
	case "", "log", "sqrt":
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("scale %q: log or sqrt", opt.Scale))
		return
	}
	if sz := q.Get("size"); sz != "" {
		n, err := strconv.Atoi(sz)
		if err != nil || n < 0 || n > 8192 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("size %q: 0 (full) to 8192 px", sz))
			return
		}
		opt.MaxSize = n
	}
	png, err := s.renderLimited(r.Context(), func(ctx context.Context) ([]byte, error) {
		return s.cfg.Frames.RenderFrame(ctx, fi.Path, opt)
	})
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("frame %d (%s): %w", fi.Frame, fi.Path, err))
		return
	}
	writePNG(w, png)
}

func (s *Server) handleHeatMap(w http.ResponseWriter, r *http.Request) {
	if s.cfg.HeatMap == nil {
		writeError(w, http.StatusNotImplemented, errors.New("no heat-map renderer configured"))
		return
	}
	m := HeatMap{BestFrame: -1}
	if v, ok := s.value(s.cfg.Scan, "lines"); ok {
		m.Lines = v.Int()
	}
	if v, ok := s.value(s.cfg.Scan, "frames-per-line"); ok {
		m.FramesPerLine = v.Int()
	}
	if v, ok := s.value(s.cfg.Scan, "serpentine"); ok {
		m.Serpentine = v.Bool()
	}
	if v, ok := s.value(s.cfg.Scan, "score-grid"); ok {
		m.Scores = v.Float32s
	}
	if v, ok := s.value(s.cfg.Scan, "best-frame"); ok {
		m.BestFrame = v.Int()
	}
	if m.Lines <= 0 || m.FramesPerLine <= 0 || len(m.Scores) != m.Lines*m.FramesPerLine {
		writeError(w, http.StatusNotFound, errors.New("no raster geometry for the current series"))
		return
	}
	tmpl := filepath.Base(s.text(s.cfg.Stream, "writer-template"))
	if i := strings.Index(tmpl, "%05d"); i > 0 {
		// <prefix>_<run>_%05d.ext
		stem := strings.TrimSuffix(tmpl[:i], "_")
		if j := strings.LastIndexByte(stem, '_'); j > 0 {
			m.Prefix = stem[:j]
			m.Run, _ = strconv.Atoi(stem[j+1:])
		} else {
			m.Prefix = stem
		}
	}
	if v, ok := s.value(s.cfg.Stream, propSeriesID); ok {
		m.Series = v.Int()
	}
	if t, err := time.Parse(time.RFC3339Nano, s.text(s.cfg.Stream, propSeriesStart)); err == nil {
		m.Date = t
	}
	png, err := s.renderLimited(r.Context(), func(ctx context.Context) ([]byte, error) {
		return s.cfg.HeatMap.RenderHeatMap(ctx, m)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writePNG(w, png)
}

// renderLimited runs one render at a time: the pipeline's cores come
// first, and a page clicking through frames must not compete with it.
func (s *Server) renderLimited(ctx context.Context, fn func(context.Context) ([]byte, error)) ([]byte, error) {
	select {
	case s.render <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.render }()
	return fn(ctx)
}

func writePNG(w http.ResponseWriter, png []byte) {
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	_, _ = w.Write(png)
}

func (s *Server) prop(d *device.Device, name string) (*properties.Property, bool) {
	if d == nil {
		return nil, false
	}
	return d.Property(name)
}

func (s *Server) value(d *device.Device, name string) (properties.Value, bool) {
	p, ok := s.prop(d, name)
	if !ok {
		return properties.Value{}, false
	}
	return readValue(p), true
}

func (s *Server) text(d *device.Device, name string) string {
	v, ok := s.value(d, name)
	if !ok {
		return ""
	}
	return v.Text
}
