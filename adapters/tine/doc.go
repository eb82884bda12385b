// Package tine serves a device tree (package device) over TINE, DESY's
// control-system protocol, wire-compatible with tine.jar 4.5.6 clients at
// protocol level 6 (docs/tine-protocol.md). It maps the tree to TINE and
// back and nothing else: it sees only packages device and properties.
//
// # Use
//
//	srv, err := tine.NewServer(tree, tine.Config{PortOffset: 7}, log)
//	go srv.Serve(ctx)              // until ctx ends or srv.Close()
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
// Stock properties: NPROPS/NPROPERTIES, PROPS/PROPERTIES (NAMEn lists or
// PRPQSr4 records, sorted by name; with a property name as TEXT input, that
// one only), NDEVICES, DEVICES (device "#0"), SRVVERSION, SRVSTARTTIME
// (INT32 unix seconds, or TEXT), SRVDESC, SRVOS, STOCKPROPS, and Tioga's
// ADDRESSDB. Devices may be named "#n" (n-th, from 0) or "" (the first).
//
// Completion codes: unknown property 36 (illegal property, with exactly
// tine.jar's status text), unknown device or equipment module 35, format
// that cannot be converted 2, input size not as announced 10, wrong number
// of elements 14, out of limits 37, write of a read-only property or read
// of a command 73, query input refused 20, write rejected by the device 103,
// write refused by the access lists 105, unsupported mode 99, too many links
// 77, transfer beyond 65535 blocks 30. Error replies carry "<TINE text>:
// <why>" in their 192-byte status.
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
// after Config.Heartbeat of silence; EVENT sends every batch a property
// emits (dozor-pass) as it comes, multi-block when large, and the changes
// of plain values. Each client endpoint has its own goroutine (peer.go),
// so a 16 MB transfer to one client never stalls another.
//
// # Unverified
//
// Everything the captures did not show is marked so where it is
// implemented: the TCP framing (tcp.go), multi-block inputs (input.go),
// device names longer than 64 characters (wire), heartbeats (xferReason
// 0x14; no data on EVENT links of batch properties, so that an accumulating
// client does not count records twice), CF_BOOLEAN's 4-byte elements, and
// the ENS registration (export.go, experimental, off by default).
package tine
