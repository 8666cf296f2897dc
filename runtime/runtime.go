// Package runtime is ork's sandbox host: it compiles WebAssembly executor
// modules once (cached on disk), and runs every task in a fresh module
// instance with nothing ambient — only the mounts, environment variables,
// memory and time its Policy grants, and the host ABI (package abi).
package runtime

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/pysnap"
	"github.com/orkrun/ork/internal/wasmstrip"
)

// Defaults of a Policy.
const (
	DefaultMemoryBytes = 256 << 20
	DefaultTimeout     = 10 * time.Minute
	pageSize           = 64 << 10
)

// Policy is what one task's sandbox may use. The zero value is the default
// policy: 256 MiB of memory, 10 minutes, no mounts, no environment.
type Policy struct {
	MemoryBytes uint64        // linear memory limit; 0 = DefaultMemoryBytes
	Timeout     time.Duration // wall-clock limit; 0 = DefaultTimeout
	Mounts      []Mount       // directories visible to the guest
	Env         []string      // "NAME=value" pairs; nothing else is visible
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

func (p Policy) timeout() time.Duration {
	if p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

// Host owns the wasm engine, the compilation cache and every compiled module.
// It is safe for concurrent use. Close releases everything it created.
type Host struct {
	cache   wazero.CompilationCache
	version string

	mu       sync.Mutex
	runtimes map[uint32]*engine // by memory limit in pages
	closed   bool
}

type engine struct {
	rt      wazero.Runtime
	pages   uint32
	modules map[string]wazero.CompiledModule // by module digest
	snap    *pysnap.Engine                   // lazily, for Python snapshots
}

// Option configures a Host.
type Option func(*hostConfig)

type hostConfig struct {
	cacheDir string
	version  string
}

// WithCacheDir stores compiled modules under dir ("" disables the disk cache).
func WithCacheDir(dir string) Option { return func(c *hostConfig) { c.cacheDir = dir } }

// WithVersion sets the host version reported to guests and used to key caches.
func WithVersion(v string) Option { return func(c *hostConfig) { c.version = v } }

// New creates a Host.
func New(opts ...Option) (*Host, error) {
	c := hostConfig{version: "dev"}
	for _, o := range opts {
		o(&c)
	}
	h := &Host{version: c.version, runtimes: map[uint32]*engine{}}
	if c.cacheDir != "" {
		dir := filepath.Join(c.cacheDir, "wazero-"+sanitize(c.version))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating the module cache %s: %w", dir, err)
		}
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("opening the module cache %s: %w", dir, err)
		}
		h.cache = cache
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	return h, nil
}

// Close closes every runtime and compiled module.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	var errs []error
	for _, e := range h.runtimes {
		errs = append(errs, e.rt.Close(ctx))
	}
	errs = append(errs, h.cache.Close(ctx))
	return errors.Join(errs...)
}

// Module is a validated executor module, ready to be instantiated per task.
type Module struct {
	Name   string // for messages, e.g. the project-relative path
	Digest string // sha256 of the (stripped) bytes
	bin    []byte
}

// LoadModule validates a module's bytes and checks the host ABI version it
// was built for. Compilation happens on first use per memory limit and is
// cached on disk.
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
	// Compile once with the default limit to validate imports early.
	cm, err := h.compiled(ctx, m, Policy{}.memoryPages())
	if err != nil {
		return nil, err
	}
	if err := checkImports(name, cm, requireABI); err != nil {
		return nil, err
	}
	return m, nil
}

func checkImports(name string, cm wazero.CompiledModule, requireABI bool) error {
	usesABI := false
	for _, f := range cm.ImportedFunctions() {
		mod, fn, _ := f.Import()
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
		case mod == wasi_snapshot_preview1.ModuleName:
		default:
			return fmt.Errorf("module %s imports %s.%s, which ork does not provide (a module may import only %s and %s)",
				name, mod, fn, abi.ImportModule, wasi_snapshot_preview1.ModuleName)
		}
	}
	if requireABI && !usesABI {
		return fmt.Errorf("module %s does not import %s: it was not built with an ork SDK (see sdk/rust)", name, abi.ImportModule)
	}
	return nil
}

