//go:build cgo

package runtime

/*
#include <stdint.h>

// Defined in wasmtime_epoch.c.
extern void ork_set_epoch_callback(void *store, uintptr_t handle);
*/
import "C"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	goruntime "runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/atomicfile"
	"github.com/orkrun/ork/internal/pysnap"
)

const wasmtimeAvailable = true

// wasmtimeVersion is the wasmtime-go release linked in (go.mod). It names
// the directory of serialized modules, with a hash of the engine settings:
// an artifact loads only into the wasmtime that wrote it, configured alike.
const wasmtimeVersion = "39.0.1"

// epochTick is how often the engine's epoch advances while tasks run: a
// task's timeout or cancellation stops its guest within about one tick.
const epochTick = 5 * time.Millisecond

// wasmtimeEngine runs modules on wasmtime: a fresh Store per task, in one
// of two configurations (wasmtimeConfig). Memory limits are per store
// (Store.Limiter); timeouts and cancellation use epoch interruption: a
// goroutine advances the epoch every epochTick while tasks run, and every
// store's deadline is one tick ahead, with a callback (wasmtime_epoch.c) that
// stops the guest when its task's context is done and otherwise extends the
// deadline.
//
// CPU limits use fuel, which changes the compiled code and slows guests
// down (CPython's `-c pass`: +31 to +38 %, see BenchmarkEngines), so only
// tasks with a CPU limit pay for it: they run in a second configuration,
// identical but for fuel, created when the first of them runs, with its own
// compiled modules and serialized-module directory (an artifact loads only
// into an engine configured alike).
type wasmtimeEngine struct {
	cache wasmtimeCache   // where serialized modules go
	plain *wasmtimeConfig // fuel off: tasks without a CPU limit
	fuel  *wasmtimeConfig // fuel on: tasks with one; nil until the first (mu)

	closing   context.Context // cancelled by close: running tasks stop
	stopTasks context.CancelFunc

	cfg hostConfig // for the wazero engine of snapshot boots

	// Python snapshots (wasmtime_snapshot.go).
	bake         func(*pysnap.Snapshot) ([]byte, error) // pysnap.Snapshot.Bake; tests replace it
	bakeCompiles atomic.Int64                           // baked modules compiled (not loaded from disk)
	bootMu       sync.Mutex
	boot         *wazeroEngine // boots snapshots; lazily
	bootClosed   bool

	mu      sync.Mutex
	closed  bool
	active  int  // tasks running
	ticking bool // the epoch goroutine runs
	running sync.WaitGroup
	ticker  sync.WaitGroup
}

// wasmtimeConfig is one wasmtime Engine, with its Linker, its directory of
// serialized modules and the modules it compiled.
type wasmtimeConfig struct {
	fuel     bool // fuel metering is on: stores must be given fuel
	engine   *wasmtime.Engine
	linker   *wasmtime.Linker
	cacheDir string                     // serialized modules; "" = none
	modules  map[string]*wasmtimeModule // by module digest; wasmtimeEngine.mu guards it
	baked    map[string]*bakedSnapshot  // Python snapshots, by pysnap.Snapshot.BakedKey; wasmtimeEngine.mu guards it

	// The pooling allocator (wasmtime_pool.go): one token per slot taken;
	// nil when the engine allocates on demand.
	slots    chan struct{}
	overflow *wasmtimeConfig // on-demand, for what the pool refuses; nil until needed (wasmtimeEngine.mu)
}

type wasmtimeModule struct {
	ready    chan struct{} // closed when mod or err is set
	mod      *wasmtime.Module
	fromDisk bool // deserialized from the cache directory
	imports  []funcImport
	err      error
	unpooled atomic.Bool // does not fit a pool slot: runs in the overflow
}

// wasmtimeSettings describes everything in a configuration that changes
// compiled code; its hash keys the directory of serialized modules.
func wasmtimeSettings(fuel, pooled bool) string {
	s := fmt.Sprintf("wasmtime=%s os=%s arch=%s epoch=on fuel=%s debuginfo=off opt=speed strategy=cranelift",
		wasmtimeVersion, goruntime.GOOS, goruntime.GOARCH, map[bool]string{false: "off", true: "on"}[fuel])
	if pooled {
		s += " " + poolSettings
	}
	return s
}

