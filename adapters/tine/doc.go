// Package tine serves a device tree (package device) over TINE, DESY's
// control-system protocol, wire-compatible with tine.jar 4.5.6 clients at
// protocol level 6 (docs/tine-protocol.md). It maps the tree to TINE and
// back and nothing else: it sees only packages device and properties.
//
// # Use
//
//	srv, err := tine.NewServer(tree, tine.Config{PortOffset: 7, Logger: log})
//	go srv.Run(ctx)                // until ctx ends or srv.Close()
//	tine.WriteAddressDatabase(os.Stdout, tree, cfg, "192.168.14.5")
//
// One Server is one TINE FEC (process): UDP 9003 + port offset for every
// device server of the tree, told apart by the equipment module each
// contract names (device.Server.Module, 8 bytes on the wire). A client
// reaches /<context>/<server>/<device> through its address database:
// AddressRows / WriteAddressDatabase print the eqpdbase.csv and
// fecaddr.csv rows; the stock property ADDRESSDB returns them over TINE
// (tioga-ctl csv).
//
// # Mapping
//
// Property types: Int32 as CF_INT32, Float32 as CF_FLOAT, Float64 as
// CF_DOUBLE, Text as CF_TEXT, Bool as CF_INT32 (0/1; readable and writable
// in any number format, CF_BOOLEAN included). Records are their element
// type with numRows/rowSize (and array type 4) in the property
// information. Reads convert to the contract's format (numbers element-wise,
// floats to integers truncating toward zero and saturating; INT16, BYTE and
// INT64 too; any value as TEXT; text as NAMEn), cut to the requested count
// (text to the requested length) and send only what exists. Writes convert
// their input likewise and go through Property.Write (limits, hooks);
// commands are writes; a read with input data is a query (Spec.Arg).
// Meta-properties <property>.EGU, .MAX, .MIN and .DESC come from the units,
// limits and description; without them, tine.jar's defaults ("none", 0,
// 10).
//
// A read with format CF_DEFAULT (254; tine.jar sends it with size 65535
// for new TLink(address) without a data type) is answered in the target's
// own format and size, as a tine.jar server answers it: INT32 x 1 for
// frame-count, FLOAT x 4n for dozor-pass; the same for links.
//
// Stock properties: NPROPS/NPROPERTIES, PROPS/PROPERTIES (NAMEn lists or
// property-information records in the three layouts tine.jar asks for:
// PRPQSr4 (432 bytes), XPQS (224, TQuery.getDevicePropertyInformation) and
// PQSX (188, its fallback); sorted by name; with a property name as TEXT
// input, that one only), NDEVICES, DEVICES (device "#0"), SRVVERSION,
// SRVSTARTTIME (INT32 unix seconds, or TEXT), SRVDESC, SRVOS, APPVERSION
// (Config.AppVersion), NSTOCKPROPS and STOCKPROPS (names, or with a stock
// property's name as input its PRPQSr4 record, which
// TQuery.getMetaProperties asks for), METAPROPS/METAPROPERTIES, and
// Tioga's ADDRESSDB. Meta-properties <property>.EGU, .MAX, .MIN, .DESC (and
// .DSC), .TMAX and .TMIN (the thresholds TQuery.getThresholds reads: the
// limits), .XEGU, .XMAX, .XMIN. Devices may be named "#n" (n-th, from 0)
// or "" (the first).
//
// Text this server writes about properties (descriptions, units, error
// status texts) is ASCII (ascii.go: Å -> A, σ -> sigma, others '?'), as
// tine.jar reads those fields one byte per character; text property
// values are sent as their UTF-8 bytes, cut on character boundaries.
//
// Completion codes: unknown property 36 (illegal property, with exactly
// tine.jar's status text), unknown device or equipment module 35, format
// that cannot be converted 2, input size not as announced 10, wrong number
// of elements 14, out of limits 37, write of a read-only property or read
// of a command 73, query input refused or missing (a query property read
// without its input) 20, write rejected by the device 103,
// write refused by the access lists 105, unsupported mode 99, too many links
// 77, transfer beyond 65535 blocks 30, transfer over UDP beyond
// Config.MaxUDPBlocks 22 (resort to stream transport; udplimit.go). Error replies carry "<TINE text>:
// <why>" in their 192-byte status.
//
// Value quality (properties.Quality): a value that is not good is still
// sent, as TINE servers send data with a warning: the completion code is
// not initialized (152) for "no value yet" (an unfed detector's beam-xy)
// and data stale (156) otherwise (SIMPLON not answering, uncertain),
// with the data flag 0x4000 (CE_SENDDATA: data follows despite the code),
// the 192-byte status "<TINE text>: <reason>", then the data; a tine.jar
// client sees the code as the link's or call's status and the reason as
// its status text. A value of more than one block that is not good is
// answered with the code and reason alone (a status in every block would
// not be reassembled). Good values: code 0, as before. Whether tine.jar
// hands out the data of such a reply is not verified.
//
// # Links
//
// POLL, DATACHANGE and EVENT links follow the captured contract counter
// (link.go): POLL counts down from 60 x m + r and is dropped when it runs
// out unrenewed; DATACHANGE and EVENT deliveries carry 10 after an
// acknowledgement (the client sending the subscription again) and count
// down while unacknowledged; a link unacknowledged for Config.LinkTimeout
// after several deliveries is dropped. DATACHANGE sends changes beyond the
// property's tolerance at most once per polling interval, plus a heartbeat
// after Config.Heartbeat of silence; a link sends the value the registry
// last delivered to it, and the peer decides which links are due between
// two batch deliveries (properties.Settle), so the links one batch changed
// (a series start, an export) go out in the same pass with the batch's
// values and timestamp, one update per link; EVENT sends every batch a property
// emits (dozor-pass) as it comes, multi-block when large, and the changes
// of plain values. Each client endpoint has its own goroutine (peer.go),
// so a 16 MB transfer to one client never stalls another.
//
// # Verified against tine.jar, and not
//
// Verified with DESY's tine.jar 4.5.6 (make check-tinejar: its client
// against this server, compared with a tiny tine.jar server serving the
// same properties; the recorded exchanges are replayed by make test,
// testdata/tinejar): SINGLE reads in the native and coerced formats and
// CF_DEFAULT, writes, the stock queries above through TQuery
// (getDevicePropertyInformation/X, getStockProperties, getMetaProperties,
// getAppVersion, getThresholds, getDeviceProperties), the watchdog link,
// POLL/DATACHANGE/EVENT links (shared/fixtures/tine), and CM_STREAM over
// TCP 10003+offset with a 1,000,000-record array (tcp.go). The address
// database tine.jar reads (addrdb.WriteDir, tioga-ctl csv --dir).
//
// Not verified, or not solved: large arrays over UDP to a client whose
// receive buffer cannot hold the burst (tine.jar's is 128 KB: about 50
// blocks) lose blocks, and tine.jar then reports success without data;
// the server cannot see it, so it refuses UDP transfers beyond
// Config.MaxUDPBlocks (default 48) with code 22 instead (udplimit.go);
// tine.jar's synchronous calls drop a reply that arrives before the
// calling thread marks its link active (hold.go: the replies to a client
// that executes a link again, or that showed the stall, are held 0.5 ms;
// the first stall of a client making a new TLink per read is not
// avoided); the data timestamp is the
// time of the value, not of the call; the 8503+offset TCP framing (Tioga's own
// client only); multi-block inputs (input.go); device names longer than 64
// characters (wire); heartbeats (xferReason 0x14; no data on EVENT links of
// batch properties, so that an accumulating client does not count records
// twice); CF_BOOLEAN's 4-byte elements; XPQS/PQSX records' input format of
// read-only properties (tine.jar's server says 0, this one 255 = none);
// and the ENS registration (export.go, experimental, off by default).
//
// Writes: without write_nets, only from loopback and the host's own
// networks (access.go). The user name is what the client claims.
package tine
