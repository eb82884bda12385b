// Package adxv drives the ADXV diffraction-image viewer through its command
// socket (ADXV started as `adxv -socket 8100`).
//
// ADXV's socket protocol is one-way: ASCII command lines ending in '\n'
// (load_image, raise_window, the spot overlay, slab, contrast_min/max,
// save_image, exit), and ADXV never answers. The package has two parts:
//
//   - Batch builds the command lines of one delivery, validating what ends
//     up in them. A path is written on a line of its own, so a newline or
//     another control character in a path would let an outside caller
//     inject commands; such paths are refused, never escaped.
//   - Client delivers batches from its own goroutine so that its callers
//     (the image tracker, called from the pipeline) never wait for the
//     network. It keeps only the latest batch it was given: while ADXV is
//     absent or restarting, an older "show this frame" is worth nothing
//     once a better frame is known. It retries with exponential back-off,
//     reports every attempt (OnReport) and counts what it did (Stats).
//
// Connect-send-close is the default because it is what ADXV's other
// clients do and because a fresh connection proves that ADXV is listening
// at each delivery; a kept-open connection (Config.KeepOpen) saves the
// connection set-up and is checked for a close by ADXV before every write.
package adxv
