package client

import (
	"fmt"
	"time"

	"tioga/adapters/tine/wire"
)

// Reply is one complete transfer from the server: a SINGLE call's answer or
// one delivery of an attached link.
type Reply struct {
	SubID     uint16 // the link id
	StartTime uint32 // the link's start time
	Code      wire.CompCode
	Status    string // status text of an error reply
	Data      wire.Data
	Time      time.Time // data timestamp
	Counter   uint16    // contract counter
	Reason    wire.XferReason
	Blocks    int // datagrams the transfer took
}

// Err returns the reply's error, or nil on success.
func (r *Reply) Err() error {
	if r.Code.Code() == wire.OK {
		return nil
	}
	return &Error{Code: r.Code.Code(), Status: r.Status}
}

// Error is a completion code other than success.
type Error struct {
	Code   wire.CompCode
	Status string
}

func (e *Error) Error() string {
	if e.Status != "" {
		return fmt.Sprintf("tine: %s (code %d)", e.Status, int(e.Code))
	}
	return fmt.Sprintf("tine: %s (code %d)", e.Code, int(e.Code))
}

// Assembler turns reply datagrams into complete transfers, reassembling
// multi-block ones (every block repeats the header; block k carries the
// bytes from (k-1) x mtu). It is what the client does with each datagram it
// receives, exported so that captured or logged replies can be decoded
// offline. A transfer whose blocks stop arriving is dropped when the next
// transfer of the same link begins. Not safe for concurrent use.
type Assembler struct {
	// MaxBytes bounds one transfer (default 256 MiB): a damaged header
	// must not make the client allocate gigabytes.
	MaxBytes int
	partial  map[partKey]*partial
	blocks   []wire.ReplyBlock
	// Abandoned counts transfers dropped incomplete.
	Abandoned uint64
	// OnPartial, when set, is told each block of a multi-block transfer
	// that leaves it incomplete: have of n blocks so far.
	OnPartial func(sub uint16, start uint32, have, n int)
}

type partKey struct {
	sub   uint16
	start uint32
}

type partial struct {
	started time.Time
	h       wire.ReplyHeader
	buf     []byte
	got     []bool
	have    int
	last    int // data bytes of the last block, -1 until it came
}

// NewAssembler returns an empty assembler.
func NewAssembler() *Assembler { return &Assembler{partial: map[partKey]*partial{}} }

// Add decodes one datagram and returns the transfers it completes (a
// datagram may carry blocks of several links). The returned data do not
// alias the datagram.
func (a *Assembler) Add(datagram []byte) ([]Reply, error) {
	var err error
	a.blocks, err = wire.ParseReply(datagram, a.blocks)
	if err != nil {
		return nil, err
	}
	var out []Reply
	for i := range a.blocks {
		r, done, err := a.block(&a.blocks[i])
		if err != nil {
			return out, err
		}
		if done {
			out = append(out, r)
		}
	}
	return out, nil
}

func reply(h *wire.ReplyHeader) Reply {
	return Reply{SubID: h.SubID, StartTime: h.StartTime, Code: h.CompCode, Time: h.Time(), Counter: h.Counter, Reason: h.XferReason,
		Data: wire.Data{Format: h.DataFormat()}}
}

func (a *Assembler) block(b *wire.ReplyBlock) (Reply, bool, error) {
	h := &b.Header
	key := partKey{h.SubID, h.StartTime}
	if h.StsSize > 0 || h.CompCode.Code() != wire.OK || h.NumBlocks <= 1 {
		if h.NumBlocks > 1 && h.CompCode.Code() == wire.OK {
			return Reply{}, false, fmt.Errorf("tine: %w", wire.ErrMalformed)
		}
		delete(a.partial, key)
		r := reply(h)
		r.Status = b.StatusText()
		r.Data.Bytes = append([]byte(nil), b.Data...)
		r.Blocks = 1
		return r, true, nil
	}
	nb, k, mtu := int(h.NumBlocks), int(h.BlockNum), int(h.MTU)
	if k < 1 || k > nb || mtu <= 0 || len(b.Data) > mtu || (k < nb && len(b.Data) != mtu) {
		return Reply{}, false, fmt.Errorf("tine: %w: block %d of %d with %d bytes, mtu %d", wire.ErrMalformed, k, nb, len(b.Data), mtu)
	}
	limit := a.MaxBytes
	if limit <= 0 {
		limit = 256 << 20
	}
	if (k-1)*mtu+len(b.Data) > limit {
		return Reply{}, false, fmt.Errorf("tine: transfer of more than %d bytes refused", limit)
	}
	p := a.partial[key]
	if p != nil && (p.h.NumBlocks != h.NumBlocks || p.h.MTU != h.MTU || p.h.Format != h.Format ||
		p.h.Counter != h.Counter || p.h.Timestamp != h.Timestamp || p.h.TimestampUSec != h.TimestampUSec || p.got[k-1]) {
		a.Abandoned++
		p = nil
	}
	if p == nil {
		p = &partial{started: time.Now(), h: *h, got: make([]bool, nb), last: -1}
		a.partial[key] = p
	}
	off := (k - 1) * mtu
	if need := off + len(b.Data); need > len(p.buf) {
		if need > cap(p.buf) {
			nbuf := make([]byte, need, max(need, min(nb*mtu, limit)))
			copy(nbuf, p.buf)
			p.buf = nbuf
		}
		p.buf = p.buf[:need]
	}
	copy(p.buf[off:], b.Data)
	p.got[k-1] = true
	p.have++
	if k == nb {
		p.last = len(b.Data)
	}
	if p.have < nb {
		if a.OnPartial != nil {
			a.OnPartial(h.SubID, h.StartTime, p.have, nb)
		}
		return Reply{}, false, nil
	}
	delete(a.partial, key)
	r := reply(&p.h)
	r.Data.Bytes = p.buf[:(nb-1)*mtu+p.last]
	r.Blocks = nb
	return r, true, nil
}

// Sweep drops partial transfers begun before t: their missing blocks are
// not coming (the call was sent again or gave up), and a 16 MB buffer
// should not wait for them forever.
func (a *Assembler) Sweep(t time.Time) {
	for k, p := range a.partial {
		if p.started.Before(t) {
			delete(a.partial, k)
			a.Abandoned++
		}
	}
}

// Partial is the number of transfers waiting for blocks.
func (a *Assembler) Partial() int { return len(a.partial) }
