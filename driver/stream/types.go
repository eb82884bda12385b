package stream

import (
	"encoding/json"
	"time"

	"tioga/driver/codec"
)

// Kind says which of the three events a Message carries.
type Kind uint8

const (
	KindInvalid Kind = iota // the zero Message
	KindSeries              // series header / start message
	KindImage               // one frame
	KindEnd                 // end of series (received or synthesized)
)

func (k Kind) String() string {
	switch k {
	case KindSeries:
		return "series"
	case KindImage:
		return "image"
	case KindEnd:
		return "end"
	}
	return "invalid"
}

// Message is one parsed stream message, and also the event the Receiver
// delivers. Exactly one of the three pointers is set.
type Message struct {
	Series *Series
	Image  *Image
	End    *End
}

// Kind reports which pointer is set.
func (m Message) Kind() Kind {
	switch {
	case m.Series != nil:
		return KindSeries
	case m.Image != nil:
		return KindImage
	case m.End != nil:
		return KindEnd
	}
	return KindInvalid
}

// SeriesID is the series the message belongs to (0 for the zero Message).
func (m Message) SeriesID() uint64 {
	switch {
	case m.Series != nil:
		return m.Series.ID
	case m.Image != nil:
		return m.Image.SeriesID
	case m.End != nil:
		return m.End.SeriesID
	}
	return 0
}

// Series is the header of one acquisition series (V1 dheader + parts, V2
// start message), reduced to the facts the server needs plus the complete
// configuration as sent.
//
// The typed fields are derived from Config when parsing. When building, they
// are authoritative: a builder writes every typed field under its protocol
// key and copies the remaining Config keys verbatim, so a parsed Series
// builds back into an equivalent message.
type Series struct {
	Version      int    // 1 or 2
	ID           uint64 // series id (V1 "series", V2 "series_id")
	UniqueID     string // V2 series_unique_id; "" in V1
	HeaderDetail string // V1 as sent ("all", "basic", "none"); V2 "all" when tables were sent, else "basic"

	// Config holds every configuration key as sent, unknown keys included:
	// V1 the config part (JSON values: float64, string, bool, []any,
	// map[string]any), V2 every start-message key except "type" (CBOR values:
	// uint64/int64, float64, string, []byte, []any, map[string]any,
	// time.Time). The V2 tables are not duplicated here: Config["flatfield"],
	// ["pixel_mask"] and ["countrate_correction_lookup_table"] hold the same
	// []Table / *Table as the typed fields.
	Config map[string]any

	Description  string // "Dectris Eiger 4M"
	SerialNumber string // "E-08-0115"

	Width, Height          int     // pixels (fast, slow)
	PixelSizeX, PixelSizeY float64 // metres
	// BeamCenterX and BeamCenterY are in pixels from the first pixel's
	// outer edge (DECTRIS, NeXus, and CBF Beam_xy as dxtbx reads it: the
	// centre of pixel i is at i + PixelCentre).
	BeamCenterX float64
	BeamCenterY float64

	// DetectorDistance is in metres; 0 means unknown. V2 start messages have
	// no distance: it is taken from user_data["detector_distance"] when the
	// user sends it there.
	DetectorDistance float64

	Wavelength   float64 // Å
	PhotonEnergy float64 // eV (V1 photon_energy, V2 incident_energy)

	// ThresholdEnergy is V1's threshold, or in V2 the threshold of the first
	// channel; ChannelThresholds has every V2 channel's threshold (eV).
	ThresholdEnergy   float64
	ChannelThresholds map[string]float64

	CountTime float64 // seconds
	FrameTime float64 // seconds

	// NumberOfImages is the number of images the series will send: V1
	// nimages*ntrigger, V2 number_of_images.
	NumberOfImages uint64

	// BitDepth and ElemSize describe the image pixels when the header
	// announces them (V1 bit_depth_image, V2 image_dtype); 0 = not announced,
	// the images carry their own element size.
	BitDepth int
	ElemSize int

	// SaturationValue is the largest valid count as announced (V2
	// saturation_value, V1 countrate_correction_count_cutoff); 0 = not
	// announced. Use Saturation to get the effective value.
	SaturationValue uint64

	SensorMaterial  string  // "Si", "CdTe"
	SensorThickness float64 // metres

	// Goniometer maps an axis name ("omega", "phi", "chi", "kappa",
	// "two_theta") to its start and increment (degrees).
	Goniometer map[string]Axis

	// Channels lists the active V2 channels in wire order ("threshold_1",
	// ...); nil in V1.
	Channels []string

	// Flatfield, PixelMask and CountRateTable are sent with header_detail
	// "all" only. V1 sends one flatfield and one mask (Channel ""); V2 one
	// per channel.
	Flatfield      []Table
	PixelMask      []Table
	CountRateTable *Table

	// Appendix is the V1 header appendix or the V2 user_data.
	Appendix UserData

	// Unusable lists the parts of the header that were sent but could not
	// be used (a V1 flatfield, mask or count-rate table with an empty
	// body); the series is delivered without them.
	Unusable []string

	// ArmDate is V2's arm_date, or V1's data_collection_date (zero when
	// absent or unreadable): the time the files are stamped with.
	ArmDate time.Time
	Arrival time.Time // when the receiver got the message; zero from the parsers
}

