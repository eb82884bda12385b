package opcua

import (
	"fmt"
	"strings"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"tioga/device"
	"tioga/properties"
)

// nodeKind says what a node of our namespace stands for.
type nodeKind uint8

const (
	kindServer   nodeKind = iota + 1 // a device server: a Folder under Objects
	kindDevice                       // a device: an Object
	kindVariable                     // a property read or written as a value
	kindMethod                       // a command or a query property
	kindProperty                     // an OPC UA Property of a variable or method (units, arguments, ...)
)

// ref is one reference of a node. Targets are either our nodes or nodes of
// namespace 0 (Objects, type definitions).
type ref struct {
	typ     uint32 // reference type (Organizes, HasComponent, ...)
	forward bool
	target  *node  // our node, or nil for a namespace-0 target
	ns0     uint32 // namespace-0 target when target is nil
}

// node is one node of the adapter's namespace. Everything about it except
// the value is fixed when the server is built: the device tree's structure
// does not change while a server runs.
type node struct {
	id          *ua.NodeID
	kind        nodeKind
	class       ua.NodeClass
	browseName  string
	description string
	typeDef     uint32 // HasTypeDefinition target (namespace 0)
	refs        []ref

	// Variables and methods: the property behind the node.
	prop *properties.Property
	spec properties.Spec

	// Variables (also kindProperty nodes): type information.
	dataType  uint32
	valueRank int32
	arrayDims []uint32
	access    byte        // AccessLevel
	static    *ua.Variant // the fixed value of kindProperty nodes

	// Methods: the object that owns the method (its device) and the
	// arguments.
	owner  *node
	input  []*ua.Argument
	output []*ua.Argument
	// query is true when the method performs a read with an input
	// (Spec.Arg) rather than a command.
	query bool

	// gopcua is the namespace-0-compatible twin of a server folder, which
	// the Objects folder references (gopcua's namespace 0 resolves the
	// targets of its references through Namespace.Node).
	gopcua *server.Node
}

// addressSpace is the adapter's namespace: Objects/<server>/<device>/<property>
// built from the device tree, with string NodeIds that are the TINE
// addresses. It implements gopcua's server.NameSpace so that namespace 0
// (Objects, NamespaceArray) knows it, but the adapter's own services read,
// browse and write it directly.
type addressSpace struct {
	uri     string
	ns      uint16
	servers []*node
	byID    map[string]*node // exact string identifier
	byLower map[string]*node // lower-case identifier (TINE names are case-insensitive), aliases included
}

// Namespace-0 nodes the address space refers to.
const (
	folderType           = id.FolderType
	baseObjectType       = id.BaseObjectType
	baseDataVariableType = id.BaseDataVariableType
	propertyType         = id.PropertyType
)

func newAddressSpace(uri string) *addressSpace {
	return &addressSpace{uri: uri, byID: map[string]*node{}, byLower: map[string]*node{}}
}

// build creates the nodes of every server, device and property of tree.
// It runs once the namespace index is known.
func (as *addressSpace) build(tree *device.Tree) error {
	seen := map[string]string{}
	for _, srv := range tree.Servers() {
		key := strings.ToLower(srv.Name())
		if other, dup := seen[key]; dup {
			return fmt.Errorf("opcua: device servers %s and %s would both be Objects/%s", other, srv.Address(), srv.Name())
		}
		seen[key] = srv.Address()
		sn := as.add(&node{
			id:          as.nodeID(srv.Address()),
			kind:        kindServer,
			class:       ua.NodeClassObject,
			browseName:  srv.Name(),
			description: describe(srv.Description(), srv.Address()),
			typeDef:     folderType,
		})
		sn.refs = append(sn.refs, ref{typ: id.Organizes, forward: false, ns0: id.ObjectsFolder})
		as.servers = append(as.servers, sn)
		for _, alias := range tree.Aliases(srv) {
			as.alias("/"+srv.Context()+"/"+alias, sn)
		}
		for _, dev := range srv.Devices() {
			addr := srv.Address() + "/" + dev.Name()
			dn := as.add(&node{
				id:          as.nodeID(addr),
				kind:        kindDevice,
				class:       ua.NodeClassObject,
				browseName:  dev.Name(),
				description: describe(dev.Description(), addr),
				typeDef:     baseObjectType,
			})
			link(sn, dn, id.Organizes)
			for _, alias := range tree.Aliases(srv) {
				as.alias("/"+srv.Context()+"/"+alias+"/"+dev.Name(), dn)
			}
			for _, p := range dev.Properties() {
				pn, err := as.addProperty(dn, addr, p)
				if err != nil {
					return err
				}
				for _, alias := range tree.Aliases(srv) {
					as.alias("/"+srv.Context()+"/"+alias+"/"+dev.Name()+"/"+p.Name(), pn)
				}
			}
		}
	}
	return nil
}

