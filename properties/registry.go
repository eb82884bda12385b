package properties

import (
	"fmt"
	"strings"
	"sync"
)

// Registry is an ordered set of properties with case-insensitive names
// (TINE compares property names case-insensitively, and clients spell them
// both ways). Registration order is kept: it is the order clients list them.
type Registry struct {
	mu     sync.RWMutex
	list   []*Property
	byName map[string]*Property
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byName: map[string]*Property{}} }

// Add registers a property described by spec.
func (r *Registry) Add(spec Spec) (*Property, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	key := strings.ToLower(spec.Name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byName[key]; dup {
		return nil, fmt.Errorf("property %s registered twice", spec.Name)
	}
	p := newProperty(spec)
	r.byName[key] = p
	r.list = append(r.list, p)
	return p, nil
}

// MustAdd is Add for tables of properties written in code, where an invalid
// spec is a programming error.
func (r *Registry) MustAdd(spec Spec) *Property {
	p, err := r.Add(spec)
	if err != nil {
		panic(err)
	}
	return p
}

// Get finds a property by name, case-insensitively.
func (r *Registry) Get(name string) (*Property, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.byName[strings.ToLower(name)]
	return p, ok
}

// Lookup is Get with an error that names what was not found.
func (r *Registry) Lookup(name string) (*Property, error) {
	if p, ok := r.Get(name); ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknown, name)
}

// All returns the properties in registration order.
func (r *Registry) All() []*Property {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]*Property(nil), r.list...)
}

// Len is the number of properties.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.list)
}
