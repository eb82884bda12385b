package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"tioga/driver/analysis"
	"tioga/driver/downstream"
	"tioga/driver/writer"
)

// Duration is a time.Duration written as "300ms", "2s", "1m" in the file.
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration the way UnmarshalText reads it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Config is the server's configuration file (TOML). Every key is optional;
// Defaults are chosen to work on a laptop with the simulator: stream from
// 127.0.0.1, images under /tmp/tioga, TINE on UDP 9003, OPC UA on 4840.
type Config struct {
	Log      LogConfig      `toml:"log"`
	Names    NamesConfig    `toml:"names"`
	Stream   StreamConfig   `toml:"stream"`
	Detector DetectorConfig `toml:"detector"`
	Pipeline PipelineConfig `toml:"pipeline"`
	Analysis map[string]any `toml:"analysis"`
	Writer   WriterConfig   `toml:"writer"`
	Scan     ScanConfig     `toml:"scan"`
	Tracker  TrackerConfig  `toml:"tracker"`
	TINE     TINEConfig     `toml:"tine"`
	OPCUA    OPCUAConfig    `toml:"opcua"`
	HTTP     HTTPConfig     `toml:"http"`
	// Downstream hands hits to DIALS/CrystFEL jobs (off by default).
	Downstream DownstreamConfig `toml:"downstream"`
}

// LogConfig: level trace|debug|info|warn|error; format console|json.
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// NamesConfig: where the devices appear (control-contract.md defaults).
type NamesConfig struct {
	Context        string   `toml:"context"`
	StreamServer   string   `toml:"stream_server"`
	StreamAliases  []string `toml:"stream_aliases"`
	TrackerServer  string   `toml:"tracker_server"`
	DetectorServer string   `toml:"detector_server"`
	Detectors      []string `toml:"detectors"`
}

// StreamConfig: the detector's ZeroMQ stream.
type StreamConfig struct {
	Endpoint      string   `toml:"endpoint"`
	Bind          bool     `toml:"bind"`
	Version       int      `toml:"version"`
	Channel       string   `toml:"channel"`
	SeriesTimeout Duration `toml:"series_timeout"`
	ReceiveHWM    int      `toml:"receive_hwm"`
	Forward       string   `toml:"forward"`
}

// DetectorConfig: the detector control unit and geometry fallbacks.
type DetectorConfig struct {
	Name           string   `toml:"name"`
	SimplonURL     string   `toml:"simplon_url"`
	SimplonVersion string   `toml:"simplon_version"`
	PollInterval   Duration `toml:"poll_interval"`
	// Used when the series header does not say (V2 has no distance).
	Distance   float64 `toml:"distance"`
	BeamX      float64 `toml:"beam_x"`
	BeamY      float64 `toml:"beam_y"`
	Wavelength float64 `toml:"wavelength"`
}

// PipelineConfig: workers and publishing.
type PipelineConfig struct {
	Workers       int      `toml:"workers"`
	QueueDepth    int      `toml:"queue_depth"`
	ExportPeriod  Duration `toml:"export_period"`
	AccumulateSSX bool     `toml:"accumulate_ssx"`
}

// WriterConfig: the image files.
type WriterConfig struct {
	Enabled      bool   `toml:"enabled"`
	Directory    string `toml:"directory"`
	Prefix       string `toml:"prefix"`
	Run          int    `toml:"run"`
	FirstImage   int    `toml:"first_image"`
	Format       string `toml:"format"`
	GzipLevel    int    `toml:"gzip_level"`
	ContentMD5   string `toml:"content_md5"` // auto (plain .cbf only), always, never
	Fsync        string `toml:"fsync"`
	Overwrite    string `toml:"overwrite"`
	MinFreeBytes int64  `toml:"min_free_bytes"`
}

// ScanConfig: the raster geometry when the series header has none.
type ScanConfig struct {
	Lines         int  `toml:"lines"`
	FramesPerLine int  `toml:"frames_per_line"`
	Serpentine    bool `toml:"serpentine"`
}

// TrackerConfig: the image tracker and ADXV.
type TrackerConfig struct {
	Enabled       bool     `toml:"enabled"`
	ADXVHost      string   `toml:"adxv_host"`
	ADXVPort      int      `toml:"adxv_port"`
	KeepOpen      bool     `toml:"keep_open"`
	DisplayPeriod Duration `toml:"display_period"`
	QueueSize     int      `toml:"queue_size"`
}

