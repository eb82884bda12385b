package tine

import (
	"io"
	"strings"

	"tioga/adapters/tine/addrdb"
	"tioga/device"
)

// AddressRows lists every device-server name of the tree (aliases
// included) as the address database describes it: context, name,
// equipment module, FEC name and description.
func AddressRows(tree *device.Tree, cfg Config) []addrdb.ServerRow {
	cfg = cfg.withDefaults()
	var out []addrdb.ServerRow
	for _, s := range tree.Servers() {
		row := addrdb.ServerRow{Context: s.Context(), Name: s.Name(), Module: truncate(s.Module(), 8), FEC: cfg.FECName, Description: s.Description()}
		out = append(out, row)
		for _, a := range tree.Aliases(s) {
			alias := row
			alias.Name = a
			out = append(out, alias)
		}
	}
	return out
}

// WriteAddressDatabase writes what a TINE client needs to reach the tree's
// servers with no name server: the eqpdbase.csv rows, the fecaddr.csv row
// (ip is the address clients use to reach this host), and the cshosts.csv
// note, each under a heading naming the file.
func WriteAddressDatabase(w io.Writer, tree *device.Tree, cfg Config, ip string) error {
	cfg = cfg.withDefaults()
	return WriteAddressFiles(w, AddressRows(tree, cfg), addrdb.FEC{Name: cfg.FECName, IP: ip, PortOffset: cfg.PortOffset})
}

// WriteAddressFiles writes the eqpdbase.csv and fecaddr.csv contents and
// the cshosts.csv note for the given servers served by fec.
func WriteAddressFiles(w io.Writer, servers []addrdb.ServerRow, fec addrdb.FEC) error {
	if _, err := io.WriteString(w, "# eqpdbase.csv\n"); err != nil {
		return err
	}
	if err := addrdb.WriteEqpdbase(w, servers); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n# fecaddr.csv\n"); err != nil {
		return err
	}
	if err := addrdb.WriteFecaddr(w, []addrdb.FEC{fec}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n# "+strings.ReplaceAll(addrdb.CSHostsNote, "\n", "\n# ")+"\n")
	return err
}
