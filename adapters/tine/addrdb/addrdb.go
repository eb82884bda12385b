// Package addrdb reads and writes TINE's local address database: the csv
// files a TINE client uses to reach a server when there is no name server
// (ENS), and the rows Tioga's TINE server publishes about itself.
//
// A client resolves /<context>/<server> to an equipment module (from
// eqpdbase.csv) and that module's front-end computer (FEC) to an IP address
// and port offset (from fecaddr.csv). tine.jar reads both from TINE_HOME or
// $TINE_CACHE/tine/cache/, and stops looking for a name server when
// cshosts.csv exists without an ENS row (docs/tine-protocol.md §10).
package addrdb

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ServerRow is one device-server name as eqpdbase.csv lists it: a row,
// not a server (package tine's Server is the FEC, device.Server the device
// server the row names). An alias of a
// server is a row of its own with the same module and FEC.
type ServerRow struct {
	Context     string
	Name        string // export name, e.g. rideau
	Module      string // equipment module (EQPMODULE)
	FEC         string // FECNAME
	Description string
}

// FEC is one front-end computer as fecaddr.csv lists it.
type FEC struct {
	Name       string
	IP         string
	PortOffset int
}

// CSHostsNote explains the third file a standalone tine.jar client needs.
const CSHostsNote = `cshosts.csv: create it in TINE_HOME (it may be empty, or hold your
usual rows without an ENS row), so that the client uses the two files above
instead of looking for a name server.`

// clean keeps a csv field on one line and free of commas: TINE's own csv
// reader does not know quoting.
func clean(s string) string {
	return strings.NewReplacer(",", ";", "\n", " ", "\r", " ", "\"", "'").Replace(strings.TrimSpace(s))
}