// wasmtimeCache says where an engine keeps serialized modules: under root
// (the host's cache directory; "" = nowhere), in a directory per ork version
// and engine configuration.
type wasmtimeCache struct {
	root       string
	orkVersion string
}

// dir is the directory of modules compiled for this ork version and a
// configuration. wasmtime checks its own version and settings when it
// deserializes an artifact; ork's version is in the key as well, as on
// wazero, so that an upgraded ork that compiles differently in a way
// wasmtimeSettings does not capture never loads code compiled by the
// previous one. It costs one recompile per module after an upgrade.
func (c wasmtimeCache) dir(fuel, pooled bool) string {
	sum := sha256.Sum256([]byte("ork=" + c.orkVersion + " " + wasmtimeSettings(fuel, pooled)))
	return filepath.Join(c.root, "wasmtime-"+wasmtimeVersion+"-ork-"+sanitize(c.orkVersion)+"-"+hex.EncodeToString(sum[:6]))
}

func newWasmtimeEngine(c hostConfig) (*wasmtimeEngine, error) {
	cache := wasmtimeCache{root: c.cacheDir, orkVersion: c.version}
	plain, err := newWasmtimeConfig(cache, false)
	if err != nil {
		return nil, err
	}
	probe := wasmtime.NewStore(plain.engine)
	ok := storePointer(probe) != nil
	probe.Close()
	if !ok {
		plain.close()
		return nil, errors.New("the wasmtime engine cannot reach wasmtime-go's store pointer (has its Store type changed?)")
	}
	e := &wasmtimeEngine{cache: cache, plain: plain, cfg: c, bake: (*pysnap.Snapshot).Bake}
	e.closing, e.stopTasks = context.WithCancel(context.Background())
	return e, nil
}

// newWasmtimeConfig creates an Engine and its Linker, with fuel metering on
// or off, the pooling allocator where it pays (poolingAvailable) and
// everything else as wasmtimeSettings says (wasmtime aborts the process on
// an invalid combination: change one only with the other).
func newWasmtimeConfig(cache wasmtimeCache, fuel bool) (*wasmtimeConfig, error) {
	return newWasmtimeConfigAlloc(cache, fuel, poolingAvailable)
}

// newWasmtimeConfigAlloc is newWasmtimeConfig with the pooling allocator
// on or off.
func newWasmtimeConfigAlloc(cache wasmtimeCache, fuel, pooled bool) (*wasmtimeConfig, error) {
	cfg := wasmtime.NewConfig()
	cfg.SetEpochInterruption(true)
	cfg.SetConsumeFuel(fuel)
	cfg.SetDebugInfo(false)
	cfg.SetCraneliftOptLevel(wasmtime.OptLevelSpeed)
	cfg.SetStrategy(wasmtime.StrategyCranelift)
	if pooled {
		if err := setPooling(cfg); err != nil {
			cfg.Close()
			return nil, err
		}
	}
	eng := wasmtime.NewEngineWithConfig(cfg)

	c := &wasmtimeConfig{fuel: fuel, engine: eng, modules: map[string]*wasmtimeModule{}, baked: map[string]*bakedSnapshot{}}
	if pooled {
		c.slots = make(chan struct{}, poolSlots())
	}
	if cache.root != "" {
		c.cacheDir = cache.dir(fuel, pooled)
		if err := os.MkdirAll(c.cacheDir, 0o755); err != nil {
			eng.Close()
			return nil, fmt.Errorf("creating the module cache %s: %w", c.cacheDir, err)
		}
	}
	linker, err := newWasmtimeLinker(eng)
	if err != nil {
		eng.Close()
		return nil, err
	}
	c.linker = linker
	return c, nil
}

