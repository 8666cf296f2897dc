// Package project loads an ork project: ork.yaml, workflow files and the
// task config files of built-in executors. Decoding is strict: every error
// names the file, the line and column, and says what to change.
package project

import (
	"time"

	"gopkg.in/yaml.v3"
)

// ConfigFileName is the name of the file that marks a project root.
const ConfigFileName = "ork.yaml"

// Project is a loaded ork.yaml.
type Project struct {
	Root        string               // absolute path of the directory holding ork.yaml
	File        string               // absolute path of ork.yaml
	Executors   map[string]*Executor // by name; always contains the built-ins "rust" (and "python") unless redefined
	Telemetry   Telemetry
	Secrets     map[string]*Secret     // ork.yaml secrets:, by name
	Connections map[string]*Connection // ork.yaml connections:, by name
	// PythonPath lists project-relative directories added to sys.path in
	// every Python sandbox (ork.yaml `python: {path: [...]}`).
	PythonPath []string
	// Engine is ork.yaml's top-level engine: (wazero or wasmtime); "" leaves
	// the choice to ork.
	Engine string
	Order  []string // executor names: those of ork.yaml in file order, then the built-ins it does not redefine
}

// ExecutorKind says how an executor's type was written.
type ExecutorKind int

const (
	KindBuiltinRust   ExecutorKind = iota + 1 // type: rust
	KindBuiltinPython                         // type: python
	KindPythonClass                           // type: module.path:ClassName
	KindModule                                // type: path/to/executor.wasm
	KindCrate                                 // type: path/to/crate (a directory with Cargo.toml)
)

// Executor is one entry of ork.yaml's executors map.
type Executor struct {
	Name    string
	Type    string       // as written
	Kind    ExecutorKind // derived from Type
	Path    string       // project-relative path for KindModule and KindCrate
	Config  any          // the config: block decoded to JSON-compatible values (map[string]any, []any, string, float64/int64, bool, nil)
	Sandbox Sandbox
	// Engine is the executor's engine: (wazero or wasmtime), "" when not
	// set; see EngineFor.
	Engine        string
	projectEngine string
	Retries       *Retries // nil: no retries unless the task has a policy
	Pos           Pos      // where the executor is defined
}

// Sandbox is an executor's sandbox policy. Zero values mean "the default".
type Sandbox struct {
	MemoryBytes uint64        // sandbox.memory, e.g. "256MiB"; 0 = default
	Timeout     time.Duration // sandbox.timeout, e.g. "10m"; 0 = default
	Mounts      []Mount       // sandbox.mounts: extra read-only mounts
	Env         []string      // sandbox.env: names of host environment variables passed through
	// MaxConcurrency caps how many of this executor's tasks run at once; 0
	// means only the run's --concurrency applies.
	MaxConcurrency int
	AllowedHosts   []HostGrant // sandbox.allowed_hosts: outbound HTTP(S) the host makes for the task
	Secrets        []string    // sandbox.secrets: secrets the task may read
	Connections    []string    // sandbox.connections: database connections the task may use
	// CPU is sandbox.cpu: the fuel a task may burn (about one unit per
	// WebAssembly instruction), enforced on the wasmtime engine; 0 = none.
	CPU     uint64
	cpuNode *yaml.Node
}

// Mount is an extra read-only directory made visible in the sandbox.
type Mount struct {
	HostPath  string // absolute host path (relative paths in ork.yaml are relative to the project root)
	GuestPath string // absolute path inside the sandbox
}

// Workflow is a loaded workflow file.
type Workflow struct {
	Name  string
	File  string           // absolute path of the workflow file
	Rel   string           // path relative to the project root
	Tasks map[string]*Task // by name
	Order []string         // task names in file order
}

// Task is one entry of a workflow's tasks map.
type Task struct {
	Name       string
	Executor   string
	ConfigFile string        // project-relative, "" when absent
	DependsOn  []string      // in file order
	Timeout    time.Duration // 0 = the executor's
	Retries    *Retries      // nil = the executor's
	Pos        Pos
}

// BuiltinTaskConfig is the task config file of a built-in rust (or python) task.
type BuiltinTaskConfig struct {
	Crate  string // project-relative crate directory, or ""
	Module string // project-relative .wasm path, or ""
	File   string // python: the .py file
	Func   string // python: function name (default "run")
	Params any    // JSON-compatible
}

// Pos is a position in a file, for error messages.
type Pos struct {
	File   string // path as shown to the user (project-relative when possible)
	Line   int
	Column int
}
