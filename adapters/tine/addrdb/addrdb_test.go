package addrdb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAndResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// As tine.jar's files may look: extra columns, comments, blank lines.
	write("eqpdbase.csv", "# TINE servers\nNAME,EQPMODULE,FECNAME,CONTEXT,SUBSYSTEM,DESCRIPTION\n"+
		"TIOGA.SIM,TIOGA,PEERFEC,TEST,,reference server\n\nrideau,RIDEAU,TIOGA1,P14,TIOGA,streaming\n")
	write("fecaddr.csv", "FEC_NAME,IP_ADDR,PORT_OFFSET,TINE_PROTOCOL\nPEERFEC,127.0.0.1,7,6\nTIOGA1, 192.168.14.5 ,3\n")
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := db.Resolve("test", "tioga.sim")
	if err != nil || e.IP != "127.0.0.1" || e.PortOffset != 7 || e.Module != "TIOGA" {
		t.Fatalf("%+v %v", e, err)
	}
	e, err = db.Resolve("P14", "RIDEAU")
	if err != nil || e.IP != "192.168.14.5" || e.PortOffset != 3 || e.FEC != "TIOGA1" {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := db.Resolve("P14", "nope"); err == nil {
		t.Error("unknown server resolved")
	}
	write("fecaddr.csv", "FEC_NAME,IP_ADDR,PORT_OFFSET\nPEERFEC,127.0.0.1,seven\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "port offset") {
		t.Errorf("bad port offset: %v", err)
	}
	t.Setenv("TINE_HOME", dir)
	t.Setenv("TINE_CACHE", "")
	write("fecaddr.csv", "FEC_NAME,IP_ADDR,PORT_OFFSET\nPEERFEC,127.0.0.1,7\n")
	if _, err := Load(""); err != nil {
		t.Errorf("TINE_HOME: %v", err)
	}
}

func TestServersRoundTrip(t *testing.T) {
	in := []ServerRow{{Context: "P14", Name: "rideau", Module: "RIDEAU", FEC: "TIOGA", Description: "a, b"}}
	var b strings.Builder
	if err := WriteServers(&b, in); err != nil {
		t.Fatal(err)
	}
	out, err := ParseServers(b.String())
	if err != nil || len(out) != 1 || out[0].Description != "a; b" || out[0].Module != "RIDEAU" {
		t.Fatalf("%+v %v", out, err)
	}
	if _, err := ParseServers("CONTEXT,NAME\nP14,x\n"); err == nil {
		t.Error("row without module accepted")
	}
}