// PixelCentre is where the centre of pixel i lies in the detector's beam
// centre convention: at i + 0.5. The analysis and the simulator's ground
// truth centre pixel i on i, so they take BeamCenterX - PixelCentre.
const PixelCentre = 0.5

// Axis is one goniometer axis of a series.
type Axis struct {
	Start     float64 // degrees
	Increment float64 // degrees per image
}

// Omega returns the omega axis (zero when not sent).
func (s *Series) Omega() Axis { return s.Goniometer["omega"] }

// Saturation returns the largest valid pixel value for images of elemSize
// bytes: the announced SaturationValue, else all-ones minus one (all-ones
// itself marks masked and gap pixels, so it can never be a count).
func (s *Series) Saturation(elemSize int) uint64 {
	if s.SaturationValue != 0 {
		return s.SaturationValue
	}
	switch elemSize {
	case 1, 2, 4:
		return 1<<(8*uint(elemSize)) - 2
	}
	return 0
}

// Table is one of the 2-D tables of a series header: a flatfield (float32),
// a pixel mask (uint32) or a count-rate table. Exactly one of Float32 and
// Uint32 is set, following the element type sent; narrower unsigned types
// are widened to uint32.
type Table struct {
	Channel string // V2 channel; "" in V1
	Width   int    // fast axis (V1 shape[0], V2 dims[1]); for 1-D tables the length
	Height  int    // slow axis; 1 for 1-D tables
	Float32 []float32
	Uint32  []uint32
}

// Len is the number of values.
func (t *Table) Len() int {
	if t.Float32 != nil {
		return len(t.Float32)
	}
	return len(t.Uint32)
}

// UserData is a free-form value the user asked the detector to pass through
// (SIMPLON header_appendix / image_appendix, V2 user_data).
type UserData struct {
	// Raw is the value as it came off the wire: the V1 part verbatim, or the
	// CBOR encoding of the V2 user_data item. nil when nothing was sent.
	Raw []byte
	// Value is Raw parsed: V1 the JSON value when the part is valid JSON
	// (else nil); V2 the CBOR value, or the JSON value when it is a text
	// string holding JSON.
	Value any
	// JSON reports that Value was parsed from JSON text.
	JSON bool

	cbor bool // Raw is CBOR (set by the V2 parser), so V1 cannot send it verbatim
}

// Ticks is a detector clock reading: Count ticks of a clock running at Rate
// Hz. V2 sends it as the rational [Count, Rate]; V1 sends bare ticks and
// Rate is 0 because the tick length is not on the wire (20 ns on the EIGER
// 4M of the fixtures: configure it, never guess it).
type Ticks struct {
	Count uint64
	Rate  uint64 // Hz; 0 = unknown
}

