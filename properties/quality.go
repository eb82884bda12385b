package properties

import "fmt"

// Level is how far a value can be trusted, the three classes that both
// OPC UA (the two top bits of a StatusCode) and EPICS (alarm severity
// INVALID) distinguish.
type Level uint8

// Quality levels. The zero value is Good, so that a value set without a
// quality is good.
const (
	Good      Level = iota // the value is what the source says now
	Uncertain              // usable, with doubts (e.g. last value before the source went quiet)
	Bad                    // not usable: the source is unreachable, or there is no value yet
)

func (l Level) String() string {
	switch l {
	case Good:
		return "good"
	case Uncertain:
		return "uncertain"
	case Bad:
		return "bad"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// Cause says why a value is not good, in terms every protocol face has a
// code for: OPC UA's Bad/Uncertain sub-codes, TINE's completion codes.
type Cause uint8

// Causes.
const (
	CauseOther           Cause = iota // anything else; the reason says what
	CauseNoCommunication              // the value's source does not answer
	CauseNoValue                      // no value has been produced yet
)

func (c Cause) String() string {
	switch c {
	case CauseOther:
		return "other"
	case CauseNoCommunication:
		return "no communication"
	case CauseNoValue:
		return "no value yet"
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// Quality is a value's trustworthiness: a level, the cause when it is not
// good, and a reason for people ("SIMPLON http://det:80 unreachable: ...").
// The zero Quality is good. A value keeps its data when its quality drops:
// clients see the last value, marked, rather than nothing.
type Quality struct {
	Level  Level
	Cause  Cause
	Reason string
}

// IsGood reports whether the quality is good.
func (q Quality) IsGood() bool { return q.Level == Good }

func (q Quality) String() string {
	if q.Level == Good {
		return "good"
	}
	s := q.Level.String()
	if q.Cause != CauseOther {
		s += " (" + q.Cause.String() + ")"
	}
	if q.Reason != "" {
		s += ": " + q.Reason
	}
	return s
}

// NoCommunication is the quality of a value whose source does not answer:
// bad, with the reason.
func NoCommunication(reason string) Quality {
	return Quality{Level: Bad, Cause: CauseNoCommunication, Reason: reason}
}

// NoValueYet is the quality of a value nothing has produced yet (the zero
// it holds means nothing): bad, with the reason.
func NoValueYet(reason string) Quality {
	return Quality{Level: Bad, Cause: CauseNoValue, Reason: reason}
}

// WithQuality returns a copy of v with quality q.
func (v Value) WithQuality(q Quality) Value { v.Quality = q; return v }
