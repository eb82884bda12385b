package opcua

import (
	"math"
	"sort"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"

	"tioga/properties"
)

// Subscription limits (Part 4, 5.13). They keep one client from growing
// the server's memory without bound.
const (
	maxSubscriptionsPerSession = 32
	maxItemsPerSubscription    = 10000
	maxPublishRequests         = 16
	maxQueueSize               = 100
	maxRetransmit              = 16
	maxKeepAliveCount          = 10000
	maxLifetimeCount           = 100000
	maxPublishingInterval      = time.Hour
)

// publishQueue is a session's waiting Publish requests (a session's
// requests serve all its subscriptions, Part 4, 5.13.1) and its browse
// continuation points.
type publishQueue struct {
	reqs    []pubReq
	lastReq time.Time
	cps     map[string]continuation
}

type pubReq struct {
	req      *ua.PublishRequest
	reqID    uint32
	deadline time.Time // zero: no timeout hint
	acks     []ua.StatusCode
}

func (q *publishQueue) drain() []pubReq {
	r := q.reqs
	q.reqs = nil
	return r
}

// subscription is one OPC UA subscription. All fields are guarded by the
// session's mutex.
type subscription struct {
	id         uint32
	created    time.Time
	interval   time.Duration
	lifetime   uint32
	keepAlive  uint32
	maxNotif   uint32
	publishing bool

	items        map[uint32]*monitoredItem
	seq          uint32 // last sequence number sent
	nextDue      time.Time
	keepAliveDue time.Time
	more         bool // the last message left notifications behind
	retrans      []*ua.NotificationMessage
}

// monitoredItem watches one attribute of one node. For variable values it
// holds a registry subscription: changes are pushed by properties.Set, Emit
// and Notify, never polled.
type monitoredItem struct {
	id            uint32
	handle        uint32
	node          *node
	ns0           *ua.NodeID
	attr          ua.AttributeID
	rng           *numericRange
	ts            ua.TimestampsToReturn
	mode          ua.MonitoringMode
	queueSize     uint32
	discardOldest bool
	sampling      float64
	tolerance     float64 // < 0: the property's default
	statusOnly    bool    // DataChangeTrigger Status: values never change status here
	psub          *properties.Subscription
	queue         []queued
	removed       bool
}

type queued struct {
	n    *ua.MonitoredItemNotification
	size int
}

func (sub *subscription) stop() {
	for _, it := range sub.items {
		it.close()
	}
}

func (it *monitoredItem) close() {
	it.removed = true
	if it.psub != nil {
		it.psub.Close()
		it.psub = nil
	}
}

// push queues a notification, honouring QueueSize and DiscardOldest.
func (it *monitoredItem) push(q queued) {
	if it.mode == ua.MonitoringModeDisabled || it.removed {
		return
	}
	if uint32(len(it.queue)) < it.queueSize {
		it.queue = append(it.queue, q)
		return
	}
	if it.discardOldest {
		copy(it.queue, it.queue[1:])
		it.queue[len(it.queue)-1] = q
	} else {
		it.queue[len(it.queue)-1] = q
	}
}

func (sub *subscription) hasData() bool {
	if !sub.publishing {
		return false
	}
	for _, it := range sub.items {
		if it.mode == ua.MonitoringModeReporting && len(it.queue) > 0 {
			return true
		}
	}
	return false
}

func (s *Server) reviseSubscription(sub *subscription, interval float64, lifetime, keepAlive, maxNotif uint32) {
	d := s.cfg.MinPublishingInterval
	if !math.IsNaN(interval) && interval > 0 {
		d = time.Duration(interval * float64(time.Millisecond))
	}
	d = min(max(d, s.cfg.MinPublishingInterval), maxPublishingInterval)
	if keepAlive == 0 {
		keepAlive = 10
	}
	keepAlive = min(keepAlive, maxKeepAliveCount)
	lifetime = min(max(lifetime, 3*keepAlive), maxLifetimeCount)
	sub.interval, sub.lifetime, sub.keepAlive, sub.maxNotif = d, lifetime, keepAlive, maxNotif
}

func (s *Server) subscriptionResponse(sub *subscription) (float64, uint32, uint32) {
	return float64(sub.interval) / float64(time.Millisecond), sub.lifetime, sub.keepAlive
}

