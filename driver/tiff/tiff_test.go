package tiff_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tioga/driver/cbf"
	"tioga/driver/cbf/cbftest"
	"tioga/driver/tiff"
)

func encode(t testing.TB, o tiff.Options, h cbf.Header, p cbf.Pixels) []byte {
	t.Helper()
	e, err := tiff.NewEncoder(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Encode(&h, p)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(b)
}

// escapes is a 32-bit frame with masked pixels, large counts and a count
// above MaxInt32 (clipped).
func escapes() (cbf.Pixels, []int32) {
	in := []uint32{0, 200, 40000, 70000, 2147483000, math.MaxUint32, 0, 2147483000,
		math.MaxUint32, 1, 65535, 65536, math.MaxInt32 + 7, 3, 0, 70000}
	want := []int32{0, 200, 40000, 70000, 2147483000, -1, 0, 2147483000,
		-1, 1, 65535, 65536, math.MaxInt32, 3, 0, 70000}
	var data []byte
	for _, v := range in {
		data = binary.LittleEndian.AppendUint32(data, v)
	}
	return cbf.Pixels{Data: data, Width: 4, Height: 4, ElemSize: 4}, want
}

func saxsFrame() cbf.Pixels {
	// An EIGER 1M (1030 x 1065): several strips, gaps as -1.
	return cbftest.Frame{Width: 1030, Height: 1065, ElemSize: 2, Background: 5, Spots: 30, Seed: 11}.Pixels()
}

func TestRoundTrip(t *testing.T) {
	h := cbftest.Header()
	esc, escWant := escapes()
	big := saxsFrame()
	for _, c := range []struct {
		name   string
		p      cbf.Pixels
		want   func(i int) int32
		strips int
	}{
		{"escapes", esc, func(i int) int32 { return escWant[i] }, 1},
		{"eiger1m", big, big.Value, 17}, // 256 KiB / (1030*4) = 63 rows a strip
	} {
		img, err := tiff.Decode(encode(t, tiff.Options{}, h, c.p))
		if err != nil {
			t.Fatal(err)
		}
		if img.Width != c.p.Width || img.Height != c.p.Height || img.Compression != 8 || img.Strips != c.strips {
			t.Fatalf("%s: %dx%d compression %d, %d strips", c.name, img.Width, img.Height, img.Compression, img.Strips)
		}
		for i, v := range img.Pixels {
			if v != c.want(i) {
				t.Fatalf("%s: pixel %d = %d, want %d", c.name, i, v, c.want(i))
			}
		}
		text := string(h.AppendText(nil, c.p.Width, c.p.Height))
		if img.Description != text {
			t.Fatalf("%s: description\n%q\nwant\n%q", c.name, img.Description, text)
		}
		if img.Software != tiff.Software || img.DateTime != "2026:11:23 12:00:00" {
			t.Fatalf("%s: software %q, date %q", c.name, img.Software, img.DateTime)
		}
	}
}

// libtiff's own tools read the file and report the tags we meant.
func TestLibtiffReadsIt(t *testing.T) {
	dir := t.TempDir()
	h := cbftest.Header()
	p := saxsFrame()
	path := filepath.Join(dir, "saxs_1_00001.tif")
	if err := os.WriteFile(path, encode(t, tiff.Options{}, h, p), 0o644); err != nil {
		t.Fatal(err)
	}
	info := string(cbftest.Run(t, "tiffinfo", "-D", path)) // -D: read and decompress the data too
	for _, want := range []string{
		"Image Width: 1030 Image Length: 1065",
		"Resolution: 133.333, 133.333 pixels/cm",
		"Bits/Sample: 32",
		"Sample Format: signed integer",
		"Compression Scheme: AdobeDeflate",
		"Photometric Interpretation: min-is-black",
		"Samples/Pixel: 1",
		"Rows/Strip: 63",
		"Planar Configuration: single image plane",
		"Software: " + tiff.Software,
		"DateTime: 2026:11:23 12:00:00",
		"# Pixel_size 75e-6 m x 75e-6 m",
		"# Detector: Dectris EIGER X 4M, S/N E-08-0106", // the description is kept: 1030 x 1065 is an EIGER geometry
	} {
		if !strings.Contains(info, want) {
			t.Errorf("tiffinfo lacks %q:\n%s", want, info)
		}
	}
	dump := string(cbftest.Run(t, "tiffdump", path))
	for _, want := range []string{
		"Magic: 0x4949 <little-endian> Version: 0x2a",
		"SampleFormat (339) SHORT (3) 1<2>",
		"BitsPerSample (258) SHORT (3) 1<32>",
		"Compression (259) SHORT (3) 1<8>",
		"StripOffsets (273) LONG (4) 17<",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("tiffdump lacks %q:\n%s", want, dump)
		}
	}
}

