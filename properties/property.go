// Package properties is Tioga's protocol-neutral parameter library: typed,
// timestamped values with units, limits and descriptions, that clients read,
// write and subscribe to.
//
// Everything a control system can see of the server is a property, and the
// protocol adapters (TINE, OPC UA) only ever see this package: they map a
// Spec to their type system, a Value to their wire format, and a
// Subscription to their push mechanism. The model follows EPICS
// areaDetector's parameter library: the work (driver) writes values, every
// protocol face reads them.
//
// Two kinds of change reach subscribers:
//   - data change: Set (or Notify, for computed values) delivers the new
//     value to every subscriber whose last delivered value differs by more
//     than the subscriber's tolerance;
//   - events: Emit delivers a batch (e.g. the new records of dozor-pass
//     since the last export) to event subscribers, which is how a client
//     accumulates a 1,000,000-record array without re-reading it.
//
// Changes that belong together (a series start, each export) are made in
// a Batch: subscribers receive them together, with one timestamp, after
// the batch, and clients' reads find the values from before the batch
// until it ends (batch.go). Every value carries a Quality (good, uncertain,
// bad, with a cause and a reason), which the adapters map to an OPC UA
// StatusCode and a TINE completion code (quality.go).
package properties

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by reads and writes. Adapters map them to their own
// completion or status codes with errors.Is.
var (
	ErrUnknown    = errors.New("unknown property")
	ErrReadOnly   = errors.New("property is read-only")
	ErrWriteOnly  = errors.New("property cannot be read")
	ErrType       = errors.New("wrong data type")
	ErrSize       = errors.New("wrong data size")
	ErrOutOfRange = errors.New("value out of range")
	ErrNoQuery    = errors.New("property takes no input")
	ErrRejected   = errors.New("write rejected")
	// ErrNoData: the read or query is valid but there is nothing to answer
	// yet (e.g. a series' results before any series).
	ErrNoData = errors.New("no data yet")
)

// Shape says how the elements of a value are arranged.
type Shape uint8

// Shapes.
const (
	Scalar  Shape = iota // one element (or one string for Text)
	Array                // 1-D, up to MaxLen elements
	Records              // rows of Width elements, up to MaxLen rows
)

func (s Shape) String() string {
	switch s {
	case Scalar:
		return "scalar"
	case Array:
		return "array"
	case Records:
		return "records"
	}
	return fmt.Sprintf("shape(%d)", uint8(s))
}

// Access says what clients may do with a property.
type Access uint8

// Access bits.
const (
	Read    Access = 1 << iota // clients may read (and subscribe)
	Write                      // clients may write; the value is kept
	Command                    // a write triggers an action; no value is kept
)

func (a Access) String() string {
	s := ""
	if a&Read != 0 {
		s += "r"
	}
	if a&Write != 0 {
		s += "w"
	}
	if a&Command != 0 {
		s += "x"
	}
	return s
}

// Limits bound the numeric values a client may write.
type Limits struct{ Min, Max float64 }

// Spec is the static description of a property: what adapters publish as
// type information, units, limits and help text.
type Spec struct {
	Name        string
	Description string
	Elem        Elem
	Shape       Shape
	Width       int      // columns per record (Records)
	Columns     []string // column names of a record, for documentation and clients
	MaxLen      int      // most elements (Array), rows (Records) or bytes (Text); 0 = unbounded for text
	Access      Access
	Units       string  // engineering units ("Å", "Hz", "px", ...)
	Limits      *Limits // nil = no limits
	Tolerance   float64 // default absolute data-change tolerance for subscribers
	Events      bool    // the property emits event batches (Emit), e.g. dozor-pass
	// Arg is the element type of the input a read takes (0 = none): a
	// "query" property, such as the spot list of a given frame.
	Arg Elem
	// ArgDescription says what the input of a query or command means.
	ArgDescription string
}

// Readable reports whether clients may read the property.
func (s Spec) Readable() bool { return s.Access&Read != 0 }

// Writable reports whether clients may write the property (as a value or a
// command).
func (s Spec) Writable() bool { return s.Access&(Write|Command) != 0 }

