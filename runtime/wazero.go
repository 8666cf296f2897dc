package runtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/pysnap"
	"github.com/orkrun/ork/internal/wasifs"
)

// wazeroEngine runs modules on wazero: one wazero.Runtime per memory limit
// (wazero sets the limit per runtime), sharing one compilation cache.
type wazeroEngine struct {
	cache wazero.CompilationCache

	mu       sync.Mutex
	runtimes map[uint32]*wazeroRuntime // by memory limit in pages
	closed   bool
}

type wazeroRuntime struct {
	rt      wazero.Runtime
	pages   uint32
	modules map[string]wazero.CompiledModule // by module digest
	snap    *pysnap.Engine                   // lazily, for Python snapshots
}

var (
	_ sys.Walltime = walltime
	_ sys.Nanotime = nanotime
)

func newWazeroEngine(c hostConfig) (*wazeroEngine, error) {
	e := &wazeroEngine{runtimes: map[uint32]*wazeroRuntime{}}
	if c.cacheDir != "" {
		dir := filepath.Join(c.cacheDir, "wazero-"+sanitize(c.version))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating the module cache %s: %w", dir, err)
		}
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("opening the module cache %s: %w", dir, err)
		}
		e.cache = cache
	} else {
		e.cache = wazero.NewCompilationCache()
	}
	return e, nil
}

func (e *wazeroEngine) name() string { return engineWazero }

func (e *wazeroEngine) close(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	for _, r := range e.runtimes {
		errs = append(errs, r.rt.Close(ctx))
	}
	errs = append(errs, e.cache.Close(ctx))
	return errors.Join(errs...)
}

func (e *wazeroEngine) compile(ctx context.Context, m *Module) ([]funcImport, error) {
	// The default limit: the module is compiled again, from the cache, for
	// other limits.
	cm, err := e.compiled(ctx, m, Policy{}.memoryPages())
	if err != nil {
		return nil, err
	}
	var imports []funcImport
	for _, f := range cm.ImportedFunctions() {
		mod, fn, _ := f.Import()
		imports = append(imports, funcImport{mod, fn})
	}
	return imports, nil
}

func (e *wazeroEngine) runtime(ctx context.Context, pages uint32) (*wazeroRuntime, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("runtime host is closed")
	}
	if r, ok := e.runtimes[pages]; ok {
		return r, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true). // a runaway guest must not freeze the process
		WithMemoryLimitPages(pages).
		WithDebugInfoEnabled(false).
		WithCompilationCache(e.cache)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if err := instantiateWASI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiating WASI: %w", err)
	}
	if err := instantiateABI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	r := &wazeroRuntime{rt: rt, pages: pages, modules: map[string]wazero.CompiledModule{}}
	e.runtimes[pages] = r
	return r, nil
}

