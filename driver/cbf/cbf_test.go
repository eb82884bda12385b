package cbf_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"tioga/driver/cbf"
	"tioga/driver/cbf/cbftest"
)

var (
	frame4MOnce sync.Once
	frame4M     cbf.Pixels
)

// eiger4M returns the synthetic 16-bit EIGER 4M frame, rendered once per
// test binary.
func eiger4M() cbf.Pixels {
	frame4MOnce.Do(func() { frame4M = cbftest.EIGER4M.Pixels() })
	return frame4M
}

// escapes is a 32-bit frame whose values need every escape level of
// byte-offset, with masked (-1) pixels between them and a count above
// MaxInt32 that must be clipped.
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

func encode(t testing.TB, o cbf.Options, h cbf.Header, name string, p cbf.Pixels) []byte {
	t.Helper()
	e, err := cbf.NewEncoder(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Encode(&h, name, p)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(b)
}

// The text before the binary data, byte for byte: the PILATUS_1.2 header
// formats of docs/cbf.md and the MIME header spellings readers insist on.
func TestLayoutIsExact(t *testing.T) {
	for _, withMD5 := range []bool{true, false} {
		testLayout(t, withMD5)
	}
}

func testLayout(t *testing.T, withMD5 bool) {
	p, _ := escapes()
	h := cbftest.Header()
	file := encode(t, cbf.Options{ContentMD5: withMD5}, h, "lyso_3_00017", p)
	mark := bytes.Index(file, []byte{0x0c, 0x1a, 0x04, 0xd5})
	if mark < 0 {
		t.Fatal("no binary marker")
	}
	data := file[mark+4:]
	size := len(cbf.AppendByteOffset(nil, func() []int32 { _, w := escapes(); return w }()))
	md5Line := ""
	if withMD5 {
		md5Line = "Content-MD5: " + md5b64(data[:size]) + "\r\n"
	}
	want := "###CBF: VERSION 1.5, Tioga miniCBF writer\r\n" +
		"\r\n" +
		"data_lyso_3_00017\r\n" +
		"\r\n" +
		"_array_data.header_convention \"GENERIC_MINI\"\r\n" + // 4 x 4 is no EIGER

		"_array_data.header_contents\r\n" +
		";\r\n" +
		"# Detector: Dectris detector, non-standard geometry 4x4, S/N E-08-0106\r\n" +
		"# 2026-11-23T12:00:00.125\r\n" +
		"# Pixel_size 75e-6 m x 75e-6 m\r\n" +
		"# Silicon sensor, thickness 0.000450 m\r\n" +
		"# Exposure_time 0.0013300 s\r\n" +
		"# Exposure_period 0.0013400 s\r\n" +
		"# Tau = 0 s\r\n" +
		"# Count_cutoff 65535 counts\r\n" +
		"# Threshold_setting: 6350 eV\r\n" +
		"# Wavelength 0.97626 A\r\n" +
		"# Detector_distance 0.20000 m\r\n" +
		"# Beam_xy (1035.25, 1083.75) pixels\r\n" +
		"# Start_angle 12.5000 deg.\r\n" +
		"# Angle_increment 0.1000 deg.\r\n" +
		"# Phi 12.5000 deg.\r\n" +
		"# Oscillation_axis X.CW\r\n" +
		"# N_oscillations 1\r\n" +
		";\r\n" +
		"\r\n" +
		"_array_data.data\r\n" +
		";\r\n" +
		"--CIF-BINARY-FORMAT-SECTION--\r\n" +
		"Content-Type: application/octet-stream;\r\n" +
		"     conversions=\"x-CBF_BYTE_OFFSET\"\r\n" +
		"Content-Transfer-Encoding: BINARY\r\n" +
		"X-Binary-Size: 74\r\n" +
		"X-Binary-ID: 1\r\n" +
		"X-Binary-Element-Type: \"signed 32-bit integer\"\r\n" +
		"X-Binary-Element-Byte-Order: LITTLE_ENDIAN\r\n" +
		md5Line +
		"X-Binary-Number-of-Elements: 16\r\n" +
		"X-Binary-Size-Fastest-Dimension: 4\r\n" +
		"X-Binary-Size-Second-Dimension: 4\r\n" +
		"X-Binary-Size-Padding: 4095\r\n" +
		"\r\n"
	if size != 74 {
		t.Fatalf("escape frame encodes to %d bytes, want 74", size)
	}
	if got := string(file[:mark]); got != want {
		t.Fatalf("Content-MD5 %v: header differs:\n%s", withMD5, diffLines(got, want))
	}
	tail := data[size:]
	if len(tail) != 4095+len("\r\n--CIF-BINARY-FORMAT-SECTION----\r\n;\r\n\r\n") {
		t.Fatalf("%d bytes after the data", len(tail))
	}
	if !bytes.Equal(tail[:4095], make([]byte, 4095)) {
		t.Fatal("padding is not 4095 zero bytes")
	}
	if string(tail[4095:]) != "\r\n--CIF-BINARY-FORMAT-SECTION----\r\n;\r\n\r\n" {
		t.Fatalf("trailer %q", tail[4095:])
	}
}

func diffLines(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n got " + strings.ReplaceAll(gl, "\r", `\r`) + "\nwant " + strings.ReplaceAll(wl, "\r", `\r`) + "\n")
		}
	}
	return b.String()
}