func (s *Server) createSubscription(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.CreateSubscriptionRequest)
	now := time.Now()
	sub := &subscription{id: s.nextSubID.Add(1), created: now, publishing: req.PublishingEnabled, items: map[uint32]*monitoredItem{}}
	s.reviseSubscription(sub, req.RequestedPublishingInterval, req.RequestedLifetimeCount, req.RequestedMaxKeepAliveCount, req.MaxNotificationsPerPublish)
	sub.nextDue = now
	sub.keepAliveDue = now.Add(sub.interval * time.Duration(sub.keepAlive))
	sess.mu.Lock()
	if len(sess.subs) >= maxSubscriptionsPerSession {
		sess.mu.Unlock()
		return nil, ua.StatusBadTooManySubscriptions
	}
	sess.subs[sub.id] = sub
	sess.mu.Unlock()
	s.stats.subscriptions.Add(1)
	sess.nudge()
	iv, lt, ka := s.subscriptionResponse(sub)
	return &ua.CreateSubscriptionResponse{
		ResponseHeader:            s.header(req.RequestHeader, ua.StatusOK),
		SubscriptionID:            sub.id,
		RevisedPublishingInterval: iv,
		RevisedLifetimeCount:      lt,
		RevisedMaxKeepAliveCount:  ka,
	}, ua.StatusOK
}

func (s *Server) modifySubscription(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.ModifySubscriptionRequest)
	sess.mu.Lock()
	sub := sess.subs[req.SubscriptionID]
	if sub == nil {
		sess.mu.Unlock()
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	s.reviseSubscription(sub, req.RequestedPublishingInterval, req.RequestedLifetimeCount, req.RequestedMaxKeepAliveCount, req.MaxNotificationsPerPublish)
	iv, lt, ka := s.subscriptionResponse(sub)
	sess.mu.Unlock()
	sess.nudge()
	return &ua.ModifySubscriptionResponse{
		ResponseHeader:            s.header(req.RequestHeader, ua.StatusOK),
		RevisedPublishingInterval: iv,
		RevisedLifetimeCount:      lt,
		RevisedMaxKeepAliveCount:  ka,
	}, ua.StatusOK
}

func (s *Server) setPublishingMode(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.SetPublishingModeRequest)
	if len(req.SubscriptionIDs) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	results := make([]ua.StatusCode, len(req.SubscriptionIDs))
	sess.mu.Lock()
	for i, sid := range req.SubscriptionIDs {
		if sub := sess.subs[sid]; sub != nil {
			sub.publishing = req.PublishingEnabled
		} else {
			results[i] = ua.StatusBadSubscriptionIDInvalid
		}
	}
	sess.mu.Unlock()
	sess.nudge()
	return &ua.SetPublishingModeResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, ua.StatusOK
}

func (s *Server) deleteSubscriptions(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.DeleteSubscriptionsRequest)
	if len(req.SubscriptionIDs) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	results := make([]ua.StatusCode, len(req.SubscriptionIDs))
	sess.mu.Lock()
	for i, sid := range req.SubscriptionIDs {
		sub := sess.subs[sid]
		if sub == nil {
			results[i] = ua.StatusBadSubscriptionIDInvalid
			continue
		}
		sub.stop()
		delete(sess.subs, sid)
	}
	sess.mu.Unlock()
	sess.nudge()
	return &ua.DeleteSubscriptionsResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, ua.StatusOK
}

// createMonitoredItems implements CreateMonitoredItems (Part 4, 5.12.2).
func (s *Server) createMonitoredItems(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.CreateMonitoredItemsRequest)
	switch {
	case len(req.ItemsToCreate) == 0:
		return nil, ua.StatusBadNothingToDo
	case len(req.ItemsToCreate) > maxOperations:
		return nil, ua.StatusBadTooManyOperations
	case req.TimestampsToReturn > ua.TimestampsToReturnNeither:
		return nil, ua.StatusBadTimestampsToReturnInvalid
	}
	sess.mu.Lock()
	sub := sess.subs[req.SubscriptionID]
	var interval time.Duration
	if sub != nil {
		interval = sub.interval
	}
	sess.mu.Unlock()
	if sub == nil {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	results := make([]*ua.MonitoredItemCreateResult, len(req.ItemsToCreate))
	for i, ic := range req.ItemsToCreate {
		results[i] = s.createItem(sess, sub, ic, req.TimestampsToReturn, interval)
	}
	sess.nudge()
	return &ua.CreateMonitoredItemsResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, ua.StatusOK
}

