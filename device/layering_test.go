package device_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// The layering of architecture.md, enforced: data flows stream → pipeline →
// devices/properties → adapters, and a protocol adapter sees nothing of the
// server but the device tree and the property registry.
//
//   - properties imports nothing of this module;
//   - device/... imports only device/... and properties (never driver/...);
//   - adapters/<name>/... imports only device, properties and its own
//     adapters/<name>/... packages; its tests may also use sim/fixtures (the
//     fixture locator) and other packages of adapters/<name>.

const module = "tioga"

type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// TestLayering lists every package of the module with `go list` and checks
// the direct imports of each against the rules above.
func TestLayering(t *testing.T) {
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs, err := decodeList(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages of %s: is the test run inside the module?", len(pkgs), module)
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.ImportPath] = true
	}
	for _, want := range []string{"tioga/properties", "tioga/device", "tioga/device/contract", "tioga/adapters/tine", "tioga/adapters/opcua"} {
		if !seen[want] {
			t.Errorf("go list did not list %s: the rules would check nothing there", want)
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestLayeringCatchesViolations feeds the checker the imports the rules
// forbid, so that a checker that passes everything cannot go unnoticed.
func TestLayeringCatchesViolations(t *testing.T) {
	bad := []listedPackage{
		{ImportPath: "tioga/device/contract", Imports: []string{"tioga/device", "tioga/driver/detector"}},
		{ImportPath: "tioga/adapters/opcua", Imports: []string{"tioga/device", "tioga/driver/pipeline"}},
		{ImportPath: "tioga/adapters/tine", Imports: []string{"tioga/adapters/opcua"}},
		{ImportPath: "tioga/adapters/tine/client", XTestImports: []string{"tioga/driver/stream"}},
		{ImportPath: "tioga/properties", Imports: []string{"tioga/device"}},
	}
	got := violations(bad)
	if len(got) != len(bad) {
		t.Fatalf("%d violations found, want %d:\n%s", len(got), len(bad), strings.Join(got, "\n"))
	}
	good := []listedPackage{
		{ImportPath: "tioga/device/contract", Imports: []string{"tioga/device", "tioga/device/detectormodel", "tioga/properties", "fmt"}},
		{ImportPath: "tioga/adapters/tine", Imports: []string{"tioga/adapters/tine/wire", "tioga/device", "tioga/properties"}, TestImports: []string{"tioga/sim/fixtures"}},
		{ImportPath: "tioga/adapters/opcua", Imports: []string{"github.com/gopcua/opcua", "tioga/device"}},
		{ImportPath: "tioga/driver/pipeline", Imports: []string{"tioga/driver/stream", "tioga/device/contract"}},
	}
	if got := violations(good); len(got) != 0 {
		t.Fatalf("allowed imports reported:\n%s", strings.Join(got, "\n"))
	}
}

func decodeList(out []byte) ([]listedPackage, error) {
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
}

// violations returns one line per forbidden import.
func violations(pkgs []listedPackage) []string {
	var out []string
	for _, p := range pkgs {
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				if !within(imp, module) {
					continue // standard library and third-party modules
				}
				if why := forbidden(p.ImportPath, imp, test); why != "" {
					kind := "imports"
					if test {
						kind = "tests import"
					}
					out = append(out, p.ImportPath+" "+kind+" "+imp+": "+why)
				}
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
	return out
}

// forbidden says why pkg may not import imp ("" when it may).
func forbidden(pkg, imp string, test bool) string {
	switch {
	case within(pkg, "tioga/properties"):
		if !within(imp, "tioga/properties") {
			return "properties is the bottom layer and imports nothing of the module"
		}
	case within(pkg, "tioga/device"):
		if !within(imp, "tioga/device") && !within(imp, "tioga/properties") {
			return "device/... may import only device/... and properties (the work in driver/ feeds devices, not the other way)"
		}
	case within(pkg, "tioga/adapters"):
		own := adapterRoot(pkg)
		switch {
		case imp == "tioga/device", imp == "tioga/properties":
		case within(imp, own):
		case test && imp == "tioga/sim/fixtures":
		default:
			return "an adapter sees only device and properties (and its own " + own + "/... packages)"
		}
	}
	return ""
}

// adapterRoot is tioga/adapters/<name> for any package below it.
func adapterRoot(pkg string) string {
	parts := strings.SplitN(pkg, "/", 4)
	if len(parts) < 3 {
		return pkg
	}
	return strings.Join(parts[:3], "/")
}

// within reports whether path is pkg or below it.
func within(path, pkg string) bool { return path == pkg || strings.HasPrefix(path, pkg+"/") }
