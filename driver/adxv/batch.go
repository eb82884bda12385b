package adxv

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// SpotStyle is the overlay style line sent before every spot list: spot
// type 1 drawn as red circles of radius 10 px (control-contract.md).
const SpotStyle = "define_type 1 color red radius 10"

// MaxPathLen is the longest image path accepted (Linux PATH_MAX).
const MaxPathLen = 4096

// ErrPath is wrapped by every refusal of an image path.
var ErrPath = errors.New("image path not accepted")

// CheckPath reports whether path can be sent to ADXV: absolute, at most
// MaxPathLen bytes, valid UTF-8, and free of control characters and white
// space. A newline would end the command early and let the rest of the
// path be read as further commands; white space is refused because ADXV
// reads the path as one word, so a path with a space would load another
// file or none.
func CheckPath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("%w: empty", ErrPath)
	case len(path) > MaxPathLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrPath, len(path), MaxPathLen)
	case path[0] != '/':
		return fmt.Errorf("%w: %q is not absolute", ErrPath, path)
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: %q has a control or space character at byte %d", ErrPath, path, i)
		}
	}
	if !utf8.ValidString(path) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrPath, path)
	}
	return nil
}

// Batch is the command lines of one delivery to ADXV, in the order they
// were added. The zero value is an empty batch ready to use. The builder
// methods append lines and return the batch, so calls chain; the first
// invalid argument makes the whole batch invalid (Err) and later calls are
// ignored, so a half-built batch is never sent.
//
// A Batch is not safe for concurrent use; once handed to a Client it
// belongs to the client and must not be changed.
type Batch struct {
	buf   []byte
	lines int
	image string
	err   error
}

// NewBatch returns an empty batch with room for size bytes of commands.
func NewBatch(size int) *Batch { return &Batch{buf: make([]byte, 0, size)} }

// Reset empties the batch, keeping its buffer.
func (b *Batch) Reset() {
	b.buf, b.lines, b.image, b.err = b.buf[:0], 0, "", nil
}

// Err is the first error met while building, or nil.
func (b *Batch) Err() error { return b.err }

// Bytes returns the wire form: every line ending in '\n'. It is shared,
// not copied.
func (b *Batch) Bytes() []byte { return b.buf }

// Lines is the number of command lines.
func (b *Batch) Lines() int { return b.lines }

// Image is the path of the last load_image of the batch ("" if none): what
// ADXV shows once the batch is delivered.
func (b *Batch) Image() string { return b.image }

func (b *Batch) fail(err error) *Batch {
	if b.err == nil {
		b.err = err
	}
	return b
}

func (b *Batch) line(parts ...string) {
	for i, p := range parts {
		if i > 0 {
			b.buf = append(b.buf, ' ')
		}
		b.buf = append(b.buf, p...)
	}
	b.buf = append(b.buf, '\n')
	b.lines++
}

func (b *Batch) intLine(cmd string, n int) {
	b.buf = append(b.buf, cmd...)
	b.buf = append(b.buf, ' ')
	b.buf = strconv.AppendInt(b.buf, int64(n), 10)
	b.buf = append(b.buf, '\n')
	b.lines++
}

// LoadImage adds `load_image <path>`: ADXV opens the image file.
func (b *Batch) LoadImage(path string) *Batch {
	if b.err != nil {
		return b
	}
	if err := CheckPath(path); err != nil {
		return b.fail(fmt.Errorf("load_image: %w", err))
	}
	b.line("load_image", path)
	b.image = path
	return b
}

// RaiseWindow adds `raise_window <window>` (e.g. "Image"): ADXV brings that
// window to the front.
func (b *Batch) RaiseWindow(window string) *Batch {
	if b.err != nil {
		return b
	}
	if window == "" || len(window) > 64 {
		return b.fail(fmt.Errorf("raise_window: window name %q must be 1..64 letters", window))
	}
	for i := 0; i < len(window); i++ {
		c := window[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return b.fail(fmt.Errorf("raise_window: window name %q must be one word of letters and digits", window))
		}
	}
	b.line("raise_window", window)
	return b
}

// Spots adds the spot overlay: SpotStyle, `load_spots <n>`, n lines
// `<x> <y> 1` with two decimals, and `end_of_pack`. xy holds x,y pairs in
// pixels. An empty list is sent too (`load_spots 0`): it clears the overlay
// of the image shown before, which would otherwise be drawn over this one.
func (b *Batch) Spots(xy []float32) *Batch {
	if b.err != nil {
		return b
	}
	if len(xy)%2 != 0 {
		return b.fail(fmt.Errorf("load_spots: %d coordinates is not a list of x,y pairs", len(xy)))
	}
	for i, v := range xy {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return b.fail(fmt.Errorf("load_spots: spot %d has a non-finite coordinate", i/2))
		}
	}
	n := len(xy) / 2
	b.line(SpotStyle)
	b.intLine("load_spots", n)
	for i := 0; i < len(xy); i += 2 {
		b.buf = strconv.AppendFloat(b.buf, float64(xy[i]), 'f', 2, 32)
		b.buf = append(b.buf, ' ')
		b.buf = strconv.AppendFloat(b.buf, float64(xy[i+1]), 'f', 2, 32)
		b.buf = append(b.buf, " 1\n"...)
		b.lines++
	}
	b.line("end_of_pack")
	return b
}

// Slab adds `slab <n>`: ADXV sums n consecutive images of a data set.
func (b *Batch) Slab(n int) *Batch {
	if b.err != nil {
		return b
	}
	if n < 1 || n > 1_000_000 {
		return b.fail(fmt.Errorf("slab: %d images outside [1, 1000000]", n))
	}
	b.intLine("slab", n)
	return b
}

// ContrastMin adds `contrast_min <n>`: the count shown as white.
func (b *Batch) ContrastMin(n int) *Batch {
	if b.err != nil {
		return b
	}
	b.intLine("contrast_min", n)
	return b
}

// ContrastMax adds `contrast_max <n>`: the count shown as black.
func (b *Batch) ContrastMax(n int) *Batch {
	if b.err != nil {
		return b
	}
	b.intLine("contrast_max", n)
	return b
}

// SaveImage adds `save_image <path>`: ADXV writes what it shows to path.
func (b *Batch) SaveImage(path string) *Batch {
	if b.err != nil {
		return b
	}
	if err := CheckPath(path); err != nil {
		return b.fail(fmt.Errorf("save_image: %w", err))
	}
	b.line("save_image", path)
	return b
}

// Exit adds `exit`: ADXV quits.
func (b *Batch) Exit() *Batch {
	if b.err != nil {
		return b
	}
	b.line("exit")
	return b
}