func (s *Server) createItem(sess *session, sub *subscription, ic *ua.MonitoredItemCreateRequest, ts ua.TimestampsToReturn, interval time.Duration) *ua.MonitoredItemCreateResult {
	res := &ua.MonitoredItemCreateResult{FilterResult: ua.NewExtensionObject(nil)}
	if ic == nil || ic.ItemToMonitor == nil || ic.ItemToMonitor.NodeID == nil || ic.RequestedParameters == nil {
		res.StatusCode = ua.StatusBadNodeIDInvalid
		return res
	}
	if ic.MonitoringMode > ua.MonitoringModeReporting {
		res.StatusCode = ua.StatusBadMonitoringModeInvalid
		return res
	}
	it := &monitoredItem{
		handle: ic.RequestedParameters.ClientHandle,
		attr:   ic.ItemToMonitor.AttributeID,
		ts:     ts,
		mode:   ic.MonitoringMode,
	}
	rv := ic.ItemToMonitor
	// The first value (and the check that the node and attribute exist)
	// comes from a read.
	budget := maxValueBytes
	first := s.readOne(rv, sess.currentRights(), ts, time.Now(), &budget, nil, nil)
	if rv.NodeID.Namespace() == s.as.ns {
		it.node = s.as.lookup(rv.NodeID)
	} else {
		it.ns0 = rv.NodeID
	}
	if it.node == nil && it.ns0 == nil || first.Status == ua.StatusBadNodeIDUnknown || first.Status == ua.StatusBadAttributeIDInvalid ||
		first.Status == ua.StatusBadIndexRangeInvalid || first.Status == ua.StatusBadDataEncodingUnsupported || first.Status == ua.StatusBadNotReadable {
		res.StatusCode = first.Status
		if res.StatusCode == ua.StatusOK {
			res.StatusCode = ua.StatusBadNodeIDUnknown
		}
		return res
	}
	live := it.node != nil && it.node.kind == kindVariable && it.attr == ua.AttributeIDValue
	if rv.IndexRange != "" {
		nr, err := parseNumericRange(rv.IndexRange)
		if err != nil {
			res.StatusCode = ua.StatusBadIndexRangeInvalid
			return res
		}
		it.rng = &nr
	}
	if code := s.applyParameters(it, ic.RequestedParameters, live, interval); code != ua.StatusOK {
		res.StatusCode = code
		return res
	}
	sess.mu.Lock()
	if len(sub.items) >= maxItemsPerSubscription {
		sess.mu.Unlock()
		res.StatusCode = ua.StatusBadTooManyMonitoredItems
		return res
	}
	if _, alive := sess.subs[sub.id]; !alive {
		sess.mu.Unlock()
		res.StatusCode = ua.StatusBadSubscriptionIDInvalid
		return res
	}
	it.id = s.nextItemID.Add(1)
	sub.items[it.id] = it
	if !live {
		// Static attributes (and namespace 0) report their value once.
		it.push(queued{n: &ua.MonitoredItemNotification{ClientHandle: it.handle, Value: first}, size: 64})
	}
	sess.mu.Unlock()
	if live {
		s.watch(sess, it)
	}
	s.stats.monitoredItems.Add(1)
	res.StatusCode = ua.StatusOK
	res.MonitoredItemID = it.id
	res.RevisedSamplingInterval = it.sampling
	res.RevisedQueueSize = it.queueSize
	return res
}