// IsCommand reports whether a write is a command.
func (s Spec) IsCommand() bool { return s.Access&Command != 0 }

// Capacity is the largest number of elements a value can hold: 1 for
// scalars, MaxLen for arrays and text, MaxLen*Width for records.
func (s Spec) Capacity() int {
	switch s.Shape {
	case Array:
		return s.MaxLen
	case Records:
		return s.MaxLen * s.Width
	}
	if s.Elem == Text {
		return s.MaxLen
	}
	return 1
}

func (s Spec) validate() error {
	if s.Name == "" || len(s.Name) > 63 {
		return fmt.Errorf("property name %q: must be 1..63 bytes", s.Name)
	}
	for _, r := range s.Name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("property name %q: character %q not allowed", s.Name, r)
		}
	}
	if !s.Elem.valid() {
		return fmt.Errorf("property %s: invalid element type", s.Name)
	}
	switch s.Shape {
	case Scalar:
	case Array:
		if s.MaxLen <= 0 {
			return fmt.Errorf("property %s: array needs MaxLen", s.Name)
		}
	case Records:
		if s.Width <= 0 || s.MaxLen <= 0 {
			return fmt.Errorf("property %s: records need Width and MaxLen", s.Name)
		}
		if len(s.Columns) != 0 && len(s.Columns) != s.Width {
			return fmt.Errorf("property %s: %d column names for width %d", s.Name, len(s.Columns), s.Width)
		}
	default:
		return fmt.Errorf("property %s: invalid shape", s.Name)
	}
	if s.Elem == Text && s.Shape != Scalar {
		return fmt.Errorf("property %s: text must be scalar", s.Name)
	}
	if s.Access == 0 {
		return fmt.Errorf("property %s: no access", s.Name)
	}
	if s.Limits != nil && !(s.Limits.Min <= s.Limits.Max) {
		return fmt.Errorf("property %s: limits [%g, %g]", s.Name, s.Limits.Min, s.Limits.Max)
	}
	if s.Arg != 0 && !s.Arg.valid() {
		return fmt.Errorf("property %s: invalid argument type", s.Name)
	}
	return nil
}

// Property is one named value with its subscribers. All methods are safe for
// concurrent use.
type Property struct {
	spec Spec

	mu sync.RWMutex
	// value is the latest value set (the server's own reads see it at
	// once); pub is what clients read: the same outside batches, and the
	// value before the batch until the batch ends (batch.go).
	value   Value
	pub     Value
	compute func() Value
	onWrite func(ctx context.Context, v Value) error
	query   func(ctx context.Context, arg Value) (Value, error)

	subMu sync.Mutex
	subs  []*Subscription

	pend pendingDelivery // guarded by batch.mu

	refused atomic.Uint64
	writes  atomic.Uint64
}

func newProperty(spec Spec) *Property {
	p := &Property{spec: spec}
	p.value = zeroValue(spec)
	p.value.Time = time.Now()
	p.pub = p.value
	return p
}

func zeroValue(s Spec) Value {
	v := Value{Elem: s.Elem}
	if s.Shape == Records {
		v.Width = s.Width
	}
	if s.Shape == Scalar {
		switch s.Elem {
		case Bool:
			v.Bools = []bool{false}
		case Int32:
			v.Int32s = []int32{0}
		case Float32:
			v.Float32s = []float32{0}
		case Float64:
			v.Float64s = []float64{0}
		}
	}
	return v
}

// Spec returns the property's static description.
func (p *Property) Spec() Spec { return p.spec }

// Name returns the property's name.
func (p *Property) Name() string { return p.spec.Name }

// Compute makes the property's value computed on demand by fn instead of
// stored (e.g. a view of the result store). Call Notify or Emit when it
// changes so that subscribers hear of it.
func (p *Property) Compute(fn func() Value) *Property {
	p.mu.Lock()
	p.compute = fn
	p.mu.Unlock()
	return p
}