// close releases the configuration's modules, Linker and Engine; no task
// may be running in it.
func (c *wasmtimeConfig) close() {
	for _, m := range c.modules {
		<-m.ready
		if m.mod != nil {
			m.mod.Close()
		}
	}
	c.modules = nil
	for _, b := range c.baked {
		<-b.ready
		if b.mod != nil {
			b.mod.Close()
		}
	}
	c.baked = nil
	c.linker.Close()
	c.engine.Close()
	if c.overflow != nil {
		c.overflow.close()
	}
}

// config is the configuration p's tasks run in, creating the fuel-metered
// one for the first task with a CPU limit.
func (e *wasmtimeEngine) config(p Policy) (*wasmtimeConfig, error) {
	if p.CPU == 0 {
		return e.plain, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("runtime host is closed")
	}
	if e.fuel == nil {
		c, err := newWasmtimeConfig(e.cache, true)
		if err != nil {
			return nil, err
		}
		e.fuel = c
	}
	return e.fuel, nil
}

func (e *wasmtimeEngine) name() string { return engineWasmtime }

func (e *wasmtimeEngine) close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.stopTasks()
	e.running.Wait() // their guests stop within a tick
	e.ticker.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.plain.close()
	if e.fuel != nil {
		e.fuel.close()
	}
	return e.closeBoot(ctx)
}

// compile compiles m without fuel, for the tasks without a CPU limit; the
// first task with one compiles it again, with fuel.
func (e *wasmtimeEngine) compile(_ context.Context, m *Module) ([]funcImport, error) {
	wm, err := e.module(e.plain, m)
	if err != nil {
		return nil, err
	}
	return wm.imports, nil
}

// module returns m compiled in c, compiling it (or loading it from the disk
// cache) once however many tasks ask at the same time.
func (e *wasmtimeEngine) module(c *wasmtimeConfig, m *Module) (*wasmtimeModule, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errors.New("runtime host is closed")
	}
	wm, ok := c.modules[m.Digest]
	if ok {
		e.mu.Unlock()
		<-wm.ready
		return wm, wm.err
	}
	wm = &wasmtimeModule{ready: make(chan struct{})}
	c.modules[m.Digest] = wm
	e.mu.Unlock()

	wm.mod, wm.fromDisk, wm.err = c.build(m)
	if wm.err != nil && c.slots != nil {
		// The pool checks modules as they compile: perhaps m is valid but
		// does not fit a slot. The overflow decides, and runs its tasks.
		var om *wasmtimeModule
		o, err := e.overflowOf(c)
		if err == nil {
			om, err = e.module(o, m)
		}
		if err == nil {
			wm.imports, wm.err = om.imports, nil
			wm.unpooled.Store(true)
		} else {
			wm.err = err
		}
	}
	if wm.mod != nil {
		for _, it := range wm.mod.Imports() {
			if it.Type().FuncType() == nil {
				continue // wazero lists functions only; so does ork
			}
			name := ""
			if n := it.Name(); n != nil {
				name = *n
			}
			wm.imports = append(wm.imports, funcImport{it.Module(), name})
		}
	}
	close(wm.ready)
	if wm.err != nil {
		e.mu.Lock()
		if c.modules[m.Digest] == wm {
			delete(c.modules, m.Digest)
		}
		e.mu.Unlock()
	}
	return wm, wm.err
}

// build compiles m, or loads it from the cache directory (fromDisk).
func (c *wasmtimeConfig) build(m *Module) (mod *wasmtime.Module, fromDisk bool, err error) {
	path := ""
	if c.cacheDir != "" {
		path = filepath.Join(c.cacheDir, m.Digest+".cwasm")
		if _, err := os.Stat(path); err == nil {
			// Mapped, not read: the file must be replaced (atomicfile renames),
			// never rewritten in place while a host has it loaded. A stale or
			// foreign artifact is refused, then replaced.
			if mod, err := wasmtime.NewModuleDeserializeFile(c.engine, path); err == nil {
				return mod, true, nil
			}
		}
	}
	mod, err = wasmtime.NewModule(c.engine, m.bin)
	if err != nil {
		return nil, false, fmt.Errorf("module %s is not a valid WebAssembly module: %w", m.Name, err)
	}
	if path != "" {
		// The cache only saves time: a module that cannot be stored still runs.
		if b, err := mod.Serialize(); err == nil {
			_ = atomicfile.Write(path, b, 0o644)
		}
	}
	return mod, false, nil
}

