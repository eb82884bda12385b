package wire

import (
	"testing"

	"tioga/sim/fixtures"
)

// FuzzParseRequest feeds hostile datagrams to the request parser, seeded
// with every captured request. The parser must never panic, and whatever it
// accepts must re-encode to a datagram it accepts again with the same links.
func FuzzParseRequest(f *testing.F) {
	reqs, _ := captures(f)
	for _, name := range reqs {
		f.Add(fixtures.Read(f, "tine", name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		if err := r.Parse(b); err != nil {
			return
		}
		for _, l := range r.Links {
			if len(l.Input) > len(b) || len(l.Ext) > len(b) {
				t.Fatal("slices beyond the datagram")
			}
		}
		out, err := AppendRequest(nil, r.Header.User, r.Links)
		if err != nil {
			return
		}
		var r2 Request
		if err := r2.Parse(out); err != nil {
			t.Fatalf("re-encoded request rejected: %v", err)
		}
		if len(r2.Links) != len(r.Links) {
			t.Fatalf("%d links became %d", len(r.Links), len(r2.Links))
		}
	})
}

// FuzzParseReply does the same for the reply parser (the client's decoder
// of outside bytes), seeded with every captured reply.
func FuzzParseReply(f *testing.F) {
	_, reps := captures(f)
	for _, name := range reps {
		f.Add(fixtures.Read(f, "tine", name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		blocks, err := ParseReply(b, nil)
		if err != nil {
			return
		}
		for _, blk := range blocks {
			_ = blk.StatusText()
			d := Data{Format: blk.Header.DataFormat(), Bytes: blk.Data}
			_ = d.String()
			if blk.Header.DataFormat().IsNumeric() {
				if _, err := d.Floats(); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, _ = ParsePropertyInfo(b)
	})
}
