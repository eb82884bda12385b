package client

import (
	"context"
	"fmt"
	"strings"
	"time"

	"tioga/adapters/tine/wire"
)

// blockID is the request sequence number tine.jar sends: it starts at 1
// and grows each time a link is sent again.
const firstBlockID = 1

// buildLinks makes the request blocks of one contract: one link, or one per
// input block when the input exceeds the input block size (1246 bytes
// rounded down to the element size).
func buildLinks(key partKey, req *Request, mode wire.Mode, interval time.Duration, blkid uint16) ([]wire.Link, error) {
	access := wire.AccessRead
	if req.Write {
		access = wire.AccessWrite
		if req.Format != wire.Null && req.Size > 0 {
			access |= wire.AccessRead
		}
	}
	c := wire.Contract{
		Property: req.Property, Device: req.Device, EqmName: req.Module,
		SizeOut: int32(req.Size), Access: access, FormatIn: wire.Null, FormatOut: req.Format, TagOut: req.Tag,
	}
	if len(req.Property) > wire.PropertySize {
		return nil, fmt.Errorf("tine: property name %q longer than %d", req.Property, wire.PropertySize)
	}
	if len(req.Module) > wire.EqmSize {
		return nil, fmt.Errorf("tine: equipment module %q longer than %d", req.Module, wire.EqmSize)
	}
	var in []byte
	if req.Input != nil {
		f := req.Input.Format
		c.FormatIn = f
		in = req.Input.Bytes
		switch {
		case f == wire.Text || f == wire.Struct || f.Size() <= 1:
			c.SizeIn = int32(len(in))
		default:
			if len(in)%f.Size() != 0 {
				return nil, fmt.Errorf("tine: %d bytes of %s input", len(in), f)
			}
			c.SizeIn = int32(len(in) / f.Size())
		}
	} else if req.Write {
		return nil, fmt.Errorf("tine: write of %s without input", req.Address)
	}
	mtu := c.FormatIn.InputMTU()
	nb := max(1, (len(in)+mtu-1)/mtu)
	if nb > 0xFFFF {
		return nil, fmt.Errorf("tine: input of %d bytes is too large", len(in))
	}
	ms := int32(interval / time.Millisecond)
	out := make([]wire.Link, nb)
	for k := range out {
		from := k * mtu
		to := min(from+mtu, len(in))
		out[k] = wire.Link{
			Subscription: wire.Subscription{MTU: uint16(mtu), NumBlocks: uint16(nb), BlockNum: uint16(k + 1), LinkID: key.sub,
				Mode: mode, BlockID: blkid, PollingInterval: ms, StartTime: key.start},
			Contract: c,
			Input:    in[from:to],
		}
	}
	return out, nil
}

// Call makes one SINGLE request and returns its reply; a reply with a
// completion code other than success is returned with an *Error.
func (c *Client) Call(ctx context.Context, req Request) (*Reply, error) {
	rs, err := c.CallMany(ctx, []Request{req})
	if err != nil {
		return nil, err
	}
	return rs[0], rs[0].Err()
}

// CallMany makes several SINGLE requests at once, packing them into as few
// datagrams as they fit (several links per datagram), and returns their
// replies in order. Requests without a reply after the retries fail the
// whole call with ErrTimeout (ErrIncomplete when part of a multi-block
// reply came); TINE errors are in each reply (Reply.Err).
func (c *Client) CallMany(ctx context.Context, reqs []Request) ([]*Reply, error) {
	type pending struct {
		key   partKey
		links []wire.Link
		call  *call
		reply *Reply
	}
	ps := make([]*pending, len(reqs))
	timeout := c.opts.Timeout
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	for i := range reqs {
		if reqs[i].Timeout > timeout {
			timeout = reqs[i].Timeout
		}
	}
	var err error
	for i := range reqs {
		p := &pending{key: c.newKeyLocked(), call: &call{ch: make(chan Reply, 1)}}
		p.links, err = buildLinks(p.key, &reqs[i], wire.Single, timeout, firstBlockID)
		if err != nil {
			break
		}
		c.calls[p.key] = p.call
		ps[i] = p
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		for _, p := range ps {
			if p != nil {
				delete(c.calls, p.key)
			}
		}
		c.mu.Unlock()
	}()
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		var out []wire.Link
		for _, p := range ps {
			if p.reply == nil {
				out = append(out, p.links...)
			}
		}
		if attempt > 0 {
			c.log.Debug().Int("attempt", attempt).Int("links", len(out)).Msg("tine: call sent again")
		}
		if err := c.sendLinks(out); err != nil {
			return nil, fmt.Errorf("tine: send: %w", err)
		}
		timer := time.NewTimer(timeout)
	wait:
		for _, p := range ps {
			if p.reply != nil {
				continue
			}
			select {
			case r, ok := <-p.call.ch:
				if !ok {
					timer.Stop()
					return nil, ErrClosed
				}
				p.reply = &r
			case <-timer.C:
				break wait
			case <-ctx.Done():
				timer.Stop()
				return nil, ctx.Err()
			}
		}
		timer.Stop()
		done := true
		c.mu.Lock()
		for _, p := range ps {
			if p.reply != nil {
				continue
			}
			select {
			case r, ok := <-p.call.ch: // arrived while we were waiting for another
				if !ok {
					c.mu.Unlock()
					return nil, ErrClosed
				}
				p.reply = &r
				continue
			default:
			}
			done = false
			// Wait again on the same link id: a late reply to the
			// previous attempt is as good as one to the next.
			c.calls[p.key] = p.call
		}
		c.mu.Unlock()
		if done {
			out := make([]*Reply, len(ps))
			for i, p := range ps {
				out[i] = p.reply
			}
			return out, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		if p.reply == nil && p.call.have > 0 {
			return nil, fmt.Errorf("%w: %d of %d blocks arrived, in %d attempts; the others were lost (a UDP receive buffer too small for the burst?): read it over TCP",
				ErrIncomplete, p.call.have, p.call.of, c.opts.Retries+1)
		}
	}
	return nil, ErrTimeout
}