// enter registers a running task; false when the host is closed.
func (e *wasmtimeEngine) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.running.Add(1)
	e.active++
	if !e.ticking {
		e.ticking = true
		e.ticker.Add(1)
		go e.tick()
	}
	return true
}

func (e *wasmtimeEngine) leave() {
	e.mu.Lock()
	e.active--
	e.mu.Unlock()
	e.running.Done()
}

// tick advances the epoch of every configuration every epochTick while any
// task runs.
func (e *wasmtimeEngine) tick() {
	defer e.ticker.Done()
	t := time.NewTicker(epochTick)
	defer t.Stop()
	for range t.C {
		e.mu.Lock()
		if e.active == 0 {
			e.ticking = false
			e.mu.Unlock()
			return
		}
		configs := []*wasmtimeConfig{e.plain, e.plain.overflow}
		if e.fuel != nil {
			configs = append(configs, e.fuel, e.fuel.overflow)
		}
		e.mu.Unlock()
		for _, c := range configs {
			if c != nil {
				c.engine.IncrementEpoch()
			}
		}
	}
}

// wasmtimeTask is a running task's state, the data of its Store: the host
// functions and the epoch callback run on the goroutine that runs the guest
// and find it there.
type wasmtimeTask struct {
	ctx         context.Context // the run's: timeout, cancellation, session
	session     *abi.Session
	hostErr     error // why a host function stopped the guest
	exited      bool  // proc_exit, with exitCode
	exitCode    uint32
	interrupted bool // stopped because ctx is done
}

// stop records why a host function stops the guest and returns the trap.
func (st *wasmtimeTask) stop(err error) *wasmtime.Trap {
	if st.hostErr == nil {
		st.hostErr = err
	}
	return wasmtime.NewTrap(err.Error())
}

func (e *wasmtimeEngine) run(ctx context.Context, t Task) (*Result, error) {
	c, err := e.config(t.Policy)
	if err != nil {
		return nil, err
	}
	res, err := e.runIn(ctx, c, t)
	if errors.Is(err, errPoolRefused) {
		if c, err = e.overflowOf(c); err != nil {
			return nil, err
		}
		res, err = e.runIn(ctx, c, t)
	}
	return res, err
}

// runIn runs t in configuration c; errPoolRefused when c's pool has no
// slot for it, before the guest ran.
func (e *wasmtimeEngine) runIn(ctx context.Context, c *wasmtimeConfig, t Task) (*Result, error) {
	wm, err := e.module(c, t.Module)
	if err != nil {
		return nil, err
	}
	if wm.unpooled.Load() && c.slots != nil {
		return nil, errPoolRefused
	}
	if !e.enter() {
		return nil, errors.New("runtime host is closed")
	}
	defer e.leave()
	if !c.take() {
		return nil, errPoolRefused
	}
	defer c.give() // after the store is closed (deferred later, runs first)

	pages := t.Policy.memoryPages()
	limit := uint64(pages) * pageSize
	runCtx, cancel := context.WithTimeout(ctx, t.Policy.timeout())
	defer cancel()
	defer context.AfterFunc(e.closing, cancel)()
	runCtx = context.WithValue(runCtx, sessionKey{}, t.Session)

	stderr := &tailWriter{w: orDiscard(t.Stderr)}
	var streams wasiStreams
	defer streams.wait() // after the store is closed (deferred later, runs first)
	wasi, err := wasmtimeWASI(t, &streams, stderr)
	if err != nil {
		return nil, err
	}

	st := &wasmtimeTask{ctx: runCtx, session: t.Session}
	store, fuel, release, err := e.newStore(c, st, wasi, limit, t.Policy.CPU)
	if err != nil {
		return nil, err
	}
	defer release() // closes the guest's ends of stdout and stderr

	start := time.Now()
	inst, err := c.linker.Instantiate(store, wm.mod)
	if err != nil {
		if c.poolRefused(err) {
			wm.unpooled.Store(true)
			return nil, errPoolRefused
		}
		return nil, fmt.Errorf("instantiating module %s: %w", t.Module.Name, err)
	}
	entry := inst.GetFunc(store, "_start")
	if entry == nil {
		return nil, fmt.Errorf("module %s exports no _start function", t.Module.Name)
	}
	res := &Result{}
	_, callErr := entry.Call(store)
	res.Duration = time.Since(start)
	res.Fuel = fuelUsed(c, store, fuel)
	if ext := inst.GetExport(store, "memory"); ext != nil && !st.interrupted {
		if mem := ext.Memory(); mem != nil {
			res.MemoryBytes = uint64(mem.DataSize(store))
		}
	}
	store.Close()
	streams.wait() // the whole stderr, for classify
	t.Session.Close()
	if callErr != nil {
		res.Failure = classify(ctx, t, st.guestError(callErr), res.MemoryBytes, limit, stderr.String())
	}
	return res, nil
}