// TINEConfig: the TINE device server.
type TINEConfig struct {
	Enabled    bool     `toml:"enabled"`
	PortOffset int      `toml:"port_offset"`
	Listen     string   `toml:"listen"`
	TCP        bool     `toml:"tcp"`
	WriteUsers []string `toml:"write_users"`
	WriteNets  []string `toml:"write_nets"`
	FECName    string   `toml:"fec_name"`
	Export     bool     `toml:"export"`
	ENS        string   `toml:"ens"`
	// MaxUDPBlocks: see tine.Config.MaxUDPBlocks (0: default 48).
	MaxUDPBlocks int `toml:"max_udp_blocks"`
}

// OPCUAConfig: the OPC UA server.
type OPCUAConfig struct {
	Enabled              bool     `toml:"enabled"`
	Listen               string   `toml:"listen"`
	Port                 int      `toml:"port"`
	AdvertiseHost        string   `toml:"advertise_host"`
	PKIDir               string   `toml:"pki_dir"`
	TrustedCerts         []string `toml:"trusted_certs"`
	AllowSignOnlyControl bool     `toml:"allow_sign_only_control"`
	// Limits against a hostile network (0: the adapter's default; see
	// adapters/opcua.Config and README "OPC UA security").
	MaxSessions           int      `toml:"max_sessions"`
	TrustedSessionReserve int      `toml:"trusted_session_reserve"`
	MaxSessionTimeout     Duration `toml:"max_session_timeout"`
	ActivateTimeout       Duration `toml:"activate_timeout"`
	MaxConnections        int      `toml:"max_connections"`
	MaxConnectionsPerHost int      `toml:"max_connections_per_host"`
	OpenTimeout           Duration `toml:"open_timeout"`
	CreateSessionTimeout  Duration `toml:"create_session_timeout"`
}

// HTTPConfig: the live web page and the Prometheus endpoint (/metrics)
// on one port. Writes on the page need allow_writes and a client that the
// [tine] write_users and write_nets admit, as for TINE writes.
type HTTPConfig struct {
	Enabled     bool   `toml:"enabled"`
	Listen      string `toml:"listen"`
	Port        int    `toml:"port"`
	AllowWrites bool   `toml:"allow_writes"`
}

// DownstreamConfig: hits in chunks to processing jobs (SLURM or local).
type DownstreamConfig struct {
	Enabled     bool     `toml:"enabled"`
	Executor    string   `toml:"executor"`     // slurm or local
	Template    string   `toml:"template"`     // dials, crystfel, or a template file
	Output      string   `toml:"output"`       // for a template file: dials or crystfel
	ChunkHits   int      `toml:"chunk_hits"`   // hits per job
	ChunkPeriod Duration `toml:"chunk_period"` // a partial chunk waits at most this long
	QueueChunks int      `toml:"queue_chunks"` // chunks waiting for submission (more are dropped, counted)
	Retries     int      `toml:"retries"`      // attempts after a failure (-1: none)
	PollPeriod  Duration `toml:"poll_period"`
	WorkDir     string   `toml:"work_dir"` // "": beside the images
	CPUs        int      `toml:"cpus"`     // per job
	TimeLimit   Duration `toml:"time_limit"`
	// Known cell "a b c alpha beta gamma" (Å, degrees) and space group.
	Cell          string  `toml:"cell"`
	SpaceGroup    string  `toml:"space_group"`
	MaxCell       float64 `toml:"max_cell"`
	CellFile      string  `toml:"cell_file"`
	Python        string  `toml:"python"`
	Options       string  `toml:"options"`
	ImportOptions string  `toml:"import_options"`

	Slurm SlurmConfig `toml:"slurm"`
	Local LocalConfig `toml:"local"`
}

// SlurmConfig: how jobs reach the cluster.
type SlurmConfig struct {
	Partition string   `toml:"partition"`
	Account   string   `toml:"account"`
	ExtraArgs []string `toml:"extra_args"`
	Sbatch    string   `toml:"sbatch"`
	Squeue    string   `toml:"squeue"`
	Sacct     string   `toml:"sacct"`
	Scancel   string   `toml:"scancel"`
	Settle    Duration `toml:"settle"`
}

