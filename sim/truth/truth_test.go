package truth

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	frames := []Frame{
		{Frame: 0, Line: -1, Column: -1, Spots: []Spot{}},
		{Frame: 1, Hit: true, Strength: 1, DCut: 2.5, DMin: 2.61, Line: 3, Column: 210,
			Spots: []Spot{{X: 1012.25, Y: 977.5, Intensity: 812.5, D: 2.61, ISigma: 24.1, Sigma: 0.8, H: -3, K: 7, L: 12}}},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := range frames {
		if err := w.Write(&frames[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `{"frame":0,"hit":false,"strength":0,"d_cut":0,"d_min":0,"line":-1,"column":-1,"spots":[]}
{"frame":1,"hit":true,"strength":1,"d_cut":2.5,"d_min":2.61,"line":3,"column":210,"spots":[{"x":1012.25,"y":977.5,"intensity":812.5,"d":2.61,"i_sigma":24.1,"sigma":0.8,"h":-3,"k":7,"l":12}]}
`
	if buf.String() != want {
		t.Fatalf("written:\n%s\nwant:\n%s", buf.String(), want)
	}
	got, err := ReadAll(strings.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, frames) {
		t.Fatalf("read back %+v\nwant %+v", got, frames)
	}
	if n := got[1].CountStrong(10); n != 1 {
		t.Fatalf("CountStrong = %d", n)
	}
}

func TestReaderRejectsGarbage(t *testing.T) {
	r := NewReader(strings.NewReader("{\"frame\":0,\"spots\":[]}\n{\"frame\":1,\"bogus\":2}\n"))
	var f Frame
	if err := r.Next(&f); err != nil {
		t.Fatal(err)
	}
	err := r.Next(&f)
	if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "record 2") {
		t.Fatalf("unknown field: error %v", err)
	}
}

// FuzzReader: arbitrary bytes never panic the reader.
func FuzzReader(f *testing.F) {
	f.Add(`{"frame":1,"hit":true,"strength":1,"d_cut":2.5,"d_min":2.61,"line":3,"column":210,"spots":[{"x":1012.25,"y":977.5,"intensity":812.5,"d":2.61,"i_sigma":24.1,"sigma":0.8,"h":-3,"k":7,"l":12}]}` + "\n")
	f.Add("{}\n{\"frame\":-1}\n[]\n")
	f.Fuzz(func(t *testing.T, s string) {
		r := NewReader(strings.NewReader(s))
		var fr Frame
		for i := 0; i < 1000; i++ {
			if err := r.Next(&fr); err != nil {
				return
			}
		}
	})
}
