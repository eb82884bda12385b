package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"tioga/driver/analysis"
	"tioga/driver/raster"
	"tioga/driver/writer"
	"tioga/properties"
)

// bindProperties publishes the settings as writable properties and installs
// the hooks that apply client writes.
func (p *Pipeline) bindProperties() error {
	if err := p.bindAnalysisParams(); err != nil {
		return err
	}
	p.bindWriterSettings()
	p.bindScan()
	st := p.dev.Stream
	st.SSXReset.OnWrite(func(context.Context, properties.Value) error {
		p.ssx.Reset()
		p.log.Info().Msg("SSX statistics reset")
		p.export() // the client's reply follows the zeroed statistics
		return nil
	})
	st.HotPixelsReset.OnWrite(func(context.Context, properties.Value) error {
		p.hot.Reset()
		p.log.Info().Msg("hot-pixel map reset")
		st.HotPixels.SetInt32(0)
		return nil
	})
	st.Abort.OnWrite(func(context.Context, properties.Value) error {
		if p.receiver == nil {
			return errors.New("no receiver to abort")
		}
		p.log.Warn().Msg("abort requested: dropping the rest of the series")
		p.receiver.Abort()
		return nil
	})
	st.FrameSpots.OnQuery(func(_ context.Context, arg properties.Value) (properties.Value, error) {
		s := p.recent.Load()
		if s == nil {
			return properties.Value{}, errNoSeries
		}
		frame := arg.Int()
		spots, ok := s.ring.Get(frame)
		if !ok {
			where := ""
			if s.w != nil {
				where = ": see " + s.w.SpotsPath()
			}
			return properties.Value{}, fmt.Errorf("%w: frame %d of series %d is not among the recent frames held in memory%s",
				properties.ErrOutOfRange, frame, s.id, where)
		}
		return properties.Float32Records(5, spots), nil
	})
	return nil
}

// bindAnalysisParams publishes every analysis parameter (analysis.ParamTable)
// as a writable property; a write applies at once, to the running series too.
func (p *Pipeline) bindAnalysisParams() error {
	for _, info := range analysis.ParamTable() {
		info := info
		spec := properties.Spec{Name: info.Name, Description: info.Description, Units: info.Units}
		v, err := p.params.Get(info.Name)
		if err != nil {
			return err
		}
		var initial properties.Value
		switch {
		case len(info.Choices) > 0:
			spec.Elem, spec.MaxLen = properties.Text, 32
			spec.Description += " (" + strings.Join(info.Choices, ", ") + ")"
			initial = properties.TextValue(info.Choices[int(v)])
		case info.Integer:
			spec.Elem = properties.Int32
			spec.Limits = &properties.Limits{Min: info.Min, Max: info.Max}
			initial = properties.Int32Value(int32(v))
		default:
			spec.Elem = properties.Float64
			spec.Limits = &properties.Limits{Min: info.Min, Max: info.Max}
			initial = properties.Float64Value(v)
		}
		prop := p.dev.Stream.AddParameter(spec)
		if err := prop.Set(initial); err != nil {
			return err
		}
		prop.OnWrite(func(_ context.Context, val properties.Value) error {
			x := val.Float()
			if len(info.Choices) > 0 {
				i := indexOf(info.Choices, strings.TrimSpace(val.Text))
				if i < 0 {
					return fmt.Errorf("%w: %s must be one of %s", properties.ErrOutOfRange, info.Name, strings.Join(info.Choices, ", "))
				}
				x = float64(i)
			}
			return p.setParam(info.Name, x)
		})
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if strings.EqualFold(x, s) {
			return i
		}
	}
	return -1
}

// setParam changes one analysis parameter and switches the open series'
// tables (workers pick them up from their next frame).
func (p *Pipeline) setParam(name string, v float64) error {
	p.mu.Lock()
	np := p.params
	if err := np.Set(name, v); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("%w: %v", properties.ErrOutOfRange, err)
	}
	if err := np.Validate(); err != nil {
		p.mu.Unlock()
		return err
	}
	p.params = np
	p.mu.Unlock()
	if s := p.cur.Load(); s != nil {
		if t := s.tables.Load(); t != nil {
			if np.Gain == 0 && s.headerGain > 0 {
				np.Gain = s.headerGain
			}
			nt, err := t.WithParams(np)
			if err != nil {
				return err
			}
			s.tables.Store(nt)
		}
	}
	p.log.Info().Str("parameter", name).Float64("value", v).Msg("analysis parameter changed")
	return nil
}

// Params returns the analysis parameters in force.
func (p *Pipeline) Params() analysis.Params {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.params
}

