package contract

import (
	"sort"

	"tioga/device"
	"tioga/properties"
)

// Stream is the streaming device, /P14/rideau/tioga: what the stream
// brought, what the analysis found, what the writer wrote.
type Stream struct {
	Device *device.Device

	// The contract's properties, as existing clients use them.
	DozorPass     *properties.Property // [frame, spots, score, resolution] records; events carry batches
	DozorPassIS   *properties.Property // [frame, IS] records; same batching
	FrameCount    *properties.Property // frames processed in the current series
	AverageSpeed  *properties.Property // frames/s over the last second
	DozorAverageI *properties.Property // mean spot intensity over the series
	Status        *properties.Property // idle, receiving, processing, writing, done, error: <reason>

	// Series information.
	SeriesID       *properties.Property
	SeriesUniqueID *properties.Property
	NImages        *properties.Property
	StreamVersion  *properties.Property
	Encoding       *properties.Property
	ImageSize      *properties.Property // [width, height] px
	BitDepth       *properties.Property
	DetectorDesc   *properties.Property
	BeamCentre     *properties.Property // [x, y] px, as used by the analysis
	Distance       *properties.Property // m
	DistanceSource *properties.Property // header, or configuration (fallback)
	Wavelength     *properties.Property // Å
	PhotonEnergy   *properties.Property // eV
	SeriesStart    *properties.Property // RFC 3339 time the series header arrived
	FramesReceived *properties.Property
	FramesWritten  *properties.Property
	Hits           *properties.Property
	HitRate        *properties.Property // % of processed frames that are hits

	// Stream and pipeline counters.
	CountDropped     *properties.Property // frames lost between detector and server
	Stragglers       *properties.Property
	Malformed        *properties.Property
	MissedHeader     *properties.Property
	SeriesTimeouts   *properties.Property
	QueueDepth       *properties.Property // frames waiting for a worker now
	QueueCapacity    *properties.Property
	QueueState       *properties.Property // ok, or full: the receiver waits for the workers
	BadFrames        *properties.Property // frames that could not be decoded or analysed
	Overloaded       *properties.Property // frames with too many strong pixels to hold spots (ice, shadows, overexposure)
	IceFrames        *properties.Property // frames with an ice ring detected
	IceRingsLast     *properties.Property // d (Å) of the ice rings detected on the last frame
	HotPixels        *properties.Property // pixels in the hot-pixel map
	ShapeRejected    *properties.Property // spot candidates rejected by their shape
	BlobFragments    *properties.Property // spot candidates rejected as pieces of a rejected blob
	BackPressure     *properties.Property // times the receiver waited for a full queue
	Workers          *properties.Property
	LastError        *properties.Property
	SeriesIncomplete *properties.Property // series that ended without all their frames
	BeyondNImages    *properties.Property // frames numbered beyond nimages in the current series (kept)
	OutOfOrder       *properties.Property // frames that arrived after a higher-numbered one (kept)
	Duplicates       *properties.Property // repeated frames or identical repeated headers (dropped)
	AbortDropped     *properties.Property // messages of an aborted series dropped while draining
	Superseded       *properties.Property // series ended by a new header before their end
	Restarts         *properties.Property // of those, headers with the open series' id (detector restart)
	HeaderUnusable   *properties.Property // header parts that could not be used (series kept)

	// Stage timing of the current (or last) series, each [last, mean, max]
	// in ms: which stage limits the rate.
	TimingDecode  *properties.Property
	TimingAnalyse *properties.Property
	TimingWrite   *properties.Property
	TimingLatency *properties.Property // receive to committed

	// SSX statistics (since the last reset).
	SSXFrames      *properties.Property
	SSXHits        *properties.Property
	SSXHitRate     *properties.Property
	SSXMeanRes     *properties.Property
	SSXSpotsPerHit *properties.Property
	SSXReset       *properties.Property
	HotPixelsReset *properties.Property

	// Writer state (settings apply from the next series).
	WriterEnabled   *properties.Property
	WriterDirectory *properties.Property
	WriterPrefix    *properties.Property
	WriterRun       *properties.Property
	WriterFirst     *properties.Property
	WriterFormat    *properties.Property
	WriterGzipLevel *properties.Property
	WriterTemplate  *properties.Property
	FilesWritten    *properties.Property
	FilesFailed     *properties.Property
	FilesPending    *properties.Property
	BytesWritten    *properties.Property
	FreeDisk        *properties.Property
	WriterError     *properties.Property
	ResultsFile     *properties.Property
	HitListFile     *properties.Property
	SpotsFile       *properties.Property

	// Spots of one frame, read with the frame number as input.
	FrameSpots *properties.Property

	// WebPage is the address of the live web page (and of /metrics), empty
	// when the page is off: tioga-ctl url prints it.
	WebPage *properties.Property

	// Commands.
	Abort *properties.Property

	// Analysis parameters, by property name (added by the pipeline from the
	// analysis package's parameter table, so that names, units and limits
	// have one source).
	Params map[string]*properties.Property
}