// applyParameters validates and applies MonitoringParameters (Part 4,
// 7.21): queue, sampling interval and the data-change filter, whose
// deadband becomes the registry subscription's tolerance.
func (s *Server) applyParameters(it *monitoredItem, p *ua.MonitoringParameters, live bool, interval time.Duration) ua.StatusCode {
	it.queueSize = min(max(p.QueueSize, 1), maxQueueSize)
	it.discardOldest = p.DiscardOldest
	it.sampling = p.SamplingInterval
	if it.sampling < 0 || math.IsNaN(it.sampling) {
		it.sampling = float64(interval) / float64(time.Millisecond)
	}
	it.tolerance = -1
	it.statusOnly = false
	if p.Filter == nil || p.Filter.Value == nil {
		return ua.StatusOK
	}
	f, ok := p.Filter.Value.(*ua.DataChangeFilter)
	if !ok {
		return ua.StatusBadMonitoredItemFilterUnsupported
	}
	if !live {
		return ua.StatusBadFilterNotAllowed
	}
	spec := it.node.spec
	numeric := spec.Elem != properties.Text && spec.Elem != properties.Bool
	switch f.Trigger {
	case ua.DataChangeTriggerStatus:
		it.statusOnly = true
	case ua.DataChangeTriggerStatusValue, ua.DataChangeTriggerStatusValueTimestamp:
	default:
		return ua.StatusBadMonitoredItemFilterInvalid
	}
	switch f.DeadbandType {
	case 0:
		it.tolerance = 0
	case 1: // absolute
		if !numeric {
			return ua.StatusBadFilterNotAllowed
		}
		if f.DeadbandValue < 0 || math.IsNaN(f.DeadbandValue) {
			return ua.StatusBadDeadbandFilterInvalid
		}
		it.tolerance = f.DeadbandValue
	case 2: // percent of EURange
		if !numeric || spec.Limits == nil {
			return ua.StatusBadFilterNotAllowed
		}
		if f.DeadbandValue < 0 || f.DeadbandValue > 100 || math.IsNaN(f.DeadbandValue) {
			return ua.StatusBadDeadbandFilterInvalid
		}
		it.tolerance = f.DeadbandValue / 100 * (spec.Limits.Max - spec.Limits.Min)
	default:
		return ua.StatusBadDeadbandFilterInvalid
	}
	return ua.StatusOK
}

// watch subscribes an item to its property: every update is queued on
// the item by the registry's delivery itself (a callback subscription),
// so that the updates of one batch are all queued before the publisher,
// which takes them inside properties.Settle, can see any of them: a batch
// goes out in one notification message, its values sharing the source
// timestamp.
func (s *Server) watch(sess *session, it *monitoredItem) {
	sess.mu.Lock()
	node, rng, ts, handle, statusOnly := it.node, it.rng, it.ts, it.handle, it.statusOnly
	sess.mu.Unlock()
	first := true
	var lastStatus ua.StatusCode
	ps := node.prop.Subscribe(properties.SubscribeOptions{Mode: properties.OnChange, Tolerance: it.tolerance, Func: func(u properties.Update) {
		v := u.Value
		code := qualityStatus(v.Quality)
		if statusOnly && !first && code == lastStatus {
			return // DataChangeTrigger Status: only a change of status
		}
		first, lastStatus = false, code
		var dv *ua.DataValue
		if rng != nil {
			if part, err := rng.apply(node.spec, v); err != nil {
				dv = stamp(statusValue(ua.StatusBadIndexRangeNoData), ts, v.Time, time.Now())
			} else {
				v = part
			}
		}
		if dv == nil {
			dv = dataValue(node.spec, v, ts, time.Now())
		}
		q := queued{n: &ua.MonitoredItemNotification{ClientHandle: handle, Value: dv}, size: valueBytes(node.spec, v)}
		sess.mu.Lock()
		it.push(q)
		sess.mu.Unlock()
		s.stats.notifications.Add(1)
		sess.nudge()
	}})
	sess.mu.Lock()
	if it.removed {
		sess.mu.Unlock()
		ps.Close()
		return
	}
	it.psub = ps
	sess.mu.Unlock()
}