// bindWriterSettings publishes the writer's settings; they apply from the
// next series (a series' files keep one template).
func (p *Pipeline) bindWriterSettings() {
	st := p.dev.Stream
	c := p.writerCfg
	st.WriterEnabled.SetBool(p.writerEnabled)
	st.WriterDirectory.SetText(c.Directory)
	st.WriterPrefix.SetText(c.Prefix)
	st.WriterRun.SetInt32(int32(c.Run))
	first := c.FirstImage
	if first == 0 {
		first = 1
	}
	st.WriterFirst.SetInt32(int32(first))
	format := c.Format
	if format == "" {
		format = writer.FormatCBFGzip
	}
	st.WriterFormat.SetText(string(format))
	st.WriterGzipLevel.SetInt32(int32(c.GzipLevel))

	edit := func(fn func(c *writer.Config) error) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		c := p.writerCfg
		if err := fn(&c); err != nil {
			return err
		}
		p.writerCfg = c
		return nil
	}
	st.WriterEnabled.OnWrite(func(_ context.Context, v properties.Value) error {
		p.mu.Lock()
		p.writerEnabled = v.Bool()
		p.mu.Unlock()
		return nil
	})
	st.WriterDirectory.OnWrite(func(_ context.Context, v properties.Value) error {
		return edit(func(c *writer.Config) error {
			if !strings.HasPrefix(v.Text, "/") {
				return fmt.Errorf("%w: writer-directory must be an absolute path", properties.ErrOutOfRange)
			}
			c.Directory = v.Text
			return nil
		})
	})
	st.WriterPrefix.OnWrite(func(_ context.Context, v properties.Value) error {
		return edit(func(c *writer.Config) error {
			if v.Text == "" || strings.ContainsAny(v.Text, "/ \t\n") {
				return fmt.Errorf("%w: writer-prefix must be a non-empty file name part", properties.ErrOutOfRange)
			}
			c.Prefix = v.Text
			return nil
		})
	})
	st.WriterRun.OnWrite(func(_ context.Context, v properties.Value) error {
		return edit(func(c *writer.Config) error { c.Run = v.Int(); return nil })
	})
	st.WriterFirst.OnWrite(func(_ context.Context, v properties.Value) error {
		return edit(func(c *writer.Config) error { c.FirstImage = v.Int(); return nil })
	})
	st.WriterFormat.OnWrite(func(_ context.Context, v properties.Value) error {
		return edit(func(c *writer.Config) error {
			f := writer.Format(strings.ToLower(strings.TrimSpace(v.Text)))
			switch f {
			case writer.FormatCBF, writer.FormatCBFGzip, writer.FormatTIFF:
				c.Format = f
				return nil
			}
			return fmt.Errorf("%w: writer-format must be cbf, cbf.gz or tiff", properties.ErrOutOfRange)
		})
	})
	st.WriterGzipLevel.OnWrite(func(_ context.Context, v properties.Value) error {
		return edit(func(c *writer.Config) error { c.GzipLevel = v.Int(); return nil })
	})
}

// WriterConfig returns the writer configuration the next series will use.
func (p *Pipeline) WriterConfig() (writer.Config, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writerCfg, p.writerEnabled
}

// bindScan publishes the raster geometry. A change lays out the open
// series' grid again (clients may set the geometry after arming).
func (p *Pipeline) bindScan() {
	sc := p.dev.Scan
	sc.Lines.SetInt32(int32(p.grid.Lines))
	sc.FramesPerLine.SetInt32(int32(p.grid.FramesPerLine))
	sc.Serpentine.SetBool(p.grid.Serpentine)
	if p.grid.Valid() {
		sc.Source.SetText("property")
	}
	apply := func(fn func(g *raster.Grid)) error {
		p.mu.Lock()
		fn(&p.grid)
		g := p.grid
		p.mu.Unlock()
		if s := p.cur.Load(); s != nil {
			sc.Source.SetText("property")
			p.layoutGrid(s, g)
		}
		return nil
	}
	sc.Lines.OnWrite(func(_ context.Context, v properties.Value) error {
		return apply(func(g *raster.Grid) { g.Lines = v.Int() })
	})
	sc.FramesPerLine.OnWrite(func(_ context.Context, v properties.Value) error {
		return apply(func(g *raster.Grid) { g.FramesPerLine = v.Int() })
	})
	sc.Serpentine.OnWrite(func(_ context.Context, v properties.Value) error {
		return apply(func(g *raster.Grid) { g.Serpentine = v.Bool() })
	})
}
