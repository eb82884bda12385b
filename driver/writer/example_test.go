package writer_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"tioga/driver/cbf"
	"tioga/driver/writer"
)

// How the pipeline uses the writer: one Series per detector series, one
// Scratch per worker goroutine, results appended in frame order.
func Example() {
	dir, _ := os.MkdirTemp("", "tioga-example")
	defer os.RemoveAll(dir)

	// The pipeline maps the stream's series header into cbf.Header.
	hdr := cbf.Header{
		Detector: "Dectris EIGER X 500K", Serial: "E-01-0001",
		PixelSizeX: 75e-6, PixelSizeY: 75e-6, Sensor: "Si", SensorThickness: 450e-6,
		ExposureTime: 0.01, ExposurePeriod: 0.01, CountCutoff: 65535, Threshold: 6350,
		Wavelength: 0.97626, Distance: 0.25, BeamX: 515, BeamY: 257,
		StartAngle: 0, AngleIncrement: 0.1,
		Timestamp: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC),
	}
	s, err := writer.Open(writer.Config{
		Directory: filepath.Join(dir, "lyso"), Prefix: "lyso", Run: 3,
		Format: writer.FormatCBFGzip, MinFreeBytes: -1,
	}, hdr)
	if err != nil {
		fmt.Println(err)
		return
	}

	// A decoded 16-bit frame: counts, with the gap pixels all-ones.
	const w, h = 1030, 514
	data := make([]byte, 2*w*h)
	for i := 0; i < w*h; i++ {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(i%7))
	}
	binary.LittleEndian.PutUint16(data[0:], 0xffff)
	frame := cbf.Pixels{Data: data, Width: w, Height: h, ElemSize: 2}

	paths := make([]string, 4)
	var wg sync.WaitGroup
	for worker := 0; worker < 2; worker++ {
		wg.Add(1)
		go func(worker int) {
			defer wg.Done()
			var sc writer.Scratch // per worker, reused for every frame
			for n := worker; n < len(paths); n += 2 {
				p, err := s.Write(&sc, n, frame)
				if err != nil {
					fmt.Println(err) // counted in Stats; the series goes on
					continue
				}
				paths[n] = p
			}
		}(worker)
	}
	wg.Wait()
	for n, p := range paths { // in frame order
		s.AddResult(writer.Result{Frame: n, File: p, Spots: 12, Score: 3.5, Resolution: 2.1, IS: 800, Hit: n%2 == 0},
			[]writer.Spot{{X: 100.5, Y: 200.25, Intensity: 300, Sigma: 17, D: 2.1}})
	}
	if err := s.Close(); err != nil {
		fmt.Println(err)
	}

	st := s.Stats()
	fmt.Println(filepath.Base(st.Template), st.Written, st.Failed)
	for _, p := range paths {
		fmt.Println(filepath.Base(p))
	}
	img, _ := cbf.ReadFile(paths[3])
	fmt.Println(img.Header.StartAngle, img.Pixels[0], img.Pixels[1], img.Pixels[2])
	hits, _ := os.ReadFile(s.HitsPath())
	fmt.Print(filepath.Base(s.HitsPath()), " ", len(hits) > 0, "\n")
	// Output:
	// lyso_3_%05d.cbf.gz 4 0
	// lyso_3_00001.cbf.gz
	// lyso_3_00002.cbf.gz
	// lyso_3_00003.cbf.gz
	// lyso_3_00004.cbf.gz
	// 0.3 -1 1 2
	// lyso_3_hits.lst true
}