func describe(desc, addr string) string {
	if desc == "" {
		return addr
	}
	return desc + " (" + addr + ")"
}

func (as *addressSpace) nodeID(s string) *ua.NodeID { return ua.NewStringNodeID(as.ns, s) }

func (as *addressSpace) add(n *node) *node {
	s := n.id.StringID()
	as.byID[s] = n
	as.byLower[strings.ToLower(s)] = n
	return n
}

// alias makes an older address (e.g. /P14/tioga/tioga) resolve to a node.
func (as *addressSpace) alias(addr string, n *node) {
	k := strings.ToLower(addr)
	if _, taken := as.byLower[k]; !taken {
		as.byLower[k] = n
	}
}

// link adds a forward reference from parent to child and its inverse.
func link(parent, child *node, typ uint32) {
	parent.refs = append(parent.refs, ref{typ: typ, forward: true, target: child})
	child.refs = append(child.refs, ref{typ: typ, forward: false, target: parent})
}

// addProperty maps one property: a Variable for values, a Method for
// commands and for queries (reads that take an input).
func (as *addressSpace) addProperty(dev *node, devAddr string, p *properties.Property) (*node, error) {
	s := p.Spec()
	addr := devAddr + "/" + s.Name
	desc := s.Description
	if len(s.Columns) > 0 {
		desc = strings.TrimSpace(desc + " Columns: " + strings.Join(s.Columns, ", ") + ".")
	}
	if s.IsCommand() || s.Arg != 0 {
		m := as.add(&node{
			id:          as.nodeID(addr),
			kind:        kindMethod,
			class:       ua.NodeClassMethod,
			browseName:  s.Name,
			description: desc,
			prop:        p,
			spec:        s,
			owner:       dev,
			query:       !s.IsCommand(),
		})
		link(dev, m, id.HasComponent)
		argElem, argShape, argWidth := s.Elem, s.Shape, s.Width
		argDesc := s.ArgDescription
		if m.query {
			argElem, argShape, argWidth = s.Arg, properties.Scalar, 0
		}
		if argDesc == "" {
			argDesc = "value of " + s.Name
		}
		m.input = []*ua.Argument{argument(argName(s, m.query), argElem, argShape, argWidth, s.MaxLen, argDesc)}
		as.addArgs(m, addr, "InputArguments", m.input)
		if m.query {
			m.output = []*ua.Argument{argument("value", s.Elem, s.Shape, s.Width, s.MaxLen, desc)}
			as.addArgs(m, addr, "OutputArguments", m.output)
		}
		return m, nil
	}
	var access byte
	if s.Readable() {
		access |= byte(ua.AccessLevelTypeCurrentRead)
	}
	if s.Access&properties.Write != 0 {
		access |= byte(ua.AccessLevelTypeCurrentWrite)
	}
	v := as.add(&node{
		id:          as.nodeID(addr),
		kind:        kindVariable,
		class:       ua.NodeClassVariable,
		browseName:  s.Name,
		description: desc,
		typeDef:     baseDataVariableType,
		prop:        p,
		spec:        s,
		dataType:    dataTypeOf(s.Elem),
		valueRank:   valueRankOf(s),
		arrayDims:   arrayDimensionsOf(s),
		access:      access,
	})
	link(dev, v, id.HasComponent)
	if s.Units != "" {
		as.addStatic(v, addr, "EngineeringUnits", id.EUInformation, -1, ua.MustVariant(ua.NewExtensionObject(euInformation(s.Units))))
	}
	if s.Limits != nil && s.Elem != properties.Text && s.Elem != properties.Bool {
		as.addStatic(v, addr, "EURange", id.Range, -1, ua.MustVariant(ua.NewExtensionObject(&ua.Range{Low: s.Limits.Min, High: s.Limits.Max})))
	}
	return v, nil
}

func argName(s properties.Spec, query bool) string {
	if query {
		return "input"
	}
	return "value"
}

func argument(name string, e properties.Elem, shape properties.Shape, width, maxLen int, desc string) *ua.Argument {
	spec := properties.Spec{Elem: e, Shape: shape, Width: width, MaxLen: maxLen}
	return &ua.Argument{
		Name:            name,
		DataType:        ua.NewNumericNodeID(0, dataTypeOf(e)),
		ValueRank:       valueRankOf(spec),
		ArrayDimensions: arrayDimensionsOf(spec),
		Description:     &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: desc},
	}
}

func (as *addressSpace) addArgs(m *node, addr, name string, args []*ua.Argument) {
	xs := make([]*ua.ExtensionObject, len(args))
	for i, a := range args {
		xs[i] = ua.NewExtensionObject(a)
	}
	as.addStatic(m, addr, name, id.Argument, 1, ua.MustVariant(xs))
}

