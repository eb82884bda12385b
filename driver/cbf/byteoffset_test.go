package cbf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The test vector of docs/cbf.md: one value per escape level, including
// the two int64 escapes (-2 -> MaxInt32 and MaxInt32 -> -1 both differ by
// more than an int32 can hold).
var (
	vectorValues = []int32{0, 1, 128, -1, 70000, -2, 2147483647, -1}
	vectorHex    = "00 01 7f 80 7f ff 80 00 80 71 11 01 00 80 00 80 8e ee fe ff 80 00 80 00 00 00 80 01 00 00 80 00 00 00 00 80 00 80 00 00 00 80 00 00 00 80 ff ff ff ff"
)

func TestByteOffsetVectorOfTheSpec(t *testing.T) {
	want, err := hex.DecodeString(strings.ReplaceAll(vectorHex, " ", ""))
	if err != nil || len(want) != 50 {
		t.Fatalf("bad vector: %v (%d bytes)", err, len(want))
	}
	got := AppendByteOffset(nil, vectorValues)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded\n got % x\nwant % x", got, want)
	}
	back := make([]int32, len(vectorValues))
	n, err := DecodeByteOffset(back, want)
	if err != nil || n != 50 {
		t.Fatalf("decode: n=%d err=%v", n, err)
	}
	for i := range back {
		if back[i] != vectorValues[i] {
			t.Fatalf("value %d: %d, want %d", i, back[i], vectorValues[i])
		}
	}
	// Appending keeps what dst held.
	got = AppendByteOffset([]byte("xy"), vectorValues)
	if string(got[:2]) != "xy" || !bytes.Equal(got[2:], want) {
		t.Fatal("AppendByteOffset lost the prefix")
	}
}

// Each escape boundary, both sides, both signs.
func TestByteOffsetEscapeBoundaries(t *testing.T) {
	cases := []struct {
		delta int64
		size  int
	}{
		{0, 1}, {127, 1}, {-127, 1}, {128, 3}, {-128, 3},
		{32767, 3}, {-32767, 3}, {32768, 7}, {-32768, 7},
		{math.MaxInt32, 7}, {-math.MaxInt32, 7}, {math.MaxInt32 + 1, 15}, {math.MinInt32, 15},
	}
	for _, c := range cases {
		// Start from a base that lets the delta stay within int32 values.
		base := int32(0)
		if c.delta > math.MaxInt32 {
			base = -1
		} else if c.delta < -math.MaxInt32 {
			base = math.MaxInt32
		}
		vals := []int32{base, int32(int64(base) + c.delta)}
		enc := AppendByteOffset(nil, vals)
		first := len(AppendByteOffset(nil, vals[:1]))
		if got := len(enc) - first; got != c.size {
			t.Errorf("delta %d: %d bytes, want %d", c.delta, got, c.size)
		}
		back := make([]int32, 2)
		if _, err := DecodeByteOffset(back, enc); err != nil || back[0] != vals[0] || back[1] != vals[1] {
			t.Errorf("delta %d: decoded %v (%v), want %v", c.delta, back, err, vals)
		}
	}
}

// The eight-wide fast paths for 8- and 16-bit frames must produce exactly
// the bytes of the generic encoder applied to the mapped values, including
// masked pixels, escapes that straddle a group of eight and the tail.
func TestPixelPathsMatchGenericEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, es := range []int{1, 2, 4} {
		for _, n := range []int{1, 7, 8, 9, 63, 64, 1000} {
			for trial := 0; trial < 20; trial++ {
				data := make([]byte, n*es)
				for i := 0; i < n; i++ {
					var v uint32
					switch rng.IntN(8) {
					case 6: // around the 16-bit sign boundary of the SWAR path
						v = uint32(0x7f80 + rng.IntN(256))
					case 7: // just below all-ones
						v = uint32(0xff00+rng.IntN(256)) | uint32(rng.IntN(2))<<16
					case 0:
						v = math.MaxUint32 // all-ones after truncation to es bytes
					case 1:
						v = rng.Uint32() // anything, forcing escapes
					case 2:
						v = uint32(rng.IntN(256)) // around the one-byte limit
					default:
						v = uint32(rng.IntN(8))
					}
					switch es {
					case 1:
						data[i] = byte(v)
					case 2:
						binary.LittleEndian.PutUint16(data[2*i:], uint16(v))
					default:
						binary.LittleEndian.PutUint32(data[4*i:], v)
					}
				}
				p := Pixels{Data: data, Width: n, Height: 1, ElemSize: es}
				vals := make([]int32, n)
				for i := range vals {
					vals[i] = p.Value(i)
				}
				want := AppendByteOffset(nil, vals)
				got := appendPixels(nil, p)
				if !bytes.Equal(got, want) {
					t.Fatalf("es=%d n=%d: fast path differs\n got % x\nwant % x", es, n, got, want)
				}
				// Range by range (as the gzip path encodes), the same bytes.
				var pieces []byte
				for from := 0; from < n; {
					to := min(n, from+1+rng.IntN(40))
					pieces = appendPixelRange(pieces, p, from, to)
					from = to
				}
				if !bytes.Equal(pieces, want) {
					t.Fatalf("es=%d n=%d: range by range differs\n got % x\nwant % x", es, n, pieces, want)
				}
			}
		}
	}
}

