package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var le = binary.LittleEndian

// Errors of the decoders. Every decoding error wraps ErrMalformed, except a
// well-formed header of another protocol level, which wraps ErrProtocol.
var (
	ErrMalformed = errors.New("malformed TINE datagram")
	ErrProtocol  = errors.New("unsupported TINE protocol level")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// RequestHeader is the 22-byte header of a request datagram (§3.1).
type RequestHeader struct {
	// TotalSize is the size of the TINE message: 22 + the msgSize of every
	// link. tine.jar pads attach and cancel datagrams with zeros to 1472
	// bytes, so the datagram length is no guide.
	TotalSize uint16
	// User is the client's user name, upper-cased by tine.jar.
	User     string
	Protocol uint16
	// Revision is the client library revision (tine.jar 4.5.6: 0x0506).
	Revision uint16
}

// Subscription is the 24-byte per-link subscription header (§3.2).
type Subscription struct {
	MsgSize uint16 // 204 + ExtSize + input bytes of this block
	ExtSize uint16 // bytes of contract extension
	// MTU is the client's input block size (1246 rounded down to the input
	// element size).
	MTU       uint16
	NumBlocks uint16 // number of input blocks
	BlockNum  uint16 // 1-based input block carried here
	LinkID    uint16 // echoed as the reply's SubID
	Mode      Mode
	// BlockID is the request sequence number: it increments (modulo 1000)
	// each time the client sends the link again (renewal or acknowledgement).
	BlockID uint16
	// PollingInterval in milliseconds: the interval of POLL and DATACHANGE
	// links, the client's timeout of SINGLE requests, 30000 for tine.jar's
	// EVENT links.
	PollingInterval int32
	// StartTime (unix seconds) is when the client created the link; with
	// LinkID it identifies the link, and every reply echoes it.
	StartTime uint32
}

// Contract is the 180-byte per-link contract (§3.3). It is comparable: a
// renewal carries a contract equal to the original one.
type Contract struct {
	Property string
	Device   string
	// EqmName is the server's equipment module (local name), taken by the
	// client from its address database.
	EqmName  string
	SizeIn   int32 // input elements (bytes for TEXT and STRUCT)
	SizeOut  int32 // requested output elements (bytes for TEXT and STRUCT)
	HEqmName uint8
	Access   Access
	FormatIn Format // Null: no input
	// FormatOut is the format the client wants the data in; Null for a
	// pure write.
	FormatOut Format
	TagIn     string // structure tag of the input
	TagOut    string // structure tag of the output ("PRPQSr4", "WDOG")
}

// Link is one subscription of a request datagram: header, contract, and the
// extension and input bytes of this block (slices of the datagram).
type Link struct {
	Subscription
	Contract
	Ext   []byte
	Input []byte
}

// Request is a decoded request datagram.
type Request struct {
	Header RequestHeader
	Links  []Link
}

// Parse decodes a request datagram into r, reusing r.Links. The Ext and
// Input slices of the links alias b. Sizes are taken from the headers
// (TotalSize, MsgSize, ExtSize) and checked against the bytes present;
// padding after TotalSize is ignored.
func (r *Request) Parse(b []byte) error {
	r.Links = r.Links[:0]
	if len(b) < RequestHeaderSize {
		return malformed("%d bytes, shorter than the request header", len(b))
	}
	h := RequestHeader{
		TotalSize: le.Uint16(b[0:]),
		User:      getName(b[2 : 2+UserSize]),
		Protocol:  le.Uint16(b[18:]),
		Revision:  le.Uint16(b[20:]),
	}
	r.Header = h
	total := int(h.TotalSize)
	if total < RequestHeaderSize+LinkHeaderSize || total > len(b) {
		return malformed("totalSize %d with %d bytes received", total, len(b))
	}
	if h.Protocol != Protocol {
		return fmt.Errorf("%w: level %d", ErrProtocol, h.Protocol)
	}
	for off := RequestHeaderSize; off < total; {
		if total-off < LinkHeaderSize {
			return malformed("%d stray bytes after link %d", total-off, len(r.Links))
		}
		var l Link
		l.Subscription.decode(b[off:])
		n := int(l.MsgSize)
		ext := int(l.ExtSize)
		if n < LinkHeaderSize+ext || off+n > total {
			return malformed("link %d: msgSize %d, extSize %d, %d bytes left", len(r.Links), n, ext, total-off)
		}
		c := b[off+SubscriptionSize : off+LinkHeaderSize]
		l.Contract.decode(c)
		l.Ext = b[off+LinkHeaderSize : off+LinkHeaderSize+ext]
		l.Input = b[off+LinkHeaderSize+ext : off+n]
		if ext > 0 && len(l.Device) == DeviceSize && l.Device[DeviceSize-1] == '&' {
			// A device name longer than 64 characters: 63 characters and
			// '&' in the contract, the rest in the extension (unverified).
			l.Device = l.Device[:63] + getName(l.Ext)
		}
		r.Links = append(r.Links, l)
		off += n
	}
	return nil
}

func (s *Subscription) decode(b []byte) {
	s.MsgSize = le.Uint16(b[0:])
	s.ExtSize = le.Uint16(b[2:])
	s.MTU = le.Uint16(b[4:])
	s.NumBlocks = le.Uint16(b[6:])
	s.BlockNum = le.Uint16(b[8:])
	s.LinkID = le.Uint16(b[10:])
	s.Mode = Mode(le.Uint16(b[12:]))
	s.BlockID = le.Uint16(b[14:])
	s.PollingInterval = int32(le.Uint32(b[16:]))
	s.StartTime = le.Uint32(b[20:])
}

func (c *Contract) decode(b []byte) {
	c.Property = getName(b[0:64])
	c.Device = getName(b[64:128])
	c.EqmName = getName(b[128:136])
	c.SizeIn = int32(le.Uint32(b[136:]))
	c.SizeOut = int32(le.Uint32(b[140:]))
	c.HEqmName = b[144]
	c.Access = Access(b[145])
	c.FormatIn = Format(b[146])
	c.FormatOut = Format(b[147])
	c.TagIn = getName(b[148:164])
	c.TagOut = getName(b[164:180])
}

// AppendRequestHeader appends a request header. TotalSize is written as
// given; AppendRequest computes it.
func AppendRequestHeader(dst []byte, h RequestHeader) []byte {
	dst = le.AppendUint16(dst, h.TotalSize)
	dst = appendName(dst, h.User, UserSize)
	dst = le.AppendUint16(dst, h.Protocol)
	return le.AppendUint16(dst, h.Revision)
}

// AppendLink appends one link: subscription header, contract, extension and
// input. MsgSize and ExtSize are computed from the contents; a device name
// longer than 64 characters is split into the extension (unverified).
func AppendLink(dst []byte, l *Link) []byte {
	dev, ext := l.Device, l.Ext
	if len(dev) > DeviceSize && len(ext) == 0 {
		rest := dev[63:]
		dev = dev[:63] + "&"
		ext = make([]byte, len(rest)+len(rest)%2)
		copy(ext, rest)
	}
	s := l.Subscription
	s.ExtSize = uint16(len(ext))
	s.MsgSize = uint16(LinkHeaderSize + len(ext) + len(l.Input))
	dst = le.AppendUint16(dst, s.MsgSize)
	dst = le.AppendUint16(dst, s.ExtSize)
	dst = le.AppendUint16(dst, s.MTU)
	dst = le.AppendUint16(dst, s.NumBlocks)
	dst = le.AppendUint16(dst, s.BlockNum)
	dst = le.AppendUint16(dst, s.LinkID)
	dst = le.AppendUint16(dst, uint16(s.Mode))
	dst = le.AppendUint16(dst, s.BlockID)
	dst = le.AppendUint32(dst, uint32(s.PollingInterval))
	dst = le.AppendUint32(dst, s.StartTime)
	c := &l.Contract
	dst = appendName(dst, c.Property, PropertySize)
	dst = appendName(dst, dev, DeviceSize)
	dst = appendName(dst, c.EqmName, EqmSize)
	dst = le.AppendUint32(dst, uint32(c.SizeIn))
	dst = le.AppendUint32(dst, uint32(c.SizeOut))
	dst = append(dst, c.HEqmName, byte(c.Access), byte(c.FormatIn), byte(c.FormatOut))
	dst = appendName(dst, c.TagIn, TagSize)
	dst = appendName(dst, c.TagOut, TagSize)
	dst = append(dst, ext...)
	return append(dst, l.Input...)
}

// AppendRequest appends a complete request datagram carrying links, with
// TotalSize computed. It returns an error when the message would not fit
// the 16-bit size fields.
func AppendRequest(dst []byte, user string, links []Link) ([]byte, error) {
	start := len(dst)
	dst = AppendRequestHeader(dst, RequestHeader{User: user, Protocol: Protocol, Revision: Revision})
	for i := range links {
		n := len(dst)
		dst = AppendLink(dst, &links[i])
		if len(dst)-n > 0xFFFF {
			return dst[:start], fmt.Errorf("link %d: %d bytes do not fit one message", i, len(dst)-n)
		}
	}
	total := len(dst) - start
	if total > 0xFFFF {
		return dst[:start], fmt.Errorf("request of %d bytes does not fit one message", total)
	}
	le.PutUint16(dst[start:], uint16(total))
	return dst, nil
}
