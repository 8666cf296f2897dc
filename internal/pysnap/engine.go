package pysnap

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// TriggerClockID is the WASI clock id whose clock_res_get takes the snapshot.
// The boot script passes it the way the clock gate passes a mailbox address
// (wasi-libc reads the id through the clockid_t pointer it is given):
//
//	time.clock_getres(id(struct.pack("<I", 0x5a5a)) + 16)
//
// 0x5a5a lies inside the 512 KiB shadow stack at the bottom of memory, where
// no Python object can live, so it never collides with a mailbox address.
const TriggerClockID = 0x5a5a

// DefaultMemoryLimitPages is the memory limit of an engine that names none:
// 256 MiB, ork's default.
const DefaultMemoryLimitPages = 4096

const (
	errnoSuccess = 0
	errnoFault   = 21
	errnoInval   = 28
)

// Engine is a wazero runtime that boots and restores snapshots, and the
// data-less interpreter compiled on it. It is safe for concurrent use.
type Engine struct {
	rt         wazero.Runtime
	ownsRT     bool
	limitPages uint32

	mu       sync.Mutex
	compiled map[string]wazero.CompiledModule // by Prepared.DatalessDigest
	closed   bool
}

// EngineConfig configures NewEngine.
type EngineConfig struct {
	// MemoryLimitPages caps every instance's linear memory (64 KiB pages);
	// 0 means DefaultMemoryLimitPages. It also bounds each restored
	// instance's virtual reservation.
	MemoryLimitPages uint32
	// Cache, when set, is the compilation cache (compiling python.wasm
	// takes seconds; loading it from a disk cache well under one).
	Cache wazero.CompilationCache
	// ClockResGet, when set, handles every clock_res_get call that is not
	// the snapshot trigger (ork's clock gate). By default real clocks 0-3
	// report 1 ns and any other id is EINVAL.
	ClockResGet api.GoModuleFunc
}

// NewEngine creates a runtime that closes instances when their context is
// done, caps their memory, and whose WASI clock_res_get recognises the
// snapshot trigger.
func NewEngine(ctx context.Context, c EngineConfig) (*Engine, error) {
	if c.MemoryLimitPages == 0 {
		c.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if c.MemoryLimitPages > 65535 {
		return nil, fmt.Errorf("pysnap: memory limit of %d pages is above 65535 (keep it below 4 GiB)", c.MemoryLimitPages)
	}
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true). // a runaway guest must not freeze the process
		WithMemoryLimitPages(c.MemoryLimitPages).
		WithDebugInfoEnabled(false)
	if c.Cache != nil {
		cfg = cfg.WithCompilationCache(c.Cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	fallback := c.ClockResGet
	if fallback == nil {
		fallback = clockResGet
	}
	b := rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	i32 := api.ValueTypeI32
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			if HandleTrigger(ctx, mod, stack) {
				return
			}
			fallback(ctx, mod, stack)
		}), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("id", "result.resolution").
		Export("clock_res_get")
	if _, err := b.Instantiate(ctx); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("pysnap: instantiating WASI: %w", err)
	}
	return &Engine{rt: rt, ownsRT: true, limitPages: c.MemoryLimitPages, compiled: map[string]wazero.CompiledModule{}}, nil
}

// WrapRuntime makes an Engine of a runtime the caller configured and owns.
// Its wasi_snapshot_preview1 module must already be instantiated with a
// clock_res_get that calls HandleTrigger first (only needed to Build on it),
// and it should close modules on context done. limitPages must be the
// runtime's WithMemoryLimitPages. Keep one Engine per runtime: it holds the
// compiled interpreter.
func WrapRuntime(rt wazero.Runtime, limitPages uint32) *Engine {
	if limitPages == 0 {
		limitPages = 65536
	}
	return &Engine{rt: rt, limitPages: limitPages, compiled: map[string]wazero.CompiledModule{}}
}

// Runtime is the engine's wazero runtime.
func (e *Engine) Runtime() wazero.Runtime { return e.rt }

// MemoryLimitPages is the engine's memory cap.
func (e *Engine) MemoryLimitPages() uint32 { return e.limitPages }

// Close releases the compiled modules and, for NewEngine, the runtime.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	for _, cm := range e.compiled {
		errs = append(errs, cm.Close(ctx))
	}
	if e.ownsRT {
		errs = append(errs, e.rt.Close(ctx))
	}
	return errors.Join(errs...)
}

// compile returns p's data-less module compiled on this engine.
func (e *Engine) compile(ctx context.Context, p *Prepared) (wazero.CompiledModule, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errors.New("pysnap: the engine is closed")
	}
	cm, ok := e.compiled[p.DatalessDigest]
	e.mu.Unlock()
	if ok {
		return cm, nil
	}
	cm, err := e.rt.CompileModule(ctx, p.Dataless)
	if err != nil {
		return nil, fmt.Errorf("pysnap: compiling the prepared interpreter: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if prev, ok := e.compiled[p.DatalessDigest]; ok {
		_ = cm.Close(ctx)
		return prev, nil
	}
	e.compiled[p.DatalessDigest] = cm
	return cm, nil
}

// clockResGet is WASI's clock_res_get for the real clocks.
func clockResGet(_ context.Context, mod api.Module, stack []uint64) {
	id, resPtr := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if id > 3 {
		stack[0] = errnoInval
		return
	}
	if mem := mod.Memory(); mem == nil || !mem.WriteUint64Le(resPtr, 1) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

// captureKey carries a boot's *capture in the context of its _start call.
type captureKey struct{}

// errSnapshotTaken aborts the boot instance once its memory is copied.
var errSnapshotTaken = errors.New("pysnap: snapshot taken")

// capture is what the trigger records.
type capture struct {
	done         bool
	image        []byte
	stackPointer uint32
	err          error
}

// HandleTrigger is the snapshot point of clock_res_get. Called with
// TriggerClockID during a Build (the context of the boot's _start carries
// the capture), it copies linear memory and the stack pointer and aborts the
// boot instance by panicking, so it does not return. For any other call,
// including the trigger id outside a Build, it returns false and does
// nothing; the caller then handles the call as usual. A host that keeps its
// own clock_res_get (ork's clock gate) calls this first:
//
//	if pysnap.HandleTrigger(ctx, mod, stack) {
//		return
//	}
func HandleTrigger(ctx context.Context, mod api.Module, stack []uint64) bool {
	if api.DecodeU32(stack[0]) != TriggerClockID {
		return false
	}
	c, _ := ctx.Value(captureKey{}).(*capture)
	if c == nil || c.done {
		return false
	}
	c.done = true
	mem := mod.Memory()
	if mem == nil {
		c.err = errors.New("the module has no memory")
		panic(errSnapshotTaken)
	}
	view, _ := mem.Read(0, mem.Size())
	c.image = append([]byte(nil), view...)
	g := mod.ExportedGlobal(StackPointerExport)
	if g == nil {
		c.err = fmt.Errorf("the module does not export %s (was it prepared?)", StackPointerExport)
		panic(errSnapshotTaken)
	}
	c.stackPointer = api.DecodeU32(g.Get())
	panic(errSnapshotTaken)
}
