// Command tioga is the streaming server between an EIGER detector and the
// beamline's control system: it receives the detector's ZeroMQ stream,
// analyses and writes every frame, and serves the results as device
// properties over TINE and OPC UA.
//
// Usage:
//
//	tioga [-config tioga.toml]     run the server
//	tioga -print-config            print the default configuration
//
// SIGINT or SIGTERM stops it cleanly: the open series is finished (every
// accepted frame analysed, written and published) before it exits. Its
// long-lived components (stream receiver, pipeline, TINE, OPC UA, web page,
// metrics, image tracker, downstream hand-off) each have Run(ctx) error and
// run in one group (lifecycle.go): the first to fail stops the others the
// same way, and the process exits with status 1 and a last log line naming
// it (ended_by). Periodic work (detector status poll, housekeeping, the
// tracker's display, the protocol servers' own jobs) runs on one gocron
// scheduler. Every component gets the process's logger and names itself
// in it (a "component" field).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/rs/zerolog"

	"tioga/adapters/metrics"
	"tioga/adapters/opcua"
	"tioga/adapters/tine"
	"tioga/adapters/web"
	"tioga/device"
	"tioga/device/contract"
	"tioga/driver/adxv"
	"tioga/driver/dcu"
	"tioga/driver/downstream"
	"tioga/driver/pipeline"
	"tioga/driver/raster"
	"tioga/driver/stream"
	"tioga/driver/tracker"
	"tioga/driver/writer"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	configPath := flag.String("config", "", "configuration file (TOML); defaults apply to every key it omits")
	printConfig := flag.Bool("print-config", false, "print the configuration in effect (defaults plus -config) and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: tioga [-config tioga.toml] [-print-config] [-version]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := checkArgs(flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "tioga:", err)
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println("tioga", version, runtime.Version())
		return
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tioga:", err)
		os.Exit(2)
	}
	if *printConfig {
		text, err := cfg.TOML()
		if err != nil {
			fmt.Fprintln(os.Stderr, "tioga:", err)
			os.Exit(1)
		}
		fmt.Print(text)
		return
	}
	if err := cfg.CheckStartup(); err != nil {
		fmt.Fprintln(os.Stderr, "tioga:", err)
		os.Exit(2)
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tioga:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		ev := log.Error().Err(err)
		if ce, ok := errors.AsType[*componentError](err); ok {
			ev = ev.Str("ended_by", ce.Component)
		}
		ev.Msg("tioga stopped")
		os.Exit(1)
	}
	log.Info().Str("ended_by", "signal").Msg("tioga stopped")
}

func writerConfig(cfg Config, log zerolog.Logger) writer.Config {
	w := cfg.WriterConfig()
	w.Logger = log
	return w
}

func newLogger(c LogConfig) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || level == zerolog.NoLevel {
		return zerolog.Logger{}, fmt.Errorf("log.level %q: trace, debug, info, warn or error", c.Level)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit = time.Second
	zerolog.DurationFieldInteger = false
	var l zerolog.Logger
	if c.Format == "json" {
		l = zerolog.New(os.Stderr)
	} else {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"})
	}
	return l.Level(level).With().Timestamp().Logger(), nil
}