func (s *Server) modifyMonitoredItems(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.ModifyMonitoredItemsRequest)
	switch {
	case len(req.ItemsToModify) == 0:
		return nil, ua.StatusBadNothingToDo
	case len(req.ItemsToModify) > maxOperations:
		return nil, ua.StatusBadTooManyOperations
	case req.TimestampsToReturn > ua.TimestampsToReturnNeither:
		return nil, ua.StatusBadTimestampsToReturnInvalid
	}
	sess.mu.Lock()
	sub := sess.subs[req.SubscriptionID]
	sess.mu.Unlock()
	if sub == nil {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	results := make([]*ua.MonitoredItemModifyResult, len(req.ItemsToModify))
	for i, m := range req.ItemsToModify {
		res := &ua.MonitoredItemModifyResult{FilterResult: ua.NewExtensionObject(nil)}
		results[i] = res
		if m == nil || m.RequestedParameters == nil {
			res.StatusCode = ua.StatusBadMonitoredItemIDInvalid
			continue
		}
		sess.mu.Lock()
		it := sub.items[m.MonitoredItemID]
		if it == nil {
			sess.mu.Unlock()
			res.StatusCode = ua.StatusBadMonitoredItemIDInvalid
			continue
		}
		live := it.psub != nil
		old := *it
		code := s.applyParameters(it, m.RequestedParameters, live, sub.interval)
		if code != ua.StatusOK {
			it.queueSize, it.discardOldest, it.sampling, it.tolerance, it.statusOnly = old.queueSize, old.discardOldest, old.sampling, old.tolerance, old.statusOnly
			sess.mu.Unlock()
			res.StatusCode = code
			continue
		}
		it.ts = req.TimestampsToReturn
		if len(it.queue) > int(it.queueSize) {
			it.queue = it.queue[len(it.queue)-int(it.queueSize):]
		}
		resubscribe := live && (it.tolerance != old.tolerance || it.statusOnly != old.statusOnly || it.ts != old.ts)
		var ps *properties.Subscription
		if resubscribe {
			ps, it.psub = it.psub, nil
		}
		res.RevisedSamplingInterval, res.RevisedQueueSize = it.sampling, it.queueSize
		sess.mu.Unlock()
		if resubscribe {
			// A new registry subscription with the new tolerance; it
			// starts with the current value, as a fresh item would.
			ps.Close()
			s.watch(sess, it)
		}
	}
	return &ua.ModifyMonitoredItemsResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, ua.StatusOK
}

func (s *Server) setMonitoringMode(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.SetMonitoringModeRequest)
	if len(req.MonitoredItemIDs) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	if req.MonitoringMode > ua.MonitoringModeReporting {
		return nil, ua.StatusBadMonitoringModeInvalid
	}
	sess.mu.Lock()
	sub := sess.subs[req.SubscriptionID]
	results := make([]ua.StatusCode, len(req.MonitoredItemIDs))
	if sub != nil {
		for i, mid := range req.MonitoredItemIDs {
			it := sub.items[mid]
			if it == nil {
				results[i] = ua.StatusBadMonitoredItemIDInvalid
				continue
			}
			it.mode = req.MonitoringMode
			if it.mode == ua.MonitoringModeDisabled {
				it.queue = nil
			}
		}
	}
	sess.mu.Unlock()
	if sub == nil {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	sess.nudge()
	return &ua.SetMonitoringModeResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, ua.StatusOK
}

func (s *Server) deleteMonitoredItems(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.DeleteMonitoredItemsRequest)
	if len(req.MonitoredItemIDs) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	sess.mu.Lock()
	sub := sess.subs[req.SubscriptionID]
	results := make([]ua.StatusCode, len(req.MonitoredItemIDs))
	if sub != nil {
		for i, mid := range req.MonitoredItemIDs {
			it := sub.items[mid]
			if it == nil {
				results[i] = ua.StatusBadMonitoredItemIDInvalid
				continue
			}
			it.close()
			delete(sub.items, mid)
		}
	}
	sess.mu.Unlock()
	if sub == nil {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	return &ua.DeleteMonitoredItemsResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, ua.StatusOK
}

