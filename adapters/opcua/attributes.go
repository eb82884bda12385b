package opcua

import (
	"context"
	"errors"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"tioga/properties"
)

// rights is what a session may do beyond reading. It decides the
// UserAccessLevel and UserExecutable attributes as well as the outcome of
// writes and calls, so that what a client is shown matches what it gets.
type rights struct {
	control bool // may write values and call commands
}

var anonymous = rights{}

// userAccess is the UserAccessLevel of a variable for a session.
func (n *node) userAccess(r rights) byte {
	if r.control {
		return n.access
	}
	return n.access &^ byte(ua.AccessLevelTypeCurrentWrite)
}

// executable reports UserExecutable: queries are reads and open to every
// session; commands need control rights.
func (n *node) executable(r rights) bool { return n.query || r.control }

// attribute reads one attribute of n. Values come from the property
// registry with the registry's timestamp as SourceTimestamp.
func (as *addressSpace) attribute(n *node, attr ua.AttributeID, r rights, ts ua.TimestampsToReturn, now time.Time) *ua.DataValue {
	var v any
	switch attr {
	case ua.AttributeIDNodeID:
		v = n.id
	case ua.AttributeIDNodeClass:
		v = int32(n.class)
	case ua.AttributeIDBrowseName:
		v = as.qualifiedName(n)
	case ua.AttributeIDDisplayName:
		v = text(n.browseName)
	case ua.AttributeIDDescription:
		v = text(n.description)
	case ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask:
		v = uint32(0)
	case ua.AttributeIDRolePermissions, ua.AttributeIDUserRolePermissions, ua.AttributeIDAccessRestrictions:
		return statusValue(ua.StatusBadAttributeIDInvalid)
	}
	if v == nil {
		switch n.class {
		case ua.NodeClassObject:
			if attr == ua.AttributeIDEventNotifier {
				v = byte(0)
			}
		case ua.NodeClassMethod:
			switch attr {
			case ua.AttributeIDExecutable:
				v = true
			case ua.AttributeIDUserExecutable:
				v = n.executable(r)
			}
		case ua.NodeClassVariable:
			switch attr {
			case ua.AttributeIDValue:
				return as.value(n, ts, now)
			case ua.AttributeIDDataType:
				v = ua.NewNumericNodeID(0, n.dataType)
			case ua.AttributeIDValueRank:
				v = n.valueRank
			case ua.AttributeIDArrayDimensions:
				if n.arrayDims == nil {
					v = []uint32{}
				} else {
					v = n.arrayDims
				}
			case ua.AttributeIDAccessLevel:
				v = n.access
			case ua.AttributeIDUserAccessLevel:
				v = n.userAccess(r)
			case ua.AttributeIDAccessLevelEx:
				v = uint32(n.access)
			case ua.AttributeIDMinimumSamplingInterval:
				// Changes are pushed by the registry as they happen.
				v = float64(0)
			case ua.AttributeIDHistorizing:
				v = false
			}
		}
	}
	if v == nil {
		return statusValue(ua.StatusBadAttributeIDInvalid)
	}
	va, err := ua.NewVariant(v)
	if err != nil {
		return statusValue(ua.StatusBadInternalError)
	}
	return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: va}
}

// value reads a variable's value: the registry's current value and its
// source timestamp.
func (as *addressSpace) value(n *node, ts ua.TimestampsToReturn, now time.Time) *ua.DataValue {
	if n.kind == kindProperty {
		return stamp(&ua.DataValue{EncodingMask: ua.DataValueValue, Value: n.static}, ts, time.Time{}, now)
	}
	pv, err := n.prop.Read()
	if err != nil {
		return statusValue(statusOf(err))
	}
	return dataValue(n.spec, pv, ts, now)
}

