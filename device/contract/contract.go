// Package contract declares the devices and properties Tioga serves, under
// the names, types and access that existing beamline clients rely on
// (shared/docs/control-contract.md). It only declares: each device is a
// struct of property handles that the drivers set and whose write hooks
// they install. Keeping the names in one place is what keeps MXCuBE and
// the other clients working when the code behind them changes.
package contract

import (
	"fmt"

	"tioga/device"
	"tioga/device/detectormodel"
	"tioga/properties"
)

// Default names, as the beamline's clients are configured today.
const (
	DefaultContext       = "P14"
	DefaultStreamServer  = "rideau"
	LegacyStreamServer   = "tioga" // older name of the streaming server, still served
	StreamDevice         = "tioga"
	ScanDevice           = "scan"
	DefaultTrackerServer = "image-tracker"
	TrackerDevice        = "img-tracker"
	DefaultDetectorSrv   = "detector"
)

// MaxFrames is the number of frames per series whose results are kept in
// memory and published (dozor-pass holds up to this many records).
const MaxFrames = 1_000_000

// Status vocabulary of the streaming device (control contract).
const (
	StatusIdle       = "idle"
	StatusReceiving  = "receiving"
	StatusProcessing = "processing"
	StatusWriting    = "writing"
	StatusDone       = "done"
)

// ErrorStatus formats the contract's "error: <reason>" status.
func ErrorStatus(reason string) string { return "error: " + reason }

// Tracker status vocabulary (control contract).
const (
	TrackerUnknown  = "unknown"
	TrackerBusy     = "busy"
	TrackerTracking = "tracking"
	TrackerDisabled = "disabled"
	TrackerError    = "error"
	TrackerReady    = "ready"
)

// Names configures where the devices appear.
type Names struct {
	Context        string // P14
	StreamServer   string // rideau
	StreamAliases  []string
	TrackerServer  string   // image-tracker
	DetectorServer string   // detector
	Detectors      []string // profile names published as detector devices
}

// DefaultNames returns the names of control-contract.md.
func DefaultNames() Names {
	return Names{
		Context:        DefaultContext,
		StreamServer:   DefaultStreamServer,
		StreamAliases:  []string{LegacyStreamServer},
		TrackerServer:  DefaultTrackerServer,
		DetectorServer: DefaultDetectorSrv,
		Detectors:      []string{"eiger16m", "eiger4m", "eiger16m-cdte", "eiger4m-cdte"},
	}
}

// Devices is the whole tree with typed handles.
type Devices struct {
	Tree      *device.Tree
	Stream    *Stream
	Scan      *Scan
	Tracker   *Tracker
	Detectors []*Detector
	// Downstream reports the processing of hits by cluster jobs.
	Downstream *Downstream
}

// Build creates every device and its servers.
func Build(n Names) (*Devices, error) {
	if n.Context == "" || n.StreamServer == "" || n.TrackerServer == "" || n.DetectorServer == "" {
		return nil, fmt.Errorf("device names: context and server names must be set")
	}
	tree := device.NewTree()
	streamSrv := device.NewServer(n.Context, n.StreamServer, "TIOGA", "EIGER stream analysis server (Tioga)")
	trackerSrv := device.NewServer(n.Context, n.TrackerServer, "IMGTRK", "image tracker: shows the best frame in ADXV")
	detSrv := device.NewServer(n.Context, n.DetectorServer, "EIGER", "EIGER detectors")
	out := &Devices{Tree: tree, Stream: NewStream(), Scan: NewScan(), Tracker: NewTracker(), Downstream: NewDownstream()}
	streamSrv.MustAdd(out.Stream.Device)
	streamSrv.MustAdd(out.Scan.Device)
	streamSrv.MustAdd(out.Downstream.Device)
	trackerSrv.MustAdd(out.Tracker.Device)
	for _, name := range n.Detectors {
		p, ok := detectormodel.ByName(name)
		if !ok {
			return nil, fmt.Errorf("detector device %q: no such detector profile", name)
		}
		d := NewDetector(p)
		out.Detectors = append(out.Detectors, d)
		detSrv.MustAdd(d.Device)
	}
	for _, s := range []*device.Server{streamSrv, trackerSrv, detSrv} {
		if err := tree.Add(s); err != nil {
			return nil, err
		}
	}
	for _, a := range n.StreamAliases {
		if err := tree.Alias(streamSrv, a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Detector returns the detector device of the named profile.
func (d *Devices) Detector(name string) (*Detector, bool) {
	for _, x := range d.Detectors {
		if x.Profile.Name == name {
			return x, true
		}
	}
	return nil, false
}

// Short constructors keep the tables below readable.

func ro(name string, e properties.Elem, units, desc string) properties.Spec {
	return properties.Spec{Name: name, Elem: e, Access: properties.Read, Units: units, Description: desc}
}

func rw(name string, e properties.Elem, units, desc string, lim *properties.Limits) properties.Spec {
	return properties.Spec{Name: name, Elem: e, Access: properties.Read | properties.Write, Units: units, Description: desc, Limits: lim}
}

func text(name string, access properties.Access, maxLen int, desc string) properties.Spec {
	return properties.Spec{Name: name, Elem: properties.Text, Access: access, MaxLen: maxLen, Description: desc}
}

func cmd(name string, e properties.Elem, desc, arg string) properties.Spec {
	return properties.Spec{Name: name, Elem: e, Access: properties.Command, Description: desc, ArgDescription: arg, MaxLen: textCmdLen(e)}
}

func textCmdLen(e properties.Elem) int {
	if e == properties.Text {
		return 4096
	}
	return 0
}

func array(name string, e properties.Elem, n int, access properties.Access, units, desc string) properties.Spec {
	return properties.Spec{Name: name, Elem: e, Shape: properties.Array, MaxLen: n, Access: access, Units: units, Description: desc}
}

func records(name string, cols []string, maxRows int, desc string) properties.Spec {
	return properties.Spec{Name: name, Elem: properties.Float32, Shape: properties.Records, Width: len(cols), Columns: cols,
		MaxLen: maxRows, Access: properties.Read, Description: desc}
}

func lim(min, max float64) *properties.Limits { return &properties.Limits{Min: min, Max: max} }
