package codec

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"tioga/driver/codec/internal/cbitshuffle"
	"tioga/sim/fixtures"
)

func readFixture(tb testing.TB, elem ...string) []byte {
	tb.Helper()
	return fixtures.Read(tb, elem...)
}

// frameStats are the golden numbers pinned per real frame. Masked pixels
// (all ones of the type) are excluded from Sum and Max, as the analysis
// excludes them.
type frameStats struct {
	Pixels int
	Masked int    // pixels equal to the all-ones value of the type
	Zeros  int    // pixels equal to 0
	Sum    uint64 // sum of the non-masked pixels
	Max    uint64 // largest non-masked pixel
	MD5    string // of the decoded little-endian bytes
}

func statsOf(b []byte, s int) frameStats {
	st := frameStats{Pixels: len(b) / s}
	all := uint64(1)<<(8*s) - 1
	for i := 0; i < len(b); i += s {
		var v uint64
		switch s {
		case 1:
			v = uint64(b[i])
		case 2:
			v = uint64(binary.LittleEndian.Uint16(b[i:]))
		case 4:
			v = uint64(binary.LittleEndian.Uint32(b[i:]))
		default:
			v = binary.LittleEndian.Uint64(b[i:])
		}
		switch {
		case v == all:
			st.Masked++
			continue
		case v == 0:
			st.Zeros++
		}
		st.Sum += v
		st.Max = max(st.Max, v)
	}
	sum := md5.Sum(b)
	st.MD5 = hex.EncodeToString(sum[:])
	return st
}

func (s frameStats) String() string {
	return fmt.Sprintf("{Pixels: %d, Masked: %d, Zeros: %d, Sum: %d, Max: %d, MD5: %q}", s.Pixels, s.Masked, s.Zeros, s.Sum, s.Max, s.MD5)
}

// Golden numbers of the real frames, cross-checked once against the Debian
// bitshuffle Python module (the C library) and python3-lz4 with numpy; the
// tests below also compare every decode with the C library directly.
//
// Within a series the frames have the same pixel histogram but different
// MD5s: the 4M frames 1 and 2 differ from frame 0 in 76 and 54 pixels, the
// 500K frames from each other in about 0.3% of their pixels; the test
// images only move a few counts around.
var goldenEIGER4M = map[string]frameStats{
	"streamfile_12": {Pixels: 4485690, Masked: 251297, Zeros: 2710437, Sum: 4609824, Max: 12322, MD5: "466dfee95c00e7ec8060c7bca25bbeac"},
	"streamfile_16": {Pixels: 4485690, Masked: 251297, Zeros: 2710437, Sum: 4609824, Max: 12322, MD5: "ce6c03a6abb32c4873006804c3ca1620"},
	"streamfile_20": {Pixels: 4485690, Masked: 251297, Zeros: 2710437, Sum: 4609824, Max: 12322, MD5: "79cb1532cac76ba7a7baf24aa747b519"},
}

var goldenR500K = map[string][]frameStats{
	"bslz4_8bit": {
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "c208b2faa0bd0e73f18501d11729b87e"},
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "7d4c6816e9ace79bdfbfcaa33c6da8c8"},
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "03f5e763822be8915f8bf126bb1fa932"},
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "b38cd852cc9328f073eb02f570b05b79"},
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "52a752ec12c7782040e6c8d51391acdf"},
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "3db703ae14d31cd690f1ec05ee1ded57"},
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "4325c993d7c56350c1985128a2054fe9"},
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "b5c23fe8a187803269e460bd2cc04af0"},
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "161c0d592fbb12ebbe7043ab3c5e730b"},
		{Pixels: 529420, Masked: 0, Zeros: 76414, Sum: 908237, Max: 4, MD5: "1bf00ba8e4b2bc886801767f90b43164"},
	},
	"bslz4_16bit": {
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "9689e246969f1a1343c704ee970e6fc2"},
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "edc082723e9247fecc6c6bd8eca9d6c9"},
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "5b0622f0a3cf8fc0e967ddd7e67d4ce4"},
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "88cdf8af7a20aa7ae37a73c4be616db6"},
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "420a96dfe5ae863b9945c5ce84a15e8a"},
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "5903ce6e214d9e29e4a6c30fbc8833d3"},
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "59dd0664fb4be684d1922e67b124dc42"},
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "c3cab4327fa988f7f3e46712b553b0af"},
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "ed8a24990ea78cf0b33a83bcacab90ac"},
		{Pixels: 529420, Masked: 0, Zeros: 76460, Sum: 909218, Max: 4, MD5: "f44db0e24bd82e752e1a3040be25222a"},
	},
	"bslz4_32bit": {
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "c250dfcc5f28cfb3b21142cbc662bf98"},
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "222096fda04692cd780f8ac02717765c"},
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "9cd04b0aa1437a413f3c71cacd2631af"},
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "a397b258bf7856b3ffc32e656d5716e0"},
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "6ff3cdb71fd6f5c7782c1ac769479ea4"},
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "d5198fc680a586fbd5bde89ba16faa48"},
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "b8e6892998b4ba966e7879593a91c8c1"},
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "991c2d52579217241401c86bf798f8c6"},
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "22bcdbc16d11348fec9e79c98566d7a0"},
		{Pixels: 529420, Masked: 0, Zeros: 9474, Sum: 7414309, Max: 28, MD5: "7a11bde405f2a3504f43bc8d32d731e8"},
	},
	"lz4_16bit": {
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "0a39936bec0131217806f2d8576b3424"},
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "f90f6ab926f78bf5a053b1e51660ebe2"},
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "12640564a121f1e92a41c9f34e6ad659"},
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "42e4382e5cd3770c9e64e5d08ac29a86"},
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "c635ac44bb0e04176acd6e93611da9d7"},
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "db625d37b8d4c609bd1564566e6622ef"},
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "8bcbb4f9d5eb141a24ea7debdd12582f"},
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "1623738a9bd05b39e0fbba52d660ad9e"},
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "13e0d04c4b2a56c643196d2b6f2154bb"},
		{Pixels: 529420, Masked: 0, Zeros: 76247, Sum: 909298, Max: 4, MD5: "68f1ed9c86983503ebe02ea9a2591bc5"},
	},
}

