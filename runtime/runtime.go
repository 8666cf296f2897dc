// Package runtime is ork's sandbox host: it compiles WebAssembly executor
// modules once (cached on disk), and runs every task in a fresh module
// instance with nothing ambient — only the mounts, environment variables,
// memory and time its Policy grants, and the host ABI (package abi).
//
// Two engines can run the modules: wasmtime (through cgo, in builds with
// cgo; the default there) and wazero (pure Go; the default and only engine
// of CGO_ENABLED=0 builds). Both give a task the same
// sandbox and classify its failures the same way; engine.go describes how
// they plug in.
package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/wasmstrip"
)

// Defaults of a Policy.
const (
	DefaultMemoryBytes = 256 << 20
	DefaultTimeout     = 10 * time.Minute
	pageSize           = 64 << 10
)

// Policy is what one task's sandbox may use. The zero value is the default
// policy: 256 MiB of memory, 10 minutes, no CPU limit, no mounts, no
// environment.
type Policy struct {
	MemoryBytes uint64        // linear memory limit; 0 = DefaultMemoryBytes
	Timeout     time.Duration // wall-clock limit; 0 = DefaultTimeout
	// TimeoutFrom says where Timeout was set, for the message of a task that
	// exceeds it, e.g. `executors.csv.sandbox.timeout in ork.yaml`; "" names
	// sandbox.timeout, or the default when Timeout is 0.
	TimeoutFrom string
	// MemoryFrom says where MemoryBytes was set, in the same way as
	// TimeoutFrom; "" names sandbox.memory, or the default when it is 0.
	MemoryFrom string
	// CPU is the fuel the task may consume (sandbox.cpu): about one unit per
	// WebAssembly instruction it executes; 0 = unlimited. Only the wasmtime
	// engine can meter it: wazero refuses a task with a CPU limit.
	CPU    uint64
	Mounts []Mount  // directories visible to the guest
	Env    []string // "NAME=value" pairs; nothing else is visible
}

// Mount makes a host directory visible in the sandbox.
type Mount struct {
	HostPath  string
	GuestPath string // "/" for the root
	Writable  bool
}

func (p Policy) memoryPages() uint32 {
	b := p.MemoryBytes
	if b == 0 {
		b = DefaultMemoryBytes
	}
	pages := (b + pageSize - 1) / pageSize
	if pages > 65536 {
		pages = 65536
	}
	return uint32(pages)
}

// timeoutFrom names the setting the timeout came from.
func (p Policy) timeoutFrom() string {
	switch {
	case p.TimeoutFrom != "":
		return p.TimeoutFrom
	case p.Timeout <= 0:
		return "the default timeout"
	}
	return "sandbox.timeout"
}

// MemoryLimitFrom names the setting the memory limit came from.
func (p Policy) MemoryLimitFrom() string {
	switch {
	case p.MemoryFrom != "":
		return p.MemoryFrom
	case p.MemoryBytes == 0:
		return "the default memory limit"
	}
	return "sandbox.memory"
}

