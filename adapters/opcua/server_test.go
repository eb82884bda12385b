package opcua

import (
	"slices"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"tioga/properties"
)

func browse(t *testing.T, c *opcua.Client, nid *ua.NodeID) []*ua.ReferenceDescription {
	t.Helper()
	resp, err := c.Browse(ctxT(t), &ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{{
		NodeID: nid, BrowseDirection: ua.BrowseDirectionForward,
		ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true,
		ResultMask: uint32(ua.BrowseResultMaskAll),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 1 || resp.Results[0].StatusCode != ua.StatusOK {
		t.Fatalf("browse %s: %+v", nid, resp.Results)
	}
	return resp.Results[0].References
}

func names(refs []*ua.ReferenceDescription) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.BrowseName.Name)
	}
	return out
}

func find(t *testing.T, refs []*ua.ReferenceDescription, name string) *ua.ReferenceDescription {
	t.Helper()
	for _, r := range refs {
		if r.BrowseName.Name == name {
			return r
		}
	}
	t.Fatalf("no %q in %v", name, names(refs))
	return nil
}

// TestBrowseTree walks Objects/<server>/<device>/<property> as an
// anonymous client would and checks node classes, NodeIds and references.
func TestBrowseTree(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)

	objects := browse(t, c, ua.NewNumericNodeID(0, id.ObjectsFolder))
	rideau := find(t, objects, "rideau")
	if got := rideau.NodeID.NodeID.String(); got != h.nodeID("/P14/rideau").String() {
		t.Fatalf("rideau NodeId %s", got)
	}
	if rideau.NodeClass != ua.NodeClassObject || rideau.ReferenceTypeID.IntID() != id.Organizes {
		t.Fatalf("rideau: %+v", rideau)
	}
	find(t, objects, "image-tracker")

	devs := browse(t, c, rideau.NodeID.NodeID)
	if got := names(devs); !slices.Equal(got, []string{"tioga"}) {
		t.Fatalf("devices of rideau: %v", got)
	}
	props := browse(t, c, devs[0].NodeID.NodeID)
	want := []string{"dozor-pass", "frame-count", "status", "spot-level", "beam-xy", "reset", "spot-list"}
	if got := names(props); !slices.Equal(got, want) {
		t.Fatalf("properties of tioga: %v, want %v", got, want)
	}
	fc := find(t, props, "frame-count")
	if fc.NodeClass != ua.NodeClassVariable || fc.NodeID.NodeID.StringID() != "/P14/rideau/tioga/frame-count" ||
		fc.ReferenceTypeID.IntID() != id.HasComponent || fc.TypeDefinition.NodeID.IntID() != id.BaseDataVariableType {
		t.Fatalf("frame-count reference: %+v", fc)
	}
	for _, m := range []string{"reset", "spot-list"} {
		if r := find(t, props, m); r.NodeClass != ua.NodeClassMethod {
			t.Fatalf("%s is %v, want a Method", m, r.NodeClass)
		}
	}
	// Methods are browsable down to their InputArguments.
	args := browse(t, c, find(t, props, "spot-list").NodeID.NodeID)
	if got := names(args); !slices.Equal(got, []string{"InputArguments", "OutputArguments"}) {
		t.Fatalf("spot-list properties: %v", got)
	}
	// Units hang off the variable as EngineeringUnits, limits as EURange.
	if got := names(browse(t, c, h.nodeID("/P14/rideau/tioga/spot-level"))); !slices.Equal(got, []string{"EngineeringUnits", "EURange"}) {
		t.Fatalf("spot-level properties: %v", got)
	}
	// The older server name resolves to the same nodes.
	if got := names(browse(t, c, h.nodeID("/P14/tioga/tioga"))); !slices.Equal(got, want) {
		t.Fatalf("alias /P14/tioga/tioga: %v", got)
	}
}