// Record layouts of the event properties.
var (
	DozorPassColumns   = []string{"frame", "spots", "score", "resolution"}
	DozorPassISColumns = []string{"frame", "IS"}
	SpotColumns        = []string{"x", "y", "intensity", "sigma", "d"}
)

// MaxIceRings bounds last-frame-ice-rings (the analysis tests at most 64
// ice bands).
const MaxIceRings = 64

// MaxSpotsPerFrame bounds the frame-spots property.
const MaxSpotsPerFrame = 100_000

// NewStream declares the streaming device.
func NewStream() *Stream {
	d := device.New(StreamDevice, "EIGER stream: per-frame analysis (DOZOR-class), files, statistics")
	s := &Stream{Device: d, Params: map[string]*properties.Property{}}
	r, w := properties.Read, properties.Read|properties.Write

	dp := records("dozor-pass", DozorPassColumns, MaxFrames,
		"per-frame results [frame (0-based), spots, score, resolution (Å, 0 = none)]; events carry the new records every export period, and the complete array once more at the end of the series")
	dp.Events = true
	s.DozorPass = d.Add(dp)
	dpis := records("dozor-pass-IS", DozorPassISColumns, MaxFrames, "per-frame integrated signal [frame, IS] of the frame's spots; batched like dozor-pass")
	dpis.Events = true
	s.DozorPassIS = d.Add(dpis)
	s.FrameCount = d.Add(ro("frame-count", properties.Int32, "frames", "frames processed so far in the current series"))
	s.AverageSpeed = d.Add(ro("average-speed", properties.Float32, "Hz", "processed frames per second over the last second"))
	s.DozorAverageI = d.Add(ro("dozor-average-i", properties.Float32, "counts", "mean spot intensity over the series so far"))
	s.Status = d.Add(text("status", r, 256, "idle, receiving, processing, writing, done, or error: <reason>"))
	s.Status.SetText(StatusIdle)

	s.SeriesID = d.Add(ro("series-id", properties.Int32, "", "series id of the current (or last) series"))
	s.SeriesUniqueID = d.Add(text("series-unique-id", r, 128, "unique id of the series (Stream V2), empty for V1"))
	s.NImages = d.Add(ro("nimages", properties.Int32, "frames", "number of frames the series announced"))
	s.StreamVersion = d.Add(ro("stream-version", properties.Int32, "", "1 = Stream V1 (legacy JSON), 2 = Stream V2 (CBOR)"))
	s.Encoding = d.Add(text("encoding", r, 64, "pixel encoding of the stream (raw, lz4, bslz4, ...)"))
	s.ImageSize = d.Add(array("image-size", properties.Int32, 2, r, "px", "[width, height] of the frames"))
	s.BitDepth = d.Add(ro("bit-depth", properties.Int32, "bit", "bits per pixel of the frames"))
	s.DetectorDesc = d.Add(text("detector-description", r, 256, "detector description and serial number from the series header"))
	s.BeamCentre = d.Add(array("beam-centre", properties.Float64, 2, r, "px", "[x, y] beam centre used by the analysis (pixel i centred on i: the header's and Beam_xy's value minus 0.5)"))
	s.Distance = d.Add(ro("detector-distance", properties.Float64, "m", "detector distance used by the analysis and written to the files"))
	s.DistanceSource = d.Add(text("detector-distance-source", r, 64, "where detector-distance came from: header, or configuration (the header has none)"))
	s.Wavelength = d.Add(ro("wavelength", properties.Float64, "Å", "wavelength used by the analysis"))
	s.PhotonEnergy = d.Add(ro("photon-energy", properties.Float64, "eV", "photon energy from the series header"))
	s.SeriesStart = d.Add(text("series-start", r, 64, "time the series header arrived (RFC 3339)"))
	s.FramesReceived = d.Add(ro("frames-received", properties.Int32, "frames", "frames received in the current series"))
	s.FramesWritten = d.Add(ro("frames-written", properties.Int32, "frames", "frames of the current series on disk"))
	s.Hits = d.Add(ro("hits", properties.Int32, "frames", "hits in the current series"))
	s.HitRate = d.Add(ro("hit-rate", properties.Float32, "%", "hits per processed frame in the current series"))

	s.CountDropped = d.Add(ro("count-dropped", properties.Int32, "frames", "frames lost between detector and server in the current series (> 0 is an error)"))
	s.Stragglers = d.Add(ro("count-stragglers", properties.Int32, "messages", "messages of an older series dropped since start-up"))
	s.Malformed = d.Add(ro("count-malformed", properties.Int32, "messages", "malformed messages skipped since start-up"))
	s.MissedHeader = d.Add(ro("count-missed-header", properties.Int32, "messages", "images dropped because their series header was never seen"))
	s.SeriesTimeouts = d.Add(ro("count-series-timeouts", properties.Int32, "series", "series ended by the receiver because the stream stopped"))
	s.QueueDepth = d.Add(ro("queue-depth", properties.Int32, "frames", "frames received and waiting for a worker"))
	s.QueueCapacity = d.Add(ro("queue-capacity", properties.Int32, "frames", "bound of the frame queue"))
	s.QueueState = d.Add(text("queue-state", r, 128, "ok, or full: the workers cannot keep up and the receiver waits (the detector's buffer fills next)"))
	s.QueueState.SetText("ok")
	s.BadFrames = d.Add(ro("count-bad-frames", properties.Int32, "frames", "frames of the current series that could not be decoded or analysed (recorded with zero results)"))
	s.Overloaded = d.Add(ro("count-overloaded-frames", properties.Int32, "frames", "frames of the current series with so many strong pixels (ice, a shadow, overexposure) that no spots are reported for them"))
	s.IceFrames = d.Add(ro("count-ice-frames", properties.Int32, "frames", "frames of the current series on which an ice ring was detected (their ring spots are left out of spots, score and resolution unless ice-rings is off)"))
	s.IceRingsLast = d.Add(array("last-frame-ice-rings", properties.Float64, MaxIceRings, r, "Å", "d-spacings of the ice rings detected on the last frame committed (empty: none)"))
	s.HotPixels = d.Add(ro("hot-pixels", properties.Int32, "px", "pixels in the hot-pixel map (strong on far more frames than chance allows); masked from the analysis; the map persists across series until hot-pixels-reset"))
	s.ShapeRejected = d.Add(ro("count-shape-rejected", properties.Int32, "spots", "spot candidates of the current series rejected by their shape (one pixel wide: hot columns; peak more than max-separation from the centroid: streaks; wide diffuse blobs), kept out of spots, score and resolution"))
	s.BlobFragments = d.Add(ro("count-blob-fragments", properties.Int32, "spots", "spot candidates of the current series rejected as pieces of a diffuse blob (within the extent of a shape-rejected or oversized blob), kept out of spots, score and resolution"))
	s.BackPressure = d.Add(ro("count-back-pressure", properties.Int32, "frames", "frames the receiver had to hold because the queue was full"))
	s.Workers = d.Add(ro("workers", properties.Int32, "", "analysis workers (one per core by default)"))
	s.LastError = d.Add(text("last-error", r, 1024, "the last error reported by the stream, pipeline or writer"))
	s.SeriesIncomplete = d.Add(ro("count-incomplete-series", properties.Int32, "series", "series that ended without all their announced frames"))
	s.BeyondNImages = d.Add(ro("count-beyond-nimages", properties.Int32, "frames", "frames of the current series numbered at or beyond nimages: kept, written and reported, never counted as lost"))
	s.OutOfOrder = d.Add(ro("count-out-of-order", properties.Int32, "frames", "frames that arrived after a higher-numbered frame of their series, since start-up (kept: late is not lost)"))
	s.Duplicates = d.Add(ro("count-duplicates", properties.Int32, "messages", "repeated frames and byte-identical repeated series headers dropped since start-up"))
	s.AbortDropped = d.Add(ro("count-abort-dropped", properties.Int32, "messages", "messages of an aborted series dropped while waiting for its end, since start-up"))
	s.Superseded = d.Add(ro("count-series-superseded", properties.Int32, "series", "series ended incomplete by a new header before their end message, since start-up"))
	s.Restarts = d.Add(ro("count-series-restarts", properties.Int32, "series", "new headers carrying the open series' id (detector restarted or re-armed), since start-up; each ended the open series and started a new one"))
	s.HeaderUnusable = d.Add(ro("count-header-parts-unusable", properties.Int32, "parts", "series header parts that could not be used (e.g. an empty flatfield or mask), since start-up; the series goes on without them"))

	s.TimingDecode = d.Add(timing("timing-decode", "decoding a frame (LZ4, bitshuffle) in a worker"))
	s.TimingAnalyse = d.Add(timing("timing-analyse", "analysing a frame (background, spots, score) in a worker"))
	s.TimingWrite = d.Add(timing("timing-write", "encoding and writing a frame's file (byte-offset, gzip, disk) in a worker"))
	s.TimingLatency = d.Add(timing("timing-latency", "from the arrival of a frame at the receiver to its commit (queue wait, decode, analyse, write, ordering)"))
	for _, t := range []*properties.Property{s.TimingDecode, s.TimingAnalyse, s.TimingWrite, s.TimingLatency} {
		_ = t.Set(properties.Float64s(make([]float64, TimingLen)))
	}

	s.SSXFrames = d.Add(ro("ssx-frames", properties.Int32, "frames", "frames analysed since the statistics were reset"))
	s.SSXHits = d.Add(ro("ssx-hits", properties.Int32, "frames", "hits since the statistics were reset"))
	s.SSXHitRate = d.Add(ro("ssx-hit-rate", properties.Float32, "%", "hit rate since the statistics were reset"))
	s.SSXMeanRes = d.Add(ro("ssx-mean-resolution", properties.Float32, "Å", "mean resolution limit of the hits (0 = none)"))
	s.SSXSpotsPerHit = d.Add(ro("ssx-spots-per-hit", properties.Float32, "spots", "mean number of spots per hit"))
	s.SSXReset = d.Add(cmd("ssx-reset", properties.Int32, "reset the SSX statistics", "ignored (write 0)"))
	s.HotPixelsReset = d.Add(cmd("hot-pixels-reset", properties.Int32, "empty the hot-pixel map (after a detector's pixel mask was renewed)", "ignored (write 0)"))

	s.WriterEnabled = d.Add(rw("writer-enabled", properties.Bool, "", "write frames to disk (applies from the next series)", nil))
	s.WriterDirectory = d.Add(text("writer-directory", w, 4096, "output directory (applies from the next series)"))
	s.WriterPrefix = d.Add(text("writer-prefix", w, 255, "file name prefix (applies from the next series)"))
	s.WriterRun = d.Add(rw("writer-run", properties.Int32, "", "run number in the file names (applies from the next series)", lim(0, 99999)))
	s.WriterFirst = d.Add(rw("writer-first-image", properties.Int32, "", "number of the first image in the file names (usually 1)", lim(0, 1e9)))
	s.WriterFormat = d.Add(text("writer-format", w, 16, "file format: cbf, cbf.gz or tiff (applies from the next series)"))
	s.WriterGzipLevel = d.Add(rw("writer-gzip-level", properties.Int32, "", "gzip level of .cbf.gz files: 1-9, or 0 = auto (Huffman-only for dense frames, level 1 for sparse)", lim(0, 9)))
	s.WriterTemplate = d.Add(text("writer-template", r, 4096, "path template of the current series' images"))
	s.FilesWritten = d.Add(ro("files-written", properties.Int32, "files", "image files written in the current series"))
	s.FilesFailed = d.Add(ro("files-failed", properties.Int32, "files", "image files that could not be written in the current series"))
	s.FilesPending = d.Add(ro("files-pending", properties.Int32, "files", "frames analysed and not yet on disk"))
	s.BytesWritten = d.Add(ro("bytes-written", properties.Float64, "B", "bytes written in the current series"))
	s.FreeDisk = d.Add(ro("free-disk", properties.Float64, "B", "free space of the output file system"))
	s.WriterError = d.Add(text("writer-error", r, 1024, "the last write error (with the path), empty when none"))
	s.ResultsFile = d.Add(text("results-file", r, 4096, "per-frame results of the series (JSON lines)"))
	s.HitListFile = d.Add(text("hit-list-file", r, 4096, "full paths of the hit images, one per line"))
	s.SpotsFile = d.Add(text("spots-file", r, 4096, "spot lists of the series"))

	fs := records("frame-spots", SpotColumns, MaxSpotsPerFrame, "spots of one frame [x, y, intensity, sigma, d]; read with the frame number as input")
	fs.Arg = properties.Int32
	fs.ArgDescription = "frame number (0-based)"
	s.FrameSpots = d.Add(fs)

	s.WebPage = d.Add(text("web-page", r, 256, "address of the live web page (metrics at <address>metrics); empty when [http] is off"))
	s.Abort = d.Add(cmd("abort", properties.Int32, "drop the rest of the current series (the receiver drains to its end message)", "ignored (write 0)"))
	return s
}

