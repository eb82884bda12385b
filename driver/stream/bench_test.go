package stream

import (
	"testing"
)

// Parsing cost per message, the receiver's way (one Parser reused). Parsing
// never touches the pixels, so the figures are per message; Mpx/s says how
// many megapixels of 4M frames per second one core can parse, far above
// the detector's 750 frames/s x 4.5 Mpx.

// bench4MV2 is the real EIGER 4M frame 0 (bs16-lz4) wrapped in a V2 image
// message, as an EIGER2 4M would send it.
func bench4MV2(b *testing.B) []byte {
	img := mustParseV1(b, v1ImageParts(b, 0)).Image
	img.Version, img.Channel, img.UniqueID = 2, "threshold_1", "01HBV3JPF9T4ZDPADX6EMK6XMZ"
	img.StartTime, img.StopTime, img.RealTime = Ticks{0, 50_000_000}, Ticks{99625, 50_000_000}, Ticks{99625, 50_000_000}
	msg, err := (&V2Builder{SelfDescribe: true}).AppendImage(nil, img)
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

func BenchmarkParseV2Image4M(b *testing.B) {
	msg := bench4MV2(b)
	var p Parser
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		m, err := p.ParseV2(msg)
		if err != nil || m.Image.Width != 2070 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(v1Width*v1Height)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
}

func BenchmarkParseV1Image4M(b *testing.B) {
	parts := v1ImageParts(b, 0)
	var p Parser
	b.ReportAllocs()
	b.SetBytes(int64(len(parts[0]) + len(parts[1]) + len(parts[2]) + len(parts[3])))
	for b.Loop() {
		m, err := p.ParseV1(parts)
		if err != nil || m.Image.Width != 2070 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(v1Width*v1Height)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
}

// The simulator's side: building a 4M frame message into a reused buffer.
func BenchmarkBuildV2Image4M(b *testing.B) {
	img := mustParseV2(b, bench4MV2(b)).Image
	var bld V2Builder
	buf := make([]byte, 0, 2<<20)
	b.ReportAllocs()
	b.SetBytes(int64(len(img.Data)))
	for b.Loop() {
		var err error
		if buf, err = bld.AppendImage(buf[:0], img); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(v1Width*v1Height)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
}

func BenchmarkBuildV1Image4M(b *testing.B) {
	img := mustParseV1(b, v1ImageParts(b, 0)).Image
	var bld V1Builder
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bld.Image(img); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(v1Width*v1Height)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpx/s")
}
