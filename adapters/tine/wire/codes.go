package wire

import "strconv"

// Protocol constants of level 6 over UDP.
const (
	// Protocol is the protocol level sent in every request header and
	// reply header.
	Protocol = 6
	// Revision is the client library revision tine.jar 4.5.6 sends (0x0506).
	Revision = 0x0506

	RequestHeaderSize = 22  // totalSize, userName[16], protocol, revision
	SubscriptionSize  = 24  // per link
	ContractSize      = 180 // per link
	LinkHeaderSize    = SubscriptionSize + ContractSize
	ReplyHeaderSize   = 44 // per link block
	StatusSize        = 192
	// MaxDatagram is the largest UDP payload tine.jar sends or accepts
	// (Ethernet MTU 1500 - IP 20 - UDP 8).
	MaxDatagram = 1472
	// MaxBlockData is the data capacity of one reply block:
	// 1472 - 2 (total) - 44 (reply header).
	MaxBlockData = MaxDatagram - 2 - ReplyHeaderSize
	// MaxInputData is the input capacity of one request block:
	// 1472 - 22 - 24 - 180.
	MaxInputData = MaxDatagram - RequestHeaderSize - LinkHeaderSize

	// UserSize and the name sizes are the fixed field lengths.
	UserSize     = 16
	PropertySize = 64
	DeviceSize   = 64
	EqmSize      = 8
	TagSize      = 16
)

// Port numbers of a server: add the FEC's port offset.
const (
	UDPBasePort = 9003
	TCPBasePort = 8503
	// StreamBasePort is where tine.jar connects for CM_STREAM (TCP)
	// transfers [verified: tine.jar 4.5.6 client and server].
	StreamBasePort = 10003
)

// Mode is a transfer mode: the low 4 bits are the base mode, the upper bits
// flags (none seen in the captures; tine.jar masks the field with 0xFFF).
type Mode uint16

// Base modes (docs/tine-protocol.md §5.1).
const (
	Cancel     Mode = 0 // end a link; no reply
	Single     Mode = 1 // one request, one reply
	DataChange Mode = 2 // CM_REFRESH: send when the value changed, plus heartbeat
	Poll       Mode = 3 // CM_TIMER: send every polling interval
	Register   Mode = 4 // unverified, not served
	Receive    Mode = 5 // multicast globals; unverified, not served
	Event      Mode = 6 // send when the application signals, plus heartbeat
)

// Mode flag bits (upper bits of the mode field); none was seen on the wire.
const (
	FlagNoDuplicates Mode = 0x10
	FlagStream       Mode = 0x80
	FlagSyncGroup    Mode = 0x100
	FlagNetwork      Mode = 0x200
	FlagUseOnError   Mode = 0x400
	FlagRetry        Mode = 0x800
	FlagGrouped      Mode = 0x1000
	FlagConnect      Mode = 0x2000
	FlagWait         Mode = 0x4000
)

// Base returns the base mode (low 4 bits).
func (m Mode) Base() Mode { return m & 0xF }

// String names the base mode.
func (m Mode) String() string {
	switch m.Base() {
	case Cancel:
		return "CANCEL"
	case Single:
		return "SINGLE"
	case DataChange:
		return "DATACHANGE"
	case Poll:
		return "POLL"
	case Register:
		return "REGISTER"
	case Receive:
		return "RECEIVE"
	case Event:
		return "EVENT"
	}
	return "MODE" + strconv.Itoa(int(m.Base()))
}

// Access is the contract's access byte (§5.2).
type Access uint8

// Access bits.
const (
	AccessRead   Access = 0x01
	AccessWrite  Access = 0x02
	AccessRepeat Access = 0x04
	AccessSync   Access = 0x08
	AccessAlarm  Access = 0x10
	AccessHist   Access = 0x20
	AccessFirst  Access = 0x40
	AccessLast   Access = 0x80
)

// XferReason flags of the reply header (§5.4).
type XferReason uint16

// Transfer-reason bits per tine.jar's constants, and the combinations the
// captures show.
const (
	XferResponse  XferReason = 0x01
	XferStale     XferReason = 0x02
	XferHeartbeat XferReason = 0x04
	XferChanged   XferReason = 0x08
	XferTimer     XferReason = 0x10
	XferMessage   XferReason = 0x20
	XferError     XferReason = 0x40
	XferAttach    XferReason = 0x80
	XferRetry     XferReason = 0x100

	// XferSingle marks a SINGLE reply and a POLL delivery of unchanged data.
	XferSingle = XferTimer // 0x10
	// XferPollChanged marks a POLL delivery whose value changed, and a
	// DATACHANGE/EVENT delivery sent while the previous one is unacknowledged.
	XferPollChanged = XferTimer | XferChanged // 0x18
	// XferFirst marks the first delivery of a DATACHANGE/EVENT link.
	XferFirst = XferAttach | XferChanged | XferStale // 0x8a
	// XferUpdate marks a later delivery of changed data on DATACHANGE/EVENT.
	XferUpdate = XferChanged | XferStale // 0x0a
	// XferKeepAlive marks a heartbeat of a DATACHANGE/EVENT link whose data
	// did not change (unverified: no heartbeat was captured).
	XferKeepAlive = XferTimer | XferHeartbeat // 0x14
)

