package tine

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/rs/zerolog"

	"tioga/adapters/tine/wire"
)

// Config configures the TINE server. The zero value works on a laptop:
// UDP 9003 on every interface, writes from loopback and this host's own
// networks only, no TCP, no name server.
type Config struct {
	// Logger receives the server's logs (zero value: none), passed in the
	// configuration as every component of the process takes it.
	Logger zerolog.Logger `toml:"-"`
	// PortOffset is the FEC's port offset: the server listens on UDP
	// 9003+PortOffset (and TCP 8503+PortOffset). Clients find it in their
	// fecaddr.csv (column PORT_OFFSET).
	PortOffset int `toml:"port_offset"`
	// Listen is the local IP address to bind; "" binds every interface.
	Listen string `toml:"listen"`
	// UDPPort and TCPPort override the ports the offset gives: 0 keeps the
	// TINE convention, a negative value asks for an ephemeral port (tests).
	UDPPort int `toml:"udp_port"`
	TCPPort int `toml:"tcp_port"`
	// StreamPort overrides TCP 10003+PortOffset likewise.
	StreamPort int `toml:"stream_port"`
	// TCP also serves TINE over TCP: on 10003+PortOffset in tine.jar's
	// CM_STREAM framing (what tine.jar clients use when a link asks for
	// TCP; verified with tine.jar 4.5.6, including a 16 MB array), and on
	// 8503+PortOffset in the UDP framing on a stream (Tioga's own client,
	// tioga-ctl --tcp; not verified against tine.jar). TCP has no datagram
	// loss: large arrays arrive complete on client machines whose UDP
	// receive buffers are small.
	TCP bool `toml:"tcp"`

	// WriteUsers and WriteNets restrict writes and commands, TINE's
	// users.csv and ipnets.csv. WriteNets (CIDR prefixes such as
	// "192.168.14.0/24", or single addresses) lists the client networks
	// writes may come from; without it, writes come only from loopback and
	// the networks of this host's interfaces ("0.0.0.0/0" and "::/0" open
	// them to everyone). WriteUsers, when set, also requires the request's
	// user name (upper-cased by TINE clients, compared case-insensitively;
	// it is whatever the client claims) to be listed. Everyone may read.
	// Refused writes get completion code 105 (access denied).
	WriteUsers []string `toml:"write_users"`
	WriteNets  []string `toml:"write_nets"`

	// Version is the SRVVERSION text. Default "4.5.6:tioga": TINE's
	// "version:build" form, claiming the wire level of tine.jar 4.5.6 that
	// the server was verified against.
	Version string `toml:"version"`
	// AppVersion is the APPVERSION text (TQuery.getAppVersion): the
	// application's version. Default "tioga".
	AppVersion string `toml:"app_version"`
	// FECName is the server process's FEC name in the address database
	// (fecaddr.csv, eqpdbase.csv) and in an ENS registration; at most 16
	// characters. Default "TIOGA".
	FECName string `toml:"fec_name"`

	// Heartbeat is how long a DATACHANGE link may stay silent before the
	// current value is sent again as a heartbeat (default 1 s; never
	// shorter than the link's polling interval).
	Heartbeat time.Duration `toml:"heartbeat"`
	// LinkTimeout drops a DATACHANGE or EVENT link whose client has not
	// renewed (acknowledged) it for this long (default 60 s). POLL links
	// expire when their contract counter runs out, as in tine.jar.
	LinkTimeout time.Duration `toml:"link_timeout"`
	// MinInterval is the shortest polling interval granted (default 10 ms);
	// also the least spacing of EVENT deliveries of plain values.
	MinInterval time.Duration `toml:"min_interval"`

	// MaxClients bounds the client endpoints served at once (default 1024);
	// MaxLinks bounds the links of one client endpoint (default 512).
	MaxClients int `toml:"max_clients"`
	MaxLinks   int `toml:"max_links"`
	// MaxInputBytes bounds the input of one request, reassembled from
	// several blocks (default 16 MiB).
	MaxInputBytes int `toml:"max_input_bytes"`
	// SendBuffer and ReceiveBuffer size the UDP socket buffers (defaults
	// 16 MiB and 4 MiB): a 1,000,000-record dozor-pass is 11,236 datagrams
	// sent back to back. The kernel caps them at net.core.wmem_max and
	// rmem_max unless the process may override (root).
	SendBuffer    int `toml:"send_buffer"`
	ReceiveBuffer int `toml:"receive_buffer"`
	// MaxUDPBlocks bounds a reply transfer over UDP (default 48 blocks,
	// 68 KB of data: what a default-tuned tine.jar client receives). A larger one is refused with completion code 22,
	// "resort to stream transport", and a status that says why, instead of
	// being sent: a client whose UDP receive buffer cannot hold the burst
	// loses blocks, and tine.jar then returns success without data after
	// its timeout (udplimit.go). Clients read such data over TCP
	// (CM_STREAM, Config.TCP); a negative value lifts the limit (65535
	// blocks), for clients known to have large receive buffers.
	MaxUDPBlocks int `toml:"max_udp_blocks"`

	// Export registers every equipment module with a TINE name server (ENS)
	// at start-up by a write of its stock property EXPORT. EXPERIMENTAL and
	// unverified: the registration layout was never captured; see export.go.
	Export bool `toml:"export"`
	// ENSAddress is the name server, "host" or "host:port" (default port
	// 9003, the ENS runs at port offset 0).
	ENSAddress string `toml:"ens_address"`

	// Scheduler runs the server's periodic work (statistics, warning
	// limiter). Default: a scheduler of the server's own, started and
	// stopped with Run. The command passes the process's one scheduler.
	Scheduler gocron.Scheduler `toml:"-"`
}