// eiger4mFrames names the data part of each frame of the V1 capture and the
// dimage_d header that describes it.
var eiger4mFrames = []struct{ header, data string }{
	{"streamfile_11", "streamfile_12"},
	{"streamfile_15", "streamfile_16"},
	{"streamfile_19", "streamfile_20"},
}

// TestEIGER4MFrames decodes the three real EIGER 4M frames as the receiver
// would: the encoding and shape come from the dimage_d header, the decode
// must consume exactly the announced size, and the pixels must be the golden
// ones and byte-identical to the C library's decode.
func TestEIGER4MFrames(t *testing.T) {
	if err := cbitshuffle.Load(); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder()
	for _, f := range eiger4mFrames {
		t.Run(f.data, func(t *testing.T) {
			var hdr struct {
				Shape    [2]int `json:"shape"`
				Type     string `json:"type"`
				Encoding string `json:"encoding"`
				Size     int    `json:"size"`
			}
			if err := json.Unmarshal(readFixture(t, "eiger-stream-v1", "eiger4m-bs16", f.header), &hdr); err != nil {
				t.Fatal(err)
			}
			enc, elemSize, err := ParseV1Encoding(hdr.Encoding)
			if err != nil || enc != BSLZ4 || elemSize != 2 || hdr.Type != "uint16" {
				t.Fatalf("header %+v: %v %d %v", hdr, enc, elemSize, err)
			}
			if hdr.Shape != [2]int{2070, 2167} || hdr.Size != 1170446 {
				t.Fatalf("header %+v", hdr)
			}
			src := readFixture(t, "eiger-stream-v1", "eiger4m-bs16", f.data)
			if len(src) != hdr.Size {
				t.Fatalf("data part is %d bytes, header says %d", len(src), hdr.Size)
			}
			if n, ok := DecodedSize(src, BSLZ4); !ok || n != 2070*2167*2 {
				t.Fatalf("DecodedSize = %d, %v", n, ok)
			}

			dst := make([]byte, hdr.Shape[0]*hdr.Shape[1]*elemSize)
			n, err := d.Decode(dst, src, enc, elemSize)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1170446 {
				t.Fatalf("consumed %d bytes, want 1170446", n)
			}
			got := statsOf(dst, 2)
			if want := goldenEIGER4M[f.data]; got != want {
				t.Fatalf("decoded frame\n got %v\nwant %v", got, want)
			}
			if got.Pixels != 4485690 || got.Masked != 251297 {
				t.Fatalf("%d pixels, %d masked", got.Pixels, got.Masked)
			}
			// The container's layout as the format describes it: 1095 full
			// blocks of 4096 pixels, one of 568, and the last 2 pixels (4
			// bytes) raw at the very end.
			if blocks, last := walkBitshuffle(t, src, 2); blocks != 1096 || last != 568 {
				t.Fatalf("%d blocks, last of %d elements", blocks, last)
			}
			if !bytes.Equal(dst[len(dst)-4:], src[len(src)-4:]) {
				t.Fatal("raw tail is not the last 4 bytes of the input")
			}

			ref := make([]byte, len(dst))
			cn, err := cbitshuffle.Decompress(ref, src, 2)
			if err != nil {
				t.Fatal(err)
			}
			if cn != n || !bytes.Equal(ref, dst) {
				t.Fatalf("C library: consumed %d, same pixels %v", cn, bytes.Equal(ref, dst))
			}
		})
	}
}