// LocalConfig: jobs as processes of this host.
type LocalConfig struct {
	MaxJobs int `toml:"max_jobs"`
}

// DownstreamCell parses the known cell ("" = none).
func (c DownstreamConfig) DownstreamCell() (*downstream.Cell, error) {
	if strings.TrimSpace(c.Cell) == "" {
		return nil, nil
	}
	f := strings.Fields(strings.ReplaceAll(c.Cell, ",", " "))
	if len(f) != 6 {
		return nil, fmt.Errorf("downstream.cell %q: want a b c alpha beta gamma", c.Cell)
	}
	var cell downstream.Cell
	for i, s := range f {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || !(v > 0) || v > 10000 {
			return nil, fmt.Errorf("downstream.cell %q: bad number %q", c.Cell, s)
		}
		cell[i] = v
	}
	return &cell, nil
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Log: LogConfig{Level: "info", Format: "console"},
		Names: NamesConfig{Context: "P14", StreamServer: "rideau", StreamAliases: []string{"tioga"},
			TrackerServer: "image-tracker", DetectorServer: "detector",
			Detectors: []string{"eiger16m", "eiger4m", "eiger16m-cdte", "eiger4m-cdte"}},
		Stream:   StreamConfig{Endpoint: "tcp://127.0.0.1:9999", SeriesTimeout: Duration(60 * time.Second), ReceiveHWM: 100},
		Detector: DetectorConfig{SimplonVersion: "1.8.0", PollInterval: Duration(2 * time.Second), Distance: 0.2, Wavelength: 1.0},
		Pipeline: PipelineConfig{ExportPeriod: Duration(300 * time.Millisecond)},
		Analysis: defaultAnalysis(),
		Writer: WriterConfig{Enabled: true, Directory: "/tmp/tioga", Prefix: "tioga", Run: 1, FirstImage: 1,
			Format: "cbf.gz", ContentMD5: "auto", Fsync: "series", Overwrite: "refuse", MinFreeBytes: 2 << 30},
		Tracker: TrackerConfig{Enabled: true, ADXVHost: "127.0.0.1", ADXVPort: 8100,
			DisplayPeriod: Duration(300 * time.Millisecond), QueueSize: 100},
		TINE:  TINEConfig{Enabled: true, FECName: "TIOGA"},
		OPCUA: OPCUAConfig{Enabled: true, Listen: "0.0.0.0", Port: 4840},
		HTTP:  HTTPConfig{Enabled: true, Listen: "0.0.0.0", Port: 8080},
		Downstream: DownstreamConfig{Executor: "local", Template: "dials", ChunkHits: 20, ChunkPeriod: Duration(30 * time.Second),
			QueueChunks: 16, Retries: 1, PollPeriod: Duration(2 * time.Second), CPUs: 1, TimeLimit: Duration(30 * time.Minute),
			Python: "/usr/bin/python3", Slurm: SlurmConfig{Settle: Duration(30 * time.Second)}, Local: LocalConfig{MaxJobs: 1}},
	}
}

// defaultAnalysis lists every analysis parameter with its default, so that
// -print-config documents them (names as the properties spell them).
func defaultAnalysis() map[string]any {
	m := map[string]any{}
	for _, p := range analysis.ParamTable() {
		switch {
		case len(p.Choices) > 0:
			m[p.Name] = p.Choices[int(p.Default)]
		case p.Integer:
			m[p.Name] = int64(p.Default)
		default:
			m[p.Name] = p.Default
		}
	}
	return m
}