// dataValue encodes a property value with the timestamps the client asked
// for.
func dataValue(spec properties.Spec, pv properties.Value, ts ua.TimestampsToReturn, now time.Time) *ua.DataValue {
	if valueBytes(spec, pv) > maxValueBytes {
		return stamp(statusValue(ua.StatusBadResponseTooLarge), ts, pv.Time, now)
	}
	va, err := variantOf(spec, pv)
	if err != nil {
		return statusValue(ua.StatusBadInternalError)
	}
	code := qualityStatus(pv.Quality)
	if code&ua.StatusBad != 0 {
		// Part 4, 7.7.1: a Bad value is not sent (null), only its code.
		return stamp(statusValue(code), ts, pv.Time, now)
	}
	dv := &ua.DataValue{EncodingMask: ua.DataValueValue, Value: va}
	if code != ua.StatusOK {
		dv.Status = code
		dv.EncodingMask |= ua.DataValueStatusCode
	}
	return stamp(dv, ts, pv.Time, now)
}

// qualityStatus maps a value's quality to the StatusCode of its DataValue
// (Part 8, 7.3): the cause picks the sub-code a client can act on
// (communication lost, waiting for a first value), the level its class.
// The reason travels as the operation's DiagnosticInfo when the client
// asks for it (Read with ReturnDiagnostics), as OPC UA has no text field
// in a DataValue.
func qualityStatus(q properties.Quality) ua.StatusCode {
	switch q.Level {
	case properties.Good:
		return ua.StatusOK
	case properties.Uncertain:
		switch q.Cause {
		case properties.CauseNoCommunication:
			return ua.StatusUncertainNoCommunicationLastUsableValue
		case properties.CauseNoValue:
			return ua.StatusUncertainInitialValue
		}
		return ua.StatusUncertain
	}
	switch q.Cause {
	case properties.CauseNoCommunication:
		return ua.StatusBadCommunicationError
	case properties.CauseNoValue:
		return ua.StatusBadWaitingForInitialData
	}
	return ua.StatusBad
}

// maxValueBytes bounds the encoded size of one value in a response. The
// gopcua stack negotiates 2 MiB messages and does not split a larger
// response across messages: a bigger value gets BadResponseTooLarge (read
// it in parts with an IndexRange) instead of a connection that fails.
const maxValueBytes = 2*1024*1024 - 64*1024

func stamp(dv *ua.DataValue, ts ua.TimestampsToReturn, source, now time.Time) *ua.DataValue {
	if (ts == ua.TimestampsToReturnSource || ts == ua.TimestampsToReturnBoth) && !source.IsZero() {
		dv.SourceTimestamp = source
		dv.EncodingMask |= ua.DataValueSourceTimestamp
	}
	if ts == ua.TimestampsToReturnServer || ts == ua.TimestampsToReturnBoth {
		dv.ServerTimestamp = now
		dv.EncodingMask |= ua.DataValueServerTimestamp
	}
	return dv
}

// statusOf maps the registry's errors to OPC UA status codes. This table is
// the contract clients rely on (see the package documentation).
func statusOf(err error) ua.StatusCode {
	switch {
	case err == nil:
		return ua.StatusOK
	case errors.Is(err, properties.ErrUnknown):
		return ua.StatusBadNodeIDUnknown
	case errors.Is(err, properties.ErrReadOnly):
		return ua.StatusBadNotWritable
	case errors.Is(err, properties.ErrWriteOnly):
		return ua.StatusBadNotReadable
	case errors.Is(err, properties.ErrType):
		return ua.StatusBadTypeMismatch
	case errors.Is(err, properties.ErrSize), errors.Is(err, properties.ErrOutOfRange):
		return ua.StatusBadOutOfRange
	case errors.Is(err, properties.ErrNoQuery):
		return ua.StatusBadMethodInvalid
	case errors.Is(err, properties.ErrRejected):
		return ua.StatusBadInvalidArgument
	case errors.Is(err, context.DeadlineExceeded):
		return ua.StatusBadTimeout // the request's TimeoutHint passed
	case errors.Is(err, context.Canceled):
		return ua.StatusBadShutdown
	case errors.Is(err, properties.ErrNoData):
		return ua.StatusBadNoData
	}
	return ua.StatusBadInternalError
}

// Reference type hierarchy of the references this namespace uses, for
// browse filters with IncludeSubtypes (OPC UA Part 5, 11).
var refParents = map[uint32]uint32{
	id.Organizes:                 id.HierarchicalReferences,
	id.HasComponent:              id.Aggregates,
	id.HasProperty:               id.Aggregates,
	id.Aggregates:                id.HasChild,
	id.HasChild:                  id.HierarchicalReferences,
	id.HierarchicalReferences:    id.References,
	id.HasTypeDefinition:         id.NonHierarchicalReferences,
	id.NonHierarchicalReferences: id.References,
}

