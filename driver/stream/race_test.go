//go:build race

package stream

// raceEnabled: the race detector's sync.Pool drops a quarter of what is
// put back, on purpose, so buffer reuse cannot be counted.
const raceEnabled = true
