package opcua

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"

	"tioga/properties"
)

// Per-request limits: a request asking for more is refused whole with
// BadTooManyOperations rather than stalling every other client.
const (
	maxOperations         = 10000
	maxContinuationPoints = 16
)

// serviceFunc handles one request of a session. It returns the response,
// or nil and StatusOK when the response will be sent later (Publish,
// writes and calls), or nil and a bad status for a ServiceFault.
type serviceFunc func(sc *uasc.SecureChannel, sess *session, req ua.Request, reqID uint32) (ua.Response, ua.StatusCode)

// registerServices installs the adapter's implementation of every service
// it answers. gopcua keeps the first handler registered for a type, and
// Start registers its own afterwards, so these win. What gopcua still
// answers itself is harmless: it refuses (BadServiceUnsupported) node
// management, queries, history and SetTriggering.
func (s *Server) registerServices() {
	reg := func(typeID uint16, needSession bool, fn serviceFunc) {
		s.srv.RegisterHandler(typeID, s.wrap(needSession, fn))
	}
	reg(id.GetEndpointsRequest_Encoding_DefaultBinary, false, s.getEndpoints)
	reg(id.FindServersRequest_Encoding_DefaultBinary, false, s.findServers)
	reg(id.CreateSessionRequest_Encoding_DefaultBinary, false, func(sc *uasc.SecureChannel, _ *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
		return s.createSession(sc, r.(*ua.CreateSessionRequest))
	})
	reg(id.ActivateSessionRequest_Encoding_DefaultBinary, false, func(sc *uasc.SecureChannel, _ *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
		return s.activateSession(sc, r.(*ua.ActivateSessionRequest))
	})
	reg(id.CloseSessionRequest_Encoding_DefaultBinary, true, func(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
		s.closeSession(sess, "closed by client")
		return &ua.CloseSessionResponse{ResponseHeader: s.header(r.Header(), ua.StatusOK)}, ua.StatusOK
	})
	reg(id.CancelRequest_Encoding_DefaultBinary, true, func(_ *uasc.SecureChannel, _ *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
		return &ua.CancelResponse{ResponseHeader: s.header(r.Header(), ua.StatusOK)}, ua.StatusOK
	})
	reg(id.ReadRequest_Encoding_DefaultBinary, true, s.read)
	reg(id.WriteRequest_Encoding_DefaultBinary, true, s.write)
	reg(id.CallRequest_Encoding_DefaultBinary, true, s.call)
	reg(id.BrowseRequest_Encoding_DefaultBinary, true, s.browseService)
	reg(id.BrowseNextRequest_Encoding_DefaultBinary, true, s.browseNext)
	reg(id.TranslateBrowsePathsToNodeIDsRequest_Encoding_DefaultBinary, true, s.translate)
	reg(id.RegisterNodesRequest_Encoding_DefaultBinary, true, func(_ *uasc.SecureChannel, _ *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
		req := r.(*ua.RegisterNodesRequest)
		return &ua.RegisterNodesResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), RegisteredNodeIDs: req.NodesToRegister}, ua.StatusOK
	})
	reg(id.UnregisterNodesRequest_Encoding_DefaultBinary, true, func(_ *uasc.SecureChannel, _ *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
		return &ua.UnregisterNodesResponse{ResponseHeader: s.header(r.Header(), ua.StatusOK)}, ua.StatusOK
	})
	reg(id.CreateSubscriptionRequest_Encoding_DefaultBinary, true, s.createSubscription)
	reg(id.ModifySubscriptionRequest_Encoding_DefaultBinary, true, s.modifySubscription)
	reg(id.SetPublishingModeRequest_Encoding_DefaultBinary, true, s.setPublishingMode)
	reg(id.DeleteSubscriptionsRequest_Encoding_DefaultBinary, true, s.deleteSubscriptions)
	reg(id.TransferSubscriptionsRequest_Encoding_DefaultBinary, true, func(_ *uasc.SecureChannel, _ *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
		return nil, ua.StatusBadServiceUnsupported
	})
	reg(id.PublishRequest_Encoding_DefaultBinary, true, s.publish)
	reg(id.RepublishRequest_Encoding_DefaultBinary, true, s.republish)
	reg(id.CreateMonitoredItemsRequest_Encoding_DefaultBinary, true, s.createMonitoredItems)
	reg(id.ModifyMonitoredItemsRequest_Encoding_DefaultBinary, true, s.modifyMonitoredItems)
	reg(id.SetMonitoringModeRequest_Encoding_DefaultBinary, true, s.setMonitoringMode)
	reg(id.DeleteMonitoredItemsRequest_Encoding_DefaultBinary, true, s.deleteMonitoredItems)
}