func (p Policy) timeout() time.Duration {
	if p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

// Host owns a wasm engine, its compilation cache and every compiled module.
// It is safe for concurrent use. Close releases everything it created.
type Host struct {
	version string
	eng     engine
}

// Option configures a Host.
type Option func(*hostConfig)

type hostConfig struct {
	cacheDir string
	version  string
	engine   string
}

// WithCacheDir stores compiled modules under dir ("" disables the disk cache).
func WithCacheDir(dir string) Option { return func(c *hostConfig) { c.cacheDir = dir } }

// WithVersion sets the host version reported to guests and used to key caches.
func WithVersion(v string) Option { return func(c *hostConfig) { c.version = v } }

// WithEngine selects the WebAssembly engine by name: "wasmtime" (cgo builds
// only) or "wazero" (pure Go). Engines lists those compiled in.
func WithEngine(name string) Option { return func(c *hostConfig) { c.engine = name } }

// DefaultEngine is the engine of a Host that names none: wasmtime where it
// is compiled in, wazero otherwise. wasmtime was as fast or faster on every
// workload `make bench` measures (2-4x on Python, even on small Rust
// modules) and keeps less memory per live sandbox; see RATIONALE.md.
var DefaultEngine = map[bool]string{true: engineWasmtime, false: engineWazero}[wasmtimeAvailable]

const (
	engineWazero   = "wazero"
	engineWasmtime = "wasmtime"
)

// Engines lists the engines this binary can run, the default first.
func Engines() []string {
	if wasmtimeAvailable {
		return []string{engineWasmtime, engineWazero}
	}
	return []string{engineWazero}
}

// New creates a Host.
func New(opts ...Option) (*Host, error) {
	c := hostConfig{version: "dev", engine: DefaultEngine}
	for _, o := range opts {
		o(&c)
	}
	var (
		eng engine
		err error
	)
	switch c.engine {
	case engineWazero:
		eng, err = newWazeroEngine(c)
	case engineWasmtime:
		eng, err = newWasmtimeEngine(c)
	default:
		return nil, fmt.Errorf("unknown engine %q: ork knows %s and %s (this binary has %s)",
			c.engine, engineWazero, engineWasmtime, strings.Join(Engines(), ", "))
	}
	if err != nil {
		return nil, err
	}
	return &Host{version: c.version, eng: eng}, nil
}

// Engine names the host's engine, e.g. "wazero".
func (h *Host) Engine() string { return h.eng.name() }

// Close closes every runtime and compiled module.
func (h *Host) Close(ctx context.Context) error { return h.eng.close(ctx) }

// Module is a validated executor module, ready to be instantiated per task.
type Module struct {
	Name   string // for messages, e.g. the project-relative path
	Digest string // sha256 of the (stripped) bytes
	bin    []byte
}

// LoadModule validates a module's bytes and checks the host ABI version it
// was built for. It compiles the module (wazero compiles it again, from its
// cache, for each other memory limit a task uses); compiled modules are
// cached on disk when the host has a cache directory.
func (h *Host) LoadModule(ctx context.Context, name string, bin []byte) (*Module, error) {
	return h.load(ctx, name, bin, true)
}

// LoadInterpreter loads a module that imports nothing but WASI and reaches
// the host ABI through the clock gate (abi/ABI.md), such as CPython.
func (h *Host) LoadInterpreter(ctx context.Context, name string, bin []byte) (*Module, error) {
	return h.load(ctx, name, bin, false)
}

func (h *Host) load(ctx context.Context, name string, bin []byte, requireABI bool) (*Module, error) {
	stripped, err := wasmstrip.Strip(bin)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", name, err)
	}
	sum := sha256.Sum256(stripped)
	m := &Module{Name: name, Digest: hex.EncodeToString(sum[:]), bin: stripped}
	// Compile now (once; cached) to validate the module and its imports early.
	imports, err := h.eng.compile(ctx, m)
	if err != nil {
		return nil, err
	}
	if err := checkImports(name, imports, requireABI); err != nil {
		return nil, err
	}
	return m, nil
}

// funcImport is a function a module imports.
type funcImport struct{ module, name string }

func checkImports(name string, imports []funcImport, requireABI bool) error {
	usesABI := false
	for _, f := range imports {
		mod, fn := f.module, f.name
		switch {
		case mod == abi.ImportModule:
			if fn != abi.FuncCall && fn != abi.FuncResponse {
				return fmt.Errorf("module %s imports %s.%s, which host ABI v%d does not define (it has %s and %s): rebuild it with an ork SDK for ABI v%d",
					name, mod, fn, abi.Version, abi.FuncCall, abi.FuncResponse, abi.Version)
			}
			usesABI = true
		case strings.HasPrefix(mod, abi.ImportModulePrefix):
			v, err := strconv.Atoi(strings.TrimPrefix(mod, abi.ImportModulePrefix))
			if err != nil {
				return fmt.Errorf("module %s imports from %q, which is not an ork host ABI version", name, mod)
			}
			return errors.New(abi.VersionMismatch("module "+name, v))
		case mod == wasiModule:
		default:
			return fmt.Errorf("module %s imports %s.%s, which ork does not provide (a module may import only %s and %s)",
				name, mod, fn, abi.ImportModule, wasiModule)
		}
	}
	if requireABI && !usesABI {
		return fmt.Errorf("module %s does not import %s: it was not built with an ork SDK (see sdk/rust)", name, abi.ImportModule)
	}
	return nil
}

