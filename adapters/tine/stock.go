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
			infos := make([]wire.PropertyInfo, len(props))
			for i, p := range props {
				infos[i] = PropertyInfo(p)
			}
			return infoPayload(infos, c.TagOut, n, "PROPS")
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
		infos := stockInfos
		if hasIn {
			// STOCKPROPS with a stock property's name: its information
			// (TQuery.getMetaProperties asks this before reading METAPROPS)
			// [verified against a tine.jar server, which answers one record
			// per overload; this server has one each].
			if in.Elem != properties.Text {
				return payload{}, errStockInput
			}
			si, ok := stockNames[strings.ToUpper(strings.TrimSpace(in.Text))]
			if !ok {
				return payload{}, fail(wire.IllegalProperty, "")
			}
			infos = []stockInfo{stockInfoOf(si)}
			for _, x := range stockInfos {
				if strings.EqualFold(x.name, strings.TrimSpace(in.Text)) {
					infos = []stockInfo{x}
				}
			}
		}
		if f == wire.Struct {
			recs := make([]wire.PropertyInfo, len(infos))
			for i, x := range infos {
				recs[i] = x.info()
			}
			return infoPayload(recs, c.TagOut, n, "STOCKPROPS")
		}
		names := make([]string, len(infos))
		for i, x := range infos {
			names[i] = x.name
		}
		return namesPayload(names, f, n)
	case stockNStockProps:
		return scalarPayload(float64(len(stockInfos)), f, n)
	case stockMetaProps:
		return namesPayload(metaProperties(t.dev.Properties()), f, n)
	case stockAppVersion:
		return valuePayload(properties.TextValue(s.cfg.AppVersion), f, n)
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

// infoPayload encodes property-information records in the layout the
// structure tag asks for: PRPQSr4 (432 bytes), XPQS (224) or PQSX (188);
// as many whole records as sizeOut bytes hold.
func infoPayload(infos []wire.PropertyInfo, tag string, sizeOut int, what string) (payload, error) {
	var size int
	var enc func([]byte, *wire.PropertyInfo) []byte
	switch strings.ToUpper(strings.TrimSpace(tag)) {
	case strings.ToUpper(wire.PropInfoTag):
		size, enc = wire.PropInfoSize, wire.AppendPropertyInfo
	case wire.PropInfoXTag:
		size, enc = wire.PropInfoXSize, wire.AppendPropertyInfoX
	case wire.PropInfoLegacyTag:
		size, enc = wire.PropInfoLegacySize, wire.AppendPropertyInfoLegacy
	default:
		return payload{}, fail(wire.IllegalFormat, fmt.Sprintf("structure tag %q (%s offers %s, %s and %s)",
			tag, what, wire.PropInfoTag, wire.PropInfoXTag, wire.PropInfoLegacyTag))
	}
	k := min(len(infos), max(sizeOut, 0)/size)
	b := make([]byte, 0, k*size)
	for i := range infos[:k] {
		b = enc(b, &infos[i])
	}
	return rawPayload(wire.Struct, b), nil
}

// metaProperties lists the meta-properties that carry information about
// the properties: <name>.DESC for those with a description, .EGU, .MAX,
// .MIN, .TMAX and .TMIN for those with units or limits (every meta-property
// of metaSuffixes answers for every property; these are the ones worth
// showing).
func metaProperties(ps []*properties.Property) []string {
	var out []string
	for _, p := range sortedProperties(ps) {
		s := p.Spec()
		for _, m := range metaListed {
			switch {
			case m == "DESC" && s.Description == "":
				continue
			case m != "DESC" && s.Units == "" && s.Limits == nil:
				continue
			}
			out = append(out, s.Name+"."+m)
		}
	}
	return out
}

// stockInfo describes a stock property for STOCKPROPS and default-format
// reads: its format and size when read without a data type.
type stockInfo struct {
	name   string
	kind   stockKind
	desc   string
	format wire.Format
	size   int32
	input  wire.Format // Null, or TEXT for the stock properties that take a name
}

// stockInfos is every stock property the server answers, by name.
var stockInfos = []stockInfo{
	{"ADDRESSDB", stockAddressDB, "address-database rows of this process's servers (csv)", wire.Text, 4096, wire.Null},
	{"APPVERSION", stockAppVersion, "application version", wire.Text, 32, wire.Null},
	{"DEVICES", stockDevices, "device names", wire.Name64, 256, wire.Null},
	{"METAPROPERTIES", stockMetaProps, "valid meta properties of exported properties", wire.Name64, 256, wire.Null},
	{"METAPROPS", stockMetaProps, "valid meta properties of exported properties", wire.Name64, 256, wire.Null},
	{"NDEVICES", stockNDevices, "number of devices", wire.Int32, 1, wire.Null},
	{"NPROPERTIES", stockNProps, "number of properties", wire.Int32, 1, wire.Null},
	{"NPROPS", stockNProps, "number of properties", wire.Int32, 1, wire.Null},
	{"NSTOCKPROPS", stockNStockProps, "number of stock properties", wire.Int32, 1, wire.Null},
	{"PROPERTIES", stockProps, "property names or information", wire.Name64, 256, wire.Text},
	{"PROPS", stockProps, "property names or information", wire.Name64, 256, wire.Text},
	{"SRVDESC", stockDesc, "server description", wire.Text, 64, wire.Null},
	{"SRVOS", stockOS, "server operating system", wire.Text, 32, wire.Null},
	{"SRVSTARTTIME", stockStartTime, "server start time (unix seconds)", wire.Int32, 1, wire.Null},
	{"SRVVERSION", stockVersion, "TINE version of the server", wire.Text, 32, wire.Null},
	{"STOCKPROPS", stockStockProps, "stock property names or information", wire.Name32, 64, wire.Text},
}

func stockInfoOf(k stockKind) stockInfo {
	for _, x := range stockInfos {
		if x.kind == k {
			return x
		}
	}
	return stockInfo{format: wire.Int32, size: 1, input: wire.Null}
}

// info is the stock property's PRPQSr4 record.
func (x stockInfo) info() wire.PropertyInfo {
	in := int32(0)
	if x.input != wire.Null {
		in = 64
	}
	return wire.PropertyInfo{
		Name: x.name, Description: x.desc, Units: "none", Max: 10, SizeOut: x.size, SizeIn: in, Overloads: 1,
		FormatOut: x.format, FormatIn: x.input, Access: wire.AccessRead, XUnits: "none", XMax: 10, NumRows: 1, RowSize: 1,
	}
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
		Description: cutText(asciiText(s.Description), 63),
		Units:       cutText(tineUnits(s.Units), 15),
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

// tineUnits is the units text TINE clients see: "none" when there are
// none, as tine.jar's default; in ASCII (asciiText).
func tineUnits(u string) string {
	if u == "" {
		return "none"
	}
	return asciiText(u)
}
