package stream

import (
	"bytes"
	"testing"

	"tioga/driver/codec"
)

// Every rejected message gets an error that says what is wrong, where.

func TestV1Errors(t *testing.T) {
	img := v1ImageParts(t, 0)
	hdr := v1HeaderParts(t)
	replace := func(parts [][]byte, i int, p []byte) [][]byte {
		c := append([][]byte(nil), parts...)
		c[i] = p
		return c
	}
	cases := []struct {
		name  string
		parts [][]byte
		want  string
	}{
		{"no parts", nil, "V1: empty message (no parts)"},
		{"not JSON", [][]byte{[]byte("\x89PNG")}, `V1 part 1: not a JSON object with an htype: invalid character '\u0089' looking for beginning of value (starts "\x89PNG")`},
		{"no series", [][]byte{[]byte(`{"htype":"dseries_end-1.0"}`)}, `V1 part 1 (htype "dseries_end-1.0"): no series id`},
		{"string series", [][]byte{[]byte(`{"htype":"dimage-1.0","series":"<series id>"}`)}, "V1 part 1: not a JSON object with an htype: json: cannot unmarshal string into Go struct field v1First.series of type uint64 (starts \"{\\\"htype\\\":\\\"dimage-1.0\\\",\\\"series\\\":\\\"<series \"...)"},
		{"unknown htype", [][]byte{[]byte(`{"htype":"dstatus-1.0","series":1}`)}, `V1 part 1: unknown htype "dstatus-1.0" (want dheader-1.0, dimage-1.0 or dseries_end-1.0)`},
		{"end with parts", [][]byte{img[0][:0], img[0]}, "V1 part 1: not a JSON object with an htype: unexpected end of JSON input (starts \"\")"},
		{"long end", [][]byte{v1Part(t, 22), []byte("x")}, "V1 end of series 6: 2 parts, want 1"},
		{"short image", img[:3], "V1 image 0 of series 6: 3 parts, want 4 (dimage, dimage_d, data, dconfig) or 5 (with appendix)"},
		{"size", replace(img, 2, img[2][:1170440]), "V1 image 0 part 2: size 1170446 but data part has 1170440 bytes"},
		{"encoding vs type", replace(img, 1, bytes.Replace(img[1], []byte("bs16"), []byte("bs32"), 1)), `V1 image 0 part 2: encoding "bs32-lz4<" does not match 2-byte pixels`},
		{"bitshuffle without lz4", replace(img, 1, bytes.Replace(img[1], []byte("bs16-lz4<"), []byte("bs16-<"), 1)), `V1 image 0 part 2: codec: unsupported: V1 encoding "bs16-<" (want <, lz4<, bs8-lz4<, bs16-lz4< or bs32-lz4<)`},
		{"big endian", replace(img, 1, bytes.Replace(img[1], []byte("bs16-lz4<"), []byte("bs16-lz4>"), 1)), `V1 image 0 part 2: codec: unsupported: big-endian V1 encoding "bs16-lz4>"`},
		{"shape text", replace(img, 1, []byte(`{"htype":"dimage_d-1.0","shape":"[x,y,(z)]","type":"uint16","encoding":"<","size":8}`)), "V1 image 0 part 2: json: cannot unmarshal string into Go struct field v1Shaped.shape of type []uint64 (starts \"{\\\"htype\\\":\\\"dimage_d-1.0\\\",\\\"shape\\\":\\\"[x,y,(z\"...)"},
		{"shape 3-D", replace(img, 1, bytes.Replace(img[1], []byte("[2070,2167]"), []byte("[2070,2167,1]"), 1)), "V1 image 0 part 2: shape has 3 dimensions, want [x, y]"},
		{"shape zero", replace(img, 1, bytes.Replace(img[1], []byte("[2070,2167]"), []byte("[0,2167]"), 1)), "V1 image 0 part 2: shape [0, 2167] out of range (each 1..65536, at most 134217728 elements)"},
		{"type", replace(img, 1, bytes.Replace(img[1], []byte("uint16"), []byte("int16"), 1)), `V1 image 0 part 2: type "int16" (want uint8, uint16 or uint32)`},
		{"dconfig htype", replace(img, 3, []byte(`{"htype":"dconfig-2.0"}`)), `V1 image 0 part 4: htype "dconfig-2.0", want dconfig-1.0`},
		{"detail", replace(hdr, 0, []byte(`{"htype":"dheader-1.0","series":6,"header_detail":"most"}`)), `V1 header of series 6: header_detail "most" (want all, basic or none)`},
		{"no config", hdr[:1], `V1 header of series 6: header_detail "all" but no config part`},
		{"config type", replace(hdr, 1, []byte(`{"wavelength":"1.54"}`)), `V1 header config: wavelength is the text "1.54", want a finite number`},
		{"config width", replace(hdr, 1, []byte(`{"x_pixels_in_detector":-1}`)), "V1 header config: x_pixels_in_detector is -1 (float64), want a non-negative integer"},
		{"flatfield size", replace(hdr, 3, make([]byte, 16)), "V1 header part 4: dflatfield-1.0 data has 16 bytes but shape [2070, 2167] of float32 needs 17942760"},
		{"table without data", hdr[:3], "V1 header part 3: dflatfield-1.0 header without its data part"},
		{"appendix not last", append(append([][]byte(nil), hdr...), []byte("more")), "V1 header part 9: not a table header, so it must be the appendix, but 1 more parts follow"},
		{"mask as float", replace(hdr, 4, bytes.Replace(hdr[4], []byte("uint32"), []byte("float32"), 1)), "V1 header part 5: pixel mask of type float32, want an unsigned integer type"},
	}
	for _, c := range cases {
		m, err := ParseV1(c.parts)
		if err == nil {
			t.Errorf("%s: accepted (%v)", c.name, m.Kind())
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, err, c.want)
		}
		if m.Kind() != KindInvalid {
			t.Errorf("%s: error with a message", c.name)
		}
	}
}