// publish queues a Publish request (Part 4, 5.13.5): it is answered by
// the session's publisher when a subscription has notifications or owes a
// keep-alive.
func (s *Server) publish(_ *uasc.SecureChannel, sess *session, r ua.Request, reqID uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.PublishRequest)
	now := time.Now()
	sess.mu.Lock()
	if len(sess.subs) == 0 {
		sess.mu.Unlock()
		return &ua.PublishResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusBadNoSubscription), Results: []ua.StatusCode{}, DiagnosticInfos: []*ua.DiagnosticInfo{}, AvailableSequenceNumbers: []uint32{}}, ua.StatusOK
	}
	acks := make([]ua.StatusCode, len(req.SubscriptionAcknowledgements))
	for i, a := range req.SubscriptionAcknowledgements {
		sub := sess.subs[a.SubscriptionID]
		switch {
		case sub == nil:
			acks[i] = ua.StatusBadSubscriptionIDInvalid
		case !sub.ack(a.SequenceNumber):
			acks[i] = ua.StatusBadSequenceNumberUnknown
		}
	}
	p := pubReq{req: req, reqID: reqID, acks: acks}
	if req.RequestHeader.TimeoutHint > 0 {
		p.deadline = now.Add(time.Duration(req.RequestHeader.TimeoutHint) * time.Millisecond)
	}
	sess.pub.reqs = append(sess.pub.reqs, p)
	sess.pub.lastReq = now
	var refused []pubReq
	if len(sess.pub.reqs) > maxPublishRequests {
		refused = append(refused, sess.pub.reqs[0])
		sess.pub.reqs = sess.pub.reqs[1:]
	}
	sess.mu.Unlock()
	for _, p := range refused {
		s.send(sess, p.reqID, &ua.PublishResponse{ResponseHeader: s.header(p.req.RequestHeader, ua.StatusBadTooManyPublishRequests), Results: p.acks, DiagnosticInfos: []*ua.DiagnosticInfo{}, AvailableSequenceNumbers: []uint32{}})
	}
	sess.nudge()
	return nil, ua.StatusOK
}

// ack removes an acknowledged message from the retransmission queue.
func (sub *subscription) ack(seq uint32) bool {
	for i, m := range sub.retrans {
		if m.SequenceNumber == seq {
			sub.retrans = append(sub.retrans[:i], sub.retrans[i+1:]...)
			return true
		}
	}
	return false
}

func (sub *subscription) available() []uint32 {
	out := make([]uint32, len(sub.retrans))
	for i, m := range sub.retrans {
		out[i] = m.SequenceNumber
	}
	return out
}

func (s *Server) republish(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.RepublishRequest)
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sub := sess.subs[req.SubscriptionID]
	if sub == nil {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	for _, m := range sub.retrans {
		if m.SequenceNumber == req.RetransmitSequenceNumber {
			return &ua.RepublishResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), NotificationMessage: m}, ua.StatusOK
		}
	}
	return nil, ua.StatusBadMessageNotAvailable
}

// outgoing is a response the publisher sends once the session lock is
// released.
type outgoing struct {
	reqID uint32
	resp  ua.Response
}

// publisher answers a session's Publish requests: it runs until the
// session closes, waking when a monitored item has news, a request
// arrives, or a publishing interval, keep-alive or lifetime ends.
func (s *Server) publisher(sess *session) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		out, next := s.publishCycle(sess, time.Now())
		for _, o := range out {
			s.send(sess, o.reqID, o.resp)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(time.Until(next), time.Millisecond))
		select {
		case <-sess.done:
			return
		case <-sess.wake:
		case <-timer.C:
		}
	}
}

// publishCycle does one round of the subscription state machine (Part 4,
// 5.13.1.1) for every subscription of the session, returns the responses
// to send and when to run again.
//
// A subscription with notifications sends them as soon as a publishing
// interval has passed since its last message (the interval limits the
// rate; a change after a quiet spell goes out at once), otherwise it owes
// a keep-alive every keepAlive intervals. Without a Publish request to
// answer it is late; a subscription late for lifetime intervals expires.
//
// It runs inside properties.Settle: the item queues hold every update of
// a batch or none of it.
func (s *Server) publishCycle(sess *session, now time.Time) (out []outgoing, next time.Time) {
	properties.Settle(func() { out, next = s.publishCycleSettled(sess, now) })
	return out, next
}