// newStore is the store of one task in configuration c: its WASI, memory
// limit, epoch callback and, in the fuel configuration, its cpu fuel
// (returning the fuel it holds before the guest runs). release closes it
// (and the guest's ends of its stdio); calling store.Close before it is
// fine.
func (e *wasmtimeEngine) newStore(c *wasmtimeConfig, st *wasmtimeTask, wasi *wasmtime.WasiConfig, limit, cpu uint64) (store *wasmtime.Store, fuel uint64, release func(), err error) {
	handle := cgo.NewHandle(st) // for the epoch callback
	store = wasmtime.NewStoreWithData(c.engine, st)
	release = func() {
		store.Close()
		handle.Delete()
	}
	store.SetWasi(wasi)
	store.Limiter(int64(limit), -1, -1, -1, -1)
	C.ork_set_epoch_callback(storePointer(store), C.uintptr_t(handle))
	goruntime.KeepAlive(store)
	store.SetEpochDeadline(1)
	if c.fuel {
		if err := store.SetFuel(cpu); err != nil {
			release()
			return nil, 0, nil, fmt.Errorf("giving the task its fuel: %w", err)
		}
		// As wasmtime has it: it may keep less than it was given.
		if fuel, err = store.GetFuel(); err != nil {
			release()
			return nil, 0, nil, fmt.Errorf("reading the task's fuel: %w", err)
		}
	}
	return store, fuel, release, nil
}

// fuelUsed is what the guest of store burned of the fuel it had before.
func fuelUsed(c *wasmtimeConfig, store *wasmtime.Store, before uint64) uint64 {
	if !c.fuel {
		return 0
	}
	if left, err := store.GetFuel(); err == nil && left <= before {
		return before - left
	}
	return 0
}