// tifffile and fabio (the SAXS programs' reader) return identical pixels,
// as int32, and fabio sees the PILATUS header lines.
func TestPythonReadersGiveIdenticalPixels(t *testing.T) {
	dir := t.TempDir()
	h := cbftest.Header()
	esc, escWant := escapes()
	big := saxsFrame()
	for _, c := range []struct {
		name string
		p    cbf.Pixels
		want []byte
	}{
		{"escapes", esc, int32Bytes(escWant)},
		{"eiger1m", big, cbftest.Int32LE(big)},
	} {
		path := filepath.Join(dir, c.name+".tif")
		if err := os.WriteFile(path, encode(t, tiff.Options{}, h, c.p), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, reader := range []string{"tifffile", "fabio"} {
			out := filepath.Join(dir, c.name+"."+reader)
			res := strings.TrimSpace(string(cbftest.Python(t, pyScript, reader, path, out)))
			if res != "int32 "+strconv.Itoa(c.p.Height)+" "+strconv.Itoa(c.p.Width) {
				t.Fatalf("%s via %s: %s", c.name, reader, res)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("%s via %s: pixels differ", c.name, reader)
			}
		}
	}
}

const pyScript = `
import sys, signal
signal.alarm(60)
reader, path, out = sys.argv[1:4]
if reader == "tifffile":
    import tifffile
    a = tifffile.imread(path)
else:
    import fabio
    a = fabio.open(path).data
a.astype("<i4", copy=False).tofile(out) if a.dtype.str == "<i4" else None
print(a.dtype.name, *a.shape)
`

func int32Bytes(v []int32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

func TestEncodeAllocatesNothingAfterWarmUp(t *testing.T) {
	h := cbftest.Header()
	p := saxsFrame()
	e, err := tiff.NewEncoder(tiff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Encode(&h, p); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(3, func() {
		if _, err := e.Encode(&h, p); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("%.1f allocations per frame", a)
	}
}

func TestEncodeRejectsBadInput(t *testing.T) {
	e, _ := tiff.NewEncoder(tiff.Options{})
	h := cbftest.Header()
	if _, err := e.Encode(&h, cbf.Pixels{Data: make([]byte, 7), Width: 2, Height: 2, ElemSize: 2}); err == nil {
		t.Error("short data accepted")
	}
	h.Wavelength = math.NaN()
	if _, err := e.Encode(&h, cbf.Pixels{Data: make([]byte, 8), Width: 2, Height: 2, ElemSize: 2}); err == nil {
		t.Error("NaN wavelength accepted")
	}
	if _, err := tiff.NewEncoder(tiff.Options{Level: 42}); err == nil {
		t.Error("level 42 accepted")
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	p, _ := escapes()
	file := encode(t, tiff.Options{}, cbftest.Header(), p)
	for _, cut := range []int{0, 4, 8, 20, len(file) / 2, len(file) - 1} {
		if _, err := tiff.Decode(file[:cut]); !errors.Is(err, tiff.ErrFormat) {
			t.Errorf("cut at %d of %d: %v", cut, len(file), err)
		}
	}
	flip := bytes.Clone(file)
	flip[12] ^= 0xff // inside the compressed strip
	if _, err := tiff.Decode(flip); !errors.Is(err, tiff.ErrFormat) {
		t.Errorf("damaged strip accepted: %v", err)
	}
}

// Files written by another program (tifffile, uncompressed and Deflate,
// IFD first, strips of 3 rows) decode to the pixels it was given.
func TestReadsTifffileOutput(t *testing.T) {
	want, err := os.ReadFile("testdata/tifffile_int32.raw")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tifffile_int32_none.tif", "tifffile_int32_deflate.tif"} {
		img, err := tiff.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if img.Width != 16 || img.Height != 8 || img.Strips != 3 || !bytes.Equal(int32Bytes(img.Pixels), want) {
			t.Fatalf("%s: %dx%d, %d strips, pixels equal: %v", name, img.Width, img.Height, img.Strips, bytes.Equal(int32Bytes(img.Pixels), want))
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"tifffile_int32_none.tif", "tifffile_int32_deflate.tif"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	h := cbftest.Header()
	p, _ := escapes()
	f.Add(encode(f, tiff.Options{}, h, p))
	small := cbftest.Frame{Width: 300, Height: 500, ElemSize: 2, Background: 2, Spots: 3, Seed: 5}.Pixels()
	f.Add(encode(f, tiff.Options{}, h, small)) // two strips
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := tiff.Decode(b)
		if err != nil {
			return
		}
		if len(img.Pixels) != img.Width*img.Height {
			t.Fatalf("%d pixels for %d x %d", len(img.Pixels), img.Width, img.Height)
		}
	})
}

// BenchmarkTIFF measures one 16-bit EIGER 4M frame as a Deflate TIFF.
func BenchmarkTIFF(b *testing.B) {
	p := cbftest.EIGER4M.Pixels()
	h := cbftest.Header()
	for _, level := range []int{0, -2, 1, 6} {
		b.Run("level="+strconv.Itoa(level), func(b *testing.B) {
			e, err := tiff.NewEncoder(tiff.Options{Level: level})
			if err != nil {
				b.Fatal(err)
			}
			out, _ := e.Encode(&h, p)
			b.SetBytes(int64(len(p.Data)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cbftest.StartCPU()
			for i := 0; i < b.N; i++ {
				out, _ = e.Encode(&h, p)
			}
			cbftest.ReportThroughput(b, p.Len(), cpu)
			b.ReportMetric(float64(len(out)), "file-bytes")
		})
	}
}