// wrap turns a serviceFunc into a gopcua handler: it checks the session
// (present, on its own channel, activated), recovers from panics (gopcua
// runs every handler on one goroutine: a panic would stop the server for
// everyone) and counts what it refuses.
func (s *Server) wrap(needSession bool, fn serviceFunc) func(*uasc.SecureChannel, ua.Request, uint32) (ua.Response, error) {
	return func(sc *uasc.SecureChannel, req ua.Request, reqID uint32) (resp ua.Response, _ error) {
		s.stats.requests.Add(1)
		hdr := req.Header()
		if hdr == nil {
			s.stats.malformed.Add(1)
			return s.fault(nil, ua.StatusBadRequestHeaderInvalid), nil
		}
		defer func() {
			if p := recover(); p != nil {
				s.stats.panics.Add(1)
				s.log.Error().Str("request", fmt.Sprintf("%T", req)).Interface("panic", p).
					Bytes("stack", debug.Stack()).Msg("OPC UA request handler panicked")
				resp = s.fault(hdr, ua.StatusBadInternalError)
			}
		}()
		var sess *session
		if needSession {
			sess = s.sessions.get(hdr.AuthenticationToken)
			switch {
			case sess == nil:
				s.stats.badSession.Add(1)
				return s.fault(hdr, ua.StatusBadSessionIDInvalid), nil
			case sess.sc != sc:
				s.stats.badSession.Add(1)
				return s.fault(hdr, ua.StatusBadSecureChannelIDInvalid), nil
			}
			sess.mu.Lock()
			active := sess.activated
			sess.mu.Unlock()
			if !active {
				s.stats.badSession.Add(1)
				return s.fault(hdr, ua.StatusBadSessionNotActivated), nil
			}
			sess.touch(time.Now())
		}
		r, code := fn(sc, sess, req, reqID)
		if r == nil && code != ua.StatusOK {
			s.stats.faults.Add(1)
			return s.fault(hdr, code), nil
		}
		return r, nil
	}
}

func (s *Server) header(req *ua.RequestHeader, code ua.StatusCode) *ua.ResponseHeader {
	h := &ua.ResponseHeader{
		Timestamp:          time.Now(),
		ServiceResult:      code,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
	if req != nil {
		h.RequestHandle = req.RequestHandle
	}
	return h
}

func (s *Server) fault(req *ua.RequestHeader, code ua.StatusCode) ua.Response {
	return &ua.ServiceFault{ResponseHeader: s.header(req, code)}
}

func (s *Server) getEndpoints(_ *uasc.SecureChannel, _ *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.GetEndpointsRequest)
	eps := s.endpoints
	if len(req.ProfileURIs) > 0 {
		eps = nil
		for _, p := range req.ProfileURIs {
			if p == binaryTransport {
				eps = s.endpoints
			}
		}
	}
	if eps == nil {
		eps = []*ua.EndpointDescription{}
	}
	return &ua.GetEndpointsResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Endpoints: eps}, ua.StatusOK
}

func (s *Server) findServers(_ *uasc.SecureChannel, _ *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.FindServersRequest)
	return &ua.FindServersResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Servers: []*ua.ApplicationDescription{s.app}}, ua.StatusOK
}