// run assembles the server and runs it until ctx ends.
func run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	dev, err := contract.Build(contract.Names{
		Context: cfg.Names.Context, StreamServer: cfg.Names.StreamServer, StreamAliases: cfg.Names.StreamAliases,
		TrackerServer: cfg.Names.TrackerServer, DetectorServer: cfg.Names.DetectorServer, Detectors: cfg.Names.Detectors,
	})
	if err != nil {
		return err
	}
	sched, err := gocron.NewScheduler()
	if err != nil {
		return err
	}
	sched.Start()
	defer func() { _ = sched.Shutdown() }()

	// The receiver first: the detector sends the series header at arm time,
	// and a receiver that connects later never sees it.
	recv, err := stream.New(stream.Config{
		Endpoint: cfg.Stream.Endpoint, Bind: cfg.Stream.Bind, Version: cfg.Stream.Version, Channel: cfg.Stream.Channel,
		SeriesTimeout: time.Duration(cfg.Stream.SeriesTimeout), ReceiveHWM: cfg.Stream.ReceiveHWM,
		Forward: cfg.Stream.Forward, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("stream receiver: %w", err)
	}

	var sink pipeline.FrameSink
	var tr *tracker.Tracker
	if cfg.Tracker.Enabled {
		tr, err = tracker.New(dev.Tracker, sched, tracker.Config{
			ADXV:          adxv.Config{Host: cfg.Tracker.ADXVHost, Port: cfg.Tracker.ADXVPort, KeepOpen: cfg.Tracker.KeepOpen},
			DisplayPeriod: time.Duration(cfg.Tracker.DisplayPeriod), QueueSize: cfg.Tracker.QueueSize,
			Logger: log,
		})
		if err != nil {
			return fmt.Errorf("image tracker: %w", err)
		}
		defer tr.Close() // a tracker whose Run never started (an error below)
		sink = trackerSink{tr}
	} else {
		dev.Tracker.Status.SetText(contract.TrackerDisabled)
	}

	var down *downstream.Manager
	if cfg.Downstream.Enabled {
		down, err = newDownstream(cfg.Downstream, dev.Downstream, sched, log)
		if err != nil {
			return fmt.Errorf("downstream: %w", err)
		}
		sink = fanOut{sink, downstreamSink{down}}
	}

	link, err := dcu.New(dcu.Config{URL: cfg.Detector.SimplonURL, Version: cfg.Detector.SimplonVersion,
		PollInterval: time.Duration(cfg.Detector.PollInterval), Detector: cfg.Detector.Name, Logger: log}, dev, sched)
	if err != nil {
		return fmt.Errorf("detector link: %w", err)
	}

	params, err := cfg.AnalysisParams()
	if err != nil {
		return err
	}
	pipe, err := pipeline.New(pipeline.Config{
		Workers: cfg.Pipeline.Workers, QueueDepth: cfg.Pipeline.QueueDepth, ExportPeriod: time.Duration(cfg.Pipeline.ExportPeriod),
		DefaultDistance: cfg.Detector.Distance, DefaultBeamX: cfg.Detector.BeamX, DefaultBeamY: cfg.Detector.BeamY,
		DefaultWavelength: cfg.Detector.Wavelength, Channel: cfg.Stream.Channel,
		Writer:        writerConfig(cfg, log),
		WriterEnabled: cfg.Writer.Enabled, Analysis: params,
		Scan:          raster.Grid{Lines: cfg.Scan.Lines, FramesPerLine: cfg.Scan.FramesPerLine, Serpentine: cfg.Scan.Serpentine},
		AccumulateSSX: cfg.Pipeline.AccumulateSSX, Logger: log,
	}, dev, sched, recv, sink, link)
	if err != nil {
		return err
	}

	// Two stages stop in order. The front (receiver, protocol servers,
	// web page, metrics) runs under g's context, which ends at SIGTERM or
	// at the first component's failure. The pipeline then finishes the open
	// series (the receiver closes its events when it stops), and only after
	// it has returned do the sinks it hands frames to stop (the image
	// tracker, the downstream hand-off: it submits the last chunk).
	g := newGroup(ctx, log)
	front := g.Context()
	back, stopBack := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBack()
	defer recv.Close() // a receiver whose Run never started (an error below)

	var ts *tine.Server
	var us *opcua.Server
	if cfg.TINE.Enabled {
		ts, err = tine.NewServer(dev.Tree, tine.Config{PortOffset: cfg.TINE.PortOffset, Listen: cfg.TINE.Listen, TCP: cfg.TINE.TCP,
			WriteUsers: cfg.TINE.WriteUsers, WriteNets: cfg.TINE.WriteNets, FECName: cfg.TINE.FECName,
			Export: cfg.TINE.Export, ENSAddress: cfg.TINE.ENS, MaxUDPBlocks: cfg.TINE.MaxUDPBlocks, Scheduler: sched, Logger: log})
		if err != nil {
			return fmt.Errorf("TINE server: %w", err)
		}
		defer ts.Close()
		log.Info().Str("udp", ts.Addr().String()).Msg("TINE server listening")
	}
	if cfg.OPCUA.Enabled {
		us, err = opcua.NewServer(dev.Tree, opcua.Config{ListenHost: cfg.OPCUA.Listen, Port: cfg.OPCUA.Port,
			AdvertiseHost: cfg.OPCUA.AdvertiseHost, PKIDir: cfg.OPCUA.PKIDir, TrustedCerts: cfg.OPCUA.TrustedCerts,
			AllowSignOnlyControl: cfg.OPCUA.AllowSignOnlyControl, Scheduler: sched,
			MaxSessions: cfg.OPCUA.MaxSessions, TrustedSessionReserve: cfg.OPCUA.TrustedSessionReserve,
			MaxSessionTimeout: time.Duration(cfg.OPCUA.MaxSessionTimeout), ActivateTimeout: time.Duration(cfg.OPCUA.ActivateTimeout),
			MaxConnections: cfg.OPCUA.MaxConnections, MaxConnectionsPerHost: cfg.OPCUA.MaxConnectionsPerHost,
			OpenTimeout: time.Duration(cfg.OPCUA.OpenTimeout), CreateSessionTimeout: time.Duration(cfg.OPCUA.CreateSessionTimeout), Logger: log})
		if err != nil {
			return fmt.Errorf("OPC UA server: %w", err)
		}
		defer us.Close() // a server whose Run never started (an error below)
	}

	var ws *web.Server
	var mx *metrics.Metrics
	if cfg.HTTP.Enabled {
		detectors := make([]*device.Device, len(dev.Detectors))
		for i, d := range dev.Detectors {
			detectors[i] = d.Device
		}
		ws, err = web.New(web.Config{
			Listen: net.JoinHostPort(cfg.HTTP.Listen, strconv.Itoa(cfg.HTTP.Port)), Tree: dev.Tree,
			Stream: dev.Stream.Device, Scan: dev.Scan.Device, Tracker: dev.Tracker.Device, Detectors: detectors,
			AllowWrites: cfg.HTTP.AllowWrites, WriteUsers: cfg.TINE.WriteUsers, WriteNets: cfg.TINE.WriteNets,
			Frames: frameRenderer{}, HeatMap: heatMapRenderer{},
			Logger: log,
		})
		if err != nil {
			return fmt.Errorf("web page: %w", err)
		}
		defer ws.Close()
		mx, err = metrics.New(metrics.Config{Stream: dev.Stream.Device, Scan: dev.Scan.Device, Extra: protocolCollectors(ts, us, ws)})
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		ws.Handle("GET /metrics", mx.Handler())
		dev.Stream.WebPage.SetText(pageURL(ws.Addr()))
		log.Info().Str("url", pageURL(ws.Addr())).Msg("web page and /metrics listening")
	}

	if ts != nil {
		g.Go("tine", front, ts.Run)
	}
	if us != nil {
		g.Go("opcua", front, us.Run)
	}
	if ws != nil {
		g.Go("metrics", front, mx.Run)
		g.Go("web", front, ws.Run)
	}
	if tr != nil {
		g.Go("tracker", back, tr.Run)
	}
	if down != nil {
		g.Go("downstream", back, down.Run)
	}
	g.Go("stream", front, recv.Run)
	log.Info().Str("stream", recv.Endpoint()).Int("workers", dev.Stream.Workers.Value().Int()).
		Str("context", cfg.Names.Context).Str("server", cfg.Names.StreamServer).Msg("tioga running")

	// The pipeline runs until the receiver closes its events (after the
	// front stops), finishing the open series first; then the sinks stop.
	g.Go("pipeline", context.WithoutCancel(ctx), func(ctx context.Context) error {
		defer stopBack()
		return pipe.Run(ctx, recv.Events())
	})
	stopLog := context.AfterFunc(ctx, func() { log.Info().Msg("stopping on a signal: finishing the open series") })
	defer stopLog()
	return g.Wait()
}