// Task is one execution of a module.
type Task struct {
	Module  *Module
	Policy  Policy
	Session *abi.Session
	// Stdout and Stderr receive the guest's output as it is written (nil
	// discards it); everything has arrived when Run returns. wazero writes
	// from the goroutine that calls Run, in the guest's order; wasmtime from
	// one goroutine per stream, so the order between stdout, stderr and the
	// session's log records is not kept, and a writer given as both must be
	// safe for concurrent use.
	Stdout io.Writer
	Stderr io.Writer
	Args   []string // argv; argv[0] defaults to the module name
}

// Reason classifies why a task failed.
type Reason string

const (
	ReasonExit      Reason = "exit"      // the guest exited with a non-zero status
	ReasonTrap      Reason = "trap"      // the guest trapped (unreachable, out of bounds, …)
	ReasonABI       Reason = "abi"       // the guest misused the host ABI
	ReasonMemory    Reason = "memory"    // the guest exceeded its memory limit
	ReasonTimeout   Reason = "timeout"   // the guest exceeded its wall-clock limit
	ReasonCPU       Reason = "cpu"       // the guest consumed all its fuel (Policy.CPU)
	ReasonCancelled Reason = "cancelled" // the run was cancelled
)

// Failure says why a task did not succeed.
type Failure struct {
	Reason   Reason
	ExitCode int    // for ReasonExit
	Function string // the guest function that trapped, when known
	Message  string
}

func (f *Failure) Error() string { return f.Message }

// Result is the outcome of a task's execution. Failure is nil on success.
type Result struct {
	Failure  *Failure
	Duration time.Duration
	// MemoryBytes is the guest's linear memory size when it finished.
	MemoryBytes uint64
	// Fuel is the fuel the task consumed, whether it succeeded or not; 0
	// when it was not metered (Policy.CPU == 0).
	Fuel uint64
}

type sessionKey struct{}

// Run executes a task in a fresh instance and closes it. The returned error is
// for host-side problems only; everything the guest did wrong is a Failure.
func (h *Host) Run(ctx context.Context, t Task) (*Result, error) {
	return h.eng.run(ctx, t)
}

// errCPUNeedsWasmtime is wazero's answer to a task with a CPU limit: it
// cannot count instructions, and must not run the task unmetered.
var errCPUNeedsWasmtime = errors.New("sandbox.cpu needs the wasmtime engine; wazero enforces wall time (sandbox.timeout) only")

// stopKind says how a guest's run ended early.
type stopKind int

const (
	stopTrap      stopKind = iota // a trap, or any other error
	stopExit                      // proc_exit; exitCode holds the status
	stopDeadline                  // the run's context passed its deadline
	stopCancelled                 // the run's context was cancelled
	stopABI                       // the guest misused the host ABI; abi holds why
	stopFuel                      // the guest consumed all its fuel (Policy.CPU)
)

// guestError is an engine's account of how a task's _start failed, in the
// terms classify needs; each engine translates its own errors into one.
type guestError struct {
	kind     stopKind
	exitCode int
	abi      *abi.TrapError
	function string // the innermost guest function (demangled), when known
	message  string // what happened, one line, e.g. "unreachable"
}

var allocFailed = regexp.MustCompile(`memory allocation of \d+ bytes failed`)