// read implements Read (Part 4, 5.10.2).
func (s *Server) read(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.ReadRequest)
	switch {
	case len(req.NodesToRead) == 0:
		return nil, ua.StatusBadNothingToDo
	case len(req.NodesToRead) > maxOperations:
		return nil, ua.StatusBadTooManyOperations
	case req.MaxAge < 0:
		return nil, ua.StatusBadMaxAgeInvalid
	case req.TimestampsToReturn > ua.TimestampsToReturnNeither:
		return nil, ua.StatusBadTimestampsToReturnInvalid
	}
	rights := sess.currentRights()
	now := time.Now()
	results := make([]*ua.DataValue, len(req.NodesToRead))
	diags := []*ua.DiagnosticInfo{}
	var reason *string // only with diagnostics: no allocation for a plain read
	if wantDiagnostics(req.RequestHeader) {
		diags = make([]*ua.DiagnosticInfo, len(req.NodesToRead))
		reason = new(string)
	}
	s.readNodes(req, rights, now, results, diags, reason)
	s.stats.reads.Add(uint64(len(results)))
	return &ua.ReadResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: diags}, ua.StatusOK
}

// readNodes reads every node of req into results (and diags, when
// diagnostics are asked for).
//
// The property values of several nodes are read together first
// (properties.ReadMany): one Read answers values of one batch.
func (s *Server) readNodes(req *ua.ReadRequest, r rights, now time.Time, results []*ua.DataValue, diags []*ua.DiagnosticInfo, reason *string) {
	var pre []*prefetched
	if len(req.NodesToRead) > 1 {
		pre = s.prefetch(req.NodesToRead)
	}
	budget := maxValueBytes
	for i, rv := range req.NodesToRead {
		var pf *prefetched
		if pre != nil {
			pf = pre[i]
		}
		if reason != nil {
			*reason = ""
		}
		results[i] = s.readOne(rv, r, req.TimestampsToReturn, now, &budget, reason, pf)
		if reason != nil {
			// The reason of a value that is not good (a DataValue has
			// no text field).
			diags[i] = &ua.DiagnosticInfo{}
			if *reason != "" {
				diags[i] = &ua.DiagnosticInfo{EncodingMask: ua.DiagnosticInfoAdditionalInfo, AdditionalInfo: *reason}
			}
		}
	}
}

// prefetched is a property value read ahead of readOne.
type prefetched struct {
	v   properties.Value
	err error
}

// prefetch reads the values of the variables rvs name, all at one moment;
// nil for the other entries.
func (s *Server) prefetch(rvs []*ua.ReadValueID) []*prefetched {
	var props []*properties.Property
	var at []int
	for i, rv := range rvs {
		if rv == nil || rv.NodeID == nil || rv.AttributeID != ua.AttributeIDValue || rv.NodeID.Namespace() != s.as.ns {
			continue
		}
		if n := s.as.lookup(rv.NodeID); n != nil && n.kind == kindVariable {
			props = append(props, n.prop)
			at = append(at, i)
		}
	}
	if len(props) < 2 {
		return nil
	}
	vals, errs := properties.ReadMany(props)
	out := make([]*prefetched, len(rvs))
	for k, i := range at {
		out[i] = &prefetched{vals[k], errs[k]}
	}
	return out
}

// readOne reads one attribute; reason, if not nil, receives the reason of
// a value whose quality is not good; pre, if not nil, is the value of the
// node's property, read already.
func (s *Server) readOne(rv *ua.ReadValueID, r rights, ts ua.TimestampsToReturn, now time.Time, budget *int, reason *string, pre *prefetched) *ua.DataValue {
	if rv == nil || rv.NodeID == nil {
		return statusValue(ua.StatusBadNodeIDInvalid)
	}
	if rv.DataEncoding != nil && rv.DataEncoding.Name != "" && rv.DataEncoding.Name != "Default Binary" {
		return statusValue(ua.StatusBadDataEncodingUnsupported)
	}
	if rv.NodeID.Namespace() != s.as.ns {
		if rv.IndexRange != "" {
			return statusValue(ua.StatusBadIndexRangeNoData)
		}
		ns, err := s.srv.Namespace(int(rv.NodeID.Namespace()))
		if err != nil || rv.NodeID.Namespace() != 0 {
			return statusValue(ua.StatusBadNodeIDUnknown)
		}
		return ns.Attribute(rv.NodeID, rv.AttributeID)
	}
	n := s.as.lookup(rv.NodeID)
	if n == nil {
		return statusValue(ua.StatusBadNodeIDUnknown)
	}
	if rv.AttributeID != ua.AttributeIDValue || n.kind != kindVariable {
		if rv.IndexRange != "" && rv.AttributeID != ua.AttributeIDValue {
			return statusValue(ua.StatusBadIndexRangeNoData)
		}
		return s.as.attribute(n, rv.AttributeID, r, ts, now)
	}
	var pv properties.Value
	var err error
	if pre != nil {
		pv, err = pre.v, pre.err
	} else {
		pv, err = n.prop.Read()
	}
	if err != nil {
		return statusValue(statusOf(err))
	}
	if reason != nil && !pv.Quality.IsGood() {
		*reason = pv.Quality.Reason
	}
	if rv.IndexRange != "" {
		nr, err := parseNumericRange(rv.IndexRange)
		if err != nil {
			return statusValue(ua.StatusBadIndexRangeInvalid)
		}
		pv, err = nr.apply(n.spec, pv)
		if err != nil {
			return statusValue(ua.StatusBadIndexRangeNoData)
		}
	}
	size := valueBytes(n.spec, pv)
	if size > *budget {
		return stamp(statusValue(ua.StatusBadResponseTooLarge), ts, pv.Time, now)
	}
	*budget -= size
	return dataValue(n.spec, pv, ts, now)
}