// refMatches reports whether a reference of type typ passes a browse
// filter for want.
func refMatches(want *ua.NodeID, subtypes bool, typ uint32) bool {
	if want == nil || (want.Namespace() == 0 && want.IntID() == 0) {
		return true
	}
	if want.Namespace() != 0 || want.Type() == ua.NodeIDTypeString {
		return false
	}
	w := want.IntID()
	for t := typ; t != 0; t = refParents[t] {
		if t == w {
			return true
		}
		if !subtypes {
			return false
		}
	}
	return false
}

// browse lists the references of one of our nodes.
func (as *addressSpace) browse(bd *ua.BrowseDescription) *ua.BrowseResult {
	n := as.lookup(bd.NodeID)
	if n == nil {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	if bd.BrowseDirection > ua.BrowseDirectionBoth {
		return &ua.BrowseResult{StatusCode: ua.StatusBadBrowseDirectionInvalid}
	}
	if bd.ReferenceTypeID != nil && bd.ReferenceTypeID.Namespace() == 0 && bd.ReferenceTypeID.IntID() != 0 {
		if _, known := refParents[bd.ReferenceTypeID.IntID()]; !known && bd.ReferenceTypeID.IntID() != id.References {
			// A reference type this namespace never uses (or an invalid
			// one): nothing matches.
			return &ua.BrowseResult{StatusCode: ua.StatusOK, References: []*ua.ReferenceDescription{}}
		}
	}
	out := []*ua.ReferenceDescription{}
	all := append([]ref{{typ: id.HasTypeDefinition, forward: true, ns0: n.typeDef}}, n.refs...)
	for _, r := range all {
		if r.typ == id.HasTypeDefinition && r.ns0 == 0 {
			continue // methods have no type definition
		}
		if (bd.BrowseDirection == ua.BrowseDirectionForward && !r.forward) || (bd.BrowseDirection == ua.BrowseDirectionInverse && r.forward) {
			continue
		}
		if !refMatches(bd.ReferenceTypeID, bd.IncludeSubtypes, r.typ) {
			continue
		}
		rd := as.describeRef(r)
		if bd.NodeClassMask != 0 && bd.NodeClassMask&uint32(rd.NodeClass) == 0 {
			continue
		}
		out = append(out, rd)
	}
	return &ua.BrowseResult{StatusCode: ua.StatusOK, References: out}
}

// ns0Targets names the namespace-0 nodes our references point to.
var ns0Targets = map[uint32]struct {
	name  string
	class ua.NodeClass
}{
	id.ObjectsFolder:        {"Objects", ua.NodeClassObject},
	id.FolderType:           {"FolderType", ua.NodeClassObjectType},
	id.BaseObjectType:       {"BaseObjectType", ua.NodeClassObjectType},
	id.BaseDataVariableType: {"BaseDataVariableType", ua.NodeClassVariableType},
	id.PropertyType:         {"PropertyType", ua.NodeClassVariableType},
}

func (as *addressSpace) describeRef(r ref) *ua.ReferenceDescription {
	rd := &ua.ReferenceDescription{
		ReferenceTypeID: ua.NewNumericNodeID(0, r.typ),
		IsForward:       r.forward,
	}
	if t := r.target; t != nil {
		rd.NodeID = ua.NewExpandedNodeID(t.id, "", 0)
		rd.BrowseName = as.qualifiedName(t)
		rd.DisplayName = text(t.browseName)
		rd.NodeClass = t.class
		rd.TypeDefinition = ua.NewNumericExpandedNodeID(0, t.typeDef)
		return rd
	}
	info := ns0Targets[r.ns0]
	rd.NodeID = ua.NewNumericExpandedNodeID(0, r.ns0)
	rd.BrowseName = &ua.QualifiedName{Name: info.name}
	rd.DisplayName = text(info.name)
	rd.NodeClass = info.class
	rd.TypeDefinition = ua.NewNumericExpandedNodeID(0, 0)
	if r.ns0 == id.ObjectsFolder {
		rd.TypeDefinition = ua.NewNumericExpandedNodeID(0, id.FolderType)
	}
	return rd
}