// walkBitshuffle follows the block lengths of a container with header and
// returns the number of LZ4 blocks and the length in elements of the last.
func walkBitshuffle(t *testing.T, src []byte, s int) (blocks, lastElems int) {
	t.Helper()
	n := int(binary.BigEndian.Uint64(src)) / s
	b := int(binary.BigEndian.Uint32(src[8:])) / s
	pos := headerSize
	for done := 0; n-done >= 8; {
		m := min(b, (n-done)&^7)
		pos += 4 + int(binary.BigEndian.Uint32(src[pos:]))
		done += m
		blocks, lastElems = blocks+1, m
	}
	if pos+(n%8)*s != len(src) {
		t.Fatalf("blocks end at %d, tail of %d bytes, input is %d", pos, (n%8)*s, len(src))
	}
	return blocks, lastElems
}

// r500kSeries are the four real EIGER2 R 500K series of the V2 fixtures.
var r500kSeries = []struct {
	name     string
	elemSize int
	enc      Encoding
}{
	{"bslz4_8bit", 1, BSLZ4},
	{"bslz4_16bit", 2, BSLZ4},
	{"bslz4_32bit", 4, BSLZ4},
	{"lz4_16bit", 2, HDF5LZ4},
}

// loadR500K returns the compressed first-channel payload of image i (1..10)
// of a 500K series and checks the CBOR framing around it.
func loadR500K(tb testing.TB, series string, i int) v2Payload {
	tb.Helper()
	msg := readFixture(tb, "eiger-stream-v2", "dectris-r500k_bm_"+series, fmt.Sprintf("%06d.cbor", i))
	p, err := parseV2Image(msg)
	if err != nil {
		tb.Fatalf("%s %d: %v", series, i, err)
	}
	if p.Channel != "threshold_1" || p.Rows != 514 || p.Cols != 1030 {
		tb.Fatalf("%s %d: channel %s, %dx%d", series, i, p.Channel, p.Rows, p.Cols)
	}
	return p
}

// TestR500KFrames decodes every image of the four real V2 series: the
// payload's algorithm and element size pick the Encoding, the header's size
// matches the array, the pixels are the golden ones, and they are identical
// to the C library's decode (bslz4) or to the reference liblz4 applied
// block by block (lz4).
func TestR500KFrames(t *testing.T) {
	if err := cbitshuffle.Load(); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder()
	for _, series := range r500kSeries {
		for i := 1; i <= 10; i++ {
			p := loadR500K(t, series.name, i)
			enc, err := ParseV2Algorithm(p.Algorithm)
			if err != nil || enc != series.enc {
				t.Fatalf("%s %d: algorithm %q", series.name, i, p.Algorithm)
			}
			wantTag := map[int]uint64{1: 64, 2: 69, 4: 70}[series.elemSize]
			if p.ArrayTag != wantTag {
				t.Fatalf("%s %d: typed array tag %d", series.name, i, p.ArrayTag)
			}
			size := p.Rows * p.Cols * series.elemSize
			if n, ok := DecodedSize(p.Data, enc); !ok || n != size {
				t.Fatalf("%s %d: DecodedSize %d %v, want %d", series.name, i, n, ok, size)
			}
			dst := make([]byte, size)
			// V2 announces elem_size 0 for lz4; the element size only matters
			// to bitshuffle, and Decode accepts 0 for lz4.
			n, err := d.Decode(dst, p.Data, enc, p.ElemSize)
			if err != nil || n != len(p.Data) {
				t.Fatalf("%s %d: consumed %d of %d: %v", series.name, i, n, len(p.Data), err)
			}
			if got, want := statsOf(dst, series.elemSize), goldenR500K[series.name][i-1]; got != want {
				t.Fatalf("%s %d:\n got %v\nwant %v", series.name, i, got, want)
			}
			ref := make([]byte, size)
			if enc == BSLZ4 {
				if _, err := cbitshuffle.Decompress(ref, p.Data, series.elemSize); err != nil {
					t.Fatal(err)
				}
			} else {
				refDecodeHDF5LZ4(t, ref, p.Data)
			}
			if !bytes.Equal(ref, dst) {
				t.Fatalf("%s %d: differs from the reference decode", series.name, i)
			}
		}
	}
}