// WriteEqpdbase writes eqpdbase.csv: NAME,EQPMODULE,FECNAME,CONTEXT,SUBSYSTEM,DESCRIPTION.
func WriteEqpdbase(w io.Writer, servers []ServerRow) error {
	var sb strings.Builder
	sb.WriteString("NAME,EQPMODULE,FECNAME,CONTEXT,SUBSYSTEM,DESCRIPTION\n")
	for _, s := range servers {
		fmt.Fprintf(&sb, "%s,%s,%s,%s,%s,%s\n", clean(s.Name), clean(s.Module), clean(s.FEC), clean(s.Context), "TIOGA", clean(s.Description))
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// WriteFecaddr writes fecaddr.csv: FEC_NAME,IP_ADDR,PORT_OFFSET.
func WriteFecaddr(w io.Writer, fecs []FEC) error {
	var sb strings.Builder
	sb.WriteString("FEC_NAME,IP_ADDR,PORT_OFFSET\n")
	for _, f := range fecs {
		fmt.Fprintf(&sb, "%s,%s,%d\n", clean(f.Name), clean(f.IP), f.PortOffset)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// WriteFecaddrCache writes fecaddr.csv in the layout tine.jar keeps in its
// cache directory ($TINE_CACHE/tine/cache): FecName,FecNetwork,FecNode,
// IPAddr,PortOffset,TineProtocol,McastRules. tine.jar rewrites that file
// itself whenever it resolves a FEC, in this layout, and a file in
// TINE_HOME's shorter layout placed there would be rewritten with its
// columns shifted and then fail to parse [verified with tine.jar 4.5.6].
func WriteFecaddrCache(w io.Writer, fecs []FEC) error {
	var sb strings.Builder
	sb.WriteString("FecName,FecNetwork,FecNode,IPAddr,PortOffset,TineProtocol,McastRules\n")
	for _, f := range fecs {
		fmt.Fprintf(&sb, "%s,00000000,000000000000,%s,%d,6,0\n", clean(f.Name), clean(f.IP), f.PortOffset)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// WriteDir writes the address database into dir, where tine.jar reads it:
// eqpdbase.csv, fecaddr.csv (tine.jar's cache layout, which it also reads
// in TINE_HOME) and, when dir has none, a cshosts.csv without an ENS row
// (without it tine.jar spends about 10 s looking for a name server at
// start-up). dir should be the client's $TINE_CACHE/tine/cache (default
// /var/tmp/tine/cache, or /var/lib/tine/cache when /var/lib/tine exists):
// tine.jar looks there first and, once it has written its own fecaddr.csv
// there, looks for FECs nowhere else. Rows of other servers in existing
// files are kept; rows of the same names (or the same FEC) are replaced.
func WriteDir(dir string, servers []ServerRow, fecs []FEC) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("addrdb: %w", err)
	}
	// Keep what else the files list.
	if old, err := Load(dir); err == nil {
		for _, s := range old.servers {
			if !hasServer(servers, s) {
				servers = append(servers, s)
			}
		}
		for _, f := range old.fecs {
			if !hasFEC(fecs, f.Name) {
				fecs = append(fecs, f)
			}
		}
	}
	var eqp, fa strings.Builder
	if err := WriteEqpdbase(&eqp, servers); err != nil {
		return err
	}
	if err := WriteFecaddrCache(&fa, fecs); err != nil {
		return err
	}
	for name, text := range map[string]string{"eqpdbase.csv": eqp.String(), "fecaddr.csv": fa.String()} {
		if err := writeFileAtomic(filepath.Join(dir, name), text); err != nil {
			return err
		}
	}
	cs := filepath.Join(dir, "cshosts.csv")
	if _, err := os.Stat(cs); errors.Is(err, os.ErrNotExist) {
		if err := writeFileAtomic(cs, "CONTEXT,SERVER,ADDRESS\n"); err != nil {
			return err
		}
	}
	return nil
}

func hasServer(list []ServerRow, s ServerRow) bool {
	for _, x := range list {
		if strings.EqualFold(x.Name, s.Name) && strings.EqualFold(x.Context, s.Context) {
			return true
		}
	}
	return false
}

func hasFEC(list []FEC, name string) bool {
	for _, x := range list {
		if strings.EqualFold(x.Name, name) {
			return true
		}
	}
	return false
}

func writeFileAtomic(path, text string) error {
	tmp := path + ".tioga-tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return fmt.Errorf("addrdb: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("addrdb: %w", err)
	}
	return nil
}

// WriteServers writes the server list the way Tioga's stock property
// ADDRESSDB returns it: a header line CONTEXT,NAME,EQPMODULE,FECNAME,DESCRIPTION
// and one line per server name.
func WriteServers(w io.Writer, servers []ServerRow) error {
	var sb strings.Builder
	sb.WriteString("CONTEXT,NAME,EQPMODULE,FECNAME,DESCRIPTION\n")
	for _, s := range servers {
		fmt.Fprintf(&sb, "%s,%s,%s,%s,%s\n", clean(s.Context), clean(s.Name), clean(s.Module), clean(s.FEC), clean(s.Description))
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// ParseServers reads what WriteServers wrote.
func ParseServers(text string) ([]ServerRow, error) {
	rows, err := readCSV(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	var out []ServerRow
	for _, r := range rows {
		s := ServerRow{Context: r.get("CONTEXT"), Name: r.get("NAME"), Module: r.get("EQPMODULE"), FEC: r.get("FECNAME"), Description: r.get("DESCRIPTION")}
		if s.Context == "" || s.Name == "" || s.Module == "" {
			return nil, fmt.Errorf("addrdb: server row %v lacks context, name or module", r.fields)
		}
		out = append(out, s)
	}
	return out, nil
}

// Entry is what a client needs to reach a server.
type Entry struct {
	ServerRow
	IP         string
	PortOffset int
}

// DB is a loaded local address database.
type DB struct {
	servers []ServerRow
	fecs    map[string]FEC
}

// Load reads eqpdbase.csv and fecaddr.csv from dir, or from the directory
// tine.jar uses when dir is empty: $TINE_CACHE/tine/cache if it holds them,
// else $TINE_HOME.
func Load(dir string) (*DB, error) {
	if dir == "" {
		for _, d := range []string{filepath.Join(os.Getenv("TINE_CACHE"), "tine", "cache"), os.Getenv("TINE_HOME")} {
			if _, err := os.Stat(filepath.Join(d, "eqpdbase.csv")); err == nil && d != "" {
				dir = d
				break
			}
		}
		if dir == "" {
			return nil, errors.New("addrdb: no eqpdbase.csv in $TINE_CACHE/tine/cache or $TINE_HOME")
		}
	}
	db := &DB{fecs: map[string]FEC{}}
	eqp, err := readFile(filepath.Join(dir, "eqpdbase.csv"))
	if err != nil {
		return nil, err
	}
	for _, r := range eqp {
		db.servers = append(db.servers, ServerRow{Name: r.get("NAME"), Module: r.get("EQPMODULE"), FEC: r.get("FECNAME"),
			Context: r.get("CONTEXT"), Description: r.get("DESCRIPTION")})
	}
	fec, err := readFile(filepath.Join(dir, "fecaddr.csv"))
	if err != nil {
		return nil, err
	}
	for _, r := range fec {
		off, err := strconv.Atoi(strings.TrimSpace(r.get("PORTOFFSET")))
		if err != nil {
			return nil, fmt.Errorf("addrdb: fecaddr.csv: FEC %s: port offset %q", r.get("FECNAME"), r.get("PORTOFFSET"))
		}
		f := FEC{Name: r.get("FECNAME"), IP: r.get("IPADDR"), PortOffset: off}
		db.fecs[strings.ToUpper(f.Name)] = f
	}
	return db, nil
}

// Resolve finds /<context>/<server>: context and server names compare
// case-insensitively.
func (db *DB) Resolve(context, server string) (Entry, error) {
	for _, s := range db.servers {
		if strings.EqualFold(s.Name, server) && strings.EqualFold(s.Context, context) {
			f, ok := db.fecs[strings.ToUpper(s.FEC)]
			if !ok {
				return Entry{}, fmt.Errorf("addrdb: /%s/%s: FEC %s not in fecaddr.csv", context, server, s.FEC)
			}
			return Entry{ServerRow: s, IP: f.IP, PortOffset: f.PortOffset}, nil
		}
	}
	return Entry{}, fmt.Errorf("addrdb: /%s/%s not in eqpdbase.csv", context, server)
}

type row struct {
	cols   map[string]int
	fields []string
}

func (r row) get(col string) string {
	i, ok := r.cols[col]
	if !ok || i >= len(r.fields) {
		return ""
	}
	return strings.TrimSpace(r.fields[i])
}

func readFile(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("addrdb: %w", err)
	}
	defer f.Close()
	rows, err := readCSV(f)
	if err != nil {
		return nil, fmt.Errorf("addrdb: %s: %w", path, err)
	}
	return rows, nil
}

// readCSV reads a header line and rows; column names compare upper-cased
// and without underscores (TINE_HOME's FEC_NAME is the cache's FecName),
// blank lines and lines starting with '#' are skipped, rows may have fewer
// or more fields than the header.
func readCSV(r io.Reader) ([]row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, errors.New("empty csv file")
	}
	cols := map[string]int{}
	for i, h := range recs[0] {
		cols[strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(h)), "_", "")] = i
	}
	out := make([]row, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		out = append(out, row{cols: cols, fields: rec})
	}
	return out, nil
}
