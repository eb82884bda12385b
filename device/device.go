// Package device groups properties into devices and devices into device
// servers, addressed as /<context>/<server>/<device> the way the beamline's
// control system (TINE) names them.
//
// A device owns its properties (and, through write hooks, its commands). A
// device server is what a client resolves to an address: the streaming
// server (/P14/rideau), the image tracker (/P14/image-tracker) and the
// detectors (/P14/detector) are three servers in one process, each with its
// devices. The Tree is everything one process serves; protocol adapters walk
// it and nothing else.
package device

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"tioga/properties"
)

// ErrUnknownDevice is returned when an address names no device.
var ErrUnknownDevice = errors.New("unknown device")

// ErrUnknownServer is returned when an address names no device server.
var ErrUnknownServer = errors.New("unknown device server")

// Device is a named set of properties.
type Device struct {
	name        string
	description string
	props       *properties.Registry
}

// New returns a device with no properties.
func New(name, description string) *Device {
	return &Device{name: name, description: description, props: properties.NewRegistry()}
}

// Name is the device name (the last element of its address).
func (d *Device) Name() string { return d.name }

// Description is a one-line human description.
func (d *Device) Description() string { return d.description }

// Registry returns the device's properties.
func (d *Device) Registry() *properties.Registry { return d.props }

// Add registers a property; an invalid spec is a programming error and
// panics (device tables are written in code and covered by tests).
func (d *Device) Add(spec properties.Spec) *properties.Property { return d.props.MustAdd(spec) }

// Property finds a property by name, case-insensitively.
func (d *Device) Property(name string) (*properties.Property, bool) { return d.props.Get(name) }

// Properties returns the device's properties in registration order.
func (d *Device) Properties() []*properties.Property { return d.props.All() }

// Server is a device server: a named group of devices within a context.
type Server struct {
	context     string
	name        string
	module      string
	description string

	mu      sync.RWMutex
	devices []*Device
	byName  map[string]*Device
}

// NewServer returns an empty device server /<context>/<name>. module is the
// server's short local name (TINE's equipment module, at most 8 bytes);
// empty means derived from the name.
func NewServer(context, name, module, description string) *Server {
	if module == "" {
		module = strings.ToUpper(name)
		module = strings.NewReplacer("-", "", "_", "", ".", "").Replace(module)
		if len(module) > 6 {
			module = module[:6]
		}
	}
	return &Server{context: context, name: name, module: module, description: description, byName: map[string]*Device{}}
}

// Context is the facility namespace, e.g. P14.
func (s *Server) Context() string { return s.context }

// Name is the server's export name, e.g. rideau.
func (s *Server) Name() string { return s.name }

// Module is the server's short local name (TINE equipment module).
func (s *Server) Module() string { return s.module }

// Description is a one-line human description.
func (s *Server) Description() string { return s.description }

// Address is /<context>/<server>.
func (s *Server) Address() string { return "/" + s.context + "/" + s.name }

// Add attaches a device; names are unique case-insensitively.
func (s *Server) Add(d *Device) error {
	key := strings.ToLower(d.name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byName[key]; dup {
		return fmt.Errorf("device %s already in server %s", d.name, s.Address())
	}
	s.byName[key] = d
	s.devices = append(s.devices, d)
	return nil
}

// MustAdd is Add for servers assembled in code.
func (s *Server) MustAdd(d *Device) *Device {
	if err := s.Add(d); err != nil {
		panic(err)
	}
	return d
}

// Device finds a device by name, case-insensitively.
func (s *Server) Device(name string) (*Device, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.byName[strings.ToLower(name)]
	return d, ok
}

// Devices returns the devices in the order they were added.
func (s *Server) Devices() []*Device {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Device(nil), s.devices...)
}

// Tree is every device server one process serves.
type Tree struct {
	mu      sync.RWMutex
	servers []*Server
	byKey   map[string]*Server // "context/name" lower-case, aliases included
	aliases map[*Server][]string
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{byKey: map[string]*Server{}, aliases: map[*Server][]string{}} }

func key(context, name string) string { return strings.ToLower(context + "/" + name) }

// Add registers a server.
func (t *Tree) Add(s *Server) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key(s.context, s.name)
	if _, dup := t.byKey[k]; dup {
		return fmt.Errorf("device server %s registered twice", s.Address())
	}
	t.byKey[k] = s
	t.servers = append(t.servers, s)
	return nil
}

// Alias makes the server also answer to another name in its context (the
// contract keeps /P14/tioga/tioga as the older name of /P14/rideau/tioga).
func (t *Tree) Alias(s *Server, name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key(s.context, name)
	if other, dup := t.byKey[k]; dup && other != s {
		return fmt.Errorf("alias /%s/%s already names %s", s.context, name, other.Address())
	}
	t.byKey[k] = s
	t.aliases[s] = append(t.aliases[s], name)
	return nil
}

// Aliases returns the other names of a server.
func (t *Tree) Aliases(s *Server) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]string(nil), t.aliases[s]...)
}

// Servers returns the servers in registration order.
func (t *Tree) Servers() []*Server {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]*Server(nil), t.servers...)
}

// Server finds a server by context and name (or alias), case-insensitively.
func (t *Tree) Server(context, name string) (*Server, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s, ok := t.byKey[key(context, name)]
	return s, ok
}

// Address is a parsed /<context>/<server>/<device>[/<property>].
type Address struct {
	Context, Server, Device, Property string
}

func (a Address) String() string {
	s := "/" + a.Context + "/" + a.Server + "/" + a.Device
	if a.Property != "" {
		s += "/" + a.Property
	}
	return s
}

// ParseAddress splits "/P14/rideau/tioga" or "/P14/rideau/tioga/frame-count".
func ParseAddress(addr string) (Address, error) {
	parts := strings.Split(strings.TrimPrefix(addr, "/"), "/")
	if len(parts) < 3 || len(parts) > 4 {
		return Address{}, fmt.Errorf("address %q: want /<context>/<server>/<device>[/<property>]", addr)
	}
	for _, p := range parts {
		if p == "" {
			return Address{}, fmt.Errorf("address %q: empty element", addr)
		}
	}
	a := Address{Context: parts[0], Server: parts[1], Device: parts[2]}
	if len(parts) == 4 {
		a.Property = parts[3]
	}
	return a, nil
}

// Resolve finds the server and device an address names (the property, if
// any, is left to the caller).
func (t *Tree) Resolve(a Address) (*Server, *Device, error) {
	s, ok := t.Server(a.Context, a.Server)
	if !ok {
		return nil, nil, fmt.Errorf("%w: /%s/%s", ErrUnknownServer, a.Context, a.Server)
	}
	d, ok := s.Device(a.Device)
	if !ok {
		return s, nil, fmt.Errorf("%w: %s/%s", ErrUnknownDevice, s.Address(), a.Device)
	}
	return s, d, nil
}

// Property resolves a full address to a property.
func (t *Tree) Property(a Address) (*properties.Property, error) {
	_, d, err := t.Resolve(a)
	if err != nil {
		return nil, err
	}
	return d.props.Lookup(a.Property)
}

// FindDevice returns the first device with the given name in any server of
// the tree (TINE clients may omit or misname the equipment module; device
// names are unique across Tioga's servers).
func (t *Tree) FindDevice(name string) (*Server, *Device, bool) {
	for _, s := range t.Servers() {
		if d, ok := s.Device(name); ok {
			return s, d, true
		}
	}
	return nil, nil, false
}
