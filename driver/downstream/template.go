package downstream

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"text/template"
)

// Output names the kind of result a job template leaves behind, and so the
// parser that reads it.
type Output string

// Outputs the package can read.
const (
	// OutputDIALS: indexed.expt (DIALS experiment list, JSON) in the job's
	// directory; every crystal model is an indexed frame.
	OutputDIALS Output = "dials"
	// OutputCrystFEL: chunk.stream (CrystFEL stream) in the job's
	// directory; every chunk with a crystal is an indexed frame.
	OutputCrystFEL Output = "crystfel"
)

// JobData is what a job template sees. Paths are absolute.
type JobData struct {
	Name    string   // job name (tioga-<series>-<chunk>)
	Dir     string   // the job's directory (its working directory)
	List    string   // the chunk's file list, one image path per line (CrystFEL .lst)
	Files   []string // the same paths
	Series  uint64
	Chunk   int
	Attempt int
	CPUs    int

	// Known cell: "a,b,c,alpha,beta,gamma" (empty: unknown) and the space
	// group ("P1" when a cell is given without one); CellFile is a CrystFEL
	// unit-cell file with the same cell (empty without a cell).
	Cell       string
	SpaceGroup string
	CellFile   string
	// MaxCell is DIALS' indexing.max_cell in Å (0: DIALS' default); it
	// must exceed the longest axis when the cell is not known.
	MaxCell float64

	// Geometry is a CrystFEL geometry file for the series' detector,
	// written from the first hit's header.
	Geometry string
	// Python is the interpreter that has DIALS (Debian: /usr/bin/python3).
	Python string
	// Options are extra options from the configuration, added to the
	// indexing command (dials.ssx_index phil or indexamajig options).
	Options string
	// ImportOptions are extra dials.import options (e.g. a mask, or
	// geometry.detector.panel.parallax_correction=False).
	ImportOptions string
}

// DIALSTemplate runs dials.import, dials.find_spots and dials.ssx_index on
// the chunk's files. The geometry comes from the files' headers.
//
// Debian's DIALS 3.12 lacks the compiled cctbx module xfel_mono_sim_ext
// that stills indexing imports: without it every image fails to index, so
// the script puts an empty module of that name on PYTHONPATH when the
// interpreter cannot import it. dials.ssx_index exits with an error when
// no image of the chunk indexes: that is a result (nothing indexed), not a
// failure, and the script says so with exit status 0.
const DIALSTemplate = `#!/bin/bash
# Tioga downstream job {{.Name}}: {{len .Files}} hits of series {{.Series}}, chunk {{.Chunk}}, attempt {{.Attempt}} (DIALS).
trap 'echo $? > {{q .Dir}}/exit_status' EXIT
set -euo pipefail
cd {{q .Dir}}
if ! {{.Python}} -c 'import xfel_mono_sim_ext' 2>/dev/null; then
  mkdir -p shim && : > shim/xfel_mono_sim_ext.py
  export PYTHONPATH="$PWD/shim${PYTHONPATH:+:$PYTHONPATH}"
fi
mapfile -t files < {{q .List}}
dials.import "${files[@]}" {{.ImportOptions}}
dials.find_spots imported.expt nproc={{.CPUs}}
if ! dials.ssx_index imported.expt strong.refl nproc={{.CPUs}}{{if .Cell}} unit_cell={{.Cell}} space_group={{.SpaceGroup}}{{end}}{{if .MaxCell}} indexing.max_cell={{.MaxCell}}{{end}} {{.Options}}; then
  if [ ! -e indexed.expt ] && grep -qiE 'no (images|crystals) (successfully )?indexed|no spots found|0 images indexed' dials.ssx_index.log 2>/dev/null; then
    echo "tioga: no image of the chunk indexed"
    exit 0
  fi
  exit 1
fi
`

// CrystFELTemplate runs indexamajig on the chunk's .lst with a geometry
// file written for the series' detector. CrystFEL is not in Debian: the
// site's installation must be on the PATH of the job.
const CrystFELTemplate = `#!/bin/bash
# Tioga downstream job {{.Name}}: {{len .Files}} hits of series {{.Series}}, chunk {{.Chunk}}, attempt {{.Attempt}} (CrystFEL).
trap 'echo $? > {{q .Dir}}/exit_status' EXIT
set -euo pipefail
cd {{q .Dir}}
indexamajig -i {{q .List}} -g {{q .Geometry}} -o chunk.stream -j {{.CPUs}} --peaks=peakfinder8 --indexing=xgandalf{{if .CellFile}} -p {{q .CellFile}}{{end}} {{.Options}}
`

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Template is a parsed job template and the kind of output it leaves.
type Template struct {
	Name   string // "dials", "crystfel" or the file it was read from
	Output Output
	t      *template.Template
}

// ParseTemplate parses a job template. name is "dials" or "crystfel" for
// the built-in templates, else the path of a template file, whose output
// kind must then be given.
func ParseTemplate(name string, output Output) (*Template, error) {
	text := ""
	switch name {
	case "", "dials":
		name, text = "dials", DIALSTemplate
		if output == "" {
			output = OutputDIALS
		}
	case "crystfel":
		text = CrystFELTemplate
		if output == "" {
			output = OutputCrystFEL
		}
	default:
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("job template: %w", err)
		}
		text = string(b)
	}
	switch output {
	case OutputDIALS, OutputCrystFEL:
	default:
		return nil, fmt.Errorf("job template %s: output %q: want dials or crystfel", name, output)
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{"q": shellQuote}).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("job template %s: %w", name, err)
	}
	tp := &Template{Name: name, Output: output, t: t}
	// Render once with sample data so a broken template fails at start-up,
	// not at the first chunk.
	if _, err := tp.Render(JobData{Name: "check", Dir: "/tmp/x", List: "/tmp/x/files.lst", Files: []string{"/tmp/x/a.cbf"}, CPUs: 1, Python: "python3"}); err != nil {
		return nil, err
	}
	return tp, nil
}

// Render returns the job script for d.
func (t *Template) Render(d JobData) ([]byte, error) {
	var b bytes.Buffer
	if err := t.t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("job template %s: %w", t.Name, err)
	}
	return b.Bytes(), nil
}
