package stream

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzV1FlatJSON: whatever the strict reader of V1's per-frame parts
// accepts, encoding/json (the reference, which reads everything else)
// accepts too, with the same values.
func FuzzV1FlatJSON(f *testing.F) {
	for _, n := range []int{1, 10, 11, 13, 22} {
		f.Add(v1Part(f, n))
	}
	for _, s := range []string{
		`{"htype":"dimage_d-1.0","shape":[],"type":"uint8","encoding":"<","size":0}`,
		` { "frame" : 18446744073709551615 , "series" : 0 } `,
		`{"frame":18446744073709551616}`, `{"frame":01}`, `{"frame":1.0}`, `{"frame":1e3}`, `{"frame":-1}`,
		`{"HTYPE":"dimage-1.0"}`, `{"htype":"d\u0069mage-1.0"}`, `{"hash":"é"}`, `{"frame":1,}`, `{,}`, `{}`, `{} x`,
		`{"shape":[1,2,]}`, `{"shape":[1 2]}`, `{"shape":null}`, `{"htype":"a","htype":"b"}`, `{"start_time":5,"real_time":6,"stop_time":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Parser
		fast := v1First{Series: absent, Frame: absent}
		if p.fastV1First(b, &fast) {
			ref := v1First{Series: absent, Frame: absent}
			if err := json.Unmarshal(b, &ref); err != nil || ref != fast {
				t.Fatalf("%q: first part %+v, encoding/json %+v (%v)", b, fast, ref, err)
			}
		}
		shaped := v1Shaped{Size: absent}
		if fastV1Shaped(b, &shaped) {
			ref := v1Shaped{Size: absent}
			err := json.Unmarshal(b, &ref)
			if err != nil || ref.HType != shaped.HType || ref.Type != shaped.Type || ref.Encoding != shaped.Encoding ||
				ref.Size != shaped.Size || !slices.Equal(ref.Shape, shaped.Shape) {
				t.Fatalf("%q: dimage_d %+v, encoding/json %+v (%v)", b, shaped, ref, err)
			}
		}
		var times v1Times
		if fastV1Times(b, &times) {
			var ref v1Times
			if err := json.Unmarshal(b, &ref); err != nil || ref != times {
				t.Fatalf("%q: dconfig %+v, encoding/json %+v (%v)", b, times, ref, err)
			}
		}
	})
}
