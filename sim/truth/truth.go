// Package truth is the ground truth the simulator writes beside every series:
// one JSON object per frame saying whether the frame is a hit and where its
// true Bragg spots are. The analysis is judged against it (recall of true
// spots with I/sigma >= 10, false spots on blank frames, hit accuracy,
// resolution error), so the format is shared by the simulator that writes it
// and the tests that read it.
//
// A truth file is JSON lines: frames in the order they were generated (the
// simulator writes them in frame order), one Frame per line.
//
// What the simulation omits: parallax. Spots sit where the diffracted ray
// meets the detector's front plane, as if the sensor had no depth, while
// the series header (and so every miniCBF the server writes) declares the
// detector's real sensor (450 µm silicon on an EIGER X). dxtbx corrects the
// parallax such a sensor would cause, and so sees every spot a little too
// close to the beam: cells come out about 0.1 % long at 1 Å. Compare with
// dxtbx positions and cells with its correction off
// (dials.import geometry.detector.panel.parallax_correction=False), or
// allow for it. The simulated detector's description says so too
// ("... (simulated, no parallax)").
package truth

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Spot is one true Bragg spot as drawn on the frame.
type Spot struct {
	// X, Y: the centroid in pixel coordinates, pixel (i, j) covering
	// [i-0.5, i+0.5) x [j-0.5, j+0.5) -- the convention of an
	// intensity-weighted centroid over pixel indices.
	X float64 `json:"x"`
	Y float64 `json:"y"`
	// Intensity is the expected number of photons the spot puts on
	// sensitive pixels (gap and masked pixels excluded), before Poisson noise.
	Intensity float64 `json:"intensity"`
	// D is the d-spacing of the reflection in Å (always >= the frame's DCut).
	D float64 `json:"d"`
	// ISigma is the expected I/sigma of summation integration over the
	// pixels within 3 sigma of the centroid, given the true background mean
	// under the spot: I / sqrt(I + n*b). The analysis is judged on recall of
	// spots with ISigma >= 10, so the number must come from the truth.
	ISigma float64 `json:"i_sigma"`
	// Sigma is the Gaussian profile width in pixels.
	Sigma float64 `json:"sigma"`
	// H, K, L: Miller indices of the reflection (for debugging overlays).
	H int `json:"h"`
	K int `json:"k"`
	L int `json:"l"`
}

// Frame is the truth of one frame.
type Frame struct {
	Frame int  `json:"frame"` // 0-based frame number, as in the stream
	Hit   bool `json:"hit"`
	// Strength scales the crystal's diffraction on this frame: 1 for a
	// serial-crystallography hit, falling towards the crystal's edge in a
	// raster, 0 on blank frames.
	Strength float64 `json:"strength"`
	// DCut is the true resolution cut-off in Å: no reflection beyond it is
	// drawn. 0 on blank frames.
	DCut float64 `json:"d_cut"`
	// DMin is the d of the highest-resolution spot actually on the
	// detector (>= DCut); 0 when there are no spots.
	DMin float64 `json:"d_min"`
	// Line and Column locate the frame in a raster grid (column after the
	// serpentine mapping); both -1 when the series is not a raster.
	Line   int `json:"line"`
	Column int `json:"column"`
	// Cell is the crystal's unit cell [a, b, c, alpha, beta, gamma] (Å,
	// degrees) on hit frames, absent on blank ones.
	Cell []float64 `json:"cell,omitempty"`
	// U is the crystal's orientation on this frame, a rotation matrix
	// (row-major, 9 numbers) taking the crystal's Cartesian frame (a along
	// x, b in the xy plane: the PDB/cctbx convention) to the laboratory
	// frame (z along the beam, from the sample to the detector; x along
	// the detector's fast axis, increasing pixel x; y along increasing
	// pixel y). A reciprocal-lattice vector h a* + k b* + l c* of that
	// Cartesian frame, rotated by U, is the scattering vector s of the
	// reflection; it is drawn at pixel (BeamX, BeamY) + distance/pixel *
	// (s_x, s_y) / (1/λ + s_z). Absent on blank frames.
	U     []float64 `json:"u,omitempty"`
	Spots []Spot    `json:"spots"`
	// IceSpots are reflections of ice crystallites (spotty ice rings):
	// not Bragg spots of the crystal, so not in Spots. H, K, L are 0.
	IceSpots []Spot `json:"ice_spots,omitempty"`
}

// Reset empties f for reuse, keeping the capacity of its spot list so that
// a generator can refill it without allocating.
func (f *Frame) Reset() {
	spots, ice := f.Spots[:0], f.IceSpots[:0]
	*f = Frame{Spots: spots, IceSpots: ice, Line: -1, Column: -1, Cell: f.Cell[:0], U: f.U[:0]}
}

// CountStrong returns the number of spots with ISigma >= minISigma.
func (f *Frame) CountStrong(minISigma float64) int {
	n := 0
	for i := range f.Spots {
		if f.Spots[i].ISigma >= minISigma {
			n++
		}
	}
	return n
}

// Writer writes truth frames as JSON lines.
type Writer struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

// NewWriter returns a Writer on w. Call Flush when done.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriterSize(w, 1<<16)
	return &Writer{bw: bw, enc: json.NewEncoder(bw)}
}

// Write appends one frame (one line).
func (w *Writer) Write(f *Frame) error {
	if f.Spots == nil {
		// Keep "spots": [] rather than null so readers in any language can
		// iterate without a special case.
		f.Spots = []Spot{}
	}
	return w.enc.Encode(f)
}

// Flush writes buffered lines to the underlying writer.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Reader reads a truth file frame by frame.
type Reader struct {
	dec  *json.Decoder
	line int
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	dec.DisallowUnknownFields()
	return &Reader{dec: dec}
}

// Next decodes the next frame into f. It returns io.EOF at the end.
func (r *Reader) Next(f *Frame) error {
	f.Reset()
	if err := r.dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("truth: record %d: %w", r.line+1, err)
	}
	r.line++
	return nil
}

// ReadAll reads every frame of a truth file.
func ReadAll(r io.Reader) ([]Frame, error) {
	rd := NewReader(r)
	var out []Frame
	for {
		var f Frame
		if err := rd.Next(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, f)
	}
}
