package detectormodel

import "testing"

func TestGeometriesOfTheContract(t *testing.T) {
	want := map[string][2]int{
		"eiger500k": {1030, 514},
		"eiger1m":   {1030, 1065},
		"eiger4m":   {2070, 2167},
		"eiger9m":   {3110, 3269},
		"eiger16m":  {4150, 4371},
		// EIGER2: the geometry announced by the real EIGER2 16M fixture.
		"eiger16m-cdte": {4148, 4362},
	}
	for name, wh := range want {
		p, ok := ByName(name)
		if !ok {
			t.Fatalf("no profile %s", name)
		}
		if p.Width() != wh[0] || p.Height() != wh[1] {
			t.Errorf("%s: %dx%d, want %dx%d", name, p.Width(), p.Height(), wh[0], wh[1])
		}
	}
}

func TestROIModeOf16M(t *testing.T) {
	p, _ := ByName("eiger16m")
	q, err := p.Mode("4M")
	if err != nil {
		t.Fatal(err)
	}
	if q.Width() != 2070 || q.Height() != 2167 || q.MaxFrameRate != 750 {
		t.Fatalf("4M ROI of 16M: %dx%d at %g Hz", q.Width(), q.Height(), q.MaxFrameRate)
	}
	if _, err := p.Mode("2M"); err == nil {
		t.Fatal("unknown mode accepted")
	}
	if got, ok := BySize(2070, 2167); !ok || got.Name != "eiger4m" {
		t.Fatalf("BySize(4M) = %v %v", got.Name, ok)
	}
}

func TestGapPixels(t *testing.T) {
	p, _ := ByName("eiger4m")
	// 4M: columns 1030..1039 and the row bands 514..550, 1065..1101, 1616..1652.
	if !p.IsGap(1030, 0) || !p.IsGap(1039, 0) || p.IsGap(1040, 0) || p.IsGap(1029, 0) {
		t.Error("column gap misplaced")
	}
	if !p.IsGap(0, 514) || !p.IsGap(0, 550) || p.IsGap(0, 551) || p.IsGap(0, 513) {
		t.Error("row gap misplaced")
	}
	n := 0
	for y := 0; y < p.Height(); y++ {
		for x := 0; x < p.Width(); x++ {
			if p.IsGap(x, y) {
				n++
			}
		}
	}
	if n != p.GapPixels() {
		t.Fatalf("counted %d gap pixels, GapPixels says %d", n, p.GapPixels())
	}
	// 10 columns x 2167 rows + 3 x 37 rows x 2060 sensor columns
	if n != 10*2167+3*37*2060 {
		t.Fatalf("gap pixels %d", n)
	}
}
