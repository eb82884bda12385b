package device

import (
	"errors"
	"testing"

	"tioga/properties"
)

func TestTreeResolvesAddressesAndAliases(t *testing.T) {
	tree := NewTree()
	rideau := NewServer("P14", "rideau", "", "streaming server")
	tioga := rideau.MustAdd(New("tioga", "EIGER stream analysis"))
	tioga.Add(properties.Spec{Name: "frame-count", Elem: properties.Int32, Access: properties.Read})
	if err := tree.Add(rideau); err != nil {
		t.Fatal(err)
	}
	if err := tree.Alias(rideau, "tioga"); err != nil {
		t.Fatal(err)
	}
	if rideau.Module() != "RIDEAU" {
		t.Fatalf("module %q", rideau.Module())
	}

	for _, addr := range []string{"/P14/rideau/tioga/frame-count", "/p14/TIOGA/Tioga/FRAME-COUNT"} {
		a, err := ParseAddress(addr)
		if err != nil {
			t.Fatal(err)
		}
		p, err := tree.Property(a)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if p.Name() != "frame-count" {
			t.Fatal(p.Name())
		}
	}
	_, _, err := tree.Resolve(Address{Context: "P14", Server: "nope", Device: "x"})
	if !errors.Is(err, ErrUnknownServer) {
		t.Fatal(err)
	}
	_, _, err = tree.Resolve(Address{Context: "P14", Server: "rideau", Device: "x"})
	if !errors.Is(err, ErrUnknownDevice) {
		t.Fatal(err)
	}
	_, err = tree.Property(Address{Context: "P14", Server: "rideau", Device: "tioga", Property: "nope"})
	if !errors.Is(err, properties.ErrUnknown) {
		t.Fatal(err)
	}
	if _, d, ok := tree.FindDevice("TIOGA"); !ok || d != tioga {
		t.Fatal("FindDevice")
	}
	if err := rideau.Add(New("Tioga", "dup")); err == nil {
		t.Fatal("duplicate device accepted")
	}
	other := NewServer("P14", "other", "", "")
	if err := tree.Add(other); err != nil {
		t.Fatal(err)
	}
	if err := tree.Alias(other, "rideau"); err == nil {
		t.Fatal("alias over another server accepted")
	}
	for _, bad := range []string{"", "/P14/rideau", "/P14//x", "/a/b/c/d/e"} {
		if _, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) accepted", bad)
		}
	}
}
