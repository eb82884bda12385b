package adxv

import "time"

// Backoff is the delay schedule between failed attempts: Min after the
// first failure, doubling after each further one, never above Max. A
// viewer that is being restarted is back within a second or two, so the
// first retries come quickly; one that is absent for the whole shift is
// asked only every Max, which keeps the log and the network quiet.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the delay before the next attempt after one more failure.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.cur <= 0:
		b.cur = b.Min
	case b.cur >= b.Max/2:
		b.cur = b.Max
	default:
		b.cur *= 2
	}
	if b.cur > b.Max {
		b.cur = b.Max
	}
	return b.cur
}

// Reset starts the schedule again (after a success).
func (b *Backoff) Reset() { b.cur = 0 }