// OnWrite installs the hook called for every client write after type, size
// and limit checks. The hook applies the value (or performs the command)
// and may reject it with an error, which the client receives (wrapped in
// ErrRejected unless it already wraps one of this package's errors).
//
// ctx is the request's: the adapter gives it the client's deadline, and the
// server's shutdown cancels it. A hook that waits (on the detector, on a
// socket) waits on ctx, and does not outlive the call: work that must go on
// after the reply belongs to a component with its own lifetime.
func (p *Property) OnWrite(fn func(ctx context.Context, v Value) error) *Property {
	p.mu.Lock()
	p.onWrite = fn
	p.mu.Unlock()
	return p
}

// OnQuery installs the handler of reads with an input (Spec.Arg); ctx is
// the request's, as for OnWrite.
func (p *Property) OnQuery(fn func(ctx context.Context, arg Value) (Value, error)) *Property {
	p.mu.Lock()
	p.query = fn
	p.mu.Unlock()
	return p
}

// Value returns the current value, without access checks (for the server's
// own use).
func (p *Property) Value() Value {
	p.mu.RLock()
	fn, v := p.compute, p.value
	p.mu.RUnlock()
	if fn != nil {
		v = fn()
		if v.Time.IsZero() {
			v.Time = time.Now()
		}
	}
	return v
}

// Read returns the current value for a client: inside a batch, the value
// from before the batch until it ends, so that a client never reads part
// of a batch.
func (p *Property) Read() (Value, error) {
	if !p.spec.Readable() {
		return Value{}, fmt.Errorf("%w: %s", ErrWriteOnly, p.spec.Name)
	}
	return p.published(), nil
}

// ReadMany reads several properties for a client at one moment: no batch
// is published between the first and the last (an OPC UA Read of many
// nodes answers values of one batch). Computed properties are computed
// after, as Read does; errs[i] is Read's error for ps[i].
func ReadMany(ps []*Property) (vals []Value, errs []error) {
	vals, errs = make([]Value, len(ps)), make([]error, len(ps))
	var fns []func() Value
	commitMu.RLock()
	for i, p := range ps {
		if !p.spec.Readable() {
			errs[i] = fmt.Errorf("%w: %s", ErrWriteOnly, p.spec.Name)
			continue
		}
		p.mu.RLock()
		fn, v := p.compute, p.pub
		p.mu.RUnlock()
		vals[i] = v
		if fn != nil {
			if fns == nil {
				fns = make([]func() Value, len(ps))
			}
			fns[i] = fn
		}
	}
	commitMu.RUnlock()
	for i, fn := range fns {
		if fn != nil {
			vals[i] = fn()
			if vals[i].Time.IsZero() {
				vals[i].Time = time.Now()
			}
		}
	}
	return vals, errs
}

// published is the value clients see (Read, subscriptions).
func (p *Property) published() Value {
	commitMu.RLock()
	p.mu.RLock()
	fn, v := p.compute, p.pub
	p.mu.RUnlock()
	commitMu.RUnlock()
	if fn != nil {
		v = fn()
		if v.Time.IsZero() {
			v.Time = time.Now()
		}
	}
	return v
}

