package codec_test

import (
	"encoding/binary"
	"fmt"

	"tioga/driver/codec"
)

// A V1 receiver maps the dimage_d "encoding" and "type" to an Encoding and
// decodes each frame into a pooled buffer with its worker's Decoder.
func Example() {
	// What a simulator would send: a 4 x 3 frame of 16-bit pixels with one
	// masked pixel, as "bs16-lz4<".
	pixels := []uint16{0, 1, 2, 3, 4, 5, 0xFFFF, 7, 8, 9, 10, 11}
	frame := make([]byte, 2*len(pixels))
	for i, v := range pixels {
		binary.LittleEndian.PutUint16(frame[2*i:], v)
	}
	wire, err := codec.NewEncoder().Encode(nil, frame, codec.BSLZ4, 2)
	if err != nil {
		panic(err)
	}

	// The receiver's side.
	enc, elemSize, err := codec.ParseV1Encoding("bs16-lz4<")
	if err != nil {
		panic(err)
	}
	dst := make([]byte, 4*3*elemSize) // shape [4, 3], type uint16
	d := codec.NewDecoder()
	n, err := d.Decode(dst, wire, enc, elemSize)
	if err != nil {
		panic(err)
	}
	fmt.Println(enc, n == len(wire), binary.LittleEndian.Uint16(dst[2*6:]), binary.LittleEndian.Uint16(dst[2*11:]))
	// Output: bslz4 true 65535 11
}