// AnalysisParams applies the [analysis] table over the defaults.
func (c Config) AnalysisParams() (analysis.Params, error) {
	params := analysis.DefaultParams()
	infos := map[string]analysis.ParamInfo{}
	for _, p := range analysis.ParamTable() {
		infos[p.Name] = p
	}
	names := make([]string, 0, len(c.Analysis))
	for n := range c.Analysis {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		info, ok := infos[name]
		if !ok {
			return params, fmt.Errorf("analysis.%s: no such parameter", name)
		}
		var v float64
		switch x := c.Analysis[name].(type) {
		case int64:
			v = float64(x)
		case float64:
			v = x
		case string:
			i := -1
			for k, ch := range info.Choices {
				if strings.EqualFold(ch, x) {
					i = k
				}
			}
			if i < 0 {
				return params, fmt.Errorf("analysis.%s: %q is not one of %s", name, x, strings.Join(info.Choices, ", "))
			}
			v = float64(i)
		default:
			return params, fmt.Errorf("analysis.%s: want a number", name)
		}
		if err := params.Set(name, v); err != nil {
			return params, fmt.Errorf("analysis.%s: %w", name, err)
		}
	}
	if err := params.Validate(); err != nil {
		return params, fmt.Errorf("analysis: %w", err)
	}
	return params, nil
}

// LoadConfig reads a configuration file over the defaults. Unknown keys are
// errors: a misspelt key silently ignored is a beamline debugging session.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return cfg, fmt.Errorf("%s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	// A file's [analysis] table replaces the defaults' table: start from
	// the defaults again so that omitted parameters keep theirs.
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if _, err := cfg.AnalysisParams(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Validate checks what the components do not check themselves.
func (c Config) Validate() error {
	var errs []string
	switch c.Log.Format {
	case "console", "json":
	default:
		errs = append(errs, fmt.Sprintf("log.format %q: console or json", c.Log.Format))
	}
	if c.Stream.Endpoint == "" {
		errs = append(errs, "stream.endpoint is required")
	}
	if c.Stream.Version < 0 || c.Stream.Version > 2 {
		errs = append(errs, "stream.version: 0 (detect), 1 or 2")
	}
	if c.Writer.Enabled && c.Writer.Directory == "" {
		errs = append(errs, "writer.directory is required when the writer is enabled")
	} else if c.Writer.Enabled {
		if err := c.WriterConfig().Check(); err != nil {
			errs = append(errs, "writer: "+strings.TrimPrefix(err.Error(), writer.ErrConfig.Error()+": "))
		}
	}
	if c.TINE.PortOffset < 0 || c.TINE.PortOffset > 50000 {
		errs = append(errs, "tine.port_offset out of range")
	}
	if c.OPCUA.Port < 0 || c.OPCUA.Port > 65535 {
		errs = append(errs, "opcua.port out of range")
	}
	if c.HTTP.Port < 0 || c.HTTP.Port > 65535 {
		errs = append(errs, "http.port out of range")
	}
	if d := c.Downstream; d.Enabled {
		if d.Executor != "slurm" && d.Executor != "local" {
			errs = append(errs, fmt.Sprintf("downstream.executor %q: slurm or local", d.Executor))
		}
		if _, err := d.DownstreamCell(); err != nil {
			errs = append(errs, err.Error())
		}
		if _, err := downstream.ParseTemplate(d.Template, downstream.Output(d.Output)); err != nil {
			errs = append(errs, "downstream.template: "+err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

// WriterConfig is the writer's configuration as the pipeline starts with it.
func (c Config) WriterConfig() writer.Config {
	w := c.Writer
	return writer.Config{
		Directory: w.Directory, Prefix: w.Prefix, Run: w.Run, FirstImage: w.FirstImage,
		Format: writer.Format(w.Format), GzipLevel: w.GzipLevel, ContentMD5: writer.MD5Policy(w.ContentMD5),
		Fsync: writer.FsyncPolicy(w.Fsync), Overwrite: writer.OverwritePolicy(w.Overwrite), MinFreeBytes: w.MinFreeBytes,
	}
}

// CheckStartup checks what needs the machine: the writer's directory must
// exist or be creatable, and writable. The server refuses to start
// otherwise, rather than fail at the first series.
func (c Config) CheckStartup() error {
	if !c.Writer.Enabled {
		return nil
	}
	if err := writer.CheckDirectory(nil, c.Writer.Directory); err != nil {
		return fmt.Errorf("configuration: writer.directory: %w", err)
	}
	return nil
}

// checkArgs refuses positional arguments: "tioga tioga.toml" without
// -config would otherwise run with the defaults, silently.
func checkArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q: options start with - (the configuration file is given with -config)", args[0])
	}
	return nil
}

// TOML returns the configuration as a file (for -print-config).
func (c Config) TOML() (string, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return "", err
	}
	return b.String(), nil
}