func TestV2Errors(t *testing.T) {
	var b V2Builder
	_, data := encodeFrame(t, 6, 4, 2, codec.BSLZ4, 1)
	good := &Image{SeriesID: 3, Number: 5, Pixels: Pixels{Channel: "threshold_1", Width: 6, Height: 4, ElemSize: 2, Encoding: codec.BSLZ4, Data: data}}
	msg, err := b.AppendImage(nil, good)
	if err != nil {
		t.Fatal(err)
	}
	// Edit the good message in place: the tags and sizes sit at known byte
	// sequences.
	edit := func(old, new []byte) []byte {
		i := bytes.Index(msg, old)
		if i < 0 {
			t.Fatalf("%x not in message", old)
		}
		c := bytes.Clone(msg)
		copy(c[i:], new)
		return c
	}
	cases := []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty", nil, "V2: empty message"},
		{"not CBOR", []byte("hello"), "V2: the message is a CBOR text string, want a map with a type key"},
		{"not a map", []byte{0x82, 0x01, 0x02}, "V2: the message is a CBOR array of 2, want a map with a type key"},
		{"reserved", []byte{0x1c}, "V2: not a CBOR item: reserved CBOR additional information 28"},
		{"truncated", msg[:len(msg)-10], "V2: not a CBOR map of a stream message: unexpected EOF"},
		{"column-major", nil, ""}, // built below
		{"typed array tag", edit([]byte{0xd8, 0x45}, []byte{0xd8, 0x41}), "V2 image 5 channel threshold_1: unsupported typed array tag 65 (want 64 uint8, 69 uint16, 70 uint32 or 85 float32, little-endian)"},
		{"float pixels", edit([]byte{0xd8, 0x45}, []byte{0xd8, 0x55}), "V2 image 5 channel threshold_1: pixels are float32, want a uint8, uint16 or uint32 typed array"},
		{"algorithm", edit([]byte("bslz4"), []byte("zstd5")), `V2 image 5 channel threshold_1: codec: unsupported: V2 compression algorithm "zstd5" (want bslz4 or lz4)`},
		{"element size", edit([]byte{0x65, 'b', 's', 'l', 'z', '4', 0x02}, []byte{0x65, 'b', 's', 'l', 'z', '4', 0x04}), "V2 image 5 channel threshold_1: bslz4 element size 4 but the array holds 2-byte elements"},
		{"dimensions", edit([]byte{0x82, 0x04, 0x06}, []byte{0x82, 0x04, 0x07}), "V2 image 5 channel threshold_1: bslz4 data decodes to 48 bytes but dimensions [4, 7] of 2-byte elements need 56"},
		{"type", edit([]byte("image"), []byte("imago")), `V2: unknown message type "imago" (want start, image or end)`},
		{"no series", edit([]byte("series_id"), []byte("series_ix")), "V2 image message: no series_id"},
		{"no image id", edit([]byte("image_id"), []byte("image_ix")), "V2 image of series 3: no image_id"},
	}
	// Column-major: swap tag 40 (d8 28) for tag 1040 (d9 04 10) by
	// rebuilding the bytes around it.
	i := bytes.Index(msg, []byte{0xd8, 0x28})
	cm := append(append(append([]byte(nil), msg[:i]...), 0xd9, 0x04, 0x10), msg[i+2:]...)
	for i := range cases {
		if cases[i].name == "column-major" {
			cases[i].msg = cm
			cases[i].want = "V2 image 5 channel threshold_1: column-major MultiDimArray (tag 1040) is not supported; the stream sends row-major (tag 40)"
		}
	}

	for _, c := range cases {
		m, err := ParseV2(c.msg)
		if err == nil {
			t.Errorf("%s: accepted (%v)", c.name, m.Kind())
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, err, c.want)
		}
	}

	// Start messages: a typed key of the wrong type.
	start, err := b.AppendStart(nil, &Series{ID: 1, Channels: []string{"threshold_1"}, Wavelength: 1})
	if err != nil {
		t.Fatal(err)
	}
	i = bytes.Index(start, []byte("incident_wavelength"))
	bad := append(append(append([]byte(nil), start[:i+len("incident_wavelength")]...), 0x61, 'x'), start[i+len("incident_wavelength")+9:]...)
	if _, err := ParseV2(bad); err == nil || err.Error() != `V2 start of series 1: incident_wavelength is the text "x", want a finite number` {
		t.Errorf("start with a text wavelength: %v", err)
	}
}

// The V1 headerless bitshuffle variant some simulators send is recognised
// by its first 8 bytes.
func TestV1HeaderlessBitshuffle(t *testing.T) {
	raw, data := encodeFrame(t, 20, 10, 2, codec.BSLZ4NoHeader, 5)
	var b V1Builder
	parts, err := b.Image(&Image{SeriesID: 1, Pixels: Pixels{Width: 20, Height: 10, ElemSize: 2, Encoding: codec.BSLZ4NoHeader, Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(parts[1], []byte(`"encoding":"bs16-lz4<"`)) {
		t.Errorf("dimage_d %s", parts[1])
	}
	img := mustParseV1(t, parts).Image
	if img.Encoding != codec.BSLZ4NoHeader || !bytes.Equal(decodePixels(t, &img.Pixels), raw) {
		t.Errorf("headerless frame read as %v", img.Encoding)
	}
}