func TestPixelValueMapping(t *testing.T) {
	u8 := Pixels{Data: []byte{0, 1, 254, 255}, Width: 4, Height: 1, ElemSize: 1}
	u16 := Pixels{Data: []byte{0, 0, 0xfe, 0xff, 0xff, 0xff, 0x40, 0x9c}, Width: 4, Height: 1, ElemSize: 2}
	u32 := Pixels{Data: binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(
		binary.LittleEndian.AppendUint32(nil, 70000), math.MaxInt32), math.MaxInt32+1), math.MaxUint32),
		Width: 4, Height: 1, ElemSize: 4}
	for _, c := range []struct {
		p    Pixels
		want []int32
	}{
		{u8, []int32{0, 1, 254, -1}},
		{u16, []int32{0, 65534, -1, 40000}},
		{u32, []int32{70000, math.MaxInt32, math.MaxInt32, -1}},
	} {
		for i, w := range c.want {
			if got := c.p.Value(i); got != w {
				t.Errorf("ElemSize %d pixel %d: %d, want %d", c.p.ElemSize, i, got, w)
			}
		}
		le := c.p.AppendInt32LE(nil, 0, 4)
		for i, w := range c.want {
			if got := int32(binary.LittleEndian.Uint32(le[4*i:])); got != w {
				t.Errorf("AppendInt32LE ElemSize %d pixel %d: %d, want %d", c.p.ElemSize, i, got, w)
			}
		}
	}
}

// Random int32 arrays, weighted toward the escape boundaries, survive a
// round trip (the property test; FuzzByteOffsetRoundTrip explores more).
func TestByteOffsetRoundTripProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	edges := []int32{0, -1, 127, -127, 128, -128, 32767, -32767, 32768, -32768,
		math.MaxInt32, math.MinInt32, math.MinInt32 + 1, math.MaxInt32 - 1}
	for trial := 0; trial < 500; trial++ {
		vals := make([]int32, rng.IntN(300))
		for i := range vals {
			switch rng.IntN(4) {
			case 0:
				vals[i] = edges[rng.IntN(len(edges))]
			case 1:
				vals[i] = int32(rng.Uint32())
			default:
				if i > 0 {
					vals[i] = vals[i-1] + int32(rng.IntN(300)-150)
				}
			}
		}
		checkRoundTrip(t, vals)
	}
}

func checkRoundTrip(t *testing.T, vals []int32) {
	t.Helper()
	enc := AppendByteOffset(nil, vals)
	if len(enc) > MaxByteOffsetSize(len(vals), 0) {
		t.Fatalf("%d values encoded to %d bytes, above the bound", len(vals), len(enc))
	}
	back := make([]int32, len(vals))
	n, err := DecodeByteOffset(back, enc)
	if err != nil || n != len(enc) {
		t.Fatalf("decode: used %d of %d bytes, err %v", n, len(enc), err)
	}
	for i := range vals {
		if back[i] != vals[i] {
			t.Fatalf("value %d: %d, want %d", i, back[i], vals[i])
		}
	}
}