func classify(parent context.Context, t Task, g guestError, memBytes, limit uint64, stderrTail string) *Failure {
	switch g.kind {
	case stopDeadline:
		if parent.Err() != nil {
			return &Failure{Reason: ReasonCancelled, Message: "cancelled"}
		}
		where := ""
		if g.function != "" {
			where = " in " + g.function // where the guest was when it was stopped
		}
		return &Failure{Reason: ReasonTimeout, Function: g.function,
			Message: fmt.Sprintf("timed out after %s%s (%s)", t.Policy.timeout(), where, t.Policy.timeoutFrom())}
	case stopCancelled:
		return &Failure{Reason: ReasonCancelled, Message: "cancelled"}
	case stopExit:
		if g.exitCode == 0 {
			return nil
		}
		return &Failure{Reason: ReasonExit, ExitCode: g.exitCode, Message: fmt.Sprintf("exited with status %d", g.exitCode)}
	case stopABI:
		return &Failure{Reason: ReasonABI, Message: g.abi.Error()}
	case stopFuel:
		// Decided by the engine (a trap only fuel metering raises), before
		// any guess about memory below.
		return &Failure{Reason: ReasonCPU, Function: g.function,
			Message: fmt.Sprintf("exceeded the CPU limit of %s (sandbox.cpu)", FormatFuel(t.Policy.CPU))}
	}
	fn, first := g.function, g.message
	// Rust reports a failed allocation on stderr before it aborts; a trap
	// close to the limit is, in practice, one too.
	if m := allocFailed.FindString(stderrTail); m != "" {
		return &Failure{Reason: ReasonMemory, Function: fn,
			Message: fmt.Sprintf("exceeded the memory limit of %s (%s): %s", FormatBytes(limit), t.Policy.MemoryLimitFrom(), m)}
	}
	if limit > 0 && memBytes+4*pageSize >= limit {
		return &Failure{Reason: ReasonMemory, Function: fn,
			Message: fmt.Sprintf("exceeded the memory limit of %s (%s): %s", FormatBytes(limit), t.Policy.MemoryLimitFrom(), first)}
	}
	where := ""
	if fn != "" {
		where = " in " + fn
	}
	return &Failure{Reason: ReasonTrap, Function: fn, Message: fmt.Sprintf("trapped%s: %s", where, first)}
}

// FormatBytes prints a byte count with a binary unit: "256 MiB", "138.5 KiB".
func FormatBytes(b uint64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if b >= 1<<u.shift {
			if b%(1<<u.shift) == 0 {
				return fmt.Sprintf("%d %s", b>>u.shift, u.name)
			}
			return fmt.Sprintf("%.1f %s", float64(b)/float64(uint64(1)<<u.shift), u.name)
		}
	}
	return fmt.Sprintf("%d B", b)
}

// FormatFuel prints an amount of fuel with a decimal unit, as sandbox.cpu
// takes it: "2G fuel units", "1.5M fuel units", "500 fuel units".
func FormatFuel(f uint64) string {
	for _, u := range []struct {
		n    uint64
		name string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "K"}} {
		if f >= u.n {
			if f%u.n == 0 {
				return fmt.Sprintf("%d%s fuel units", f/u.n, u.name)
			}
			return fmt.Sprintf("%.1f%s fuel units", float64(f)/float64(u.n), u.name)
		}
	}
	if f == 1 {
		return "1 fuel unit"
	}
	return fmt.Sprintf("%d fuel units", f)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// tailWriter passes writes through and keeps the last few KiB.
type tailWriter struct {
	w    io.Writer
	mu   sync.Mutex
	tail []byte
}

const tailBytes = 4 << 10

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.tail = append(t.tail, p...)
	if len(t.tail) > tailBytes {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-tailBytes:]...)
	}
	t.mu.Unlock()
	return t.w.Write(p)
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.tail)
}

// demangle turns a Rust legacy symbol (_ZN5probe10probe_trap17h…E) into
// probe::probe_trap; anything else is returned as is.
func demangle(sym string) string {
	s, ok := strings.CutPrefix(sym, "_ZN")
	if !ok || !strings.HasSuffix(s, "E") {
		return sym
	}
	s = strings.TrimSuffix(s, "E")
	var parts []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil || i+n > len(s) {
			return sym
		}
		parts = append(parts, s[i:i+n])
		s = s[i+n:]
	}
	if k := len(parts); k > 1 && len(parts[k-1]) == 17 && parts[k-1][0] == 'h' {
		parts = parts[:k-1] // the hash
	}
	for i, p := range parts {
		if strings.HasPrefix(p, "_$") {
			p = p[1:]
		}
		p = strings.NewReplacer("$LT$", "<", "$GT$", ">", "$u20$", " ", "$u27$", "'", "$RF$", "&", "$BP$", "*", "$C$", ",", "..", "::").Replace(p)
		parts[i] = p
	}
	return strings.Join(parts, "::")
}
