package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"tioga/device"
)

//go:embed static
var staticFiles embed.FS

// DefaultPort is the page's TCP port when the configuration names none.
const DefaultPort = 8080

// DefaultBatchPeriod is how often changes are sent to open pages: the
// period of TINE's dozor-pass events, so that the page is as fresh as a
// control system client and never busier.
const DefaultBatchPeriod = 300 * time.Millisecond

// Config says what the page serves and to whom.
type Config struct {
	// Listen is the address to listen on ("host:port"; ":8080" is every
	// interface, as the page is for any machine of the beamline network).
	Listen string
	// Tree is every device the process serves (the devices table).
	Tree *device.Tree
	// Stream, Scan and Tracker are the devices the page's panels read
	// (control-contract names: /P14/rideau/tioga, /P14/rideau/scan,
	// /P14/image-tracker/img-tracker). Any may be nil; its panel is empty.
	Stream, Scan, Tracker *device.Device
	// Detectors are the detector devices (the active one is shown).
	Detectors []*device.Device

	// AllowWrites offers writes on the page (and accepts them on /api/write)
	// to clients that WriteUsers and WriteNets allow, the rules of TINE
	// writes: every non-empty list must admit the client. Off by default.
	AllowWrites bool
	WriteUsers  []string
	WriteNets   []string

	// Frames renders image files for the frame view (nil: no frame view).
	Frames FrameRenderer
	// HeatMap draws the heat-map figure (nil: no figure).
	HeatMap HeatMapRenderer

	// BatchPeriod is how often changes go to open pages (default 300 ms,
	// never less than 50 ms).
	BatchPeriod time.Duration
	// MaxClients bounds the open pages (default 64): each holds a
	// connection and a queue of batches.
	MaxClients int

	Logger zerolog.Logger
}

// Server serves the page, its JSON API and its event stream.
type Server struct {
	cfg    Config
	log    zerolog.Logger
	ln     net.Listener
	mux    *http.ServeMux
	hub    *hub
	access writeAccess
	render chan struct{} // bounds concurrent renders (the pipeline's cores come first)

	mu   sync.Mutex
	http *http.Server
}

// New prepares the server and opens its listener (so that Addr is known
// before Run runs).
func New(cfg Config) (*Server, error) {
	if cfg.Tree == nil {
		return nil, errors.New("web: no device tree")
	}
	if cfg.Listen == "" {
		cfg.Listen = ":" + strconv.Itoa(DefaultPort)
	}
	if cfg.BatchPeriod <= 0 {
		cfg.BatchPeriod = DefaultBatchPeriod
	}
	if cfg.BatchPeriod < 50*time.Millisecond {
		cfg.BatchPeriod = 50 * time.Millisecond
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 64
	}
	acc, err := newWriteAccess(cfg.WriteUsers, cfg.WriteNets)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With().Str("component", "web").Logger(), ln: ln, access: acc, mux: http.NewServeMux(), render: make(chan struct{}, 1)}
	s.hub = newHub(s)
	s.routes()
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the page's address for a client on this machine; hosts on the
// network replace the host part with this machine's name.
func (s *Server) URL() string {
	a, ok := s.ln.Addr().(*net.TCPAddr)
	if !ok {
		return "http://" + s.ln.Addr().String() + "/"
	}
	host := "127.0.0.1"
	if !a.IP.IsUnspecified() {
		host = a.IP.String()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port)) + "/"
}

// Handle adds another handler on the same port (the command mounts the
// Prometheus endpoint at /metrics this way).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the server's HTTP handler (for tests that serve it
// themselves).
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	sub, _ := fs.Sub(staticFiles, "static")
	files := http.FileServer(http.FS(sub))
	s.mux.Handle("GET /", noCache(files))
	s.mux.HandleFunc("GET /api/state", s.handleState)
	s.mux.HandleFunc("GET /api/events", s.handleEvents)
	s.mux.HandleFunc("GET /api/value", s.handleValue)
	s.mux.HandleFunc("GET /api/frame", s.handleFrameInfo)
	s.mux.HandleFunc("GET /api/frame.png", s.handleFramePNG)
	s.mux.HandleFunc("GET /api/heatmap.png", s.handleHeatMap)
	s.mux.HandleFunc("POST /api/write", s.handleWrite)
}

// noCache keeps browsers from showing an older page after an upgrade.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// Run serves until ctx ends, then closes open event streams and the
// listener.
func (s *Server) Run(ctx context.Context) error {
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	s.mu.Lock()
	s.http = hs
	s.mu.Unlock()
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); s.hub.run(ctx) }()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.ln) }()
	var err error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = hs.Shutdown(sctx)
		cancel()
		err = <-errc
	case err = <-errc:
	}
	<-hubDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close closes the listener of a server that never served.
func (s *Server) Close() error { return s.ln.Close() }

// OpenPages is the number of pages following the event stream now.
func (s *Server) OpenPages() int { return s.hub.clientCount() }