// addStatic adds an OPC UA Property (HasProperty) with a fixed value, such
// as EngineeringUnits or InputArguments. Its NodeId is the owner's address
// followed by ".<name>", which cannot clash with a TINE address.
func (as *addressSpace) addStatic(owner *node, addr, name string, dataType uint32, rank int32, value *ua.Variant) {
	pn := as.add(&node{
		id:         as.nodeID(addr + "." + name),
		kind:       kindProperty,
		class:      ua.NodeClassVariable,
		browseName: name,
		typeDef:    propertyType,
		dataType:   dataType,
		valueRank:  rank,
		access:     byte(ua.AccessLevelTypeCurrentRead),
		static:     value,
	})
	if rank == 1 {
		pn.arrayDims = []uint32{uint32(value.ArrayLength())}
	}
	link(owner, pn, id.HasProperty)
}

// lookup resolves a NodeId of our namespace: exactly, then
// case-insensitively and through server aliases, the way TINE resolves
// addresses.
func (as *addressSpace) lookup(nid *ua.NodeID) *node {
	if nid == nil || nid.Namespace() != as.ns || nid.Type() != ua.NodeIDTypeString {
		return nil
	}
	s := nid.StringID()
	if n := as.byID[s]; n != nil {
		return n
	}
	return as.byLower[strings.ToLower(s)]
}

// qualifiedName is a node's BrowseName (in our namespace).
func (as *addressSpace) qualifiedName(n *node) *ua.QualifiedName {
	return &ua.QualifiedName{NamespaceIndex: as.ns, Name: n.browseName}
}

func text(s string) *ua.LocalizedText {
	return &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: s}
}

// linkObjects attaches the server folders to namespace 0's Objects folder,
// through gopcua's node model, so that browsing Objects finds them.
func (as *addressSpace) linkObjects(srv *server.Server) error {
	objects := srv.Node(ua.NewNumericNodeID(0, id.ObjectsFolder))
	if objects == nil {
		return fmt.Errorf("opcua: namespace 0 has no Objects folder")
	}
	for _, sn := range as.servers {
		sn.gopcua = server.NewNode(sn.id,
			server.Attributes{
				ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassObject)),
				ua.AttributeIDBrowseName:  server.DataValueFromValue(as.qualifiedName(sn)),
				ua.AttributeIDDisplayName: server.DataValueFromValue(text(sn.browseName)),
			},
			server.References{{
				ReferenceTypeID: ua.NewNumericNodeID(0, id.HasTypeDefinition),
				IsForward:       true,
				NodeID:          ua.NewNumericExpandedNodeID(0, folderType),
				BrowseName:      &ua.QualifiedName{Name: "FolderType"},
				DisplayName:     text("FolderType"),
				NodeClass:       ua.NodeClassObjectType,
				TypeDefinition:  ua.NewNumericExpandedNodeID(0, 0),
			}},
			nil)
		objects.AddRef(sn.gopcua, server.RefType(id.Organizes), true)
	}
	return nil
}

// The server.NameSpace interface. gopcua's own services are replaced by the
// adapter's for everything that touches this namespace; these methods serve
// what namespace 0 asks of it.

func (as *addressSpace) Name() string          { return as.uri }
func (as *addressSpace) ID() uint16            { return as.ns }
func (as *addressSpace) SetID(ns uint16)       { as.ns = ns }
func (as *addressSpace) Objects() *server.Node { return nil }
func (as *addressSpace) Root() *server.Node    { return nil }

// AddNode refuses: the address space is generated from the device tree.
func (as *addressSpace) AddNode(n *server.Node) *server.Node { return nil }

// Node returns the gopcua twin of a server folder (what namespace 0's
// browse of Objects asks for), nil otherwise.
func (as *addressSpace) Node(nid *ua.NodeID) *server.Node {
	if n := as.lookup(nid); n != nil {
		return n.gopcua
	}
	return nil
}

func (as *addressSpace) Browse(bd *ua.BrowseDescription) *ua.BrowseResult {
	return as.browse(bd)
}

func (as *addressSpace) Attribute(nid *ua.NodeID, attr ua.AttributeID) *ua.DataValue {
	n := as.lookup(nid)
	if n == nil {
		return statusValue(ua.StatusBadNodeIDUnknown)
	}
	return as.attribute(n, attr, anonymous, ua.TimestampsToReturnBoth, time.Now())
}

func (as *addressSpace) SetAttribute(*ua.NodeID, ua.AttributeID, *ua.DataValue) ua.StatusCode {
	return ua.StatusBadNotWritable
}

func statusValue(code ua.StatusCode) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: code}
}
