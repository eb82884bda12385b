package simplon

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// valueType is SIMPLON's value_type of a parameter.
type valueType string

const (
	typeFloat  valueType = "float"
	typeInt    valueType = "int"
	typeUint   valueType = "uint"
	typeString valueType = "string"
	typeBool   valueType = "bool"
	typeList   valueType = "list"
)

// param is one configuration or status parameter with its current value.
type param struct {
	name     string
	typ      valueType
	writable bool
	unit     string
	allowed  []string // string parameters: the accepted values (nil = free text)
	min, max float64  // numeric parameters: inclusive range (min > max: unbounded)
	value    any      // float64, int64, string, bool or []any
}

// view is the JSON a GET returns.
type view struct {
	Value         any      `json:"value"`
	ValueType     string   `json:"value_type"`
	AccessMode    string   `json:"access_mode"`
	Unit          string   `json:"unit,omitempty"`
	AllowedValues []string `json:"allowed_values,omitempty"`
	Min           *float64 `json:"min,omitempty"`
	Max           *float64 `json:"max,omitempty"`
}

func (p *param) view() view {
	v := view{Value: p.value, ValueType: string(p.typ), AccessMode: "r", Unit: p.unit, AllowedValues: p.allowed}
	if p.writable {
		v.AccessMode = "rw"
	}
	if (p.typ == typeFloat || p.typ == typeInt || p.typ == typeUint) && p.min <= p.max {
		lo, hi := p.min, p.max
		v.Min, v.Max = &lo, &hi
	}
	return v
}

// RequestError is a client mistake: it carries the HTTP status the REST
// face answers with.
type RequestError struct {
	Status int
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

func badRequest(format string, a ...any) error {
	return &RequestError{Status: 400, Msg: fmt.Sprintf(format, a...)}
}

// coerce checks a JSON-decoded value against the parameter and returns it
// in the parameter's Go type.
func (p *param) coerce(raw json.RawMessage) (any, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest("%s: value is not JSON: %v", p.name, err)
	}
	switch p.typ {
	case typeFloat, typeInt, typeUint:
		n, ok := v.(json.Number)
		if !ok {
			return nil, badRequest("%s: want a number (%s), got %s", p.name, p.typ, describe(v))
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, badRequest("%s: %s is not a finite number", p.name, n)
		}
		if p.typ != typeFloat {
			if f != math.Trunc(f) {
				return nil, badRequest("%s: want an integer, got %s", p.name, n)
			}
			if p.typ == typeUint && f < 0 {
				return nil, badRequest("%s: want an unsigned integer, got %s", p.name, n)
			}
		}
		if p.allowed != nil && !slices.Contains(p.allowed, strconv.FormatFloat(f, 'g', -1, 64)) {
			return nil, badRequest("%s: %s is not one of %s", p.name, n, strings.Join(p.allowed, ", "))
		}
		if p.min <= p.max && (f < p.min || f > p.max) {
			return nil, badRequest("%s: %s out of range [%g, %g]", p.name, n, p.min, p.max)
		}
		if p.typ == typeFloat {
			return f, nil
		}
		return int64(f), nil
	case typeString:
		s, ok := v.(string)
		if !ok {
			return nil, badRequest("%s: want a string, got %s", p.name, describe(v))
		}
		if p.allowed != nil && !slices.Contains(p.allowed, s) {
			return nil, badRequest("%s: %q is not one of %s", p.name, s, strings.Join(p.allowed, ", "))
		}
		return s, nil
	case typeBool:
		b, ok := v.(bool)
		if !ok {
			return nil, badRequest("%s: want true or false, got %s", p.name, describe(v))
		}
		return b, nil
	}
	return nil, badRequest("%s: cannot be set", p.name)
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// store is an ordered set of parameters.
type store struct {
	byName map[string]*param
	order  []string
}

func (s *store) add(p *param) {
	if s.byName == nil {
		s.byName = map[string]*param{}
	}
	s.byName[p.name] = p
	s.order = append(s.order, p.name)
}

func (s *store) get(name string) *param { return s.byName[name] }

func (s *store) float(name string) float64 {
	switch v := s.byName[name].value.(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	panic("simplon: " + name + " is not numeric") // programming error: keys are fixed
}

func (s *store) int(name string) int {
	return int(s.byName[name].value.(int64))
}

func (s *store) str(name string) string { return s.byName[name].value.(string) }

// values returns every parameter's value by name (a copy).
func (s *store) values() map[string]any {
	out := make(map[string]any, len(s.order))
	for _, n := range s.order {
		v := s.byName[n].value
		if l, ok := v.([]any); ok {
			v = slices.Clone(l)
		}
		out[n] = v
	}
	return out
}