// guestError describes how the guest's _start failed.
func (st *wasmtimeTask) guestError(err error) guestError {
	switch {
	case st.hostErr != nil:
		var te *abi.TrapError
		if errors.As(st.hostErr, &te) {
			return guestError{kind: stopABI, abi: te}
		}
		first, _, _ := strings.Cut(st.hostErr.Error(), "\n")
		return guestError{kind: stopTrap, message: first}
	case st.exited:
		return guestError{kind: stopExit, exitCode: int(st.exitCode)}
	case st.interrupted:
		if errors.Is(st.ctx.Err(), context.DeadlineExceeded) {
			// The epoch callback's error carries the guest's backtrace in
			// its text (wasmtime-go exposes no frames for an Error).
			g := guestError{kind: stopDeadline}
			if err != nil {
				g.function = interruptedIn(err.Error())
			}
			return g
		}
		return guestError{kind: stopCancelled}
	}
	var we *wasmtime.Error
	if errors.As(err, &we) {
		if code, ok := we.ExitStatus(); ok {
			return guestError{kind: stopExit, exitCode: int(uint32(code))}
		}
	}
	var trap *wasmtime.Trap
	if errors.As(err, &trap) {
		g := guestError{kind: stopTrap, message: trapMessage(trap)}
		if c := trap.Code(); c != nil && *c == trapOutOfFuel {
			g.kind = stopFuel // raised by fuel metering only: never the guest's own trap
		}
		if frames := trap.Frames(); len(frames) > 0 {
			g.function = frameName(frames[0])
		}
		return g
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	return guestError{kind: stopTrap, message: first}
}

var (
	backtraceTop = regexp.MustCompile(`wasm backtrace:\n\s*0:\s+0x[0-9a-f]+ - (?:[^!\n]*!)?([^\n]+)`)
	symbolHash   = regexp.MustCompile(`::h[0-9a-f]{16}$`)
	wasmFunction = regexp.MustCompile(`^<wasm function (\d+)>$`)
)

// interruptedIn is the innermost guest function of the wasm backtrace in
// the text of a wasmtime error, as frameName names it, or "".
func interruptedIn(msg string) string {
	m := backtraceTop.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	name := strings.TrimSpace(m[1])
	if w := wasmFunction.FindStringSubmatch(name); w != nil {
		return "$" + w[1]
	}
	return symbolHash.ReplaceAllString(demangle(name), "")
}

// trapOutOfFuel is the code of the trap wasmtime raises when a store runs
// out of fuel: WASMTIME_TRAP_CODE_OUT_OF_FUEL, 12 in the C API of wasmtime
// 39 (wasmtime/trap.h). Not wasmtime-go's wasmtime.OutOfFuel, which is 11:
// its list of codes misses WASMTIME_TRAP_CODE_ALWAYS_TRAP_ADAPTER, so from
// OutOfFuel on its constants are one lower than the codes Trap.Code returns.
// TestWasmtimeOutOfFuelTrap checks the value against a real trap.
const trapOutOfFuel wasmtime.TrapCode = 12

// trapMessage says what trapped as wazero words it, e.g. "unreachable".
func trapMessage(t *wasmtime.Trap) string {
	if c := t.Code(); c != nil {
		switch *c {
		case wasmtime.StackOverflow:
			return "stack overflow"
		case wasmtime.MemoryOutOfBounds:
			return "out of bounds memory access"
		case wasmtime.HeapMisaligned:
			return "unaligned atomic"
		case wasmtime.TableOutOfBounds, wasmtime.IndirectCallToNull:
			return "invalid table access"
		case wasmtime.BadSignature:
			return "indirect call type mismatch"
		case wasmtime.IntegerOverflow:
			return "integer overflow"
		case wasmtime.IntegerDivisionByZero:
			return "integer divide by zero"
		case wasmtime.BadConversionToInteger:
			return "invalid conversion to integer"
		case wasmtime.UnreachableCodeReached:
			return "unreachable"
		case wasmtime.Interrupt:
			return "interrupted"
		case trapOutOfFuel:
			return "out of fuel"
		}
	}
	first, _, _ := strings.Cut(t.Message(), "\n")
	return strings.TrimPrefix(first, "wasm trap: ")
}

// frameName is the demangled name of a frame's function, or $index as
// wazero names a function the name section does not.
func frameName(f *wasmtime.Frame) string {
	if n := f.FuncName(); n != nil && *n != "" {
		return demangle(*n)
	}
	return fmt.Sprintf("$%d", f.FuncIndex())
}

// storePointer is the wasmtime_store_t* behind a Store, which the epoch
// callback needs and wasmtime-go does not expose (nil if that changed).
func storePointer(s *wasmtime.Store) unsafe.Pointer {
	f := reflect.ValueOf(s).Elem().FieldByName("_ptr")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil
	}
	return f.UnsafePointer()
}

// orkEpochDeadline runs when a store's epoch deadline passes (wasmtime_epoch.c):
// it reports whether to stop the guest.
//
//export orkEpochDeadline
func orkEpochDeadline(h C.uintptr_t) C.int {
	st := cgo.Handle(h).Value().(*wasmtimeTask)
	if st.ctx.Err() != nil {
		st.interrupted = true
		return 1
	}
	return 0
}

