// Package opcua serves Tioga's device tree over OPC UA, the portable mirror
// of the TINE interface (docs/control-contract.md, last section).
//
// # Address space
//
// Every device server is a Folder under Objects, every device an Object in
// it, every property a Variable or a Method of its device:
//
//	Objects/rideau/tioga/frame-count   ns=<NamespaceIndex>;s=/P14/rideau/tioga/frame-count
//
// NodeIds are the TINE addresses as strings. They resolve
// case-insensitively and through server aliases (/P14/tioga/tioga/...), as
// TINE names do; browsing shows only the canonical names.
//
//   - DataType: Bool -> Boolean, Int32 -> Int32, Float32 -> Float,
//     Float64 -> Double, Text -> String.
//   - ValueRank -1 (scalar), 1 (array), 2 (records); ArrayDimensions are
//     the maxima, [MaxLen] or [MaxLen, Width]. A records value is a 2-D
//     array rows x Width (an empty one travels as an empty 1-D array, the
//     only empty form gopcua decodes).
//   - AccessLevel from the property's access; UserAccessLevel per session
//     (see Security). MinimumSamplingInterval 0: changes are pushed.
//   - Description from the spec (with the record column names);
//     EngineeringUnits (EUInformation, UNECE code when known) and EURange
//     (from Limits) as HasProperty children.
//   - Values and SourceTimestamps from the registry.
//   - Commands (Access Command) are Methods of their device with one input
//     argument of the property's type; queries (Spec.Arg) are Methods with
//     the input and one output, the value. Both have InputArguments (and
//     OutputArguments) properties, so generic clients can call them.
//
// # Services
//
// gopcua v0.9.1 provides the transport, the secure channels and namespace
// 0, from a patched copy (third_party/gopcua, see its PATCHES.md): its Variant
// decoder could be crashed or made to allocate gigabytes by one crafted
// request, and one client that connected and said nothing blocked every
// new connection. Its session, attribute, method, view and subscription services are
// replaced by this package's: gopcua's have no access control, no Call,
// accept any user token, crash on unknown monitored-item ids and reuse
// subscription ids. Reads, browse (with continuation points),
// TranslateBrowsePathsToNodeIds, writes, calls and subscriptions
// (data-change monitored items with queue, absolute and percent deadband,
// keep-alive, lifetime, acknowledgement and Republish) are implemented
// here. Data changes come from properties.Subscribe, never from polling:
// each monitored item is a callback subscription that queues its
// notification during the registry's delivery, and the publisher takes
// the queues inside properties.Settle, so the values of one batch (a
// series start, an export) go out in the same notification message with
// the same source timestamp.
// Writes and calls run on a per-session queue, off gopcua's single
// dispatcher goroutine, so a slow command does not stall other clients.
//
// # Security
//
// Three endpoints: None, Basic256Sha256 Sign, Basic256Sha256
// SignAndEncrypt, each with the anonymous user token policy only (gopcua
// cannot check user names or user certificates, so none is offered; other
// tokens are refused with BadIdentityTokenRejected). The server
// certificate is loaded from Config.CertFile/KeyFile or generated there on
// first run (RSA 2048, ApplicationURI in subjectAltName).
//
// Reading, browsing, subscribing and calling queries are open to every
// session. Writing and calling commands ("control") need a session whose
// application certificate is in the trust list (Config.TrustedDir,
// Config.TrustedCerts), proven by the session signature, over a
// SignAndEncrypt channel (or Sign with Config.AllowSignOnlyControl).
// Untrusted certificates are copied to Config.RejectedDir for the
// operator. Everything else reads.
//
// # Status codes
//
//	unknown node                         BadNodeIdUnknown
//	write to a read-only property,
//	  a method or another attribute      BadNotWritable
//	session without control              BadUserAccessDenied
//	wrong type or shape                  BadTypeMismatch
//	outside Limits, too many elements,
//	  integer beyond Int32               BadOutOfRange
//	rejected by the device (OnWrite)     BadInvalidArgument
//	write with an IndexRange             BadWriteNotSupported
//	value too large for a message        BadResponseTooLarge (read it with an IndexRange)
//	method: bad argument                 BadInvalidArgument, InputArgumentResults says why
//	method: 0 or >1 arguments            BadArgumentsMissing / BadTooManyArguments
//	method not of that object            BadMethodInvalid
//
// Writes accept any numeric built-in type where a number is expected if it
// fits (Int64 3 for an Int32, Int32 for a Double), never text for a number
// or a number for a Boolean. With operation diagnostics requested, the
// registry's error text comes back as AdditionalInfo.
//
// # Value quality
//
// A value's quality (properties.Quality) is its DataValue's StatusCode, in
// reads and notifications:
//
//	good                                 Good
//	bad, no communication (SIMPLON down) BadCommunicationError
//	bad, no value yet (unfed beam-xy)    BadWaitingForInitialData
//	bad, other                           Bad
//	uncertain, no communication          UncertainNoCommunicationLastUsableValue
//	uncertain, no value yet              UncertainInitialValue
//	uncertain, other                     Uncertain
//
// A Bad DataValue carries no value (Part 4, 7.7.1); an Uncertain one
// does. A DataValue has no text: the reason is the AdditionalInfo of the
// Read's operation DiagnosticInfo when the client asks for it
// (ReturnDiagnostics 0x80).
package opcua
