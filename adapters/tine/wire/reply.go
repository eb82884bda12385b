package wire

import "time"

// ReplyHeader is the 44-byte header of each link block of a reply (§4.1).
type ReplyHeader struct {
	MsgSize uint16 // 44 + StsSize + data bytes of this block
	SubID   uint16 // the request's LinkID
	// CompCode is the completion code; its upper bits may carry flags.
	CompCode  CompCode
	NumBlocks uint16 // blocks of this transfer
	BlockNum  uint16 // 1-based; 0 in error replies
	// MTU is the data capacity of a block (Format.BlockMTU); 0 in errors.
	MTU uint16
	// Format is the CF code of the data: the contract's formatOut, with
	// NULL sign-extended to 0xFFFF (see FormatField).
	Format uint16
	// Counter is the contract counter: 1 for SINGLE; the renewal countdown
	// of POLL links; 10 (acknowledged) or less on DATACHANGE/EVENT links.
	Counter    uint16
	Protocol   uint16
	XferReason XferReason
	StartTime  uint32 // the link's starttime, echoed
	StsSize    uint16 // 0 on success, StatusSize on error
	// StsCode is 129 (not signalled) on success; 0 in error replies.
	StsCode       CompCode
	Timestamp     uint32 // data timestamp, unix seconds
	TimestampUSec uint32 // microseconds
	UsrStamp      int32
	SysStamp      int32
}

// FormatField is the reply header's 16-bit format field for f: tine.jar
// sign-extends the byte, so NULL (255) becomes 0xFFFF [verified:
// write-threshold.rep001.bin].
func FormatField(f Format) uint16 {
	if f >= 128 {
		return 0xFF00 | uint16(f)
	}
	return uint16(f)
}

// DataFormat returns the format of the block's data.
func (h *ReplyHeader) DataFormat() Format { return Format(h.Format & 0xFF) }

// Time returns the data timestamp.
func (h *ReplyHeader) Time() time.Time {
	return time.Unix(int64(h.Timestamp), int64(h.TimestampUSec)*1000)
}

// SetTime sets the data timestamp (microsecond resolution).
func (h *ReplyHeader) SetTime(t time.Time) {
	h.Timestamp = uint32(t.Unix())
	h.TimestampUSec = uint32(t.Nanosecond() / 1000)
}

// AppendReplyHeader appends the 44-byte header as given (MsgSize included).
func AppendReplyHeader(dst []byte, h *ReplyHeader) []byte {
	dst = le.AppendUint16(dst, h.MsgSize)
	dst = le.AppendUint16(dst, h.SubID)
	dst = le.AppendUint16(dst, uint16(h.CompCode))
	dst = le.AppendUint16(dst, h.NumBlocks)
	dst = le.AppendUint16(dst, h.BlockNum)
	dst = le.AppendUint16(dst, h.MTU)
	dst = le.AppendUint16(dst, h.Format)
	dst = le.AppendUint16(dst, h.Counter)
	dst = le.AppendUint16(dst, h.Protocol)
	dst = le.AppendUint16(dst, uint16(h.XferReason))
	dst = le.AppendUint32(dst, h.StartTime)
	dst = le.AppendUint16(dst, h.StsSize)
	dst = le.AppendUint16(dst, uint16(h.StsCode))
	dst = le.AppendUint32(dst, h.Timestamp)
	dst = le.AppendUint32(dst, h.TimestampUSec)
	dst = le.AppendUint32(dst, uint32(h.UsrStamp))
	return le.AppendUint32(dst, uint32(h.SysStamp))
}

func (h *ReplyHeader) decode(b []byte) {
	h.MsgSize = le.Uint16(b[0:])
	h.SubID = le.Uint16(b[2:])
	h.CompCode = CompCode(le.Uint16(b[4:]))
	h.NumBlocks = le.Uint16(b[6:])
	h.BlockNum = le.Uint16(b[8:])
	h.MTU = le.Uint16(b[10:])
	h.Format = le.Uint16(b[12:])
	h.Counter = le.Uint16(b[14:])
	h.Protocol = le.Uint16(b[16:])
	h.XferReason = XferReason(le.Uint16(b[18:]))
	h.StartTime = le.Uint32(b[20:])
	h.StsSize = le.Uint16(b[24:])
	h.StsCode = CompCode(le.Uint16(b[26:]))
	h.Timestamp = le.Uint32(b[28:])
	h.TimestampUSec = le.Uint32(b[32:])
	h.UsrStamp = int32(le.Uint32(b[36:]))
	h.SysStamp = int32(le.Uint32(b[40:]))
}

// AppendStatus appends text as a StatusSize-byte NUL-padded status field.
func AppendStatus(dst []byte, text string) []byte {
	if len(text) > StatusSize-1 {
		text = text[:StatusSize-1]
	}
	return appendName(dst, text, StatusSize)
}

// ReplyBlock is one link block of a reply datagram. Status and Data alias
// the datagram.
type ReplyBlock struct {
	Header ReplyHeader
	Status []byte // StsSize bytes of status text (NUL padded)
	Data   []byte // the data bytes of this block
}

// StatusText returns the status text without its padding.
func (b *ReplyBlock) StatusText() string { return getName(b.Status) }

// ParseReply decodes a reply datagram (u16 total, then link blocks) into
// blocks, reusing its storage. The total must not exceed len(b); bytes
// after it are ignored.
func ParseReply(b []byte, blocks []ReplyBlock) ([]ReplyBlock, error) {
	blocks = blocks[:0]
	if len(b) < 2+ReplyHeaderSize {
		return blocks, malformed("reply of %d bytes", len(b))
	}
	total := int(le.Uint16(b))
	if total < 2+ReplyHeaderSize || total > len(b) {
		return blocks, malformed("reply total %d with %d bytes received", total, len(b))
	}
	for off := 2; off < total; {
		if total-off < ReplyHeaderSize {
			return blocks, malformed("%d stray bytes after block %d", total-off, len(blocks))
		}
		var blk ReplyBlock
		blk.Header.decode(b[off:])
		n, sts := int(blk.Header.MsgSize), int(blk.Header.StsSize)
		if n < ReplyHeaderSize+sts || off+n > total {
			return blocks, malformed("block %d: msgSize %d, stsSize %d, %d bytes left", len(blocks), n, sts, total-off)
		}
		blk.Status = b[off+ReplyHeaderSize : off+ReplyHeaderSize+sts]
		blk.Data = b[off+ReplyHeaderSize+sts : off+n]
		blocks = append(blocks, blk)
		off += n
	}
	return blocks, nil
}