// refDecodeHDF5LZ4 decodes the HDF5 LZ4 framing with the reference liblz4
// for each block: an independent check of the LZ4 decoding in Decode.
func refDecodeHDF5LZ4(t *testing.T, dst, src []byte) {
	t.Helper()
	total := int(binary.BigEndian.Uint64(src))
	bs := int(binary.BigEndian.Uint32(src[8:]))
	if total != len(dst) {
		t.Fatalf("reference: header total %d, want %d", total, len(dst))
	}
	pos := headerSize
	for out := 0; out < total; {
		size := min(bs, total-out)
		l := int(binary.BigEndian.Uint32(src[pos:]))
		block := src[pos+4 : pos+4+l]
		if l == size {
			copy(dst[out:], block)
		} else if n, err := cbitshuffle.LZ4Decompress(dst[out:out+size], block); err != nil || n != size {
			t.Fatalf("reference LZ4 at %d: %d, %v", pos, n, err)
		}
		pos += 4 + l
		out += size
	}
	if pos != len(src) {
		t.Fatalf("reference: framing ends at %d of %d", pos, len(src))
	}
}

// TestEncoderReproducesDetectorBytes re-encodes the decoded real frames and
// gets the detector's bytes back exactly: the EIGER 4M's bs16-lz4 frames,
// and all forty EIGER2 500K payloads (bslz4 8/16/32-bit and HDF5-framed
// lz4). Both firmwares compress with the reference LZ4 at default settings,
// 8192-byte blocks; so does the Encoder.
func TestEncoderReproducesDetectorBytes(t *testing.T) {
	d, e := NewDecoder(), NewEncoder()
	for _, f := range eiger4mFrames {
		src := readFixture(t, "eiger-stream-v1", "eiger4m-bs16", f.data)
		px := make([]byte, 4485690*2)
		if _, err := d.Decode(px, src, BSLZ4, 2); err != nil {
			t.Fatal(err)
		}
		got, err := e.Encode(nil, px, BSLZ4, 2)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%s: re-encoded %d bytes (detector sent %d), identical %v, %v", f.data, len(got), len(src), bytes.Equal(got, src), err)
		}
	}
	for _, series := range r500kSeries {
		for i := 1; i <= 10; i++ {
			p := loadR500K(t, series.name, i)
			px := make([]byte, p.Rows*p.Cols*series.elemSize)
			if _, err := d.Decode(px, p.Data, series.enc, series.elemSize); err != nil {
				t.Fatal(err)
			}
			got, err := e.Encode(nil, px, series.enc, series.elemSize)
			if err != nil || !bytes.Equal(got, p.Data) {
				t.Fatalf("%s %d: re-encoded %d bytes (detector sent %d), identical %v, %v", series.name, i, len(got), len(p.Data), bytes.Equal(got, p.Data), err)
			}
		}
	}
}

// TestR500KEncodingsAreDifferentImages checks whether the four 500K series
// are the same detector images in four encodings, comparing image 1 pixel
// by pixel wherever the value fits both types. They are not: DECTRIS
// recorded each series separately (different test images, 32-bit with about
// eight times the counts), so three quarters or more of the pixels differ.
// The test pins the counts of differing pixels so the finding stays
// documented; pixel-level agreement is instead established by comparing
// each series with the C library (TestR500KFrames).
func TestR500KEncodingsAreDifferentImages(t *testing.T) {
	d := NewDecoder()
	img := map[string][]uint64{}
	for _, series := range r500kSeries {
		p := loadR500K(t, series.name, 1)
		px := make([]byte, p.Rows*p.Cols*series.elemSize)
		if _, err := d.Decode(px, p.Data, series.enc, series.elemSize); err != nil {
			t.Fatal(err)
		}
		v := make([]uint64, p.Rows*p.Cols)
		for k := range v {
			for b := series.elemSize - 1; b >= 0; b-- {
				v[k] = v[k]<<8 | uint64(px[k*series.elemSize+b])
			}
		}
		img[series.name] = v
	}
	differ := func(a, b string, fits uint64) int {
		n := 0
		for k, x := range img[a] {
			if y := img[b][k]; x < fits && y < fits && x != y {
				n++
			}
		}
		return n
	}
	got := [3]int{
		differ("bslz4_8bit", "bslz4_16bit", 0xFF),
		differ("bslz4_16bit", "bslz4_32bit", 0xFFFF),
		differ("bslz4_16bit", "lz4_16bit", 0xFFFF),
	}
	if want := [3]int{389785, 511824, 389989}; got != want {
		t.Fatalf("differing pixels (8/16, 16/32, bslz4/lz4 16-bit) = %v, want %v", got, want)
	}
}
