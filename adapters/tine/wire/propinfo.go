package wire

import "math"

// Property-information records, the STRUCT a generic client gets from the
// stock property PROPS with tagOut PRPQSr4 (§9.2).
//
// tine.jar's TQuery.getDevicePropertyInformation asks for the shorter
// XPQS record (224 bytes: 32-byte name, 64-byte description, 32-byte
// redirection, 8-byte tags) and falls back to PQSX (188 bytes, the same
// without the x-axis and array fields); both layouts are those of
// tine.jar's XPropertyQuery.writeData and PropertyQueryLegacy.toByteArray,
// little-endian on the wire [verified: XPQS against a tine.jar 4.5.6
// server's reply; PQSX from the class only].
const (
	PropInfoTag  = "PRPQSr4"
	PropInfoSize = 432
	// PropInfoXTag and PropInfoXSize: the XPQS record.
	PropInfoXTag  = "XPQS"
	PropInfoXSize = 224
	// PropInfoLegacyTag and PropInfoLegacySize: the PQSX record.
	PropInfoLegacyTag  = "PQSX"
	PropInfoLegacySize = 188
	// WatchdogTag is the tagOut of tine.jar's watchdog link (SRVSTARTTIME).
	WatchdogTag = "WDOG"
)

// ArrayType values of the property information (the capture shows 0 for
// scalars and 1-D arrays and 4 for a records property; TINE calls it
// AT_DOUBLE, a two-dimensional array).
const (
	ArrayPlain   int16 = 0
	ArrayRecords int16 = 4
)

// PropertyInfo is one PRPQSr4 record.
type PropertyInfo struct {
	Name        string // 64
	Description string // 64
	Redirection string // 192
	TagOut      string // 16
	TagIn       string // 16
	Units       string // 16 ("none" by default)
	Min, Max    float32
	SizeOut     int32 // output elements
	SizeIn      int32 // input elements
	Overloads   int32 // 1
	HistShort   int16
	HistLong    int16
	FormatOut   Format
	FormatIn    Format // Null: takes no input
	Access      Access // 1 read, 3 read/write
	GraphType   uint8
	XUnits      string // 16
	XMin, XMax  float32
	NumRows     int16
	RowSize     int16
	ArrayType   int16
}

// AppendPropertyInfo appends one 432-byte record.
func AppendPropertyInfo(dst []byte, p *PropertyInfo) []byte {
	dst = appendName(dst, p.Name, 64)
	dst = appendName(dst, p.Description, 64)
	dst = appendName(dst, p.Redirection, 192)
	dst = appendName(dst, p.TagOut, 16)
	dst = appendName(dst, p.TagIn, 16)
	dst = appendName(dst, p.Units, 16)
	dst = le.AppendUint32(dst, math.Float32bits(p.Min))
	dst = le.AppendUint32(dst, math.Float32bits(p.Max))
	dst = le.AppendUint32(dst, uint32(p.SizeOut))
	dst = le.AppendUint32(dst, uint32(p.SizeIn))
	dst = le.AppendUint32(dst, uint32(p.Overloads))
	dst = le.AppendUint16(dst, uint16(p.HistShort))
	dst = le.AppendUint16(dst, uint16(p.HistLong))
	dst = append(dst, byte(p.FormatOut), byte(p.FormatIn), byte(p.Access), p.GraphType)
	dst = appendName(dst, p.XUnits, 16)
	dst = le.AppendUint32(dst, math.Float32bits(p.XMin))
	dst = le.AppendUint32(dst, math.Float32bits(p.XMax))
	dst = le.AppendUint16(dst, uint16(p.NumRows))
	dst = le.AppendUint16(dst, uint16(p.RowSize))
	dst = le.AppendUint16(dst, uint16(p.ArrayType))
	return append(dst, 0, 0, 0, 0, 0, 0)
}

// AppendPropertyInfoX appends one 224-byte XPQS record.
func AppendPropertyInfoX(dst []byte, p *PropertyInfo) []byte {
	dst = appendPropertyInfoShort(dst, p)
	dst = appendName(dst, p.XUnits, 16)
	dst = le.AppendUint32(dst, math.Float32bits(p.XMin))
	dst = le.AppendUint32(dst, math.Float32bits(p.XMax))
	dst = le.AppendUint16(dst, uint16(p.NumRows))
	dst = le.AppendUint16(dst, uint16(p.RowSize))
	dst = le.AppendUint16(dst, uint16(p.ArrayType))
	return append(dst, 0, 0, 0, 0, 0, 0)
}

// AppendPropertyInfoLegacy appends one 188-byte PQSX record.
func AppendPropertyInfoLegacy(dst []byte, p *PropertyInfo) []byte {
	return appendPropertyInfoShort(dst, p)
}

// appendPropertyInfoShort is the part XPQS and PQSX share.
func appendPropertyInfoShort(dst []byte, p *PropertyInfo) []byte {
	dst = appendName(dst, p.Name, 32)
	dst = appendName(dst, p.Description, 64)
	dst = appendName(dst, p.Redirection, 32)
	dst = appendName(dst, p.TagOut, 8)
	dst = appendName(dst, p.TagIn, 8)
	dst = appendName(dst, p.Units, 16)
	dst = le.AppendUint32(dst, math.Float32bits(p.Min))
	dst = le.AppendUint32(dst, math.Float32bits(p.Max))
	dst = le.AppendUint32(dst, uint32(p.SizeOut))
	dst = le.AppendUint32(dst, uint32(p.SizeIn))
	dst = le.AppendUint32(dst, uint32(p.Overloads))
	dst = le.AppendUint16(dst, uint16(p.HistShort))
	dst = le.AppendUint16(dst, uint16(p.HistLong))
	return append(dst, byte(p.FormatOut), byte(p.FormatIn), byte(p.Access), p.GraphType)
}

// ParsePropertyInfo decodes consecutive records; bytes after the last whole
// record are an error (a truncated transfer).
func ParsePropertyInfo(b []byte) ([]PropertyInfo, error) {
	if len(b)%PropInfoSize != 0 {
		return nil, malformed("%d bytes of property information is not a multiple of %d", len(b), PropInfoSize)
	}
	out := make([]PropertyInfo, 0, len(b)/PropInfoSize)
	for ; len(b) >= PropInfoSize; b = b[PropInfoSize:] {
		r := b[:PropInfoSize]
		out = append(out, PropertyInfo{
			Name:        getName(r[0:64]),
			Description: getName(r[64:128]),
			Redirection: getName(r[128:320]),
			TagOut:      getName(r[320:336]),
			TagIn:       getName(r[336:352]),
			Units:       getName(r[352:368]),
			Min:         math.Float32frombits(le.Uint32(r[368:])),
			Max:         math.Float32frombits(le.Uint32(r[372:])),
			SizeOut:     int32(le.Uint32(r[376:])),
			SizeIn:      int32(le.Uint32(r[380:])),
			Overloads:   int32(le.Uint32(r[384:])),
			HistShort:   int16(le.Uint16(r[388:])),
			HistLong:    int16(le.Uint16(r[390:])),
			FormatOut:   Format(r[392]),
			FormatIn:    Format(r[393]),
			Access:      Access(r[394]),
			GraphType:   r[395],
			XUnits:      getName(r[396:412]),
			XMin:        math.Float32frombits(le.Uint32(r[412:])),
			XMax:        math.Float32frombits(le.Uint32(r[416:])),
			NumRows:     int16(le.Uint16(r[420:])),
			RowSize:     int16(le.Uint16(r[422:])),
			ArrayType:   int16(le.Uint16(r[424:])),
		})
	}
	return out, nil
}