// TimingLen is the length of the stage timing arrays: [last, mean, max].
const TimingLen = 3

func timing(name, what string) properties.Spec {
	return array(name, properties.Float64, TimingLen, properties.Read, "ms",
		"time per frame "+what+" in the current series: [last, mean, max] in ms (0 before the first frame)")
}

// AddParameter publishes one analysis parameter as a writable property.
func (s *Stream) AddParameter(spec properties.Spec) *properties.Property {
	spec.Access = properties.Read | properties.Write
	p := s.Device.Add(spec)
	s.Params[spec.Name] = p
	return p
}

// ParameterNames returns the analysis parameter names, sorted.
func (s *Stream) ParameterNames() []string {
	names := make([]string, 0, len(s.Params))
	for n := range s.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Scan is the raster-scan device, /P14/rideau/scan: the geometry of the
// raster and the scores laid out on it.
type Scan struct {
	Device *device.Device

	Lines         *properties.Property
	FramesPerLine *properties.Property
	Serpentine    *properties.Property
	Source        *properties.Property // where the geometry came from: property or header
	Progress      *properties.Property // % of the grid's frames processed
	FramesDone    *properties.Property
	ScoreGrid     *properties.Property // lines x frames-per-line scores, row-major by line
	SpotsGrid     *properties.Property
	BestFrame     *properties.Property
	BestCell      *properties.Property // [line, column]
	BestScore     *properties.Property
	HeatMap       *properties.Property // path of the PNG heat map
}

// MaxGridCells bounds the grid arrays.
const MaxGridCells = MaxFrames

// NewScan declares the scan device.
func NewScan() *Scan {
	d := device.New(ScanDevice, "raster scan: geometry and the score grid")
	s := &Scan{Device: d}
	r := properties.Read
	s.Lines = d.Add(rw("lines", properties.Int32, "lines", "lines of the raster (0 = not a raster; the series header may set it)", lim(0, MaxFrames)))
	s.FramesPerLine = d.Add(rw("frames-per-line", properties.Int32, "frames", "frames per line of the raster", lim(0, MaxFrames)))
	s.Serpentine = d.Add(rw("serpentine", properties.Bool, "", "odd lines run backwards (column F-1-(n % F))", nil))
	s.Source = d.Add(text("geometry-source", r, 32, "where the grid geometry came from: property, header or none"))
	s.Source.SetText("none")
	s.Progress = d.Add(ro("progress", properties.Float32, "%", "share of the grid's frames processed"))
	s.FramesDone = d.Add(ro("frames-done", properties.Int32, "frames", "frames of the grid processed"))
	s.ScoreGrid = d.Add(array("score-grid", properties.Float32, MaxGridCells, r, "", "scores as a lines x frames-per-line array, row-major by line (serpentine undone); -1 = not yet measured"))
	s.SpotsGrid = d.Add(array("spots-grid", properties.Float32, MaxGridCells, r, "spots", "spot counts laid out like score-grid"))
	s.BestFrame = d.Add(ro("best-frame", properties.Int32, "", "frame with the highest score (-1 = none yet)"))
	s.BestFrame.SetInt32(-1)
	s.BestCell = d.Add(array("best-cell", properties.Int32, 2, r, "", "[line, column] of the best frame"))
	s.BestScore = d.Add(ro("best-score", properties.Float32, "", "highest score so far"))
	s.HeatMap = d.Add(text("heat-map", r, 4096, "PNG heat map of the score grid, written at the end of the series"))
	return s
}

// Tracker is the image-tracker device, /P14/image-tracker/img-tracker.
type Tracker struct {
	Device *device.Device

	LoadState     *properties.Property // tracking enabled
	Filter        *properties.Property // only hits
	SpotList      *properties.Property // draw the frame's spots
	Status        *properties.Property
	Load          *properties.Property // command: show this path now
	Queue         *properties.Property // top-N [frame, score, spots, resolution]
	QueuePaths    *properties.Property // paths of the queue, one per line, same order
	Shown         *properties.Property // path shown last
	ADXVHost      *properties.Property
	ADXVPort      *properties.Property
	DisplayPeriod *properties.Property
	QueueSize     *properties.Property
}

// MaxTrackerQueue bounds the queue property.
const MaxTrackerQueue = 10_000

// NewTracker declares the image-tracker device.
func NewTracker() *Tracker {
	d := device.New(TrackerDevice, "image tracker: keeps written frames sorted by score and shows the best in ADXV")
	t := &Tracker{Device: d}
	r, w := properties.Read, properties.Read|properties.Write
	t.LoadState = d.Add(rw("load-state", properties.Bool, "", "tracking enabled; set true at the start of every collection, false before a manual load", nil))
	t.Filter = d.Add(rw("filter", properties.Bool, "", "show only frames with score > 0 (hits)", nil))
	t.SpotList = d.Add(rw("spot-list", properties.Bool, "", "draw the frame's spots in ADXV", nil))
	t.Status = d.Add(text("status", r, 32, "unknown, busy, tracking, disabled, error or ready"))
	t.Status.SetText(TrackerUnknown)
	t.Load = d.Add(cmd("load", properties.Text, "show this image in ADXV now (switches tracking off)", "full image path"))
	q := records("queue", []string{"frame", "score", "spots", "resolution"}, MaxTrackerQueue, "best written frames, best first [frame, score, spots, resolution]")
	t.Queue = d.Add(q)
	t.QueuePaths = d.Add(text("queue-paths", r, MaxTrackerQueue*256, "image paths of the queue, one per line, in the order of queue"))
	t.Shown = d.Add(text("shown", r, 4096, "path of the image shown last"))
	t.ADXVHost = d.Add(text("adxv-host", w, 255, "host where ADXV listens (adxv -socket)"))
	t.ADXVPort = d.Add(rw("adxv-port", properties.Int32, "", "ADXV socket port", lim(1, 65535)))
	t.DisplayPeriod = d.Add(rw("display-period", properties.Float64, "s", "how often the best frame not yet shown is sent to ADXV", lim(0.05, 3600)))
	t.QueueSize = d.Add(rw("queue-size", properties.Int32, "frames", "how many best frames the queue keeps", lim(1, MaxTrackerQueue)))
	return t
}