// CompCode is a completion code (reply compCode, low 12 bits; §7).
type CompCode uint16

// Completion codes.
const (
	OK               CompCode = 0
	IllegalFormat    CompCode = 2
	DataSizeMismatch CompCode = 10
	IllegalDataSize  CompCode = 14
	InvalidParameter CompCode = 20
	// StreamTransport ("resort to stream transport"): the data are too
	// large for a datagram transfer; read them over TCP (CM_STREAM).
	StreamTransport     CompCode = 22
	BufferTooSmall      CompCode = 25
	InvalidTransport    CompCode = 30
	UnauthorisedAction  CompCode = 33
	IllegalDevice       CompCode = 35
	IllegalProperty     CompCode = 36
	OutOfRange          CompCode = 37
	NotImplemented      CompCode = 38
	LinkTimeout         CompCode = 45
	AddressUnresolved   CompCode = 53
	InvalidProperty     CompCode = 54
	InvalidLink         CompCode = 58
	CodeFailure         CompCode = 66
	IllegalReadWrite    CompCode = 73
	ResourcesExhausted  CompCode = 77
	NonExistentElem     CompCode = 86
	NonExistentFEC      CompCode = 87
	IllegalProtocol     CompCode = 94
	ConnectionTimeout   CompCode = 98
	IllegalMode         CompCode = 99
	InvalidData         CompCode = 103
	AccessDenied        CompCode = 105
	LinkBlacklisted     CompCode = 113
	NotExported         CompCode = 116
	HasQueryFunction    CompCode = 128
	NotSignalled        CompCode = 129
	ServerRedirection   CompCode = 121
	NotInitialized      CompCode = 152
	DataStale           CompCode = 156
	NonExistentProperty CompCode = 161
	ServerIdle          CompCode = 163
	AccessLocked        CompCode = 165
	InvalidDataRequest  CompCode = 179
)

// Flag bits in the upper part of the compCode field.
const (
	CodeFlagRenegotiate CompCode = 0x2000
	CodeFlagPartial     CompCode = 0x4000
	CodeFlagRedirected  CompCode = 0x8000
	codeMask            CompCode = 0x0FFF
)

// Code returns the completion code without its flag bits.
func (c CompCode) Code() CompCode { return c & codeMask }

var codeText = map[CompCode]string{
	OK:                  "success",
	IllegalFormat:       "illegal format",
	DataSizeMismatch:    "data size mismatch",
	IllegalDataSize:     "illegal data size",
	InvalidParameter:    "invalid parameter",
	StreamTransport:     "resort to stream transport",
	BufferTooSmall:      "buffer too small",
	InvalidTransport:    "invalid transport size",
	UnauthorisedAction:  "unauthorised action",
	IllegalDevice:       "illegal device",
	IllegalProperty:     "illegal property",
	OutOfRange:          "out of range",
	NotImplemented:      "not implemented",
	LinkTimeout:         "link timeout",
	AddressUnresolved:   "address unresolved",
	InvalidProperty:     "invalid property",
	InvalidLink:         "invalid link",
	CodeFailure:         "code failure",
	IllegalReadWrite:    "illegal read/write",
	ResourcesExhausted:  "resources exhausted",
	NonExistentElem:     "non existent element",
	NonExistentFEC:      "non existent FEC",
	IllegalProtocol:     "illegal protocol",
	ConnectionTimeout:   "connection timeout",
	IllegalMode:         "illegal mode",
	InvalidData:         "invalid data",
	AccessDenied:        "access denied",
	LinkBlacklisted:     "link blacklisted",
	NotExported:         "not exported",
	HasQueryFunction:    "has query function",
	NotSignalled:        "not signalled",
	ServerRedirection:   "server redirection",
	NotInitialized:      "not initialized",
	DataStale:           "data stale",
	NonExistentProperty: "non existent property",
	ServerIdle:          "server idle",
	AccessLocked:        "access locked",
	InvalidDataRequest:  "invalid data request",
}

// String is TINE's short text for the code ("illegal property"), the text
// a tine.jar server puts in the status field of an error reply [verified
// for 36].
func (c CompCode) String() string {
	if s, ok := codeText[c.Code()]; ok {
		return s
	}
	return "error " + strconv.Itoa(int(c.Code()))
}