func md5b64(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestDetectorLine(t *testing.T) {
	cases := []struct {
		desc   string
		w, h   int
		want   string
		eiger  bool
		serial string
	}{
		{"Dectris EIGER X 4M", 2070, 2167, "Dectris EIGER X 4M, S/N E-1", true, "E-1"},
		{"Dectris Eiger 16M", 4150, 4371, "Dectris Eiger 16M", true, ""},
		{"", 2070, 2167, "Dectris EIGER X 4M", true, ""},
		{"Simulated", 4150, 4371, "Dectris EIGER X 16M (Simulated)", true, ""},
		{"Dectris EIGER X 4M", 512, 512, "Dectris detector, non-standard geometry 512x512", false, ""},
		{"Dectris EIGER X 4M", 2070, 2166, "Dectris detector, non-standard geometry 2070x2166, S/N E-2", false, "E-2"},
	}
	for _, c := range cases {
		got := string(cbf.AppendDetectorLine(nil, c.desc, c.serial, c.w, c.h))
		if got != c.want {
			t.Errorf("%q %dx%d: %q, want %q", c.desc, c.w, c.h, got, c.want)
		}
		if strings.Contains(strings.ToUpper(got), "EIGER") != c.eiger {
			t.Errorf("%q %dx%d: EIGER claim %v, want %v", c.desc, c.w, c.h, !c.eiger, c.eiger)
		}
	}
}

func TestRoundTripThroughDecode(t *testing.T) {
	h := cbftest.Header()
	h.Detector = "Dectris EIGER X 4M"
	p := eiger4M()
	for _, o := range []cbf.Options{{}, {ContentMD5: true}, {Gzip: true}, {Gzip: true, ContentMD5: true}} {
		gz := o.Gzip
		file := encode(t, o, h, "lyso_1_00001", p)
		if !gz && !bytes.Contains(file, []byte("\r\n_array_data.header_convention \"PILATUS_1.2\"\r\n")) {
			t.Fatal("an EIGER 4M frame is not written with the PILATUS_1.2 convention")
		}
		img, err := cbf.Decode(file)
		if err != nil {
			t.Fatal(err)
		}
		if img.Gzipped != gz || img.HasMD5 != o.ContentMD5 || img.Name != "lyso_1_00001" || img.Width != 2070 || img.Height != 2167 {
			t.Fatalf("gzip %v: decoded %q %dx%d gz=%v md5=%v", gz, img.Name, img.Width, img.Height, img.Gzipped, img.HasMD5)
		}
		masked := 0
		for i, v := range img.Pixels {
			if v != p.Value(i) {
				t.Fatalf("pixel %d: %d, want %d", i, v, p.Value(i))
			}
			if v == -1 {
				masked++
			}
		}
		// The gaps alone are 250 330 pixels of the 4 485 690.
		if masked < 250330 || masked > 252000 {
			t.Fatalf("%d masked pixels", masked)
		}
		want := h
		want.Sensor = "Si"
		if img.Header != want {
			t.Fatalf("header\n got %+v\nwant %+v", img.Header, want)
		}
	}
}

// CBFlib itself (cif2cbf from cbflib-bin) reads our byte-offset file,
// checks its MD5 when it has one and writes the pixels uncompressed; those raw int32 values
// must equal ours, including -1 and the values needing the 16- and 32-bit
// escapes. Python's pycbf (the CBFlib binding DIALS uses) must agree too.
func TestIndependentReadersCBFlib(t *testing.T) {
	dir := t.TempDir()
	esc, escWant := escapes()
	cases := []struct {
		name string
		p    cbf.Pixels
		want []byte
		md5  bool
	}{
		{"escapes", esc, int32Bytes(escWant), true},
		{"escapes_nomd5", esc, int32Bytes(escWant), false},
		{"eiger4m", eiger4M(), cbftest.Int32LE(eiger4M()), false},
	}
	h := cbftest.Header()
	for _, c := range cases {
		path := filepath.Join(dir, c.name+".cbf")
		if err := os.WriteFile(path, encode(t, cbf.Options{ContentMD5: c.md5}, h, c.name, c.p), 0o644); err != nil {
			t.Fatal(err)
		}

		raw := filepath.Join(dir, c.name+"_raw.cbf")
		cbftest.Run(t, "cif2cbf", "-i", path, "-o", raw, "-c", "n", "-m", "h", "-d", "d", "-e", "n", "-p", "1")
		got := rawBinary(t, raw)
		if !bytes.Equal(got, c.want) {
			t.Fatalf("%s: cif2cbf pixels differ from ours (%d vs %d bytes)", c.name, len(got), len(c.want))
		}

		// And our reader reads CBFlib's own byte-offset encoding of it.
		bo := filepath.Join(dir, c.name+"_cbflib.cbf")
		cbftest.Run(t, "cif2cbf", "-i", path, "-o", bo, "-c", "b", "-m", "h", "-d", "d", "-e", "n", "-p", "4")
		img, err := cbf.ReadFile(bo)
		if err != nil {
			t.Fatalf("%s: our reader on CBFlib's file: %v", c.name, err)
		}
		if !img.HasMD5 || !bytes.Equal(int32Bytes(img.Pixels), c.want) {
			t.Fatalf("%s: CBFlib's byte-offset file decodes to other pixels", c.name)
		}

		out := filepath.Join(dir, c.name+".pycbf")
		params := cbftest.Python(t, pycbfScript, path, out)
		var pr []any
		if err := json.Unmarshal(params, &pr); err != nil {
			t.Fatalf("pycbf output %q: %v", params, err)
		}
		// [compression, binary id, element size, signed, unsigned, elements, ...,
		//  byte order, fast, mid, slow, padding]
		if pr[2].(float64) != 4 || pr[3].(float64) != 1 || int(pr[5].(float64)) != c.p.Len() ||
			pr[8] != "little_endian" || int(pr[9].(float64)) != c.p.Width || int(pr[10].(float64)) != c.p.Height {
			t.Fatalf("%s: pycbf array parameters %v", c.name, pr)
		}
		pix, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pix, c.want) {
			t.Fatalf("%s: pycbf pixels differ from ours", c.name)
		}
	}
}