// Get reads n elements of a property in format f.
func (c *Client) Get(ctx context.Context, a Address, f wire.Format, n int) (wire.Data, error) {
	r, err := c.Call(ctx, Request{Address: a, Format: f, Size: n})
	if err != nil {
		return wire.Data{}, err
	}
	return r.Data, nil
}

// Set writes in to a property (a pure write: no data back).
func (c *Client) Set(ctx context.Context, a Address, in wire.Data) error {
	_, err := c.Call(ctx, Request{Address: a, Format: wire.Null, Input: &in, Write: true})
	return err
}

// Count reads a stock count (NPROPS, NDEVICES) as INT32.
func (c *Client) count(ctx context.Context, module, device, prop string) (int, error) {
	d, err := c.Get(ctx, Address{Module: module, Device: device, Property: prop}, wire.Int32, 1)
	if err != nil {
		return 0, err
	}
	xs, err := d.Ints()
	if err != nil || len(xs) != 1 {
		return 0, fmt.Errorf("tine: %s: unexpected reply %v", prop, d)
	}
	return int(xs[0]), nil
}

// Properties returns the property-information records of a device (stock
// NPROPS, then PROPS as PRPQSr4 structures), as tine.jar's clients read
// them.
func (c *Client) Properties(ctx context.Context, module, device string) ([]wire.PropertyInfo, error) {
	n, err := c.count(ctx, module, device, "NPROPS")
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	r, err := c.Call(ctx, Request{Address: Address{Module: module, Device: device, Property: "PROPS"},
		Format: wire.Struct, Size: n * wire.PropInfoSize, Tag: wire.PropInfoTag})
	if err != nil {
		return nil, err
	}
	return wire.ParsePropertyInfo(r.Data.Bytes)
}

// PropertyNames returns a device's property names (NPROPS, then PROPS as
// NAME64).
func (c *Client) PropertyNames(ctx context.Context, module, device string) ([]string, error) {
	n, err := c.count(ctx, module, device, "NPROPS")
	if err != nil || n <= 0 {
		return nil, err
	}
	d, err := c.Get(ctx, Address{Module: module, Device: device, Property: "PROPS"}, wire.Name64, n)
	if err != nil {
		return nil, err
	}
	return d.Names(), nil
}

// Devices returns the devices of an equipment module (NDEVICES, then
// DEVICES as NAME64, device "#0").
func (c *Client) Devices(ctx context.Context, module string) ([]string, error) {
	n, err := c.count(ctx, module, "#0", "NDEVICES")
	if err != nil || n <= 0 {
		return nil, err
	}
	d, err := c.Get(ctx, Address{Module: module, Device: "#0", Property: "DEVICES"}, wire.Name64, n)
	if err != nil {
		return nil, err
	}
	return d.Names(), nil
}

// Info returns the property-information record of one property.
func (c *Client) Info(ctx context.Context, a Address) (wire.PropertyInfo, error) {
	infos, err := c.Properties(ctx, a.Module, a.Device)
	if err != nil {
		return wire.PropertyInfo{}, err
	}
	for _, in := range infos {
		if strings.EqualFold(in.Name, a.Property) {
			return in, nil
		}
	}
	return wire.PropertyInfo{}, &Error{Code: wire.IllegalProperty, Status: "illegal property"}
}
