package tine

import (
	"fmt"
	"time"

	"tioga/adapters/tine/wire"
)

// Multi-block inputs. An input larger than the client's block size (the
// subscription's mtu: 1246 bytes rounded down to the element size) arrives
// as numblks request datagrams, each repeating the subscription and
// contract with blknum = 1..numblks and carrying mtu bytes of the input
// (the last one the rest). They are reassembled by link id, start time and
// blkid. Unverified: tine.jar never sent one in the captures; this is the
// layout the reply direction uses, mirrored.

type inputKey struct {
	id    uint16
	start uint32
	blkid uint16
}

type assembly struct {
	buf     []byte
	got     []bool
	have    int
	blocks  int
	mtu     int
	started time.Time
}

const (
	inputTimeout     = 10 * time.Second // a partial input is abandoned after this
	maxPartialInputs = 16               // partial inputs per client
)

// collectInput returns the complete input of the link: the block itself
// when there is one block, the reassembled input when this block completes
// one, or complete=false while blocks are missing.
func (p *peer) collectInput(l *wire.Link, now time.Time) (input []byte, complete bool, e *tineError) {
	if l.NumBlocks <= 1 {
		return l.Input, true, nil
	}
	es := max(1, l.FormatIn.Size())
	total := int(l.SizeIn) * es
	mtu, nb, k := int(l.MTU), int(l.NumBlocks), int(l.BlockNum)
	switch {
	case l.FormatIn == wire.Null || total <= 0:
		return nil, false, fail(wire.InvalidParameter, fmt.Sprintf("%d input blocks without input", nb))
	case total > p.s.cfg.MaxInputBytes:
		return nil, false, fail(wire.IllegalDataSize, fmt.Sprintf("input of %d bytes exceeds %d", total, p.s.cfg.MaxInputBytes))
	case mtu <= 0 || mtu%es != 0 || (total+mtu-1)/mtu != nb:
		return nil, false, fail(wire.DataSizeMismatch, fmt.Sprintf("%d bytes in %d blocks of %d", total, nb, mtu))
	case k < 1 || k > nb:
		return nil, false, fail(wire.DataSizeMismatch, fmt.Sprintf("block %d of %d", k, nb))
	}
	from := (k - 1) * mtu
	want := min(mtu, total-from)
	if len(l.Input) != want {
		return nil, false, fail(wire.DataSizeMismatch, fmt.Sprintf("block %d of %d carries %d bytes, want %d", k, nb, len(l.Input), want))
	}
	key := inputKey{l.LinkID, l.StartTime, l.BlockID}
	a, ok := p.inputs[key]
	if !ok {
		if len(p.inputs) >= maxPartialInputs {
			return nil, false, fail(wire.ResourcesExhausted, "too many partial inputs")
		}
		a = &assembly{buf: make([]byte, total), got: make([]bool, nb), blocks: nb, mtu: mtu, started: now}
		p.inputs[key] = a
	} else if a.blocks != nb || a.mtu != mtu || len(a.buf) != total {
		delete(p.inputs, key)
		return nil, false, fail(wire.DataSizeMismatch, "input blocks disagree on the input size")
	}
	if !a.got[k-1] {
		a.got[k-1] = true
		a.have++
		copy(a.buf[from:], l.Input)
	}
	if a.have < nb {
		return nil, false, nil
	}
	delete(p.inputs, key)
	return a.buf, true, nil
}