// write implements Write (Part 4, 5.10.4). The writes run on the session's
// operation queue (see runOps); the response follows when all are done.
func (s *Server) write(_ *uasc.SecureChannel, sess *session, r ua.Request, reqID uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.WriteRequest)
	switch {
	case len(req.NodesToWrite) == 0:
		return nil, ua.StatusBadNothingToDo
	case len(req.NodesToWrite) > maxOperations:
		return nil, ua.StatusBadTooManyOperations
	}
	ctx, cancel := s.requestContext(req.RequestHeader)
	return s.enqueueCtx(sess, cancel, func() {
		rights := sess.currentRights()
		results := make([]ua.StatusCode, len(req.NodesToWrite))
		diags := make([]*ua.DiagnosticInfo, 0)
		for i, wv := range req.NodesToWrite {
			code, err := s.writeOne(ctx, sess, wv, rights)
			results[i] = code
			if wantDiagnostics(req.RequestHeader) {
				diags = append(diags, diagnostic(err))
			}
		}
		s.send(sess, reqID, &ua.WriteResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: diags})
	})
}

// enqueueCtx is enqueue for an operation that owns a request context:
// cancel runs when the operation is done, or at once when it is refused.
func (s *Server) enqueueCtx(sess *session, cancel context.CancelFunc, op func()) (ua.Response, ua.StatusCode) {
	resp, code := s.enqueue(sess, func() {
		defer cancel()
		op()
	})
	if code != ua.StatusOK {
		cancel()
	}
	return resp, code
}

// enqueue puts an operation on the session's queue; a full queue refuses
// the request at once.
func (s *Server) enqueue(sess *session, op func()) (ua.Response, ua.StatusCode) {
	select {
	case sess.ops <- op:
		return nil, ua.StatusOK
	default:
		return nil, ua.StatusBadTooManyOperations
	}
}

// wantDiagnostics reports whether the client asked for operation-level
// diagnostics (Part 4, 7.29: bits 0x20..0x100 of ReturnDiagnostics).
func wantDiagnostics(h *ua.RequestHeader) bool { return h != nil && h.ReturnDiagnostics&0x1e0 != 0 }

func diagnostic(err error) *ua.DiagnosticInfo {
	if err == nil {
		return &ua.DiagnosticInfo{}
	}
	return &ua.DiagnosticInfo{EncodingMask: ua.DiagnosticInfoAdditionalInfo, AdditionalInfo: err.Error()}
}

