package tine

import (
	"context"
	"strings"
	"testing"
	"time"

	"tioga/adapters/tine/wire"
	"tioga/device"
	"tioga/properties"
)

// TestNoSilentEmptyReads: over real UDP, a query property read without
// its input is refused (20, saying what input it needs); descriptions and
// units reach clients in ASCII, cut on character boundaries.
func TestNoSilentEmptyReads(t *testing.T) {
	tree := device.NewTree()
	srv := device.NewServer("TEST", "X", "X", "")
	d := srv.MustAdd(device.New("d", ""))
	spots := d.Add(properties.Spec{Name: "frame-spots", Elem: properties.Float32, Shape: properties.Records, Width: 2, MaxLen: 10,
		Access: properties.Read, Arg: properties.Int32, ArgDescription: "the frame number"})
	spots.OnQuery(func(_ context.Context, v properties.Value) (properties.Value, error) {
		return properties.Float32Records(2, []float32{1, 2}), nil
	})
	long := strings.Repeat("x", 61) + "Å resolution"
	d.Add(properties.Spec{Name: "res", Description: long, Units: "Å", Elem: properties.Float32, Access: properties.Read})
	must(t, tree.Add(srv))
	s := startServer(t, tree, Config{})
	c := newUDPClient(t, s)
	tag := ""
	call := func(prop string, f wire.Format, n int, in []byte, inF wire.Format) wire.ReplyBlock {
		t.Helper()
		l := wire.Link{}
		l.MsgSize = 0
		l.Mode, l.LinkID, l.StartTime, l.NumBlocks, l.BlockNum, l.MTU, l.PollingInterval = wire.Single, 7, 1, 1, 1, 1246, 1000
		l.Contract = wire.Contract{Property: prop, Device: "d", EqmName: "X", SizeOut: int32(n), Access: wire.AccessRead, FormatIn: inF, FormatOut: f, TagOut: tag}
		if in != nil {
			l.Input, l.SizeIn = in, int32(len(in)/max(inF.Size(), 1))
		}
		b, err := wire.AppendRequest(nil, "ME", []wire.Link{l})
		if err != nil {
			t.Fatal(err)
		}
		c.send(b)
		blocks, err := wire.ParseReply(c.recv(time.Second), nil)
		if err != nil || len(blocks) != 1 {
			t.Fatalf("%s: %v %d blocks", prop, err, len(blocks))
		}
		return blocks[0]
	}
	if r := call("frame-spots", wire.Float, 20, nil, wire.Null); r.Header.CompCode != wire.InvalidParameter ||
		r.StatusText() != "invalid parameter: frame-spots needs an input: the frame number" {
		t.Errorf("query without input: %d %q", r.Header.CompCode, r.StatusText())
	}
	if r := call("frame-spots", wire.Float, 20, wire.AppendInt(nil, wire.Int32, 3), wire.Int32); r.Header.CompCode != 0 || len(r.Data) != 8 {
		t.Errorf("query with input: %d %x", r.Header.CompCode, r.Data)
	}
	tag = wire.PropInfoTag
	r := call("PROPS", wire.Struct, wire.PropInfoSize, []byte("res"), wire.Text)
	if r.Header.CompCode != 0 {
		t.Fatalf("PROPS res: %d %q", r.Header.CompCode, r.StatusText())
	}
	infos, err := wire.ParsePropertyInfo(r.Data)
	if err != nil || len(infos) != 1 {
		t.Fatalf("PROPS res: %v", err)
	}
	if want := strings.Repeat("x", 61) + "A "; infos[0].Description != want || infos[0].Units != "A" {
		t.Errorf("description %q units %q, want %q and A", infos[0].Description, infos[0].Units, want)
	}
	tag = ""
	if r := call("res.DESC", wire.Text, 100, nil, wire.Null); string(r.Data) != strings.Repeat("x", 61)+"A resolution" {
		t.Errorf(".DESC %q", r.Data)
	}
}