// Seconds converts to seconds, using defaultRate (Hz) when the reading has no
// rate of its own. ok is false when neither rate is known.
func (t Ticks) Seconds(defaultRate uint64) (sec float64, ok bool) {
	rate := t.Rate
	if rate == 0 {
		rate = defaultRate
	}
	if rate == 0 {
		return 0, false
	}
	return float64(t.Count) / float64(rate), true
}

// Pixels is the encoded pixel data of one channel of one frame.
type Pixels struct {
	Channel  string // V2 channel name; "" in V1
	Width    int    // fast axis
	Height   int    // slow axis
	ElemSize int    // bytes per pixel: 1, 2 or 4
	Encoding codec.Encoding
	// Data is the encoded pixels. It aliases the received message buffer:
	// treat it as read-only; it stays valid as long as the Image is held
	// and not released (Image.Release).
	Data []byte
}

// Image is one frame. The embedded Pixels is the channel to score (V1: the
// only one; V2: the configured channel, else the first of the start
// message's channels, else the first present).
type Image struct {
	Version  int
	SeriesID uint64
	UniqueID string // V2 series_unique_id
	Number   uint64 // image number, 0-based (V1 "frame", V2 "image_id")

	Pixels
	// Other holds the other V2 channels of the frame in wire order; nil when
	// the frame has one channel.
	Other []Pixels

	// Hash is V1's "hash" as sent, when it is 32 hex digits (HasHash). The
	// real detector sends the md5 of part 2 (the dimage_d header, not the
	// pixels); simulators send "", random hex or the md5 of the pixels, so
	// the parser records it and never judges it.
	Hash    [16]byte
	HasHash bool

	StartTime, StopTime, RealTime Ticks

	// SeriesDate is V2's series_date, the start of the series that the
	// image times count from; zero in V1.
	SeriesDate time.Time

	// Appendix is the V1 image appendix part verbatim, or the CBOR encoding
	// of the V2 user_data; nil when none was sent. Parse it with UserData.
	Appendix []byte

	Arrival time.Time // when the receiver got the message; zero from the parsers

	// buf is the receiver's message buffer the Image lives in (see
	// Release); nil for Images the Receiver did not make.
	buf *msgBuf
}

// UserData parses the image appendix (see UserData.Value). It allocates, so
// the per-frame path calls it only when it needs the appendix.
func (img *Image) UserData() UserData {
	if img.Version == 2 {
		return parseV2UserData(img.Appendix)
	}
	return parseV1Appendix(img.Appendix)
}

// PixelCount is Width*Height.
func (p *Pixels) PixelCount() int { return p.Width * p.Height }

// DecodedSize is the size in bytes of the decoded pixels.
func (p *Pixels) DecodedSize() int { return p.Width * p.Height * p.ElemSize }

// EndReason says why a series ended.
type EndReason string

const (
	// EndReceived: the detector's end message arrived.
	EndReceived EndReason = "received"
	// EndSuperseded: a new series header arrived before this series' end.
	EndSuperseded EndReason = "superseded"
	// EndTimeout: no message arrived for the configured series timeout.
	EndTimeout EndReason = "timeout"
	// EndAborted: the consumer called Receiver.Abort.
	EndAborted EndReason = "aborted"
	// EndShutdown: the receiver stopped while the series was open.
	EndShutdown EndReason = "shutdown"
)

// End closes a series.
type End struct {
	Version  int
	SeriesID uint64
	UniqueID string // V2 series_unique_id

	// Synthesized is true when the receiver made this End up (Reason says
	// why) instead of receiving the detector's end message.
	Synthesized bool
	Reason      EndReason

	// Images is the number of images the receiver delivered for the series,
	// Expected the number the header announced (0 when unknown). Both are 0
	// from the parsers.
	Images   uint64
	Expected uint64

	Arrival time.Time
}

// parseV1Appendix interprets a V1 appendix part: JSON when it parses as JSON.
func parseV1Appendix(raw []byte) UserData {
	if raw == nil {
		return UserData{}
	}
	u := UserData{Raw: raw}
	var v any
	if json.Valid(raw) && json.Unmarshal(raw, &v) == nil {
		u.Value, u.JSON = v, true
	}
	return u
}