// writeOne writes one value. The order of checks follows Part 4: the node,
// the attribute, the node's AccessLevel (BadNotWritable), the session's
// UserAccessLevel (BadUserAccessDenied), then the value itself.
func (s *Server) writeOne(ctx context.Context, sess *session, wv *ua.WriteValue, r rights) (ua.StatusCode, error) {
	refuse := func(code ua.StatusCode, err error) (ua.StatusCode, error) {
		s.stats.writesRefused.Add(1)
		return code, err
	}
	if wv == nil || wv.NodeID == nil {
		return refuse(ua.StatusBadNodeIDInvalid, nil)
	}
	n := s.as.lookup(wv.NodeID)
	if n == nil {
		if wv.NodeID.Namespace() == 0 {
			return refuse(ua.StatusBadNotWritable, nil)
		}
		return refuse(ua.StatusBadNodeIDUnknown, nil)
	}
	if wv.AttributeID != ua.AttributeIDValue || n.kind != kindVariable || n.access&byte(ua.AccessLevelTypeCurrentWrite) == 0 {
		return refuse(ua.StatusBadNotWritable, nil)
	}
	if !r.control {
		return refuse(ua.StatusBadUserAccessDenied, nil)
	}
	if wv.IndexRange != "" {
		return refuse(ua.StatusBadWriteNotSupported, nil)
	}
	if wv.Value == nil || wv.Value.Value == nil {
		return refuse(ua.StatusBadTypeMismatch, nil)
	}
	v, err := valueOf(n.spec, n.spec.Shape, n.spec.Width, wv.Value.Value)
	if err == nil {
		err = n.prop.Write(ctx, v)
	}
	if err != nil {
		code := statusOf(err)
		s.log.Info().Str("session", sess.name).Str("remote", sess.remote).Str("node", n.id.StringID()).
			Str("status", code.Error()).Err(err).Msg("OPC UA write refused")
		return refuse(code, err)
	}
	s.stats.writes.Add(1)
	s.log.Info().Str("session", sess.name).Str("remote", sess.remote).Str("node", n.id.StringID()).
		Str("value", v.String()).Msg("OPC UA write")
	return ua.StatusOK, nil
}

// call implements Call (Part 4, 5.11.2) for commands and queries.
func (s *Server) call(_ *uasc.SecureChannel, sess *session, r ua.Request, reqID uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.CallRequest)
	switch {
	case len(req.MethodsToCall) == 0:
		return nil, ua.StatusBadNothingToDo
	case len(req.MethodsToCall) > maxOperations:
		return nil, ua.StatusBadTooManyOperations
	}
	ctx, cancel := s.requestContext(req.RequestHeader)
	return s.enqueueCtx(sess, cancel, func() {
		rights := sess.currentRights()
		results := make([]*ua.CallMethodResult, len(req.MethodsToCall))
		diags := make([]*ua.DiagnosticInfo, 0)
		for i, m := range req.MethodsToCall {
			var err error
			results[i], err = s.callOne(ctx, sess, m, rights)
			if wantDiagnostics(req.RequestHeader) {
				diags = append(diags, diagnostic(err))
			}
		}
		s.send(sess, reqID, &ua.CallResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: diags})
	})
}

