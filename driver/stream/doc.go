// Package stream receives the image stream of a DECTRIS EIGER detector and
// turns it into protocol-neutral events: a series starts (*Series), an image
// arrives (*Image), a series ends (*End).
//
// Two wire formats exist and beamlines run firmware of both generations, so
// the package speaks both (see shared/docs/eiger-stream.md):
//
//   - Stream V1 ("legacy"): ZeroMQ multipart messages of JSON parts and
//     binary blobs, port 9999. ParseV1 parses one multipart message.
//   - Stream V2 ("cbor"): one ZeroMQ message is one CBOR item, port 31001.
//     ParseV2 parses one message.
//
// The parsers need no socket, so files, tests and fuzzers use them directly.
// The builders (V1Builder, V2Builder) are their exact inverse; the detector
// simulator sends what they build, and every builder output round-trips
// through the parsers.
//
// Receiver owns the ZeroMQ PULL socket: it detects the version per message,
// tracks series (stragglers of older series, images whose header was missed,
// a new series before the old one's end, abort, timeout), counts and skips
// malformed messages, and hands events to the consumer through a bounded
// channel so that a slow consumer pushes back on the detector instead of
// growing memory.
//
// Pixels are never decoded here: an Image carries its encoded bytes and a
// codec.Encoding, and the pipeline decodes them into its own pooled buffers
// (tioga/driver/codec). The receiver copies each message part once, from
// libzmq into a buffer of its own pool; the encoded bytes alias that buffer,
// which the consumer hands back with Image.Release once it has decoded
// them, so receiving allocates nothing per frame once warm.
package stream