// pageURL is the web page's address as other machines reach it: the
// host name when the server listens on every interface.
func pageURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// newDownstream builds the hand-off of hits to processing jobs.
func newDownstream(c DownstreamConfig, dev *contract.Downstream, sched gocron.Scheduler, log zerolog.Logger) (*downstream.Manager, error) {
	tpl, err := downstream.ParseTemplate(c.Template, downstream.Output(c.Output))
	if err != nil {
		return nil, err
	}
	cell, err := c.DownstreamCell()
	if err != nil {
		return nil, err
	}
	var exec downstream.Executor
	switch c.Executor {
	case "slurm":
		exec = downstream.NewSlurm(downstream.SlurmConfig{Partition: c.Slurm.Partition, Account: c.Slurm.Account,
			TimeLimit: time.Duration(c.TimeLimit), ExtraArgs: c.Slurm.ExtraArgs, Sbatch: c.Slurm.Sbatch, Squeue: c.Slurm.Squeue,
			Sacct: c.Slurm.Sacct, Scancel: c.Slurm.Scancel, Settle: time.Duration(c.Slurm.Settle)})
	case "local":
		exec = downstream.NewLocal(c.Local.MaxJobs, time.Duration(c.TimeLimit))
	default:
		return nil, fmt.Errorf("executor %q: slurm or local", c.Executor)
	}
	return downstream.New(downstream.Config{Executor: exec, Template: tpl, ChunkHits: c.ChunkHits,
		ChunkPeriod: time.Duration(c.ChunkPeriod), QueueChunks: c.QueueChunks, Retries: c.Retries,
		PollPeriod: time.Duration(c.PollPeriod), WorkDir: c.WorkDir, CPUs: c.CPUs, TimeLimit: time.Duration(c.TimeLimit),
		Cell: cell, SpaceGroup: c.SpaceGroup, MaxCell: c.MaxCell, CellFile: c.CellFile, Python: c.Python,
		Options: c.Options, ImportOptions: c.ImportOptions, Logger: log}, dev, sched)
}

