package stream

import "tioga/driver/codec"

// Parser parses the messages of one stream. The zero Parser is ready to use.
//
// It keeps a little state between messages to make the per-frame path cheap
// (interned channel names and series ids, a pixel decoder for compressed
// header tables), so it is not safe for concurrent use: use one per
// goroutine. The package-level ParseV1 and ParseV2 use a fresh one per call.
type Parser struct {
	// Channel selects the V2 channel placed in Image.Pixels. "" selects the
	// first channel present in the message (the detector serialises channels
	// in the order of the start message's "channels"). A message without the
	// selected channel is an error.
	Channel string

	dec *codec.Decoder
	// target, when set, is the Image the next image message is parsed
	// into instead of a new one (the receiver's pooled Image).
	target *Image
	intern [8]string
	next   int

	// Decoding targets, kept here so that they are not allocated per
	// message.
	// lastHash is the V1 frame hash last read, reused while it repeats.
	lastHash [1]string

	env    v2Envelope
	first  v1First
	shaped v1Shaped
	times  v1Times
}

// internBytes returns b as a string, reusing an earlier identical string.
// Stream messages repeat the same few strings (channel names, the series
// unique id) in every frame; interning saves an allocation per frame.
func (p *Parser) internBytes(b []byte) string {
	for _, s := range p.intern {
		if s == string(b) { // compiles to a comparison, no allocation
			return s
		}
	}
	s := string(b)
	p.intern[p.next] = s
	p.next = (p.next + 1) % len(p.intern)
	return s
}

func (p *Parser) decoder() *codec.Decoder {
	if p.dec == nil {
		p.dec = codec.NewDecoder()
	}
	return p.dec
}

// newImage returns the Image to parse an image message into: the target,
// cleared but keeping its storage, else a new one.
func (p *Parser) newImage() *Image {
	img := p.target
	if img == nil {
		return new(Image)
	}
	*img = Image{buf: img.buf}
	return img
}
