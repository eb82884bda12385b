// Package testenv holds what tests of several packages share about the
// environment they run in.
package testenv

import "testing"

// SkipIfShort skips a test that is heavy on CPU (whole 4M frames, a
// million-frame series, many analysed frames) in -short runs.
//
// make test runs every test once without the race detector and then the
// concurrent packages again with -race -short: the race detector makes
// pixel arithmetic 5-20 times slower and finds nothing in it that the
// lighter tests of the same code paths do not exercise, so the heavy
// tests run in the first pass only.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("heavy: runs in make test's full pass, not in its -race -short pass")
	}
}