func (c Config) withDefaults() Config {
	if c.Version == "" {
		c.Version = "4.5.6:tioga"
	}
	if c.AppVersion == "" {
		c.AppVersion = "tioga"
	}
	if c.FECName == "" {
		c.FECName = "TIOGA"
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.LinkTimeout <= 0 {
		c.LinkTimeout = time.Minute
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 10 * time.Millisecond
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 1024
	}
	if c.MaxLinks <= 0 {
		c.MaxLinks = 512
	}
	if c.MaxInputBytes <= 0 {
		c.MaxInputBytes = 16 << 20
	}
	if c.SendBuffer <= 0 {
		c.SendBuffer = 16 << 20
	}
	if c.ReceiveBuffer <= 0 {
		c.ReceiveBuffer = 4 << 20
	}
	if c.MaxUDPBlocks == 0 {
		c.MaxUDPBlocks = defaultMaxUDPBlocks
	}
	if c.MaxUDPBlocks < 0 || c.MaxUDPBlocks > maxBlocks {
		c.MaxUDPBlocks = maxBlocks
	}
	return c
}

func (c Config) udpPort() int { return pickPort(c.UDPPort, wire.UDPBasePort+c.PortOffset) }
func (c Config) tcpPort() int { return pickPort(c.TCPPort, wire.TCPBasePort+c.PortOffset) }
func (c Config) streamPort() int {
	return pickPort(c.StreamPort, wire.StreamBasePort+c.PortOffset)
}

func pickPort(override, conventional int) int {
	switch {
	case override < 0:
		return 0
	case override > 0:
		return override
	}
	return conventional
}

func (c Config) validate() error {
	if c.PortOffset < 0 || wire.UDPBasePort+c.PortOffset > 65535 || (c.TCP && c.StreamPort == 0 && wire.StreamBasePort+c.PortOffset > 65535) {
		return fmt.Errorf("tine: port offset %d out of range", c.PortOffset)
	}
	if c.UDPPort > 65535 || c.TCPPort > 65535 || c.StreamPort > 65535 {
		return fmt.Errorf("tine: port override out of range")
	}
	if c.Listen != "" {
		if _, err := netip.ParseAddr(c.Listen); err != nil {
			return fmt.Errorf("tine: listen address %q: want an IP address", c.Listen)
		}
	}
	if len(c.FECName) > 16 || strings.ContainsAny(c.FECName, ", \t\n") {
		return fmt.Errorf("tine: FEC name %q: at most 16 characters, no commas or spaces", c.FECName)
	}
	if len(c.Version) > 64 {
		return fmt.Errorf("tine: version text longer than 64 bytes")
	}
	return nil
}