func (e *wazeroEngine) compiled(ctx context.Context, m *Module, pages uint32) (wazero.CompiledModule, error) {
	r, err := e.runtime(ctx, pages)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	cm, ok := r.modules[m.Digest]
	e.mu.Unlock()
	if ok {
		return cm, nil
	}
	cm, err = r.rt.CompileModule(ctx, m.bin)
	if err != nil {
		return nil, fmt.Errorf("module %s is not a valid WebAssembly module: %w", m.Name, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if prev, ok := r.modules[m.Digest]; ok {
		_ = cm.Close(ctx)
		return prev, nil
	}
	r.modules[m.Digest] = cm
	return cm, nil
}

func (e *wazeroEngine) run(ctx context.Context, t Task) (*Result, error) {
	if t.Policy.CPU > 0 {
		return nil, errCPUNeedsWasmtime
	}
	pages := t.Policy.memoryPages()
	cm, err := e.compiled(ctx, t.Module, pages)
	if err != nil {
		return nil, err
	}
	r, err := e.runtime(ctx, pages)
	if err != nil {
		return nil, err
	}
	fs := wazero.NewFSConfig()
	for _, m := range t.Policy.Mounts {
		fs = wasifs.Mount(fs, m.HostPath, m.GuestPath, m.Writable)
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
	mod, err := r.rt.InstantiateModule(runCtx, cm, cfg.WithStderr(stderr))
	if err != nil {
		return nil, fmt.Errorf("instantiating module %s: %w", t.Module.Name, err)
	}
	entry := mod.ExportedFunction("_start")
	if entry == nil {
		_ = mod.Close(context.Background())
		return nil, fmt.Errorf("module %s exports no _start function", t.Module.Name)
	}
	res := &Result{}
	_, callErr := entry.Call(runCtx)
	res.Duration = time.Since(start)
	if mem := mod.Memory(); mem != nil && !isClosedByContext(runCtx, callErr) {
		res.MemoryBytes = uint64(mem.Size())
	}
	_ = mod.Close(context.Background())
	t.Session.Close()
	if callErr != nil {
		res.Failure = classify(ctx, t, wazeroGuestError(runCtx, t, callErr), res.MemoryBytes, uint64(pages)*pageSize, stderr.String())
	}
	return res, nil
}

// snapshotEngine is the pysnap engine on the runtime for a memory limit:
// Python snapshots are built and started on it, so they share the host's
// WASI (with the clock gate) and compilation cache.
func (e *wazeroEngine) snapshotEngine(ctx context.Context, pages uint32) (*pysnap.Engine, error) {
	r, err := e.runtime(ctx, pages)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.snap == nil {
		r.snap = pysnap.WrapRuntime(r.rt, r.pages)
	}
	return r.snap, nil
}

// prepareSnapshot has nothing to do: wazero maps the image as it is.
func (e *wazeroEngine) prepareSnapshot(context.Context, *pysnap.Snapshot, Policy) error { return nil }

// startSnapshot restores snap in an instance whose memory maps the image
// (pysnap.Snapshot.Start) and runs the task of spec in it.
func (e *wazeroEngine) startSnapshot(ctx, runCtx context.Context, snap *pysnap.Snapshot, t Task, spec pysnap.TaskSpec) (*snapshotRun, error) {
	eng, err := e.snapshotEngine(ctx, t.Policy.memoryPages())
	if err != nil {
		return nil, err
	}
	if t.Policy.CPU > 0 { // snapshots run on wazero
		return nil, errCPUNeedsWasmtime
	}
	spec.Engine = eng
	spec.Configure = func(c wazero.ModuleConfig) wazero.ModuleConfig {
		return c.WithWalltime(walltime, sys.ClockResolution(time.Microsecond)).
			WithNanotime(nanotime, sys.ClockResolution(1))
	}
	out, err := snap.Start(runCtx, spec)
	if err != nil {
		return nil, err
	}
	r := &snapshotRun{out: out}
	switch {
	case out.Err != nil:
		g := wazeroGuestError(runCtx, t, out.Err)
		r.stop = &g
	case out.ExitCode != 0:
		r.stop = &guestError{kind: stopExit, exitCode: out.ExitCode}
	}
	return r, nil
}

// isClosedByContext says whether wazero stopped the guest because runCtx is
// done. wazero reports that as an exit with a status a guest could also exit
// with (exit(-1) is ExitCodeContextCanceled), so the context decides.
func isClosedByContext(runCtx context.Context, err error) bool {
	var ee *sys.ExitError
	if runCtx.Err() != nil && errors.As(err, &ee) {
		c := ee.ExitCode()
		return c == sys.ExitCodeContextCanceled || c == sys.ExitCodeDeadlineExceeded
	}
	return false
}

var traceFunc = regexp.MustCompile(`wasm stack trace:\n\t(?:\.)?([^\n(]+)\(`)

// wazeroGuestError describes an error of a wazero call under runCtx for
// classify.
func wazeroGuestError(runCtx context.Context, t Task, err error) guestError {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		switch {
		case !isClosedByContext(runCtx, err):
			return guestError{kind: stopExit, exitCode: int(ee.ExitCode())}
		case ee.ExitCode() == sys.ExitCodeDeadlineExceeded:
			return guestError{kind: stopDeadline}
		default:
			return guestError{kind: stopCancelled}
		}
	}
	var te *abi.TrapError
	if errors.As(err, &te) {
		return guestError{kind: stopABI, abi: te}
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
	return guestError{kind: stopTrap, function: fn, message: first}
}

// instantiateWASI defines wasi_snapshot_preview1 on rt with clock_res_get
// replaced by the gate, and poll_oneoff by ork's.
func instantiateWASI(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	i32 := api.ValueTypeI32
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(wazeroClockResGet), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("id", "result.resolution").
		Export(gateFunc)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(wazeroPollOneoff), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("in", "out", "nsubscriptions", "result.nevents").
		Export(pollFunc)
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiating WASI: %w", err)
	}
	return nil
}

// instantiateABI defines the host ABI import module on rt. Each call finds
// its task's session in the call's context.
func instantiateABI(ctx context.Context, rt wazero.Runtime) error {
	i32 := api.ValueTypeI32
	_, err := rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(wazeroABICall), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("op_ptr", "op_len", "req_ptr", "req_len").
		Export(abi.FuncCall).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(wazeroABIResponse), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("buf_ptr", "buf_len").
		Export(abi.FuncResponse).
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("instantiating %s: %w", abi.ImportModule, err)
	}
	return nil
}

// wazeroMemory is mod's memory, nil (not a nil api.Memory) when it has none.
func wazeroMemory(mod api.Module) guestMemory {
	if mem := mod.Memory(); mem != nil {
		return mem
	}
	return nil
}

func sessionOf(ctx context.Context) *abi.Session {
	s, _ := ctx.Value(sessionKey{}).(*abi.Session)
	return s
}

// The wazero host functions panic with a trap's error: wazero stops the
// guest and returns an error of the call that wraps it.

func wazeroABICall(ctx context.Context, mod api.Module, stack []uint64) {
	r, err := hostCall(ctx, sessionOf(ctx), wazeroMemory(mod),
		api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2]), api.DecodeU32(stack[3]))
	if err != nil {
		panic(err)
	}
	stack[0] = api.EncodeI32(r)
}

func wazeroABIResponse(ctx context.Context, mod api.Module, stack []uint64) {
	r, err := hostResponse(sessionOf(ctx), wazeroMemory(mod), api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if err != nil {
		panic(err)
	}
	stack[0] = api.EncodeI32(r)
}

func wazeroClockResGet(ctx context.Context, mod api.Module, stack []uint64) {
	if pysnap.HandleTrigger(ctx, mod, stack) {
		return
	}
	errno, err := gateClockResGet(ctx, sessionOf(ctx), wazeroMemory(mod), api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if err != nil {
		panic(err)
	}
	stack[0] = uint64(errno)
}

func wazeroPollOneoff(ctx context.Context, mod api.Module, stack []uint64) {
	stack[0] = uint64(pollOneoff(ctx, wazeroMemory(mod),
		api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2]), api.DecodeU32(stack[3])))
	if err := ctx.Err(); err != nil {
		// The sleep ended because the task did. Stop the guest now, as
		// wazero would at its next call: returning would let it finish
		// first, and succeed, whenever it had little left to do.
		code := uint32(sys.ExitCodeContextCanceled)
		if errors.Is(err, context.DeadlineExceeded) {
			code = sys.ExitCodeDeadlineExceeded
		}
		panic(sys.NewExitError(code))
	}
}
