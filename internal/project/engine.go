package project

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Engines are the WebAssembly engines an ork.yaml may name.
var Engines = []string{"wazero", "wasmtime"}

const engineHint = "use wazero or wasmtime"

// engine decodes an engine name; field and owner name it in messages.
func (d *fileDecoder) engine(n *yaml.Node, field, owner string) (string, bool) {
	s, ok := d.str(n, field+" "+owner, engineHint)
	if !ok {
		return "", false
	}
	for _, e := range Engines {
		if s == e {
			return s, true
		}
	}
	d.errorf(n, "unknown %s %q %s; %s", field, s, owner, engineHint)
	return "", false
}

const cpuHint = `write a number of fuel units (about one per WebAssembly instruction), optionally with K, M, G or T, e.g. "20G"`

// cpu decodes sandbox.cpu: a positive amount of fuel.
func (d *fileDecoder) cpu(dst *uint64, n *yaml.Node, owner string) bool {
	nd := deref(n)
	if nd.Kind != yaml.ScalarNode || (nd.Tag != "!!int" && nd.Tag != "!!str") || nd.Value == "" {
		d.errorf(n, "invalid sandbox cpu %s: expected a number, got %s; %s", owner, describe(nd), cpuHint)
		return false
	}
	v, err := ParseFuel(nd.Value)
	if err != nil {
		d.errorf(n, "invalid sandbox cpu %q %s; %s", nd.Value, owner, cpuHint)
		return false
	}
	*dst = v
	return true
}

// ParseFuel parses an amount of fuel such as "20G" or "500000".
func ParseFuel(s string) (uint64, error) {
	mult := uint64(1)
	num := strings.TrimSpace(s)
	if num != "" {
		switch num[len(num)-1] {
		case 'K', 'k':
			mult = 1e3
		case 'M':
			mult = 1e6
		case 'G':
			mult = 1e9
		case 'T':
			mult = 1e12
		}
		if mult != 1 {
			num = num[:len(num)-1]
		}
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil || v == 0 || v > (1<<63)/mult {
		return 0, fmt.Errorf("invalid amount of fuel %q", s)
	}
	return v * mult, nil
}

// checkEngines rejects a CPU limit on an executor that runs on wazero, which
// cannot count instructions (it enforces wall time only).
func (p *Project) checkEngines(d *fileDecoder) {
	for _, name := range p.Order {
		x := p.Executors[name]
		if x.Sandbox.CPU == 0 || x.Sandbox.cpuNode == nil {
			continue
		}
		if x.EngineFor("") == "wazero" {
			d.errorf(x.Sandbox.cpuNode, "sandbox cpu for executor %q needs the wasmtime engine, but it runs on wazero, which enforces wall time (sandbox.timeout) only; set engine: wasmtime on the executor or remove sandbox.cpu", name)
		}
	}
}

// EngineFor is the engine an executor's tasks run on: override (ork run
// --engine) when set, else the executor's engine:, else ork.yaml's top-level
// engine:, else wasmtime for an executor with a CPU limit; "" leaves the
// choice to ork's default.
func (x *Executor) EngineFor(override string) string {
	switch {
	case override != "":
		return override
	case x.Engine != "":
		return x.Engine
	case x.projectEngine != "":
		return x.projectEngine
	case x.Sandbox.CPU > 0:
		return "wasmtime"
	}
	return ""
}
