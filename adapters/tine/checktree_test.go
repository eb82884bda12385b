package tine

import (
	"testing"

	"tioga/device"
	"tioga/properties"
)

// checkTree is the device tree the opt-in tine.jar check (tinejar_test.go,
// make check-tinejar) serves, and that the replay of its captures
// (testdata/tinejar) serves again without Java. Its device "tioga" has the
// properties, values and descriptions of the tiny tine.jar server
// testdata/tinejar/RefServer.java serves as /TEST/REFSRV/tioga, so that
// the two servers' replies to the same requests can be compared field by
// field; the device "big" holds the 1,000,000-record array the transfer
// checks read.
type checkTree struct {
	tree *device.Tree
	dev  *device.Device
	big  *properties.Property
}

// checkBigRecords is the number of 4-float records of big/dozor-pass: a
// 1,000,000-frame series, record i = [i, i%50, (i%7)*1.5, 2.5].
const checkBigRecords = 1_000_000

func newCheckTree(t testing.TB, bigRecords int) *checkTree {
	t.Helper()
	c := &checkTree{tree: device.NewTree()}
	srv := device.NewServer("TEST", "TIOGA", "TIOGA", "Tioga tine.jar check server")
	c.dev = srv.MustAdd(device.New("tioga", "EIGER stream analysis (check)"))
	fc := c.dev.Add(properties.Spec{Name: "frame-count", Description: "[0:1000000 frames]number of frames seen", Elem: properties.Int32, Access: properties.Read})
	sl := c.dev.Add(properties.Spec{Name: "spot-level", Description: "[1:9 sigma]strong-pixel threshold", Elem: properties.Float32,
		Access: properties.Read | properties.Write})
	dp := c.dev.Add(properties.Spec{Name: "dozor-pass", Description: "[0:1000]dozor records (frame,spots,score,res)", Elem: properties.Float32,
		Shape: properties.Records, Width: 4, MaxLen: 8, Access: properties.Read})
	bx := c.dev.Add(properties.Spec{Name: "beam-xy", Description: "[0:300 mm]beam centre", Elem: properties.Float32, Shape: properties.Array, MaxLen: 2, Access: properties.Read})
	st := c.dev.Add(properties.Spec{Name: "status", Description: "server status text", Elem: properties.Text, MaxLen: 64, Access: properties.Read})
	bigDev := srv.MustAdd(device.New("big", "a 1,000,000-frame series"))
	c.big = bigDev.Add(properties.Spec{Name: "dozor-pass", Description: "per-frame results [frame, spots, score, resolution]",
		Elem: properties.Float32, Shape: properties.Records, Width: 4, MaxLen: checkBigRecords, Access: properties.Read})
	if err := c.tree.Add(srv); err != nil {
		t.Fatal(err)
	}
	fc.SetInt32(42)
	sl.SetFloat(6)
	rec := make([]float32, 0, 32)
	for i := 0; i < 8; i++ {
		rec = append(rec, float32(i), float32(10*i+1), 0.25*float32(i), 1.5+float32(i))
	}
	must(t, dp.Set(properties.Float32Records(4, rec)))
	must(t, bx.Set(properties.Float32s([]float32{0, 0})))
	st.SetText("idle")
	big := make([]float32, 0, 4*bigRecords)
	for i := 0; i < bigRecords; i++ {
		big = append(big, float32(i), float32(i%50), float32(i%7)*1.5, 2.5)
	}
	must(t, c.big.Set(properties.Float32Records(4, big)))
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
