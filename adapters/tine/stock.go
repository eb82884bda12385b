package tine

import (
	"fmt"
	"runtime"
	"sort"
	"strings"

	"tioga/adapters/tine/addrdb"
	"tioga/adapters/tine/wire"
	"tioga/properties"
)

// readStock answers a stock property (§9).
func (s *Server) readStock(t *target, c *wire.Contract, in properties.Value, hasIn bool) (payload, error) {
	f, n := c.FormatOut, int(c.SizeOut)
	switch t.stock {
	case stockNProps:
		return scalarPayload(float64(len(t.dev.Properties())), f, n)
	case stockProps:
		props := sortedProperties(t.dev.Properties())
		if hasIn {
			// PROPS with a property name as input: that property only
			// (unverified).
			if in.Elem != properties.Text {
				return payload{}, errStockInput
			}
			p, ok := t.dev.Property(strings.TrimSpace(in.Text))
			if !ok {
				return payload{}, fail(wire.IllegalProperty, "")
			}
			props = []*properties.Property{p}
		}
		if f == wire.Struct {
			if !strings.EqualFold(c.TagOut, wire.PropInfoTag) {
				return payload{}, fail(wire.IllegalFormat, fmt.Sprintf("structure tag %q (PROPS offers %s)", c.TagOut, wire.PropInfoTag))
			}
			k := min(len(props), max(n, 0)/wire.PropInfoSize)
			b := make([]byte, 0, k*wire.PropInfoSize)
			for _, p := range props[:k] {
				info := PropertyInfo(p)
				b = wire.AppendPropertyInfo(b, &info)
			}
			return rawPayload(f, b), nil
		}
		names := make([]string, len(props))
		for i, p := range props {
			names[i] = p.Name()
		}
		return namesPayload(names, f, n)
	case stockNDevices:
		return scalarPayload(float64(len(t.srv.Devices())), f, n)
	case stockDevices:
		devs := t.srv.Devices()
		names := make([]string, len(devs))
		for i, d := range devs {
			names[i] = d.Name()
		}
		return namesPayload(names, f, n)
	case stockVersion:
		return valuePayload(properties.TextValue(s.cfg.Version), f, n)
	case stockStartTime:
		if f == wire.Text {
			return valuePayload(properties.TextValue(s.start.UTC().Format("2006-01-02 15:04:05 MST")), f, n)
		}
		return scalarPayload(float64(s.start.Unix()), f, n)
	case stockStockProps:
		return namesPayload(StockProperties(), f, n)
	case stockDesc:
		return valuePayload(properties.TextValue(t.srv.Description()), f, n)
	case stockOS:
		return valuePayload(properties.TextValue(runtime.GOOS+"/"+runtime.GOARCH), f, n)
	case stockAddressDB:
		var sb strings.Builder
		addrdb.WriteServers(&sb, AddressRows(s.tree, s.cfg))
		return valuePayload(properties.TextValue(sb.String()), f, n)
	}
	return payload{}, fail(wire.IllegalProperty, "")
}

// sortedProperties orders properties by name, as tine.jar lists them
// [verified: query-props.rep002.bin].
func sortedProperties(ps []*properties.Property) []*properties.Property {
	sort.SliceStable(ps, func(i, j int) bool { return strings.ToLower(ps[i].Name()) < strings.ToLower(ps[j].Name()) })
	return ps
}

// PropertyInfo is the PRPQSr4 record a generic client reads for p: the
// native format and size (capacity: 1 for scalars, MaxLen for arrays and
// text, rows x width for records with numRows/rowSize set), access (1 read,
// 2 write, 3 both), the input a write or query takes, units and the display
// range. Without units or limits the fields carry tine.jar's defaults
// ("none", 0 and 10) [verified: query-propinfo.rep002.bin]. numRows is a
// 16-bit field: records properties of more than 32767 rows publish 32767
// there, their true capacity stays in the output size.
func PropertyInfo(p *properties.Property) wire.PropertyInfo {
	s := p.Spec()
	f := nativeFormat(s.Elem)
	lo, hi := displayRange(s)
	info := wire.PropertyInfo{
		Name:        s.Name,
		Description: truncate(s.Description, 63),
		Units:       truncate(tineUnits(s.Units), 15),
		Min:         lo,
		Max:         hi,
		SizeOut:     capacity(s),
		Overloads:   1,
		FormatOut:   f,
		FormatIn:    wire.Null,
		XUnits:      "none",
		XMax:        10,
		NumRows:     1,
		RowSize:     1,
	}
	if s.Readable() {
		info.Access |= wire.AccessRead
	}
	switch {
	case s.Writable():
		info.Access |= wire.AccessWrite
		info.FormatIn = f
		info.SizeIn = capacity(s)
	case s.Arg != 0:
		info.FormatIn = nativeFormat(s.Arg)
		info.SizeIn = 1
	}
	if s.Shape == properties.Records {
		info.NumRows = int16(min(s.MaxLen, 32767))
		info.RowSize = int16(min(s.Width, 32767))
		info.ArrayType = wire.ArrayRecords
	}
	return info
}

// unboundedText is the size published for text properties without MaxLen.
const unboundedText = 256

func capacity(s properties.Spec) int32 {
	n := s.Capacity()
	if s.Elem == properties.Text && n == 0 {
		n = unboundedText
	}
	return int32(min(n, 1<<31-1))
}

// displayRange is the property's limits, or tine.jar's default display
// range [0, 10] when it has none.
func displayRange(s properties.Spec) (lo, hi float32) {
	if s.Limits != nil {
		return float32(s.Limits.Min), float32(s.Limits.Max)
	}
	return 0, 10
}

// unitsASCII spells the registry's units in ASCII: TINE's name fields are
// single-byte, and Java clients would show UTF-8 "Å" as "Ã\u0085".
var unitsASCII = strings.NewReplacer("Å", "A", "°", "deg", "µ", "u", "²", "^2", "³", "^3", "σ", "sigma", "Ω", "Ohm")

// tineUnits is the units text TINE clients see: "none" when there are
// none, as tine.jar's default.
func tineUnits(u string) string {
	if u == "" {
		return "none"
	}
	return unitsASCII.Replace(u)
}
