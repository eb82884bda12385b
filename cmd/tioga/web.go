package main

import (
	"bytes"
	"context"

	"tioga/adapters/web"
	"tioga/driver/frameview"
	"tioga/driver/raster"
)

// frameRenderer gives the web page the frame view of driver/frameview:
// the adapter asks for a path and options, the driver reads the file.
type frameRenderer struct{}

func (frameRenderer) RenderFrame(ctx context.Context, path string, opt web.FrameOptions) ([]byte, error) {
	spots := make([][2]float64, len(opt.Spots))
	for i, s := range opt.Spots {
		spots[i] = [2]float64{s.X, s.Y}
	}
	return frameview.Renderer{}.RenderFile(ctx, path, frameview.Options{Scale: frameview.Scale(opt.Scale), MaxSize: opt.MaxSize, Spots: spots})
}

// heatMapRenderer gives the web page the heat-map figure of driver/raster,
// the same figure the pipeline writes beside the images.
type heatMapRenderer struct{}

func (heatMapRenderer) RenderHeatMap(_ context.Context, m web.HeatMap) ([]byte, error) {
	var buf bytes.Buffer
	err := raster.Figure{Grid: raster.Grid{Lines: m.Lines, FramesPerLine: m.FramesPerLine, Serpentine: m.Serpentine},
		Scores: m.Scores, BestFrame: m.BestFrame,
		HeatMapOptions: raster.HeatMapOptions{Prefix: m.Prefix, Run: m.Run, Series: int64(m.Series), Date: m.Date}}.WritePNG(&buf)
	return buf.Bytes(), err
}