// wasiStreams carries a guest's stdout and stderr to their writers through
// pipes, as they are written: wasmtime-go takes WASI stdio only as paths.
type wasiStreams struct {
	wg sync.WaitGroup
}

// pipe makes a pipe, has open open its write end by path (/dev/fd/N, valid
// only during the call), and copies what arrives to w, as it arrives, until
// the guest's end is closed (when its store is).
func (s *wasiStreams) pipe(w io.Writer, open func(path string) error) error {
	r, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	err = open(fmt.Sprintf("/dev/fd/%d", wr.Fd()))
	wr.Close() // the guest's end is its own now (or failed to open)
	if err != nil {
		r.Close()
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer r.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n]) // a failing writer must not block the guest
			}
			if err != nil {
				return
			}
		}
	}()
	return nil
}

func (s *wasiStreams) wait() { s.wg.Wait() }

// wasmtimeWASI is the WASI configuration of t: its argv, exactly its
// environment, its mounts, an empty stdin, stdout and stderr streamed.
func wasmtimeWASI(t Task, streams *wasiStreams, stderr io.Writer) (*wasmtime.WasiConfig, error) {
	w := wasmtime.NewWasiConfig()
	ok := false
	defer func() {
		if !ok {
			w.Close()
		}
	}()
	args := t.Args
	if len(args) == 0 {
		args = []string{t.Module.Name}
	}
	w.SetArgv(args)
	keys := make([]string, 0, len(t.Policy.Env))
	vals := make([]string, 0, len(t.Policy.Env))
	for _, kv := range t.Policy.Env {
		k, v, _ := strings.Cut(kv, "=")
		keys, vals = append(keys, k), append(vals, v)
	}
	w.SetEnv(keys, vals)
	for _, m := range t.Policy.Mounts {
		dir, file := wasmtime.DIR_READ, wasmtime.FILE_READ
		if m.Writable {
			dir, file = dir|wasmtime.DIR_WRITE, file|wasmtime.FILE_WRITE
		}
		if err := w.PreopenDir(m.HostPath, m.GuestPath, dir, file); err != nil {
			return nil, fmt.Errorf("mounting %s at %s: %w", m.HostPath, m.GuestPath, err)
		}
	}
	if err := w.SetStdinFile(os.DevNull); err != nil {
		return nil, fmt.Errorf("opening stdin: %w", err)
	}
	if t.Stdout == nil {
		if err := w.SetStdoutFile(os.DevNull); err != nil {
			return nil, fmt.Errorf("opening stdout: %w", err)
		}
	} else if err := streams.pipe(t.Stdout, w.SetStdoutFile); err != nil {
		return nil, fmt.Errorf("opening stdout: %w", err)
	}
	if err := streams.pipe(stderr, w.SetStderrFile); err != nil {
		return nil, fmt.Errorf("opening stderr: %w", err)
	}
	ok = true
	return w, nil
}

// newWasmtimeLinker defines WASI with ork's overrides (the clock gate,
// clocks, poll_oneoff, proc_exit) and the host ABI.
func newWasmtimeLinker(eng *wasmtime.Engine) (*wasmtime.Linker, error) {
	l := wasmtime.NewLinker(eng)
	if err := l.DefineWasi(); err != nil {
		l.Close()
		return nil, fmt.Errorf("defining WASI: %w", err)
	}
	l.AllowShadowing(true)
	i32, i64 := wasmtime.NewValType(wasmtime.KindI32), wasmtime.NewValType(wasmtime.KindI64)
	sig := func(params []*wasmtime.ValType, results ...*wasmtime.ValType) *wasmtime.FuncType {
		return wasmtime.NewFuncType(params, results)
	}
	type fn = func(*wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap)
	defs := []struct {
		module, name string
		ty           *wasmtime.FuncType
		f            fn
	}{
		{abi.ImportModule, abi.FuncCall, sig([]*wasmtime.ValType{i32, i32, i32, i32}, i32), wasmtimeABICall},
		{abi.ImportModule, abi.FuncResponse, sig([]*wasmtime.ValType{i32, i32}, i32), wasmtimeABIResponse},
		{wasiModule, gateFunc, sig([]*wasmtime.ValType{i32, i32}, i32), wasmtimeClockResGet},
		{wasiModule, "clock_time_get", sig([]*wasmtime.ValType{i32, i64, i32}, i32), wasmtimeClockTimeGet},
		{wasiModule, pollFunc, sig([]*wasmtime.ValType{i32, i32, i32, i32}, i32), wasmtimePollOneoff},
		{wasiModule, "proc_exit", sig([]*wasmtime.ValType{i32}), wasmtimeProcExit},
	}
	for _, d := range defs {
		if err := l.FuncNew(d.module, d.name, d.ty, d.f); err != nil {
			l.Close()
			return nil, fmt.Errorf("defining %s.%s: %w", d.module, d.name, err)
		}
	}
	return l, nil
}