// downstreamSink hands written hits to the downstream hand-off.
type downstreamSink struct{ m *downstream.Manager }

func (s downstreamSink) SeriesStarted(id uint64) { s.m.SeriesStarted(id) }
func (s downstreamSink) SeriesEnded(id uint64)   { s.m.SeriesEnded(id) }
func (s downstreamSink) FrameWritten(f pipeline.WrittenFrame) {
	s.m.FrameWritten(f.Series, f.Index, f.Path, f.Hit)
}

// fanOut gives every written frame to several sinks, in order (nil sinks
// are skipped).
type fanOut []pipeline.FrameSink

func (f fanOut) SeriesStarted(id uint64) {
	for _, s := range f {
		if s != nil {
			s.SeriesStarted(id)
		}
	}
}

func (f fanOut) SeriesEnded(id uint64) {
	for _, s := range f {
		if s != nil {
			s.SeriesEnded(id)
		}
	}
}

func (f fanOut) FrameWritten(w pipeline.WrittenFrame) {
	for _, s := range f {
		if s != nil {
			s.FrameWritten(w)
		}
	}
}

// trackerSink hands written frames to the image tracker.
type trackerSink struct{ t *tracker.Tracker }

func (s trackerSink) SeriesStarted(id uint64) { s.t.SeriesStarted(int64(id)) }
func (s trackerSink) SeriesEnded(id uint64)   { s.t.SeriesEnded(int64(id)) }
func (s trackerSink) FrameWritten(f pipeline.WrittenFrame) {
	s.t.FrameWritten(tracker.Frame{Series: int64(f.Series), Index: f.Index, Path: f.Path, Score: f.Score,
		Resolution: f.Resolution, Spots: f.Spots, SpotXY: f.SpotXY})
}