// callOne calls one method; the error, when there is one, is the reason
// for a refusal (the client's diagnostics carry its text).
func (s *Server) callOne(ctx context.Context, sess *session, m *ua.CallMethodRequest, r rights) (*ua.CallMethodResult, error) {
	res := &ua.CallMethodResult{InputArgumentResults: []ua.StatusCode{}, InputArgumentDiagnosticInfos: []*ua.DiagnosticInfo{}, OutputArguments: []*ua.Variant{}}
	var why error
	fail := func(code ua.StatusCode) (*ua.CallMethodResult, error) {
		s.stats.callsRefused.Add(1)
		res.StatusCode = code
		return res, why
	}
	if m == nil || m.ObjectID == nil || m.MethodID == nil {
		return fail(ua.StatusBadNodeIDInvalid)
	}
	obj := s.as.lookup(m.ObjectID)
	if obj == nil {
		return fail(ua.StatusBadNodeIDUnknown)
	}
	meth := s.as.lookup(m.MethodID)
	if meth == nil || meth.kind != kindMethod || meth.owner != obj {
		return fail(ua.StatusBadMethodInvalid)
	}
	if !meth.executable(r) {
		return fail(ua.StatusBadUserAccessDenied)
	}
	switch {
	case len(m.InputArguments) < 1:
		return fail(ua.StatusBadArgumentsMissing)
	case len(m.InputArguments) > 1:
		return fail(ua.StatusBadTooManyArguments)
	}
	spec := meth.spec
	if meth.query {
		arg, err := valueOf(properties.Spec{Elem: spec.Arg}, properties.Scalar, 0, m.InputArguments[0])
		if err != nil {
			res.InputArgumentResults = []ua.StatusCode{statusOf(err)}
			return fail(ua.StatusBadInvalidArgument)
		}
		out, err := meth.prop.Query(ctx, arg)
		if err != nil {
			why = err
			return fail(statusOf(err))
		}
		if valueBytes(spec, out) > maxValueBytes {
			return fail(ua.StatusBadResponseTooLarge)
		}
		va, err := variantOf(spec, out)
		if err != nil {
			return fail(ua.StatusBadInternalError)
		}
		res.InputArgumentResults = []ua.StatusCode{ua.StatusOK}
		res.OutputArguments = []*ua.Variant{va}
		s.stats.calls.Add(1)
		return res, nil
	}
	v, err := valueOf(spec, spec.Shape, spec.Width, m.InputArguments[0])
	if err == nil {
		err = meth.prop.Write(ctx, v)
	}
	if err != nil {
		why = err
		code := statusOf(err)
		s.log.Info().Str("session", sess.name).Str("remote", sess.remote).Str("method", meth.id.StringID()).
			Str("status", code.Error()).Err(err).Msg("OPC UA call refused")
		if code == ua.StatusBadTypeMismatch || code == ua.StatusBadOutOfRange {
			res.InputArgumentResults = []ua.StatusCode{code}
			return fail(ua.StatusBadInvalidArgument)
		}
		return fail(code)
	}
	s.stats.calls.Add(1)
	s.log.Info().Str("session", sess.name).Str("remote", sess.remote).Str("method", meth.id.StringID()).
		Str("value", v.String()).Msg("OPC UA command")
	res.InputArgumentResults = []ua.StatusCode{ua.StatusOK}
	return res, nil
}

// browseAny browses a node of our namespace or of namespace 0.
func (s *Server) browseAny(bd *ua.BrowseDescription) *ua.BrowseResult {
	if bd == nil || bd.NodeID == nil {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDInvalid}
	}
	switch bd.NodeID.Namespace() {
	case s.as.ns:
		return s.as.browse(bd)
	case 0:
		ns, err := s.srv.Namespace(0)
		if err != nil || ns.Node(bd.NodeID) == nil {
			return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
		}
		if bd.ReferenceTypeID == nil {
			bd.ReferenceTypeID = ua.NewNumericNodeID(0, 0)
		}
		return ns.Browse(bd)
	}
	return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
}

// browseService implements Browse (Part 4, 5.8.2), with continuation
// points when a node has more references than the client takes at once.
func (s *Server) browseService(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.BrowseRequest)
	switch {
	case len(req.NodesToBrowse) == 0:
		return nil, ua.StatusBadNothingToDo
	case len(req.NodesToBrowse) > maxOperations:
		return nil, ua.StatusBadTooManyOperations
	}
	results := make([]*ua.BrowseResult, len(req.NodesToBrowse))
	for i, bd := range req.NodesToBrowse {
		res := s.browseAny(bd)
		if res.References == nil {
			res.References = []*ua.ReferenceDescription{}
		}
		results[i] = s.limitRefs(sess, res, req.RequestedMaxReferencesPerNode)
	}
	return &ua.BrowseResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, ua.StatusOK
}

// limitRefs cuts a browse result to max references and keeps the rest
// behind a continuation point of the session.
func (s *Server) limitRefs(sess *session, res *ua.BrowseResult, max uint32) *ua.BrowseResult {
	if max == 0 || uint32(len(res.References)) <= max {
		return res
	}
	rest := res.References[max:]
	res.References = res.References[:max]
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.pub.cps == nil {
		sess.pub.cps = map[string]continuation{}
	}
	if len(sess.pub.cps) >= maxContinuationPoints {
		res.StatusCode = ua.StatusBadNoContinuationPoints
		res.References = []*ua.ReferenceDescription{}
		return res
	}
	cp := randomBytes(16)
	sess.pub.cps[string(cp)] = continuation{refs: rest, max: max}
	res.ContinuationPoint = cp
	return res
}