func taskOf(c *wasmtime.Caller) *wasmtimeTask { return c.Data().(*wasmtimeTask) }

// callerMemory is the calling instance's memory, nil when it exports none.
// The view is valid until the host function returns.
func callerMemory(c *wasmtime.Caller) guestMemory {
	ext := c.GetExport("memory")
	if ext == nil {
		return nil
	}
	mem := ext.Memory()
	if mem == nil {
		return nil
	}
	return memBytes(mem.UnsafeData(c))
}

func u32(v wasmtime.Val) uint32 { return uint32(v.I32()) }

func i32Result(v int32) []wasmtime.Val { return []wasmtime.Val{wasmtime.ValI32(v)} }

func wasmtimeABICall(c *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	st := taskOf(c)
	r, err := hostCall(st.ctx, st.session, callerMemory(c), u32(args[0]), u32(args[1]), u32(args[2]), u32(args[3]))
	if err != nil {
		return nil, st.stop(err)
	}
	return i32Result(r), nil
}

func wasmtimeABIResponse(c *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	st := taskOf(c)
	r, err := hostResponse(st.session, callerMemory(c), u32(args[0]), u32(args[1]))
	if err != nil {
		return nil, st.stop(err)
	}
	return i32Result(r), nil
}

func wasmtimeClockResGet(c *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	st := taskOf(c)
	errno, err := gateClockResGet(st.ctx, st.session, callerMemory(c), u32(args[0]), u32(args[1]))
	if err != nil {
		return nil, st.stop(err)
	}
	return i32Result(int32(errno)), nil
}

// wasmtimeClockTimeGet gives guests the clocks wazero gives them (see
// walltime and nanotime), so that poll_oneoff's absolute deadlines are on
// the guest's own monotonic clock.
func wasmtimeClockTimeGet(c *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	var v int64
	switch u32(args[0]) {
	case clockRealtime:
		sec, nsec := walltime()
		v = sec*1e9 + int64(nsec)
	case clockMonotonic:
		v = nanotime()
	default:
		return i32Result(errnoInval), nil
	}
	mem := callerMemory(c)
	if mem == nil || !mem.WriteUint64Le(u32(args[2]), uint64(v)) {
		return i32Result(errnoFault), nil
	}
	return i32Result(errnoSuccess), nil
}

func wasmtimePollOneoff(c *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	st := taskOf(c)
	errno := pollOneoff(st.ctx, callerMemory(c), u32(args[0]), u32(args[1]), u32(args[2]), u32(args[3]))
	if st.ctx.Err() != nil {
		// The sleep ended because the task did: stop now, not at the next tick.
		st.interrupted = true
		return nil, wasmtime.NewTrap("interrupted")
	}
	return i32Result(int32(errno)), nil
}

// wasmtimeProcExit stops the guest with any status, as wazero does
// (wasmtime's own refuses statuses of 126 and more).
func wasmtimeProcExit(c *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	st := taskOf(c)
	st.exited, st.exitCode = true, u32(args[0])
	return nil, wasmtime.NewTrap(fmt.Sprintf("exit with status %d", st.exitCode))
}