func (s *Server) publishCycleSettled(sess *session, now time.Time) ([]outgoing, time.Time) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	next := now.Add(time.Hour)
	var out []outgoing
	// Publish requests past their timeout hint are answered BadTimeout.
	kept := sess.pub.reqs[:0]
	for _, p := range sess.pub.reqs {
		if !p.deadline.IsZero() && now.After(p.deadline) {
			out = append(out, outgoing{p.reqID, &ua.PublishResponse{ResponseHeader: s.header(p.req.RequestHeader, ua.StatusBadTimeout), Results: p.acks, DiagnosticInfos: []*ua.DiagnosticInfo{}, AvailableSequenceNumbers: []uint32{}}})
			continue
		}
		if !p.deadline.IsZero() && p.deadline.Before(next) {
			next = p.deadline
		}
		kept = append(kept, p)
	}
	sess.pub.reqs = kept
	if sess.closed {
		return out, next
	}
	ids := make([]uint32, 0, len(sess.subs))
	for id := range sess.subs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, sid := range ids {
		sub := sess.subs[sid]
		data := sub.hasData()
		due := data && !now.Before(sub.nextDue)
		keepAlive := !data && !now.Before(sub.keepAliveDue)
		if due || keepAlive {
			if len(sess.pub.reqs) == 0 {
				// Late: wait for a request, but not beyond the lifetime.
				since := sess.pub.lastReq
				if since.Before(sub.created) {
					since = sub.created
				}
				end := since.Add(sub.interval * time.Duration(sub.lifetime))
				if now.After(end) {
					s.log.Info().Str("session", sess.name).Uint32("subscription", sub.id).Msg("OPC UA subscription expired: no publish requests")
					sub.stop()
					delete(sess.subs, sid)
					s.stats.subscriptionsExpired.Add(1)
					continue
				}
				if end.Before(next) {
					next = end
				}
				continue
			}
			p := sess.pub.reqs[0]
			sess.pub.reqs = sess.pub.reqs[1:]
			var msg *ua.NotificationMessage
			if due {
				msg = s.notificationMessage(sub, now)
				sub.nextDue = now.Add(sub.interval)
				if sub.more {
					sub.nextDue = now
				}
			} else {
				msg = &ua.NotificationMessage{SequenceNumber: sub.seq + 1, PublishTime: now, NotificationData: []*ua.ExtensionObject{}}
			}
			sub.keepAliveDue = now.Add(sub.interval * time.Duration(sub.keepAlive))
			out = append(out, outgoing{p.reqID, &ua.PublishResponse{
				ResponseHeader:           s.header(p.req.RequestHeader, ua.StatusOK),
				SubscriptionID:           sub.id,
				AvailableSequenceNumbers: sub.available(),
				MoreNotifications:        due && sub.more,
				NotificationMessage:      msg,
				Results:                  p.acks,
				DiagnosticInfos:          []*ua.DiagnosticInfo{},
			}})
			data = sub.hasData()
		}
		switch {
		case data && sub.nextDue.Before(next):
			next = sub.nextDue
		case !data && sub.keepAliveDue.Before(next):
			next = sub.keepAliveDue
		}
	}
	return out, next
}

// notificationMessage takes queued notifications into a message, within
// MaxNotificationsPerPublish and the size one message can carry.
func (s *Server) notificationMessage(sub *subscription, now time.Time) *ua.NotificationMessage {
	var items []*ua.MonitoredItemNotification
	budget := maxValueBytes
	sub.more = false
	ids := make([]uint32, 0, len(sub.items))
	for id := range sub.items {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
outer:
	for _, id := range ids {
		it := sub.items[id]
		if it.mode != ua.MonitoringModeReporting {
			continue
		}
		for len(it.queue) > 0 {
			q := it.queue[0]
			if (sub.maxNotif > 0 && uint32(len(items)) >= sub.maxNotif) || (len(items) > 0 && q.size > budget) {
				sub.more = true
				break outer
			}
			budget -= q.size
			items = append(items, q.n)
			it.queue[0] = queued{}
			it.queue = it.queue[1:]
		}
	}
	sub.seq++
	if sub.seq == 0 {
		sub.seq = 1
	}
	dcn := &ua.DataChangeNotification{MonitoredItems: items, DiagnosticInfos: []*ua.DiagnosticInfo{}}
	eo := ua.NewExtensionObject(dcn)
	msg := &ua.NotificationMessage{SequenceNumber: sub.seq, PublishTime: now, NotificationData: []*ua.ExtensionObject{eo}}
	sub.retrans = append(sub.retrans, msg)
	if len(sub.retrans) > maxRetransmit {
		sub.retrans = sub.retrans[len(sub.retrans)-maxRetransmit:]
	}
	return msg
}