// pycbf reads the file with MD5 checking, writes the pixels as raw int32
// to argv[2] and prints the array parameters as JSON.
const pycbfScript = `
import json, sys, pycbf
h = pycbf.cbf_handle_struct()
h.read_widefile(sys.argv[1].encode(), pycbf.MSG_DIGEST)
h.find_category(b"array_data")
h.find_column(b"data")
params = [p.decode() if isinstance(p, bytes) else p for p in h.get_integerarrayparameters_wdims_fs()]
open(sys.argv[2], "wb").write(h.get_integerarray_as_string())
print(json.dumps(params))
`

// rawBinary returns the X-Binary-Size bytes after the marker of an
// uncompressed CBF written by cif2cbf.
func rawBinary(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("X-Binary-Element-Type: \"signed 32-bit integer\"")) {
		t.Fatalf("%s: cif2cbf did not write signed 32-bit integers", path)
	}
	mark := bytes.Index(b, []byte{0x0c, 0x1a, 0x04, 0xd5})
	i := bytes.Index(b, []byte("X-Binary-Size: "))
	if mark < 0 || i < 0 {
		t.Fatalf("%s: not a CBF", path)
	}
	var size int
	for _, c := range b[i+len("X-Binary-Size: "):] {
		if c < '0' || c > '9' {
			break
		}
		size = size*10 + int(c-'0')
	}
	return b[mark+4 : mark+4+size]
}

