package properties

import (
	"sync"
	"sync/atomic"
	"time"
)

// Batches: the asynPortDriver model (set parameters, then
// callParamCallbacks once). Inside Batch, Set and SetQuality store at
// once for the server's own Value, but clients' reads (Read) still find
// the values from before the batch, and nothing is delivered; when the
// outermost batch ends, its values are published to reads all at once
// and every property it changed is delivered in one flush, all values
// stamped with the batch's one timestamp. A client's write is published
// at once. A subscriber that hears
// of one value of a batch can read any other and find the batch's value;
// an adapter that drains its subscriptions inside Settle sees every
// delivery of a batch or none, which is how OPC UA puts a batch in one
// publish and TINE in one pass of a client's links.
//
// Batches are process-wide, as the parameter library is: a Set made by
// another goroutine while a batch is open joins it (it is delivered a
// little later, with the batch). Batches nest; the outermost one flushes.

// batchOpen mirrors batch.depth > 0, so that a Set outside any batch
// takes no lock to find out.
var batchOpen atomic.Bool

var batch struct {
	mu      sync.Mutex
	depth   int
	t       time.Time
	seq     uint64
	pending []*Property
}

// flushMu keeps flushes in the order their batches ended (event batches
// of dozor-pass must arrive in order); deliverMu is held for writing
// while a flush delivers, and for reading by Settle; commitMu is held for
// writing while a batch's values are published, and for reading by every
// client read, so that no read sees part of a batch.
var flushMu, deliverMu, commitMu sync.RWMutex

// pendingDelivery is what a property owes its subscribers at the end of
// the batch. Guarded by batch.mu.
type pendingDelivery struct {
	queued bool
	data   bool    // deliver the current value to data-change subscribers
	events []Value // event batches, in order
}

// Batch runs fn as one batch: the changes it makes reach subscribers
// together when it returns, stamped with one timestamp (the time Batch was
// called, for values set without a time). fn must not call Settle, a
// subscription callback must not call Batch, and the function of a
// computed property (Compute) must not change properties: it runs when
// the batch ends, with the batch's lock held.
func Batch(fn func()) {
	beginBatch()
	defer endBatch()
	fn()
}

// Batch runs fn as a batch (see the package function Batch; the batch is
// not limited to this registry's properties).
func (r *Registry) Batch(fn func()) { Batch(fn) }

func beginBatch() {
	batch.mu.Lock()
	if batch.depth == 0 {
		batch.t = time.Now()
		batch.seq++
	}
	batch.depth++
	batchOpen.Store(true)
	batch.mu.Unlock()
}

func endBatch() {
	flushMu.Lock()
	defer flushMu.Unlock()
	batch.mu.Lock()
	batch.depth--
	if batch.depth > 0 {
		batch.mu.Unlock()
		return
	}
	batchOpen.Store(false)
	todo := batch.pending
	batch.pending = nil
	work := make([]pendingDelivery, len(todo))
	vals := make([]Value, len(todo))
	// Publish: clients' reads switch from the values before the batch
	// to the batch's all at once.
	commitMu.Lock()
	for i, p := range todo {
		work[i] = p.pend
		p.pend = pendingDelivery{}
		if work[i].data {
			p.mu.Lock()
			p.pub = p.value
			p.mu.Unlock()
		}
	}
	commitMu.Unlock()
	for i, p := range todo {
		if work[i].data && len(work[i].events) == 0 {
			// Taken now, while no batch can run (a new one waits for
			// batch.mu): the values delivered are the batch's, even if
			// the next batch starts setting values during the flush.
			vals[i] = p.published()
		}
	}
	batch.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	deliverMu.Lock()
	defer deliverMu.Unlock()
	for i, p := range todo {
		w := &work[i]
		for _, ev := range w.events {
			p.emitNow(ev)
		}
		if w.data && len(w.events) == 0 {
			p.deliver(vals[i], false)
		}
	}
}

// batchTime returns the open batch's timestamp, or now.
func batchTime() time.Time {
	if !batchOpen.Load() {
		return time.Now()
	}
	batch.mu.Lock()
	defer batch.mu.Unlock()
	if batch.depth > 0 {
		return batch.t
	}
	return time.Now()
}

// deferDelivery queues a delivery when a batch is open; it reports false
// when there is none and the caller delivers at once.
func (p *Property) deferDelivery(data bool, event *Value) bool {
	if !batchOpen.Load() {
		return false
	}
	batch.mu.Lock()
	defer batch.mu.Unlock()
	if batch.depth == 0 {
		return false
	}
	p.queueLocked(data, event)
	return true
}

// queueLocked records what p owes its subscribers at the batch's end;
// batch.mu is held.
func (p *Property) queueLocked(data bool, event *Value) {
	if !p.pend.queued {
		p.pend.queued = true
		batch.pending = append(batch.pending, p)
	}
	if data {
		p.pend.data = true
	}
	if event != nil {
		p.pend.events = append(p.pend.events, *event)
	}
}

// Settle runs fn while no batch is being delivered: updates a subscriber
// takes inside fn (from its queue, or that its callback stored) hold
// every delivery of a batch or none. fn must not start a batch. Adapters
// wrap the step that turns queued updates into messages in it.
func Settle(fn func()) {
	deliverMu.RLock()
	defer deliverMu.RUnlock()
	fn()
}
