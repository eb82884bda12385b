package main

import (
	"context"
	"time"

	"tioga/device"
)

// transport is what tioga-ctl needs of a control protocol. TINE is the one
// implemented (tineTransport); another (OPC UA) plugs in by implementing
// the same methods and registering in transports.
type transport interface {
	// Get reads a property.
	Get(ctx context.Context, a device.Address, o readOpts) (Result, error)
	// Set writes a property; values are the command-line words.
	Set(ctx context.Context, a device.Address, values []string, o readOpts) error
	// Watch delivers updates to fn until fn returns false, ctx ends, or
	// the link fails.
	Watch(ctx context.Context, a device.Address, o watchOpts, fn func(Result) bool) error
	// Props describes the properties of a device.
	Props(ctx context.Context, a device.Address) ([]PropInfo, error)
	// Devices lists the devices of a server.
	Devices(ctx context.Context, a device.Address) ([]string, error)
	Close() error
}

// connectOpts say where the server is.
type connectOpts struct {
	host       string // "" = from the address database, else localhost
	portOffset int
	module     string // equipment module; "" = from the database or derived
	db         string // TINE address database directory ("" = TINE_HOME)
	tcp        bool
	timeout    time.Duration
	user       string
	// deadline ends the whole command (--timeout from its start); zero
	// for watch.
	deadline time.Time
}

// readOpts choose the data format; zero values mean "the property's own".
type readOpts struct {
	format string
	size   int
	input  []string // query argument of a read
}

type watchOpts struct {
	readOpts
	mode     string // poll, datachange, event
	interval time.Duration
}

// Result is one value as tioga-ctl prints it.
type Result struct {
	Address string    `json:"address"`
	Format  string    `json:"format"`
	Time    time.Time `json:"time"`
	// Exactly one of these is set.
	Numbers []float64 `json:"numbers,omitempty"`
	Text    *string   `json:"text,omitempty"`
	Names   []string  `json:"names,omitempty"`
	Bytes   []byte    `json:"bytes,omitempty"`
	// RowSize > 1: Numbers are records of this many columns.
	RowSize int `json:"row_size,omitempty"`
	// Reason says why a watch update came (TINE transfer reason).
	Reason string `json:"reason,omitempty"`
	// Error is set for an error update of a watch.
	Error string `json:"error,omitempty"`
}

// PropInfo describes one property.
type PropInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Format      string   `json:"format"`
	Size        int      `json:"size"`
	Access      string   `json:"access"`
	InputFormat string   `json:"input_format,omitempty"`
	InputSize   int      `json:"input_size,omitempty"`
	Units       string   `json:"units"`
	Min         *float64 `json:"min,omitempty"` // writable properties only
	Max         *float64 `json:"max,omitempty"`
	Rows        int      `json:"rows,omitempty"`
	RowSize     int      `json:"row_size,omitempty"`
}

var transports = map[string]func(a device.Address, o connectOpts) (transport, error){
	"tine": dialTINE,
}
