package tine

import (
	"context"
	"encoding/binary"
	"net"
	"time"

	"tioga/adapters/tine/wire"
)

// ENS registration. EXPERIMENTAL AND UNVERIFIED: a tine.jar server not
// started standalone registers each equipment module with the name server
// by a WRITE of the stock property EXPORT carrying a server-address
// structure, whose layout was never captured (docs/tine-protocol.md §10).
// What is sent here is a best guess, documented so that it can be checked
// against a real ENS and corrected:
//
//	contract: property "EXPORT", device = the context, equipment module
//	          "ENSEQM", formatIn STRUCT, tagIn "SRVADDR", formatOut NULL
//	input (112 bytes): export name [32], equipment module [8], context [32],
//	          FEC name [16], IP address as text [16], i32 port offset,
//	          i16 protocol level (6), 2 bytes zero
//
// The outcome of each registration is logged; it never stops the server.
// Clients do not need it: the address-database rows (AddressRows) let them
// reach the server with no name server at all.

const (
	ensModule   = "ENSEQM"
	exportSize  = 112
	exportTag   = "SRVADDR"
	ensTimeout  = 2 * time.Second
	ensDefault  = "9003"
	exportProto = wire.Protocol
)

func (s *Server) export(ctx context.Context) {
	addr := s.cfg.ENSAddress
	if addr == "" {
		s.log.Warn().Msg("tine: export to a name server asked for, but no ENS address configured")
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, ensDefault)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		s.log.Warn().Err(err).Str("ens", addr).Msg("tine: export: cannot reach the name server")
		return
	}
	defer conn.Close()
	ip := s.cfg.Listen
	if ip == "" {
		ip = conn.LocalAddr().(*net.UDPAddr).IP.String()
	}
	for i, row := range AddressRows(s.tree, s.cfg) {
		in := make([]byte, exportSize)
		copy(in[0:32], row.Name)
		copy(in[32:40], row.Module)
		copy(in[40:72], row.Context)
		copy(in[72:88], row.FEC)
		copy(in[88:104], ip)
		binary.LittleEndian.PutUint32(in[104:], uint32(int32(s.cfg.PortOffset)))
		binary.LittleEndian.PutUint16(in[108:], exportProto)
		l := wire.Link{
			Subscription: wire.Subscription{MTU: wire.MaxInputData, NumBlocks: 1, BlockNum: 1, LinkID: uint16(i + 1),
				Mode: wire.Single, BlockID: 1, PollingInterval: int32(ensTimeout / time.Millisecond), StartTime: uint32(time.Now().Unix())},
			Contract: wire.Contract{Property: "EXPORT", Device: row.Context, EqmName: ensModule, SizeIn: exportSize,
				Access: wire.AccessWrite, FormatIn: wire.Struct, FormatOut: wire.Null, TagIn: exportTag},
			Input: in,
		}
		req, err := wire.AppendRequest(nil, "TIOGA", []wire.Link{l})
		if err != nil {
			continue
		}
		ev := s.log.Info().Str("ens", addr).Str("server", "/"+row.Context+"/"+row.Name).Str("module", row.Module)
		if _, err := conn.Write(req); err != nil {
			s.log.Warn().Err(err).Str("ens", addr).Msg("tine: export: send failed")
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(ensTimeout))
		buf := make([]byte, wire.MaxDatagram)
		n, err := conn.Read(buf)
		if err != nil {
			s.log.Warn().Err(err).Str("ens", addr).Str("server", row.Name).Msg("tine: export (experimental): no answer from the name server")
			continue
		}
		blocks, err := wire.ParseReply(buf[:n], nil)
		if err != nil || len(blocks) == 0 {
			s.log.Warn().Str("ens", addr).Msg("tine: export (experimental): unreadable answer")
			continue
		}
		cc := blocks[0].Header.CompCode.Code()
		ev.Int("cc", int(cc)).Str("status", cc.String()).Msg("tine: export (experimental) answered")
	}
}
