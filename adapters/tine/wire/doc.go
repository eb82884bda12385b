// Package wire encodes and decodes TINE protocol-level-6 datagrams: the
// request header, each link's subscription header and contract, the reply
// header of each link block, the completion codes, transfer modes and data
// formats (CF_*), and the property-information record PRPQSr4.
//
// The layouts come from docs/tine-protocol.md, which was reconstructed from
// captures of DESY's Java library tine.jar 4.5.6 talking to itself; the tests
// re-encode every captured datagram of shared/fixtures/tine byte for byte.
// Doc comments say "unverified" where a layout was inferred and never seen
// on the wire.
//
// The package does no I/O and knows nothing of properties or devices: the
// server (package tine) and the client (package client) both build on it.
// Decoders never panic on hostile input: every length and offset comes from
// the datagram and is checked against the bytes actually present.
package wire