// continuation is what a browse continuation point stands for.
type continuation struct {
	refs []*ua.ReferenceDescription
	max  uint32
}

func (s *Server) browseNext(_ *uasc.SecureChannel, sess *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.BrowseNextRequest)
	if len(req.ContinuationPoints) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	results := make([]*ua.BrowseResult, len(req.ContinuationPoints))
	for i, cp := range req.ContinuationPoints {
		sess.mu.Lock()
		c, ok := sess.pub.cps[string(cp)]
		delete(sess.pub.cps, string(cp))
		sess.mu.Unlock()
		switch {
		case !ok:
			results[i] = &ua.BrowseResult{StatusCode: ua.StatusBadContinuationPointInvalid, References: []*ua.ReferenceDescription{}}
		case req.ReleaseContinuationPoints:
			results[i] = &ua.BrowseResult{StatusCode: ua.StatusOK, References: []*ua.ReferenceDescription{}}
		default:
			results[i] = s.limitRefs(sess, &ua.BrowseResult{StatusCode: ua.StatusOK, References: c.refs}, c.max)
		}
	}
	return &ua.BrowseNextResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, ua.StatusOK
}

// translate implements TranslateBrowsePathsToNodeIds (Part 4, 5.8.4), so
// that clients can address a property by path, e.g.
// Objects/rideau/tioga/frame-count.
func (s *Server) translate(_ *uasc.SecureChannel, _ *session, r ua.Request, _ uint32) (ua.Response, ua.StatusCode) {
	req := r.(*ua.TranslateBrowsePathsToNodeIDsRequest)
	switch {
	case len(req.BrowsePaths) == 0:
		return nil, ua.StatusBadNothingToDo
	case len(req.BrowsePaths) > maxOperations:
		return nil, ua.StatusBadTooManyOperations
	}
	results := make([]*ua.BrowsePathResult, len(req.BrowsePaths))
	for i, bp := range req.BrowsePaths {
		results[i] = s.translateOne(bp)
	}
	return &ua.TranslateBrowsePathsToNodeIDsResponse{ResponseHeader: s.header(req.RequestHeader, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, ua.StatusOK
}

func (s *Server) translateOne(bp *ua.BrowsePath) *ua.BrowsePathResult {
	res := &ua.BrowsePathResult{Targets: []*ua.BrowsePathTarget{}}
	if bp == nil || bp.StartingNode == nil || bp.RelativePath == nil || len(bp.RelativePath.Elements) == 0 {
		res.StatusCode = ua.StatusBadNothingToDo
		return res
	}
	current := []*ua.NodeID{bp.StartingNode}
	for _, el := range bp.RelativePath.Elements {
		if el == nil || el.TargetName == nil || el.TargetName.Name == "" {
			res.StatusCode = ua.StatusBadBrowseNameInvalid
			return res
		}
		dir := ua.BrowseDirectionForward
		if el.IsInverse {
			dir = ua.BrowseDirectionInverse
		}
		var next []*ua.NodeID
		for _, from := range current {
			br := s.browseAny(&ua.BrowseDescription{NodeID: from, BrowseDirection: dir, ReferenceTypeID: el.ReferenceTypeID, IncludeSubtypes: el.IncludeSubtypes, ResultMask: 0x3f})
			for _, rd := range br.References {
				if rd.BrowseName != nil && rd.BrowseName.Name == el.TargetName.Name && rd.BrowseName.NamespaceIndex == el.TargetName.NamespaceIndex && rd.NodeID != nil {
					next = append(next, rd.NodeID.NodeID)
				}
			}
		}
		if len(next) == 0 {
			res.StatusCode = ua.StatusBadNoMatch
			return res
		}
		if len(next) > maxOperations {
			res.StatusCode = ua.StatusBadTooManyMatches
			return res
		}
		current = next
	}
	for _, n := range current {
		res.Targets = append(res.Targets, &ua.BrowsePathTarget{TargetID: ua.NewExpandedNodeID(n, "", 0), RemainingPathIndex: 0xffffffff})
	}
	res.StatusCode = ua.StatusOK
	return res
}

// binaryTransport is the transport profile of every endpoint.
const binaryTransport = "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary"