// Query performs a read with an input (e.g. the frame number whose spot list
// is wanted). ctx carries the request's deadline and cancellation.
func (p *Property) Query(ctx context.Context, arg Value) (Value, error) {
	if !p.spec.Readable() {
		return Value{}, fmt.Errorf("%w: %s", ErrWriteOnly, p.spec.Name)
	}
	p.mu.RLock()
	fn := p.query
	p.mu.RUnlock()
	if p.spec.Arg == 0 || fn == nil {
		return Value{}, fmt.Errorf("%w: %s", ErrNoQuery, p.spec.Name)
	}
	a, err := arg.Convert(p.spec.Arg)
	if err != nil {
		return Value{}, fmt.Errorf("%s input: %w", p.spec.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return Value{}, fmt.Errorf("%s: %w", p.spec.Name, err)
	}
	return fn(ctx, a)
}

// Write validates a client's value (access, type, size, limits), hands it to
// the write hook with ctx (the request's deadline and cancellation), and for
// non-command properties stores it and notifies subscribers. Refused writes
// are counted.
func (p *Property) Write(ctx context.Context, v Value) error {
	err := p.write(ctx, v)
	if err != nil {
		p.refused.Add(1)
	} else {
		p.writes.Add(1)
	}
	return err
}

func (p *Property) write(ctx context.Context, v Value) error {
	s := p.spec
	if !s.Writable() {
		return fmt.Errorf("%w: %s", ErrReadOnly, s.Name)
	}
	cv, err := v.Convert(s.Elem)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	if err := p.checkShape(cv); err != nil {
		return err
	}
	if err := p.checkLimits(cv); err != nil {
		return err
	}
	p.mu.RLock()
	hook := p.onWrite
	p.mu.RUnlock()
	if err := ctx.Err(); err != nil {
		// Cancelled or past its deadline before the hook ran: nothing applied.
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	if hook != nil {
		if err := hook(ctx, cv); err != nil {
			if isOwnError(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return fmt.Errorf("%w: %s: %v", ErrRejected, s.Name, err)
		}
	}
	if s.Access&Write != 0 && !s.IsCommand() {
		// A client's write is not part of a batch: it is published at
		// once (a read-back finds it).
		p.store(cv, true)
	}
	return nil
}

func isOwnError(err error) bool {
	for _, e := range []error{ErrUnknown, ErrReadOnly, ErrWriteOnly, ErrType, ErrSize, ErrOutOfRange, ErrNoQuery, ErrRejected, ErrNoData} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (p *Property) checkShape(v Value) error {
	s := p.spec
	n := v.Len()
	switch s.Shape {
	case Scalar:
		if s.Elem == Text {
			if s.MaxLen > 0 && n > s.MaxLen {
				return fmt.Errorf("%w: %s takes at most %d characters, got %d", ErrSize, s.Name, s.MaxLen, n)
			}
			return nil
		}
		if n != 1 {
			return fmt.Errorf("%w: %s takes 1 value, got %d", ErrSize, s.Name, n)
		}
	case Array:
		if n > s.MaxLen {
			return fmt.Errorf("%w: %s takes at most %d values, got %d", ErrSize, s.Name, s.MaxLen, n)
		}
	case Records:
		if n%s.Width != 0 || n/s.Width > s.MaxLen {
			return fmt.Errorf("%w: %s takes up to %d records of %d values, got %d values", ErrSize, s.Name, s.MaxLen, s.Width, n)
		}
	}
	return nil
}

func (p *Property) checkLimits(v Value) error {
	s := p.spec
	if s.Limits == nil || !s.Elem.Numeric() || s.Elem == Bool {
		return nil
	}
	for i, n := 0, v.Len(); i < n; i++ {
		f := v.Float64At(i)
		if math.IsNaN(f) || f < s.Limits.Min || f > s.Limits.Max {
			return fmt.Errorf("%w: %s = %g outside [%g, %g]%s", ErrOutOfRange, s.Name, f, s.Limits.Min, s.Limits.Max, unitSuffix(s.Units))
		}
	}
	return nil
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

// Set stores a new value from the server side (no access or limit checks;
// the value is converted to the property's element type) and notifies
// subscribers whose last value differs. Set is how drivers publish state.
func (p *Property) Set(v Value) error {
	cv, err := v.Convert(p.spec.Elem)
	if err != nil {
		return fmt.Errorf("%s: %w", p.spec.Name, err)
	}
	if p.spec.Shape == Records && cv.Width == 0 {
		cv.Width = p.spec.Width
	}
	p.store(cv, false)
	return nil
}

// SetInt32 sets a scalar.
func (p *Property) SetInt32(v int32) { _ = p.Set(Int32Value(v)) }

// SetFloat sets a scalar (converted to the property's element type).
func (p *Property) SetFloat(v float64) { _ = p.Set(Float64Value(v)) }

// SetText sets a text value.
func (p *Property) SetText(s string) { _ = p.Set(TextValue(s)) }

// SetBool sets a bool value.
func (p *Property) SetBool(b bool) { _ = p.Set(BoolValue(b)) }

// store sets the value; direct publishes it at once even inside a batch.
func (p *Property) store(v Value, direct bool) {
	p.update(direct, func(cur *Value, t time.Time) bool {
		if v.Time.IsZero() {
			v.Time = t
		}
		*cur = v
		return true
	})
}

// update changes the stored value with fn (given the time a change made
// now carries; fn reports whether it changed anything). Outside a batch,
// or when direct, the value is published and delivered at once; inside
// one it is published and delivered when the batch ends. Deciding and
// storing under batch.mu keeps a change from falling between a batch's
// end and its publication.
func (p *Property) update(direct bool, fn func(cur *Value, t time.Time) bool) {
	if !direct && batchOpen.Load() {
		batch.mu.Lock()
		if batch.depth > 0 {
			p.mu.Lock()
			changed := fn(&p.value, batch.t)
			p.mu.Unlock()
			if changed {
				p.queueLocked(true, nil)
			}
			batch.mu.Unlock()
			return
		}
		batch.mu.Unlock()
	}
	p.mu.Lock()
	changed := fn(&p.value, time.Now())
	p.pub = p.value
	v := p.pub
	p.mu.Unlock()
	if changed {
		p.deliver(v, false)
	}
}

// SetQuality changes the quality of the stored value, keeping its data
// (clients see the last value, marked): e.g. bad when the value's source
// stopped answering, good again when it answers. The value's time becomes
// the time of the change. A computed property's quality comes from its
// function instead.
func (p *Property) SetQuality(q Quality) {
	p.update(false, func(cur *Value, t time.Time) bool {
		if cur.Quality == q {
			return false
		}
		cur.Quality, cur.Time = q, t
		return true
	})
}

// Quality returns the quality of the current value.
func (p *Property) Quality() Quality { return p.Value().Quality }

// Notify tells subscribers that a computed value may have changed; they get
// it if it differs from what they last received.
func (p *Property) Notify() {
	if !p.hasSubscribers() {
		return
	}
	if p.deferDelivery(true, nil) {
		return
	}
	p.deliver(p.published(), false)
}

// Emit sends an event batch (e.g. the new records since the last export) to
// event subscribers, and the full current value to data-change subscribers.
// A batch is not stored: Read still returns the full value.
func (p *Property) Emit(batch Value) {
	if !p.hasSubscribers() {
		return
	}
	if batch.Time.IsZero() {
		batch.Time = batchTime()
	}
	if p.spec.Shape == Records && batch.Width == 0 {
		batch.Width = p.spec.Width
	}
	if p.deferDelivery(false, &batch) {
		return
	}
	p.emitNow(batch)
}

func (p *Property) emitNow(batch Value) {
	p.subMu.Lock()
	subs := append([]*Subscription(nil), p.subs...)
	p.subMu.Unlock()
	var full Value
	haveFull := false
	for _, s := range subs {
		if s.mode == OnEvent {
			s.send(Update{Value: batch, Event: true})
			continue
		}
		if !haveFull {
			full, haveFull = p.published(), true
		}
		s.offer(full, true)
	}
}

func (p *Property) hasSubscribers() bool {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	return len(p.subs) > 0
}

func (p *Property) deliver(v Value, force bool) {
	p.subMu.Lock()
	subs := append([]*Subscription(nil), p.subs...)
	p.subMu.Unlock()
	for _, s := range subs {
		s.offer(v, force)
	}
}

// Stats returns the number of accepted and refused client writes.
func (p *Property) Stats() (writes, refused uint64) { return p.writes.Load(), p.refused.Load() }

// Mode selects what a subscription receives.
type Mode uint8

// Subscription modes.
const (
	// OnChange delivers the full value whenever it differs from the last
	// delivered one by more than the tolerance.
	OnChange Mode = iota + 1
	// OnEvent delivers event batches (Emit) and, for properties that do not
	// emit batches, every change of value (tolerance 0).
	OnEvent
)

// Update is one delivery to a subscriber.
type Update struct {
	Value Value
	// Event is true when Value is an event batch rather than the full value.
	Event bool
}

// SubscribeOptions tune a subscription.
type SubscribeOptions struct {
	Mode      Mode
	Tolerance float64 // OnChange: absolute tolerance; < 0 means the spec's default
	Buffer    int     // updates queued before new ones are dropped (default 64)
	// Func, when set, receives every update instead of C (which stays
	// nil), synchronously in the goroutine that delivers it: within a
	// batch's flush, so that whatever Func stores is complete for an
	// adapter that reads it inside Settle. Func must be quick, must not
	// block, and must not start a Batch; it may run after Close returns
	// (once, for a delivery that was under way).
	Func func(Update)
}

// Subscription receives updates of one property on C (or by
// SubscribeOptions.Func) until Close. Delivery
// never blocks the producer: when the subscriber falls behind by more than
// its buffer, updates are dropped and counted (Dropped), and the next one
// that fits carries the newest value.
type Subscription struct {
	C <-chan Update

	p         *Property
	ch        chan Update
	fn        func(Update)
	fnMu      sync.Mutex // keeps calls of fn in delivery order
	mode      Mode
	tolerance float64
	mu        sync.Mutex
	last      Value
	hasLast   bool
	closed    bool
	dropped   atomic.Uint64
}

// Subscribe registers a subscriber. The current value is delivered first (a
// client that attaches wants to see where things stand), except for event
// subscribers of properties that emit batches: they only get batches.
func (p *Property) Subscribe(opts SubscribeOptions) *Subscription {
	if opts.Mode == 0 {
		opts.Mode = OnChange
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	if opts.Tolerance < 0 {
		opts.Tolerance = p.spec.Tolerance
	}
	s := &Subscription{p: p, fn: opts.Func, mode: opts.Mode, tolerance: opts.Tolerance}
	if s.fn == nil {
		s.ch = make(chan Update, opts.Buffer)
		s.C = s.ch
	}
	if opts.Mode == OnEvent {
		s.tolerance = 0
	}
	p.subMu.Lock()
	p.subs = append(p.subs, s)
	p.subMu.Unlock()
	if !(opts.Mode == OnEvent && p.spec.Events) {
		s.offer(p.published(), true)
	}
	return s
}

// Close ends the subscription; C is closed.
func (s *Subscription) Close() {
	p := s.p
	p.subMu.Lock()
	for i, x := range p.subs {
		if x == s {
			p.subs = append(p.subs[:i], p.subs[i+1:]...)
			break
		}
	}
	p.subMu.Unlock()
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		if s.ch != nil {
			close(s.ch)
		}
	}
	s.mu.Unlock()
}

// Dropped is the number of updates lost because the subscriber fell behind.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Property returns the subscribed property.
func (s *Subscription) Property() *Property { return s.p }

// offer delivers v if it differs from the last delivered value by more than
// the tolerance (or always when force is set).
func (s *Subscription) offer(v Value, force bool) {
	if s.mode == OnEvent && s.p.spec.Events && !force {
		// Batches only; full values reach event subscribers through Emit.
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if !force && s.hasLast && !s.last.differs(v, s.tolerance) {
		s.mu.Unlock()
		return
	}
	if s.fn != nil {
		s.last, s.hasLast = v, true
		s.call(Update{Value: v})
		return
	}
	defer s.mu.Unlock()
	select {
	case s.ch <- Update{Value: v}:
		s.last, s.hasLast = v, true
	default:
		s.dropped.Add(1)
	}
}

// call hands u to the callback; s.mu is held on entry and released before
// the callback runs (Close may be called under the adapter's lock that
// the callback takes), fnMu keeps the calls in order.
func (s *Subscription) call(u Update) {
	s.fnMu.Lock()
	s.mu.Unlock()
	defer s.fnMu.Unlock()
	s.fn(u)
}

// send delivers an event batch unconditionally.
func (s *Subscription) send(u Update) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.fn != nil {
		s.call(u)
		return
	}
	defer s.mu.Unlock()
	select {
	case s.ch <- u:
	default:
		s.dropped.Add(1)
	}
}
