package main

import (
	"context"

	"tioga/adapters/web"
	"tioga/driver/frameview"
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
