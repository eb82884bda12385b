package codec

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// v2Payload is the compressed pixel payload of the first channel of a Stream
// V2 image message, as the CBOR carries it.
type v2Payload struct {
	Channel    string
	Rows, Cols int
	ArrayTag   uint64 // RFC 8746 typed-array tag: 64 uint8, 69 uint16 LE, 70 uint32 LE
	Algorithm  string // "bslz4" or "lz4"
	ElemSize   int    // as the compression tag announces it (0 for lz4)
	Data       []byte
}

// parseV2Image pulls the compressed payload of the first channel out of a
// V2 image message: map -> "data" -> first channel -> tag 40 ->
// [dims, typed-array tag] -> tag 56500 [algorithm, elem_size, bytes].
// It is a test helper only; the receiver has its own parser.
func parseV2Image(msg []byte) (v2Payload, error) {
	var p v2Payload
	var top map[string]cbor.RawMessage
	if err := cbor.Unmarshal(msg, &top); err != nil {
		return p, fmt.Errorf("top-level map: %w", err)
	}
	var typ string
	if err := cbor.Unmarshal(top["type"], &typ); err != nil || typ != "image" {
		return p, fmt.Errorf("type %q is not image (%v)", typ, err)
	}
	data := []byte(top["data"])
	// Walk the channel map by hand: the first channel is the first key in
	// the encoded order, which a Go map would lose. The fixtures' maps have
	// fewer than 24 entries, so their head is the one byte 0xa0+n.
	if len(data) == 0 || data[0]>>5 != 5 {
		return p, fmt.Errorf("data is not a map")
	}
	if n := int(data[0] & 0x1f); n == 0 || n > 23 {
		return p, fmt.Errorf("data map head %#x (only small non-empty maps handled)", data[0])
	}
	rest := data[1:]
	var key string
	rest, err := cbor.UnmarshalFirst(rest, &key)
	if err != nil {
		return p, fmt.Errorf("channel name: %w", err)
	}
	p.Channel = key
	var arr cbor.RawTag
	if _, err := cbor.UnmarshalFirst(rest, &arr); err != nil {
		return p, fmt.Errorf("channel %s: %w", key, err)
	}
	if arr.Number != 40 {
		return p, fmt.Errorf("channel %s: tag %d, want 40 (row-major multi-dim array)", key, arr.Number)
	}
	var parts []cbor.RawMessage
	if err := cbor.Unmarshal(arr.Content, &parts); err != nil || len(parts) != 2 {
		return p, fmt.Errorf("channel %s: multi-dim array content: %v", key, err)
	}
	var dims []int
	if err := cbor.Unmarshal(parts[0], &dims); err != nil || len(dims) != 2 {
		return p, fmt.Errorf("channel %s: dims: %v", key, err)
	}
	p.Rows, p.Cols = dims[0], dims[1]
	var typed cbor.RawTag
	if err := cbor.Unmarshal(parts[1], &typed); err != nil {
		return p, fmt.Errorf("channel %s: typed array: %w", key, err)
	}
	p.ArrayTag = typed.Number
	var comp cbor.RawTag
	if err := cbor.Unmarshal(typed.Content, &comp); err != nil || comp.Number != 56500 {
		return p, fmt.Errorf("channel %s: compression tag %d: %v", key, comp.Number, err)
	}
	var c struct {
		_         struct{} `cbor:",toarray"`
		Algorithm string
		ElemSize  int
		Data      []byte
	}
	if err := cbor.Unmarshal(comp.Content, &c); err != nil {
		return p, fmt.Errorf("channel %s: compression: %w", key, err)
	}
	p.Algorithm, p.ElemSize, p.Data = c.Algorithm, c.ElemSize, c.Data
	return p, nil
}