func TestTranslateBrowsePath(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	ns := h.srv.NamespaceIndex()
	el := func(name string) *ua.RelativePathElement {
		return &ua.RelativePathElement{ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true, TargetName: &ua.QualifiedName{NamespaceIndex: ns, Name: name}}
	}
	var resp *ua.TranslateBrowsePathsToNodeIDsResponse
	err := c.Send(ctxT(t), &ua.TranslateBrowsePathsToNodeIDsRequest{BrowsePaths: []*ua.BrowsePath{
		{StartingNode: ua.NewNumericNodeID(0, id.ObjectsFolder), RelativePath: &ua.RelativePath{Elements: []*ua.RelativePathElement{el("rideau"), el("tioga"), el("frame-count")}}},
		{StartingNode: ua.NewNumericNodeID(0, id.ObjectsFolder), RelativePath: &ua.RelativePath{Elements: []*ua.RelativePathElement{el("rideau"), el("nope")}}},
	}}, func(r ua.Response) error {
		resp = r.(*ua.TranslateBrowsePathsToNodeIDsResponse)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Results[0]; r.StatusCode != ua.StatusOK || len(r.Targets) != 1 || r.Targets[0].TargetID.NodeID.StringID() != "/P14/rideau/tioga/frame-count" {
		t.Fatalf("path to frame-count: %+v", r)
	}
	if r := resp.Results[1]; r.StatusCode != ua.StatusBadNoMatch {
		t.Fatalf("path to nothing: %v", r.StatusCode)
	}
}

func readValues(t *testing.T, c *opcua.Client, rvs ...*ua.ReadValueID) []*ua.DataValue {
	t.Helper()
	resp, err := c.Read(ctxT(t), &ua.ReadRequest{NodesToRead: rvs, TimestampsToReturn: ua.TimestampsToReturnBoth})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != len(rvs) {
		t.Fatalf("%d results for %d reads", len(resp.Results), len(rvs))
	}
	return resp.Results
}

// TestReadScalarsAndRecords reads values and type information and checks
// them against the registry: DataType, ValueRank, ArrayDimensions (records
// are rows x 4), access levels, units, description and the registry's
// timestamps.
func TestReadScalarsAndRecords(t *testing.T) {
	h := startHarness(t, nil)
	c := h.connect(ua.MessageSecurityModeNone, nil)
	at := time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)
	_ = h.tt.frameCount.Set(properties.Int32Value(42).At(at))
	h.tt.status.SetText("processing")
	records := []float32{0, 12, 3.5, 2.25, 1, 0, 0, 0, 2, 40, 9.75, 1.5}
	_ = h.tt.dozorPass.Set(properties.Float32Records(4, records))

	v := func(addr string, attr ua.AttributeID) *ua.ReadValueID {
		return &ua.ReadValueID{NodeID: h.nodeID(addr), AttributeID: attr}
	}
	res := readValues(t, c,
		v("/P14/rideau/tioga/frame-count", ua.AttributeIDValue),
		v("/P14/rideau/tioga/status", ua.AttributeIDValue),
		v("/P14/rideau/tioga/dozor-pass", ua.AttributeIDValue),
		v("/P14/rideau/tioga/spot-level", ua.AttributeIDValue),
		v("/P14/rideau/tioga/beam-xy", ua.AttributeIDValue),
		v("/P14/image-tracker/img-tracker/load-state", ua.AttributeIDValue),
		v("/P14/tioga/tioga/FRAME-COUNT", ua.AttributeIDValue),
		v("/P14/rideau/tioga/nope", ua.AttributeIDValue),
	)
	for i, dv := range res[:7] {
		if dv.Status != ua.StatusOK {
			t.Fatalf("read %d: %v", i, dv.Status)
		}
	}
	if got := res[0].Value.Value(); got != int32(42) {
		t.Fatalf("frame-count = %#v", got)
	}
	if !res[0].SourceTimestamp.Equal(at) {
		t.Fatalf("frame-count source timestamp %v, want %v", res[0].SourceTimestamp, at)
	}
	if res[0].ServerTimestamp.IsZero() {
		t.Fatal("no server timestamp")
	}
	if got := res[1].Value.Value(); got != "processing" {
		t.Fatalf("status = %#v", got)
	}
	if dims := res[2].Value.ArrayDimensions(); !slices.Equal(dims, []int32{3, 4}) {
		t.Fatalf("dozor-pass dimensions %v, want [3 4]", dims)
	}
	rows, ok := res[2].Value.Value().([][]float32)
	if !ok || len(rows) != 3 {
		t.Fatalf("dozor-pass = %#v", res[2].Value.Value())
	}
	for i, row := range rows {
		if !slices.Equal(row, records[i*4:i*4+4]) {
			t.Fatalf("dozor-pass row %d = %v, want %v", i, row, records[i*4:i*4+4])
		}
	}
	if got := res[3].Value.Value(); got != 3.0 {
		t.Fatalf("spot-level = %#v", got)
	}
	if got, ok := res[4].Value.Value().([]float32); !ok || !slices.Equal(got, []float32{77.625, 80.25}) {
		t.Fatalf("beam-xy = %#v", res[4].Value.Value())
	}
	if got := res[5].Value.Value(); got != false {
		t.Fatalf("load-state = %#v", got)
	}
	if got := res[6].Value.Value(); got != int32(42) {
		t.Fatalf("frame-count through the alias = %#v", got)
	}
	if res[7].Status != ua.StatusBadNodeIDUnknown {
		t.Fatalf("unknown property: %v", res[7].Status)
	}

	// Type information.
	attrs := readValues(t, c,
		v("/P14/rideau/tioga/dozor-pass", ua.AttributeIDDataType),
		v("/P14/rideau/tioga/dozor-pass", ua.AttributeIDValueRank),
		v("/P14/rideau/tioga/dozor-pass", ua.AttributeIDArrayDimensions),
		v("/P14/rideau/tioga/frame-count", ua.AttributeIDDataType),
		v("/P14/rideau/tioga/frame-count", ua.AttributeIDValueRank),
		v("/P14/rideau/tioga/frame-count", ua.AttributeIDAccessLevel),
		v("/P14/rideau/tioga/spot-level", ua.AttributeIDAccessLevel),
		v("/P14/rideau/tioga/spot-level", ua.AttributeIDUserAccessLevel),
		v("/P14/rideau/tioga/spot-level", ua.AttributeIDDataType),
		v("/P14/rideau/tioga/status", ua.AttributeIDDataType),
		v("/P14/image-tracker/img-tracker/load-state", ua.AttributeIDDataType),
		v("/P14/rideau/tioga/spot-level.EngineeringUnits", ua.AttributeIDValue),
		v("/P14/rideau/tioga/spot-level.EURange", ua.AttributeIDValue),
		v("/P14/rideau/tioga/dozor-pass", ua.AttributeIDDescription),
		v("/P14/rideau/tioga/frame-count", ua.AttributeIDNodeClass),
		v("/P14/rideau/tioga/reset", ua.AttributeIDUserExecutable),
		v("/P14/rideau/tioga/spot-list", ua.AttributeIDUserExecutable),
		v("/P14/rideau/tioga/frame-count", ua.AttributeIDExecutable),
	)
	checks := []struct {
		name string
		want any
	}{
		{"dozor-pass DataType", ua.NewNumericNodeID(0, id.Float).String()},
		{"dozor-pass ValueRank", int32(2)},
		{"dozor-pass ArrayDimensions", "[100000 4]"},
		{"frame-count DataType", ua.NewNumericNodeID(0, id.Int32).String()},
		{"frame-count ValueRank", int32(-1)},
		{"frame-count AccessLevel", byte(ua.AccessLevelTypeCurrentRead)},
		{"spot-level AccessLevel", byte(ua.AccessLevelTypeCurrentRead | ua.AccessLevelTypeCurrentWrite)},
		{"spot-level UserAccessLevel (anonymous)", byte(ua.AccessLevelTypeCurrentRead)},
		{"spot-level DataType", ua.NewNumericNodeID(0, id.Double).String()},
		{"status DataType", ua.NewNumericNodeID(0, id.String).String()},
		{"load-state DataType", ua.NewNumericNodeID(0, id.Boolean).String()},
	}
	for i, ck := range checks {
		got := attrs[i].Value.Value()
		switch g := got.(type) {
		case *ua.NodeID:
			got = g.String()
		case []uint32:
			got = fmtSlice(g)
		}
		if got != ck.want {
			t.Errorf("%s = %#v, want %#v (status %v)", ck.name, got, ck.want, attrs[i].Status)
		}
	}
	eu, ok := attrs[11].Value.Value().(*ua.ExtensionObject)
	if !ok {
		t.Fatalf("EngineeringUnits = %#v", attrs[11].Value.Value())
	}
	if info, ok := eu.Value.(*ua.EUInformation); !ok || info.DisplayName.Text != "sigma" || info.UnitID != -1 {
		t.Fatalf("EngineeringUnits = %#v", eu.Value)
	}
	eur, ok := attrs[12].Value.Value().(*ua.ExtensionObject)
	if r, ok2 := eur.Value.(*ua.Range); !ok || !ok2 || r.Low != 1 || r.High != 20 {
		t.Fatalf("EURange = %#v", attrs[12].Value.Value())
	}
	if d := attrs[13].Value.Value().(*ua.LocalizedText).Text; d != "Per-frame results of the current series. Columns: frame, spots, score, resolution." {
		t.Fatalf("description %q", d)
	}
	if nc := attrs[14].Value.Value(); nc != int32(ua.NodeClassVariable) {
		t.Fatalf("NodeClass %#v", nc)
	}
	if ux := attrs[15].Value.Value(); ux != false {
		t.Fatalf("reset UserExecutable for anonymous = %#v", ux)
	}
	if ux := attrs[16].Value.Value(); ux != true {
		t.Fatalf("spot-list (a query) UserExecutable for anonymous = %#v", ux)
	}
	if attrs[17].Status != ua.StatusBadAttributeIDInvalid {
		t.Fatalf("Executable of a variable: %v", attrs[17].Status)
	}
}

func fmtSlice(s []uint32) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += itoa(int(x))
	}
	return out + "]"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}