func int32Bytes(v []int32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

// A .cbf.gz is an ordinary gzip file: the system gzip tests it and
// inflates it to exactly the plain .cbf.
func TestGzipFileWithSystemGzip(t *testing.T) {
	dir := t.TempDir()
	h := cbftest.Header()
	p := eiger4M()
	sparse := cbftest.Frame{Width: 2070, Height: 2167, ElemSize: 2, Background: 0.05, Spots: 50, Seed: 6}.Pixels()
	for _, c := range []struct {
		frame  cbf.Pixels
		md5    bool
		levels []int
	}{
		{p, false, []int{0, 1, 6, 9, -2, -1}},
		{p, true, []int{cbf.GzipAuto}},
		{sparse, false, []int{cbf.GzipAuto, -2}},
	} {
		plain := encode(t, cbf.Options{ContentMD5: c.md5}, h, "lyso_1_00001", c.frame)
		for _, level := range c.levels {
			gz := encode(t, cbf.Options{Gzip: true, GzipLevel: level, ContentMD5: c.md5}, h, "lyso_1_00001", c.frame)
			path := filepath.Join(dir, "lyso_1_00001.cbf.gz")
			if err := os.WriteFile(path, gz, 0o644); err != nil {
				t.Fatal(err)
			}
			cbftest.Run(t, "gzip", "-t", path)
			if out := cbftest.Run(t, "gzip", "-dc", path); !bytes.Equal(out, plain) {
				t.Fatalf("level %d: gzip -dc gives %d bytes, not the %d of the plain file", level, len(out), len(plain))
			}
		}
	}
	for _, bad := range []int{42, -3, 10, -50} {
		if _, err := cbf.NewEncoder(cbf.Options{Gzip: true, GzipLevel: bad}); err == nil {
			t.Fatalf("gzip level %d accepted", bad)
		}
	}
}

// After the first frame, encoding allocates nothing: the byte-offset
// buffer, MD5 state, gzip state and output buffer are all reused.
func TestEncodeAllocatesNothingAfterWarmUp(t *testing.T) {
	h := cbftest.Header()
	p := cbftest.Frame{Width: 1030, Height: 514, ElemSize: 2, Background: 3, Spots: 20, Seed: 9}.Pixels()
	for _, o := range []cbf.Options{{}, {Gzip: true}, {ContentMD5: true}, {Gzip: true, ContentMD5: true}, {Gzip: true, GzipLevel: 1}} {
		e, err := cbf.NewEncoder(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Encode(&h, "x_1_00001", p); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(5, func() {
			h.StartAngle += 0.1
			if _, err := e.Encode(&h, "x_1_00002", p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%+v: %.1f allocations per frame", o, allocs)
		}
	}
}

func TestEncodeRejectsBadInput(t *testing.T) {
	e, _ := cbf.NewEncoder(cbf.Options{})
	good := cbf.Pixels{Data: make([]byte, 8), Width: 2, Height: 2, ElemSize: 2}
	h := cbftest.Header()
	bad := func(mut func(*cbf.Header, *cbf.Pixels, *string)) error {
		hh, pp, name := h, good, "x_1_00001"
		mut(&hh, &pp, &name)
		_, err := e.Encode(&hh, name, pp)
		return err
	}
	for what, mut := range map[string]func(*cbf.Header, *cbf.Pixels, *string){
		"short data":       func(_ *cbf.Header, p *cbf.Pixels, _ *string) { p.Data = p.Data[:7] },
		"element size 3":   func(_ *cbf.Header, p *cbf.Pixels, _ *string) { p.ElemSize = 3 },
		"zero width":       func(_ *cbf.Header, p *cbf.Pixels, _ *string) { p.Width = 0 },
		"NaN wavelength":   func(h *cbf.Header, _ *cbf.Pixels, _ *string) { h.Wavelength = math.NaN() },
		"negative dist":    func(h *cbf.Header, _ *cbf.Pixels, _ *string) { h.Distance = -1 },
		"newline serial":   func(h *cbf.Header, _ *cbf.Pixels, _ *string) { h.Serial = "E-1\r\n;" },
		"non-ASCII":        func(h *cbf.Header, _ *cbf.Pixels, _ *string) { h.Detector = "Détecteur" },
		"no pixel size":    func(h *cbf.Header, _ *cbf.Pixels, _ *string) { h.PixelSizeX = 0 },
		"blank in name":    func(_ *cbf.Header, _ *cbf.Pixels, n *string) { *n = "a b" },
		"empty name":       func(_ *cbf.Header, _ *cbf.Pixels, n *string) { *n = "" },
		"infinite beam":    func(h *cbf.Header, _ *cbf.Pixels, _ *string) { h.BeamX = math.Inf(1) },
		"long description": func(h *cbf.Header, _ *cbf.Pixels, _ *string) { h.Detector = strings.Repeat("x", 300) },
	} {
		if err := bad(mut); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
	if err := bad(func(*cbf.Header, *cbf.Pixels, *string) {}); err != nil {
		t.Fatalf("good input rejected: %v", err)
	}
}

// Decode refuses damaged files with ErrFormat: truncation anywhere, a flipped
// data byte (MD5), altered sizes.
func TestDecodeRejectsDamage(t *testing.T) {
	p, _ := escapes()
	file := encode(t, cbf.Options{ContentMD5: true}, cbftest.Header(), "x_1_00001", p)
	mark := bytes.Index(file, []byte{0x0c, 0x1a, 0x04, 0xd5})
	for _, cut := range []int{0, 10, mark - 100, mark, mark + 4, mark + 30, mark + 54, len(file) - 40, len(file) - 10} {
		if _, err := cbf.Decode(file[:cut]); !errors.Is(err, cbf.ErrFormat) {
			t.Errorf("cut at %d of %d: err = %v", cut, len(file), err)
		}
	}
	flip := bytes.Clone(file)
	flip[mark+10] ^= 0x01
	if _, err := cbf.Decode(flip); err == nil || !strings.Contains(err.Error(), "MD5") {
		t.Errorf("flipped data byte: err = %v", err)
	}
	for old, repl := range map[string]string{
		"X-Binary-Size: 74":                  "X-Binary-Size: 73",
		"X-Binary-Number-of-Elements: 16":    "X-Binary-Number-of-Elements: 15",
		"X-Binary-Size-Fastest-Dimension: 4": "X-Binary-Size-Fastest-Dimension: 5",
		"LITTLE_ENDIAN":                      "BIG_ENDIAN",
		"x-CBF_BYTE_OFFSET":                  "x-CBF_PACKED",
		"# Wavelength 0.97626 A":             "# Wavelength 0.9x626 A",
	} {
		alt := bytes.Replace(file, []byte(old), []byte(repl), 1)
		if _, err := cbf.Decode(alt); err == nil {
			t.Errorf("%q -> %q accepted", old, repl)
		}
	}
	gz := encode(t, cbf.Options{Gzip: true}, cbftest.Header(), "x_1_00001", p)
	if _, err := cbf.Decode(gz[:len(gz)-9]); err == nil {
		t.Error("truncated gzip accepted")
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p, want := escapes()
	for _, name := range []string{"a.cbf", "a.cbf.gz"} {
		path := filepath.Join(dir, name)
		o := cbf.Options{Gzip: strings.HasSuffix(name, ".gz")}
		if err := os.WriteFile(path, encode(t, o, cbftest.Header(), "a", p), 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := cbf.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if img.Pixels[i] != want[i] {
				t.Fatalf("%s pixel %d: %d, want %d", name, i, img.Pixels[i], want[i])
			}
		}
	}
	if _, err := cbf.ReadFile(filepath.Join(dir, "missing.cbf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// FuzzDecode feeds damaged versions of files we write (plain and gzip) to
// the reader: it must return an error or a consistent image, never panic.
func FuzzDecode(f *testing.F) {
	p, _ := escapes()
	h := cbftest.Header()
	f.Add(encode(f, cbf.Options{}, h, "x_1_00001", p))
	f.Add(encode(f, cbf.Options{Gzip: true}, h, "x_1_00001", p))
	f.Add(encode(f, cbf.Options{ContentMD5: true}, h, "x_1_00001", p))
	f.Add(encode(f, cbf.Options{Gzip: true, ContentMD5: true}, h, "x_1_00001", p))
	small := cbftest.Frame{Width: 16, Height: 8, ElemSize: 2, Background: 2, Spots: 1, Seed: 2}.Pixels()
	f.Add(encode(f, cbf.Options{}, h, "y_2_00003", small))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := cbf.Decode(b)
		if err != nil {
			return
		}
		if len(img.Pixels) != img.Width*img.Height {
			t.Fatalf("%d pixels for %d x %d", len(img.Pixels), img.Width, img.Height)
		}
	})
}

// GzipAuto picks, block by block, BestSpeed where the data is mostly zero
// bytes (sparse frames: long zero runs, where LZ77 wins) and Huffman-only
// elsewhere (a background of counts: noise, where Huffman-only is smaller
// and faster): on a sparse frame the file is exactly what BestSpeed
// writes, on a dense one no larger than Huffman-only's, and on both
// smaller than the other level's. On the synthetic 4M frame it is no
// larger than before the block-wise encoder (1 732 408 bytes, with
// Content-MD5).
func TestGzipAutoPicksTheLevel(t *testing.T) {
	h := cbftest.Header()
	sparse := cbftest.Frame{Width: 1030, Height: 514, ElemSize: 2, Background: 0.02, Spots: 20, Seed: 4}.Pixels()
	dense := cbftest.Frame{Width: 1030, Height: 514, ElemSize: 2, Background: 2, Spots: 20, Seed: 4}.Pixels()
	for _, c := range []struct {
		name  string
		p     cbf.Pixels
		level int
	}{{"sparse", sparse, 1}, {"dense", dense, -2}} {
		auto := encode(t, cbf.Options{Gzip: true}, h, "x", c.p)
		want := encode(t, cbf.Options{Gzip: true, GzipLevel: c.level}, h, "x", c.p)
		if c.level == 1 && !bytes.Equal(auto, want) || len(auto) > len(want) {
			t.Errorf("%s frame: auto wrote %d bytes, level %d writes %d", c.name, len(auto), c.level, len(want))
		}
		other := encode(t, cbf.Options{Gzip: true, GzipLevel: otherLevel(c.level)}, h, "x", c.p)
		if len(other) <= len(auto) {
			t.Errorf("%s frame: auto (%d bytes) is not smaller than the other level (%d)", c.name, len(auto), len(other))
		}
	}
	if n := len(encode(t, cbf.Options{Gzip: true, ContentMD5: true}, h, "bench_1_00001", eiger4M())); n > 1732408 {
		t.Errorf("synthetic 4M frame: %d bytes at auto, more than the 1 732 408 before", n)
	}
}

func otherLevel(l int) int {
	if l == 1 {
		return -2
	}
	return 1
}

// fabio (the reader of the SAXS and powder programs, and of many beamline
// scripts) opens our .cbf.gz files, written block by block with and
// without Content-MD5, dense and sparse, and returns identical pixels.
func TestFabioReadsGzipFiles(t *testing.T) {
	dir := t.TempDir()
	h := cbftest.Header()
	h.Detector = "Dectris EIGER X 4M"
	sparse := cbftest.Frame{Width: 2070, Height: 2167, ElemSize: 2, Background: 0.05, Spots: 50, Seed: 6}.Pixels()
	for _, c := range []struct {
		name string
		p    cbf.Pixels
		o    cbf.Options
	}{
		{"dense", eiger4M(), cbf.Options{Gzip: true}},
		{"dense_md5", eiger4M(), cbf.Options{Gzip: true, ContentMD5: true}},
		{"sparse", sparse, cbf.Options{Gzip: true}},
	} {
		path := filepath.Join(dir, c.name+".cbf.gz")
		if err := os.WriteFile(path, encode(t, c.o, h, c.name, c.p), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, c.name+".raw")
		res := strings.TrimSpace(string(cbftest.Python(t, fabioScript, path, out)))
		if res != "int32 2167 2070" {
			t.Fatalf("%s: fabio says %q", c.name, res)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, cbftest.Int32LE(c.p)) {
			t.Fatalf("%s: fabio's pixels differ from ours", c.name)
		}
	}
}

// fabio can spin on some CBF variants (docs/cbf.md): the alarm bounds it.
const fabioScript = `
import sys, signal
signal.alarm(60)
import fabio
a = fabio.open(sys.argv[1]).data
a.astype("<i4").tofile(sys.argv[2])
print(a.dtype.name, *a.shape)
`

// FuzzGzipRoundTrip: any frame (8-, 16- or 32-bit, any size, any values)
// written as .cbf.gz at any level, with or without Content-MD5, reads back
// with the same pixels, and its gzip stream is valid for Go's reader too.
func FuzzGzipRoundTrip(f *testing.F) {
	f.Add(uint8(2), uint8(7), uint8(0), []byte("\x00\x01\xff\xff\x10\x00\x00\x80"))
	f.Add(uint8(1), uint8(3), uint8(1), bytes.Repeat([]byte{0}, 5000))
	f.Add(uint8(4), uint8(1), uint8(2), []byte("\xff\xff\xff\xff\x00\x00\x00\x80\x01\x00\x00\x00"))
	h := cbftest.Header()
	levels := []int{cbf.GzipAuto, -2, 1, 6}
	f.Fuzz(func(t *testing.T, es, width, mode uint8, data []byte) {
		size := []int{1, 2, 4}[int(es)%3]
		w := int(width)%64 + 1
		n := len(data) / size / w * w
		if n == 0 {
			return
		}
		p := cbf.Pixels{Data: data[:n*size], Width: w, Height: n / w, ElemSize: size}
		o := cbf.Options{Gzip: true, GzipLevel: levels[int(mode)%len(levels)], ContentMD5: mode&4 != 0}
		img, err := cbf.Decode(encode(t, o, h, "f_1_00001", p))
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if img.HasMD5 != o.ContentMD5 {
			t.Fatalf("%+v: md5 %v", o, img.HasMD5)
		}
		for i, v := range img.Pixels {
			if v != p.Value(i) {
				t.Fatalf("%+v: pixel %d is %d, want %d", o, i, v, p.Value(i))
			}
		}
	})
}
