package tine

import (
	"encoding/binary"
	"time"

	"tioga/adapters/tine/wire"
)

// replyWriter builds reply datagrams for one client endpoint. Single-block
// replies of several links share a datagram while they fit (tine.jar packs
// them too [verified: datachange-frame-count.rep002.bin]); a multi-block
// transfer goes out one block per datagram, back to back, every block
// repeating the full header (§6).
type replyWriter struct {
	buf  []byte
	send func([]byte) error
}

func newReplyWriter(send func([]byte) error) replyWriter {
	b := make([]byte, 2, wire.MaxDatagram)
	return replyWriter{buf: b, send: send}
}

// maxBlocks is the most blocks a transfer can have (16-bit numblks).
const maxBlocks = 0xFFFF

// blocks is the number of blocks the payload needs.
func blocks(p *payload) int {
	mtu := p.format.BlockMTU()
	return max(1, (p.size+mtu-1)/mtu)
}

// data appends a successful reply of one link: header fields from h (the
// caller fills SubID, Counter, XferReason, StartTime, Format and the
// timestamp), the data from p.
func (w *replyWriter) data(h wire.ReplyHeader, p *payload) {
	mtu := p.format.BlockMTU()
	nb := blocks(p)
	if code := qualityCode(p.quality); code != wire.OK {
		w.qualified(h, p, code, nb)
		return
	}
	h.NumBlocks, h.MTU = uint16(nb), uint16(mtu)
	h.Protocol, h.StsSize, h.StsCode = wire.Protocol, 0, wire.NotSignalled
	if nb == 1 {
		size := wire.ReplyHeaderSize + p.size
		if len(w.buf)+size > wire.MaxDatagram {
			w.flush()
		}
		h.BlockNum, h.MsgSize = 1, uint16(size)
		w.buf = wire.AppendReplyHeader(w.buf, &h)
		w.buf = p.appendRange(w.buf, 0, p.size)
		return
	}
	w.flush()
	for k := 0; k < nb; k++ {
		from := k * mtu
		to := min(from+mtu, p.size)
		h.BlockNum, h.MsgSize = uint16(k+1), uint16(wire.ReplyHeaderSize+to-from)
		w.buf = wire.AppendReplyHeader(w.buf, &h)
		w.buf = p.appendRange(w.buf, from, to)
		w.flush()
	}
}

// qualified appends the reply of a value whose quality is not good: its
// completion code with the data flag (CodeFlagPartial), the 192-byte
// status "<code text>: <reason>" and the data after it, in one block. A
// value that needs more than one block is answered with the code and the
// reason alone, as an error reply: a status in every block would not be
// reassembled by clients.
func (w *replyWriter) qualified(h wire.ReplyHeader, p *payload, code wire.CompCode, nb int) {
	text := code.String()
	if p.quality.Reason != "" {
		text += ": " + p.quality.Reason
	}
	if nb > 1 || wire.ReplyHeaderSize+wire.StatusSize+p.size > wire.MaxDatagram-2 {
		w.failure(h.SubID, h.StartTime, p.format, &tineError{code: code, text: text})
		return
	}
	size := wire.ReplyHeaderSize + wire.StatusSize + p.size
	if len(w.buf)+size > wire.MaxDatagram {
		w.flush()
	}
	h.NumBlocks, h.MTU, h.BlockNum, h.MsgSize = 1, uint16(p.format.BlockMTU()), 1, uint16(size)
	h.Protocol, h.StsSize, h.StsCode = wire.Protocol, wire.StatusSize, 0
	h.CompCode = code | wire.CodeFlagPartial
	w.buf = wire.AppendReplyHeader(w.buf, &h)
	w.buf = wire.AppendStatus(w.buf, asciiText(text))
	w.buf = p.appendRange(w.buf, 0, p.size)
}

// failure appends an error reply of one link, laid out as tine.jar's
// [verified: read-unknown-property.rep.bin]: numblks 1, blknum 0, mtu 0,
// counter 0, xferReason 0, stsCode 0, and the 192-byte status text.
func (w *replyWriter) failure(subID uint16, start uint32, format wire.Format, e *tineError) {
	size := wire.ReplyHeaderSize + wire.StatusSize
	if len(w.buf)+size > wire.MaxDatagram {
		w.flush()
	}
	h := wire.ReplyHeader{
		MsgSize: uint16(size), SubID: subID, CompCode: e.code, NumBlocks: 1,
		Format: wire.FormatField(format), Protocol: wire.Protocol, StartTime: start, StsSize: wire.StatusSize,
	}
	h.SetTime(time.Now())
	w.buf = wire.AppendReplyHeader(w.buf, &h)
	w.buf = wire.AppendStatus(w.buf, asciiText(e.text))
}

// flush sends the datagram being built, if any.
func (w *replyWriter) flush() {
	if len(w.buf) <= 2 {
		return
	}
	binary.LittleEndian.PutUint16(w.buf, uint16(len(w.buf)))
	_ = w.send(w.buf)
	w.buf = w.buf[:2]
}