func (h *Host) engine(ctx context.Context, pages uint32) (*engine, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errors.New("runtime host is closed")
	}
	if e, ok := h.runtimes[pages]; ok {
		return e, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true). // a runaway guest must not freeze the process
		WithMemoryLimitPages(pages).
		WithDebugInfoEnabled(false).
		WithCompilationCache(h.cache)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if err := instantiateWASI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiating WASI: %w", err)
	}
	if err := instantiateABI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	e := &engine{rt: rt, pages: pages, modules: map[string]wazero.CompiledModule{}}
	h.runtimes[pages] = e
	return e, nil
}

func (h *Host) compiled(ctx context.Context, m *Module, pages uint32) (wazero.CompiledModule, error) {
	e, err := h.engine(ctx, pages)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	cm, ok := e.modules[m.Digest]
	h.mu.Unlock()
	if ok {
		return cm, nil
	}
	cm, err = e.rt.CompileModule(ctx, m.bin)
	if err != nil {
		return nil, fmt.Errorf("module %s is not a valid WebAssembly module: %w", m.Name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if prev, ok := e.modules[m.Digest]; ok {
		_ = cm.Close(ctx)
		return prev, nil
	}
	e.modules[m.Digest] = cm
	return cm, nil
}

// Task is one execution of a module.
type Task struct {
	Module  *Module
	Policy  Policy
	Session *abi.Session
	Stdout  io.Writer // guest stdout (nil discards)
	Stderr  io.Writer // guest stderr (nil discards)
	Args    []string  // argv; argv[0] defaults to the module name
}

// Reason classifies why a task failed.
type Reason string

const (
	ReasonExit      Reason = "exit"      // the guest exited with a non-zero status
	ReasonTrap      Reason = "trap"      // the guest trapped (unreachable, out of bounds, …)
	ReasonABI       Reason = "abi"       // the guest misused the host ABI
	ReasonMemory    Reason = "memory"    // the guest exceeded its memory limit
	ReasonTimeout   Reason = "timeout"   // the guest exceeded its wall-clock limit
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
}

type sessionKey struct{}

// Run executes a task in a fresh instance and closes it. The returned error is
// for host-side problems only; everything the guest did wrong is a Failure.
func (h *Host) Run(ctx context.Context, t Task) (*Result, error) {
	pages := t.Policy.memoryPages()
	cm, err := h.compiled(ctx, t.Module, pages)
	if err != nil {
		return nil, err
	}
	e, err := h.engine(ctx, pages)
	if err != nil {
		return nil, err
	}
	fs := wazero.NewFSConfig()
	for _, m := range t.Policy.Mounts {
		if m.Writable {
			fs = fs.WithDirMount(m.HostPath, m.GuestPath)
		} else {
			fs = fs.WithReadOnlyDirMount(m.HostPath, m.GuestPath)
		}
	}
	args := t.Args
	if len(args) == 0 {
		args = []string{t.Module.Name}
	}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may live at once
		WithStartFunctions().
		WithArgs(args...).
		WithFSConfig(fs).
		WithWalltime(walltime, sys.ClockResolution(time.Microsecond)).
		WithNanotime(nanotime, sys.ClockResolution(1)).
		WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStdin(eofReader{}).
		WithStdout(orDiscard(t.Stdout))
	for _, kv := range t.Policy.Env {
		k, v, _ := strings.Cut(kv, "=")
		cfg = cfg.WithEnv(k, v)
	}

	stderr := &tailWriter{w: orDiscard(t.Stderr)}
	runCtx, cancel := context.WithTimeout(ctx, t.Policy.timeout())
	defer cancel()
	runCtx = context.WithValue(runCtx, sessionKey{}, t.Session)

	start := time.Now()
	mod, err := e.rt.InstantiateModule(runCtx, cm, cfg.WithStderr(stderr))
	if err != nil {
		return nil, fmt.Errorf("instantiating module %s: %w", t.Module.Name, err)
	}
	res := &Result{}
	_, callErr := mod.ExportedFunction("_start").Call(runCtx)
	res.Duration = time.Since(start)
	if mem := mod.Memory(); mem != nil && !isClosedByContext(callErr) {
		res.MemoryBytes = uint64(mem.Size())
	}
	_ = mod.Close(context.Background())
	t.Session.Close()
	if callErr != nil {
		res.Failure = classify(ctx, t, callErr, res.MemoryBytes, uint64(pages)*pageSize, stderr.String())
	}
	return res, nil
}

// SnapshotEngine is the pysnap engine on the runtime for p's memory limit:
// Python snapshots are built and started on it, so they share the host's
// WASI (with the clock gate) and compilation cache.
func (h *Host) SnapshotEngine(ctx context.Context, p Policy) (*pysnap.Engine, error) {
	e, err := h.engine(ctx, p.memoryPages())
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.snap == nil {
		e.snap = pysnap.WrapRuntime(e.rt, e.pages)
	}
	return e.snap, nil
}

// RunSnapshot runs a Python task from snap: code runs in a fresh __main__
// with argv as sys.argv, under t's policy (mounts in the snapshot's layout,
// environment, memory, timeout) and session. The returned error is for
// host-side problems only (the task did not run; start it cold instead);
// everything the guest did wrong is a Failure.
func (h *Host) RunSnapshot(ctx context.Context, snap *pysnap.Snapshot, t Task, code string, argv []string) (*Result, error) {
	pages := t.Policy.memoryPages()
	eng, err := h.SnapshotEngine(ctx, t.Policy)
	if err != nil {
		return nil, err
	}
	mounts := make([]pysnap.Mount, len(t.Policy.Mounts))
	for i, m := range t.Policy.Mounts {
		mounts[i] = pysnap.Mount{HostPath: m.HostPath, GuestPath: m.GuestPath, Writable: m.Writable}
	}
	stderr := &tailWriter{w: orDiscard(t.Stderr)}
	runCtx, cancel := context.WithTimeout(ctx, t.Policy.timeout())
	defer cancel()
	runCtx = context.WithValue(runCtx, sessionKey{}, t.Session)

	out, err := snap.Start(runCtx, pysnap.TaskSpec{
		Engine: eng,
		Mounts: mounts,
		Argv:   argv,
		Env:    t.Policy.Env,
		Code:   code,
		Stdout: t.Stdout,
		Stderr: stderr,
		Configure: func(c wazero.ModuleConfig) wazero.ModuleConfig {
			return c.WithWalltime(walltime, sys.ClockResolution(time.Microsecond)).
				WithNanotime(nanotime, sys.ClockResolution(1))
		},
	})
	if err != nil {
		return nil, err
	}
	t.Session.Close()
	res := &Result{Duration: out.Total, MemoryBytes: out.MemoryBytes}
	var callErr error
	switch {
	case out.Err != nil:
		callErr = out.Err
	case out.ExitCode != 0:
		callErr = sys.NewExitError(uint32(out.ExitCode))
	}
	if callErr != nil {
		res.Failure = classify(ctx, t, callErr, res.MemoryBytes, uint64(pages)*pageSize, stderr.String())
	}
	return res, nil
}

func isClosedByContext(err error) bool {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		c := ee.ExitCode()
		return c == sys.ExitCodeContextCanceled || c == sys.ExitCodeDeadlineExceeded
	}
	return false
}

var allocFailed = regexp.MustCompile(`memory allocation of \d+ bytes failed`)

var traceFunc = regexp.MustCompile(`wasm stack trace:\n\t(?:\.)?([^\n(]+)\(`)

func classify(parent context.Context, t Task, err error, memBytes, limit uint64, stderrTail string) *Failure {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			if parent.Err() != nil {
				return &Failure{Reason: ReasonCancelled, Message: "cancelled"}
			}
			return &Failure{Reason: ReasonTimeout, Message: fmt.Sprintf("timed out after %s (sandbox.timeout)", t.Policy.timeout())}
		case sys.ExitCodeContextCanceled:
			return &Failure{Reason: ReasonCancelled, Message: "cancelled"}
		case 0:
			return nil
		default:
			code := int(ee.ExitCode())
			return &Failure{Reason: ReasonExit, ExitCode: code, Message: fmt.Sprintf("exited with status %d", code)}
		}
	}
	var te *abi.TrapError
	if errors.As(err, &te) {
		return &Failure{Reason: ReasonABI, Message: te.Error()}
	}
	msg := err.Error()
	fn := ""
	if m := traceFunc.FindStringSubmatch(msg); m != nil {
		fn = strings.TrimSpace(m[1])
		if i := strings.LastIndex(fn, "."); i >= 0 && strings.HasPrefix(fn, t.Module.Name) {
			fn = fn[i+1:]
		}
		fn = demangle(fn)
	}
	first, _, _ := strings.Cut(msg, "\n")
	first = strings.TrimPrefix(first, "wasm error: ")
	// Rust reports a failed allocation on stderr before it aborts; a trap
	// close to the limit is, in practice, one too.
	if m := allocFailed.FindString(stderrTail); m != "" {
		return &Failure{Reason: ReasonMemory, Function: fn,
			Message: fmt.Sprintf("exceeded the memory limit of %s (sandbox.memory): %s", FormatBytes(limit), m)}
	}
	if limit > 0 && memBytes+4*pageSize >= limit {
		return &Failure{Reason: ReasonMemory, Function: fn,
			Message: fmt.Sprintf("exceeded the memory limit of %s (sandbox.memory): %s", FormatBytes(limit), first)}
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

// instantiateABI defines the host ABI import module on rt. Each call finds
// its task's session in the call's context.
func instantiateABI(ctx context.Context, rt wazero.Runtime) error {
	i32 := api.ValueTypeI32
	_, err := rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abiCall), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("op_ptr", "op_len", "req_ptr", "req_len").
		Export(abi.FuncCall).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(abiResponse), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("buf_ptr", "buf_len").
		Export(abi.FuncResponse).
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("instantiating %s: %w", abi.ImportModule, err)
	}
	return nil
}

