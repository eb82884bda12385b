package stream

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"tioga/driver/codec"
	"tioga/sim/fixtures"
)

// fuzzing reports whether the test binary was started with -test.fuzz.
func fuzzing() bool {
	fl := flag.Lookup("test.fuzz")
	return fl != nil && fl.Value.String() != ""
}

// partSep splits a fuzz input into the parts of one V1 message.
var partSep = []byte("\x00PART\x00")

func joinParts(parts [][]byte) []byte { return bytes.Join(parts, partSep) }

// FuzzParseV1 feeds ParseV1 arbitrary multipart messages. It must never
// panic; what it accepts must build back into a message that parses to the
// same thing.
func FuzzParseV1(f *testing.F) {
	// The real capture, except the 1.2 MB pixel parts (replaced by a small
	// raw frame so the fuzzer works on small inputs) and the absent
	// flatfield and mask blobs.
	small := []byte(`{"encoding":"<","htype":"dimage_d-1.0","shape":[4,2],"size":16,"type":"uint16"}`)
	f.Add(joinParts([][]byte{v1Part(f, 1), v1Part(f, 2), v1Part(f, 7), v1Part(f, 8), v1Part(f, 9)}))
	f.Add(joinParts([][]byte{v1Part(f, 1), v1Part(f, 2), v1Part(f, 3), make([]byte, 16), v1Part(f, 9)}))
	for _, first := range []int{10, 14, 18} {
		f.Add(joinParts([][]byte{v1Part(f, first), v1Part(f, first+1), v1Part(f, first+2)[:64], v1Part(f, first+3)}))
		f.Add(joinParts([][]byte{v1Part(f, first), small, make([]byte, 16), v1Part(f, first+3), []byte("appendix")}))
	}
	f.Add(joinParts([][]byte{v1Part(f, 22)}))
	// Built messages of every encoding.
	var b V1Builder
	for _, enc := range []codec.Encoding{codec.Raw, codec.LZ4Block, codec.BSLZ4, codec.BSLZ4NoHeader} {
		_, data := encodeFrame(f, 8, 3, 2, enc, 1)
		parts, err := b.Image(&Image{SeriesID: 1, Number: 2, Pixels: Pixels{Width: 8, Height: 3, ElemSize: 2, Encoding: enc, Data: data}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(joinParts(parts))
	}
	hdr, err := b.Header(testSeries(1, "all"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(joinParts(hdr))

	f.Fuzz(func(t *testing.T, data []byte) {
		parts := bytes.Split(data, partSep)
		m, err := ParseV1(parts)
		checkPooledParse(t, m, err, func(p *Parser) (Message, error) { return p.ParseV1(parts) })
		if err != nil {
			if m.Kind() != KindInvalid {
				t.Fatalf("error %v with a message %v", err, m.Kind())
			}
			return
		}
		var b V1Builder
		switch m.Kind() {
		case KindImage:
			img := m.Image
			if img.DecodedSize() <= 0 || !bytes.Equal(img.Data, parts[2]) {
				t.Fatalf("accepted image %dx%dx%d with %d data bytes", img.Width, img.Height, img.ElemSize, len(img.Data))
			}
			rebuilt, err := b.Image(img)
			if err != nil {
				t.Fatalf("accepted image does not build: %v", err)
			}
			again, err := ParseV1(rebuilt)
			if err != nil {
				t.Fatalf("rebuilt image does not parse: %v", err)
			}
			img.Hash, img.HasHash = again.Image.Hash, again.Image.HasHash
			if !reflect.DeepEqual(again.Image, img) {
				t.Fatalf("round trip differs:\n%+v\n%+v", again.Image, img)
			}
		case KindEnd:
			again, err := ParseV1(b.End(m.End))
			if err != nil || *again.End != *m.End {
				t.Fatalf("end round trip: %v %+v %+v", err, again.End, m.End)
			}
		case KindSeries:
			if _, err := b.Header(m.Series); err != nil && m.Series.Config != nil {
				// A header whose config holds values JSON cannot spell
				// again is impossible: they came from JSON.
				t.Fatalf("accepted header does not build: %v", err)
			}
		default:
			t.Fatal("no error and no message")
		}
	})
}

// FuzzParseV2 feeds ParseV2 arbitrary bytes, seeded with every real CBOR
// message of the fixtures. It must never panic; accepted images and ends
// must build back into messages that parse to the same thing.
func FuzzParseV2(f *testing.F) {
	root := fixtures.Path(f, "eiger-stream-v2")
	files, err := filepath.Glob(filepath.Join(root, "*", "*.cbor"))
	if err != nil || len(files) < 40 {
		f.Fatalf("CBOR fixtures: %d files, %v", len(files), err)
	}
	// Every real message seeds the corpus, and so does a small twin of each
	// image: the same message rebuilt around a 4 x 2 frame of the same
	// encoding, with its tags, times and user_data. Megabyte inputs make
	// the instrumented fuzzer crawl, so while fuzzing (-fuzz) only the twins
	// and the small real messages are used; a plain go test runs the
	// property checks below on every full-size fixture.
	b0 := V2Builder{SelfDescribe: true}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 1<<10 || !fuzzing() {
			f.Add(b)
		}
		m, err := ParseV2(b)
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		if img := m.Image; img != nil {
			small := *img
			_, small.Data = encodeFrame(f, 4, 2, img.ElemSize, img.Encoding, 3)
			small.Width, small.Height = 4, 2
			twin, err := b0.AppendImage(nil, &small)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(twin)
		}
	}
	// Small built messages: several channels, every encoding, tables.
	b := V2Builder{SelfDescribe: true, TableEncoding: codec.BSLZ4}
	for _, enc := range []codec.Encoding{codec.Raw, codec.BSLZ4, codec.HDF5LZ4} {
		_, d1 := encodeFrame(f, 5, 3, 4, enc, 1)
		_, d2 := encodeFrame(f, 5, 3, 4, enc, 2)
		msg, err := b.AppendImage(nil, &Image{Version: 2, SeriesID: 1, UniqueID: "u", Number: 4,
			Pixels:   Pixels{Channel: "threshold_1", Width: 5, Height: 3, ElemSize: 4, Encoding: enc, Data: d1},
			Other:    []Pixels{{Channel: "threshold_2", Width: 5, Height: 3, ElemSize: 4, Encoding: enc, Data: d2}},
			Appendix: []byte{0x61, 0x78}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	start, err := b.AppendStart(nil, testSeries(2, "all"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(start)

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseV2(data)
		checkPooledParse(t, m, err, func(p *Parser) (Message, error) { return p.ParseV2(data) })
		if err != nil {
			if m.Kind() != KindInvalid {
				t.Fatalf("error %v with a message %v", err, m.Kind())
			}
			return
		}
		var b V2Builder
		switch m.Kind() {
		case KindImage:
			img := m.Image
			if img.DecodedSize() <= 0 || !within(img.Data, data) {
				t.Fatalf("accepted image %dx%dx%d, data inside the message: %v", img.Width, img.Height, img.ElemSize, within(img.Data, data))
			}
			rebuilt, err := b.AppendImage(nil, img)
			if err != nil {
				t.Fatalf("accepted image does not build: %v", err)
			}
			again, err := ParseV2(rebuilt)
			if err != nil {
				t.Fatalf("rebuilt image does not parse: %v", err)
			}
			if !again.Image.SeriesDate.Equal(img.SeriesDate) {
				t.Fatalf("series date %v, rebuilt %v", img.SeriesDate, again.Image.SeriesDate)
			}
			again.Image.SeriesDate = img.SeriesDate
			if !reflect.DeepEqual(again.Image, img) {
				t.Fatalf("round trip differs:\n%+v\n%+v", again.Image, img)
			}
		case KindEnd:
			again, err := ParseV2(b.AppendEnd(nil, m.End))
			if err != nil || *again.End != *m.End {
				t.Fatalf("end round trip: %v %+v %+v", err, again.End, m.End)
			}
		case KindSeries:
			_, _ = b.AppendStart(nil, m.Series) // must not panic
		default:
			t.Fatal("no error and no message")
		}
	})
}