func TestDecodeByteOffsetRejects(t *testing.T) {
	cases := map[string][]byte{
		"empty":              {},
		"cut 16-bit escape":  {0x80, 0x01},
		"cut 32-bit escape":  {0x80, 0x00, 0x80, 0x01, 0x02},
		"cut 64-bit escape":  {0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 1, 2, 3},
		"beyond int32":       {0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0},
		"int64 near the top": {0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	}
	for name, src := range cases {
		dst := make([]int32, 1)
		if _, err := DecodeByteOffset(dst, src); !errors.Is(err, ErrByteOffset) {
			t.Errorf("%s: err = %v, want ErrByteOffset", name, err)
		}
	}
	// Too few values.
	if _, err := DecodeByteOffset(make([]int32, 3), []byte{1, 2}); !errors.Is(err, ErrByteOffset) {
		t.Errorf("short data: err = %v", err)
	}
}

func FuzzByteOffsetRoundTrip(f *testing.F) {
	seed := make([]byte, 0, 4*len(vectorValues))
	for _, v := range vectorValues {
		seed = binary.LittleEndian.AppendUint32(seed, uint32(v))
	}
	f.Add(seed)
	f.Add(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, math.MaxInt32), 1<<31))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		vals := make([]int32, len(b)/4)
		for i := range vals {
			vals[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		checkRoundTrip(t, vals)
		// The same bytes read as frames of each element size take the
		// fast paths, which must agree with the generic encoder.
		for _, es := range []int{1, 2, 4} {
			n := len(b) / es
			if n == 0 {
				continue
			}
			p := Pixels{Data: b[:n*es], Width: n, Height: 1, ElemSize: es}
			mapped := make([]int32, n)
			for i := range mapped {
				mapped[i] = p.Value(i)
			}
			if !bytes.Equal(appendPixels(nil, p), AppendByteOffset(nil, mapped)) {
				t.Fatalf("element size %d: fast path differs from generic encoder", es)
			}
		}
	})
}

// FuzzDecodeByteOffset feeds arbitrary bytes to the decoder: it must never
// panic, and whatever it accepts must re-encode to values that decode the
// same (the encoding itself need not be canonical).
func FuzzDecodeByteOffset(f *testing.F) {
	vec, _ := hex.DecodeString(strings.ReplaceAll(vectorHex, " ", ""))
	f.Add(vec, uint16(8))
	f.Add([]byte{0x80, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, uint16(1))
	f.Add([]byte{1, 2, 3}, uint16(5))
	f.Fuzz(func(t *testing.T, src []byte, n uint16) {
		dst := make([]int32, n)
		used, err := DecodeByteOffset(dst, src)
		if used < 0 || used > len(src) {
			t.Fatalf("used %d of %d bytes", used, len(src))
		}
		if err != nil {
			if !errors.Is(err, ErrByteOffset) {
				t.Fatalf("error does not wrap ErrByteOffset: %v", err)
			}
			return
		}
		checkRoundTrip(t, dst)
	})
}

// The 16-bit path's common groups (eight one-byte differences, counts below
// 0x8000 or masked) go through the vector kernel on amd64; frames that are
// mostly such groups, with differences around the one-byte limit and rare
// values that force the exact path (masked runs, raw 0x7f80..0x8000 and
// 0xff00..0xfffe, jumps), must give the generic encoder's bytes, whole and
// range by range.
func TestU16CommonGroupsMatchGenericEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 300; trial++ {
		n := 1 + rng.IntN(3000)
		data := make([]byte, 2*n)
		v := rng.IntN(1000)
		for i := 0; i < n; i++ {
			raw := 0
			switch r := rng.IntN(400); {
			case r == 0:
				raw = 0xffff
			case r == 1:
				raw = 0x7f80 + rng.IntN(129)
			case r == 2:
				raw = 0xff00 + rng.IntN(255)
			case r == 3:
				v = rng.IntN(0x8000)
				raw = v
			default:
				v = min(max(v+rng.IntN(261)-130, 0), 0x7fff)
				raw = v
			}
			if rng.IntN(3000) == 0 { // a masked run
				for k := 0; k < 20 && i < n; k++ {
					binary.LittleEndian.PutUint16(data[2*i:], 0xffff)
					i++
				}
				i--
				continue
			}
			binary.LittleEndian.PutUint16(data[2*i:], uint16(raw))
		}
		p := Pixels{Data: data, Width: n, Height: 1, ElemSize: 2}
		vals := make([]int32, n)
		for i := range vals {
			vals[i] = p.Value(i)
		}
		want := AppendByteOffset(nil, vals)
		if got := appendPixels(nil, p); !bytes.Equal(got, want) {
			t.Fatalf("n=%d: fast path differs\n got % x\nwant % x", n, got, want)
		}
		var pieces []byte
		for from := 0; from < n; {
			to := min(n, from+1+rng.IntN(500))
			pieces = appendPixelRange(pieces, p, from, to)
			from = to
		}
		if !bytes.Equal(pieces, want) {
			t.Fatalf("n=%d: range by range differs", n)
		}
	}
}