func sessionFrom(ctx context.Context, fn string) *abi.Session {
	s, _ := ctx.Value(sessionKey{}).(*abi.Session)
	if s == nil {
		panic(abi.Trapf(fn, "no task is running"))
	}
	return s
}

func readGuest(mem api.Memory, what string, ptr, n uint32) []byte {
	if mem == nil {
		panic(abi.Trapf(abi.FuncCall, "the module exports no memory"))
	}
	if what == "req" && n > abi.MaxRequestBytes {
		panic(abi.Trapf(abi.FuncCall, "request of %d bytes exceeds the %d MiB limit", n, abi.MaxRequestBytes>>20))
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		panic(abi.Trapf(abi.FuncCall, "out of bounds: %s_ptr=%#x %s_len=%d, memory is %d bytes", what, ptr, what, n, mem.Size()))
	}
	return b
}

func abiCall(ctx context.Context, mod api.Module, stack []uint64) {
	s := sessionFrom(ctx, abi.FuncCall)
	mem := mod.Memory()
	opPtr, opLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	reqPtr, reqLen := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	if opLen > abi.MaxOpNameLen {
		panic(abi.Trapf("", "operation name of %d bytes exceeds the %d-byte limit", opLen, abi.MaxOpNameLen))
	}
	op := string(readGuest(mem, "op", opPtr, opLen))
	var req []byte
	if reqLen > 0 {
		req = readGuest(mem, "req", reqPtr, reqLen)
	}
	resp, err := s.DispatchContext(ctx, op, req)
	if err != nil {
		var oe *abi.OpError
		if errors.As(err, &oe) {
			b := abi.ErrorResponse(oe)
			s.SetPending(b, true)
			stack[0] = api.EncodeI32(-int32(len(b)))
			return
		}
		panic(err)
	}
	s.SetPending(resp, false)
	stack[0] = api.EncodeI32(int32(len(resp)))
}

func abiResponse(ctx context.Context, mod api.Module, stack []uint64) {
	s := sessionFrom(ctx, abi.FuncResponse)
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	b, _, err := s.TakePending(abi.FuncResponse, n)
	if err != nil {
		panic(err)
	}
	mem := mod.Memory()
	if mem == nil || !mem.Write(ptr, b) {
		size := uint32(0)
		if mem != nil {
			size = mem.Size()
		}
		panic(abi.Trapf(abi.FuncResponse, "out of bounds: buf_ptr=%#x buf_len=%d, memory is %d bytes", ptr, n, size))
	}
	stack[0] = api.EncodeI32(int32(len(b)))
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
