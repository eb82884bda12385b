package main

import (
	"context"
	"errors"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// group runs the server's long-lived components, each a Run(ctx) error,
// in one errgroup. Its context ends at SIGTERM (the parent's end) or when
// the first component ends on its own: returning an error, or returning at
// all while the server is still meant to run. That component ended the
// process, and Wait names it. Components that must outlive the others (the
// pipeline finishing its open series, the sinks it hands frames to) run
// under contexts of their own that the caller ends in order.
type group struct {
	eg     errgroup.Group
	ctx    context.Context
	cancel context.CancelFunc
	log    zerolog.Logger

	mu    sync.Mutex
	ended *componentError
}

// componentError is the failure of the component that ended the process.
type componentError struct {
	Component string
	Err       error
}

func (e *componentError) Error() string { return e.Component + ": " + e.Err.Error() }
func (e *componentError) Unwrap() error { return e.Err }

// errEndedEarly is a component's nil return before shutdown: a component
// runs until its context ends, so returning earlier is a failure too.
var errEndedEarly = errors.New("stopped before shutdown")

func newGroup(parent context.Context, log zerolog.Logger) *group {
	g := &group{log: log}
	g.ctx, g.cancel = context.WithCancel(parent)
	return g
}

// Context ends at SIGTERM or at the first component's failure.
func (g *group) Context() context.Context { return g.ctx }

// Go runs component name as run(ctx). ctx is g.Context() for most
// components; a component that must stop later gets a context the caller
// ends after g.Context().
func (g *group) Go(name string, ctx context.Context, run func(context.Context) error) {
	g.eg.Go(func() error {
		err := run(ctx)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = nil
		}
		if err == nil && g.ctx.Err() == nil {
			err = errEndedEarly
		}
		if err != nil {
			g.fail(name, err)
			return err
		}
		g.log.Debug().Str("component", name).Msg("component stopped")
		return nil
	})
}

// fail records the first component to fail and stops the others. A
// failure while stopping (after SIGTERM or another failure) still makes
// the exit non-zero if it is the first.
func (g *group) fail(name string, err error) {
	stopping := g.ctx.Err() != nil
	g.mu.Lock()
	first := g.ended == nil
	if first {
		g.ended = &componentError{Component: name, Err: err}
	}
	g.mu.Unlock()
	if first && !stopping {
		g.log.Error().Str("component", name).Err(err).Msg("component failed: stopping every component")
	} else {
		g.log.Error().Str("component", name).Err(err).Msg("component failed while stopping")
	}
	g.cancel()
}

// Wait waits for every component and returns the failure of the one that
// ended the process (a *componentError), or nil after a clean stop.
func (g *group) Wait() error {
	_ = g.eg.Wait()
	g.cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended != nil {
		return g.ended
	}
	return nil
}
