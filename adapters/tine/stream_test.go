package tine

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"tioga/adapters/tine/wire"
	"tioga/sim/fixtures"
)

// TestStreamFraming: tine.jar's CM_STREAM transfers (TCP 10003+offset):
// the request is the UDP one with mode flag 0x80, each reply block comes
// as a u32 total, the reply header without its msgSize, status and data
// (the layout a tine.jar 4.5.6 server answers with). A 100,000-element
// array arrives in its blocks, complete, over one connection.
func TestStreamFraming(t *testing.T) {
	ref := newRefTree(t)
	s := startServer(t, ref.tree, Config{TCP: true, TCPPort: -1, StreamPort: -1})
	c, err := net.Dial("tcp", s.StreamAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := fixtures.Read(t, "tine", "read-frame-count.req.bin")
	binary.LittleEndian.PutUint16(req[wire.RequestHeaderSize+12:], uint16(wire.Single)|0x80)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	h, sts, data := readStreamBlock(t, c)
	if h.SubID != 1 || h.CompCode != 0 || h.NumBlocks != 1 || h.BlockNum != 1 || h.Format != uint16(wire.Int32) ||
		h.StsSize != 0 || h.StsCode != wire.NotSignalled || len(sts) != 0 || len(data) != 4 || binary.LittleEndian.Uint32(data) != 1 {
		t.Fatalf("frame-count over the stream: %+v %x", h, data)
	}

	big := fixtures.Read(t, "tine", "read-big-array.req001.bin")
	binary.LittleEndian.PutUint16(big[wire.RequestHeaderSize+12:], uint16(wire.Single)|0x80)
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for k := 1; ; k++ {
		h, _, data := readStreamBlock(t, c)
		if h.CompCode != 0 || int(h.BlockNum) != k {
			t.Fatalf("block %d: %+v", k, h)
		}
		all = append(all, data...)
		if k == int(h.NumBlocks) {
			break
		}
	}
	if len(all) != 400000 {
		t.Fatalf("%d bytes of 100000 floats", len(all))
	}
	want := fixtures.Read(t, "tine", "read-big-array.rep281.bin")
	if string(all[len(all)-1280:]) != string(want[len(want)-1280:]) {
		t.Error("last block differs from tine.jar's")
	}
}

// readStreamBlock reads one CM_STREAM reply block.
func readStreamBlock(t *testing.T, r io.Reader) (wire.ReplyHeader, []byte, []byte) {
	t.Helper()
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		t.Fatal(err)
	}
	total := int(binary.LittleEndian.Uint32(n[:]))
	if total < 4+wire.ReplyHeaderSize-2 {
		t.Fatalf("stream message of %d bytes", total)
	}
	msg := make([]byte, total-4)
	if _, err := io.ReadFull(r, msg); err != nil {
		t.Fatal(err)
	}
	// Put the msgSize back to decode with the UDP layout.
	dgram := binary.LittleEndian.AppendUint16(nil, uint16(len(msg)+4))
	dgram = binary.LittleEndian.AppendUint16(dgram, uint16(len(msg)+2))
	dgram = append(dgram, msg...)
	blocks, err := wire.ParseReply(dgram, nil)
	if err != nil || len(blocks) != 1 {
		t.Fatalf("stream block: %v", err)
	}
	return blocks[0].Header, blocks[0].Status, blocks[0].Data
}
