//go:build cgo

package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/atomicfile"
	"github.com/orkrun/ork/internal/pysnap"
)

// Python snapshots on wasmtime ("approach A" of the shared notes
// python-snapshot.md). A snapshot, booted on wazero, is baked into a
// standalone module (pysnap.Snapshot.Bake: its data segments are the image,
// its stack pointer starts at the snapshot's value, an exported entry calls
// the runner). That module is compiled once per snapshot and wasmtime
// configuration, serialized into the cache directory and loaded from there
// with NewModuleDeserializeFile, so that wasmtime maps its memory image
// copy-on-write from the file: instantiating it is restoring the snapshot.
// Before its first task the module runs pysnap's self-test; until it passes,
// and forever once baking, compiling or the self-test failed, RunSnapshot
// returns an error and the caller starts the task cold.

// bakedKeep is how many baked snapshot modules a cache directory keeps.
const bakedKeep = pysnap.DefaultKeep

// bakedSnapshot is a snapshot baked, compiled and self-tested, or why not.
type bakedSnapshot struct {
	ready    chan struct{} // closed when mod or err is set
	mod      *wasmtime.Module
	fromDisk bool // deserialized from the cache directory
	err      error
	unpooled atomic.Bool // does not fit a pool slot: runs in the overflow
}

// snapshotEngine is a wazero runtime kept for snapshot boots (wasmtime
// cannot stop a guest inside a host call and keep its memory).
func (e *wasmtimeEngine) snapshotEngine(ctx context.Context, pages uint32) (*pysnap.Engine, error) {
	e.bootMu.Lock()
	defer e.bootMu.Unlock()
	if e.bootClosed {
		return nil, errors.New("runtime host is closed")
	}
	if e.boot == nil {
		boot, err := newWazeroEngine(e.cfg)
		if err != nil {
			return nil, fmt.Errorf("the wazero runtime for Python snapshot boots: %w", err)
		}
		e.boot = boot
	}
	return e.boot.snapshotEngine(ctx, pages)
}

func (e *wasmtimeEngine) closeBoot(ctx context.Context) error {
	e.bootMu.Lock()
	defer e.bootMu.Unlock()
	e.bootClosed = true
	if e.boot == nil {
		return nil
	}
	return e.boot.close(ctx)
}

// prepareSnapshot bakes, compiles and self-tests snap for p's configuration
// (once: bakedModule keeps the result).
func (e *wasmtimeEngine) prepareSnapshot(ctx context.Context, snap *pysnap.Snapshot, p Policy) error {
	c, err := e.config(p)
	if err != nil {
		return err
	}
	_, err = e.bakedModule(ctx, c, snap)
	if errors.Is(err, errPoolRefused) { // as startSnapshot will: the overflow configuration
		if c, err = e.overflowOf(c); err != nil {
			return err
		}
		_, err = e.bakedModule(ctx, c, snap)
	}
	return err
}

// startSnapshot runs the task of spec in a fresh instance of snap's baked
// module.
func (e *wasmtimeEngine) startSnapshot(ctx, runCtx context.Context, snap *pysnap.Snapshot, t Task, spec pysnap.TaskSpec) (*snapshotRun, error) {
	req, err := snap.NewRequest(spec)
	if err != nil {
		return nil, err
	}
	pages := t.Policy.memoryPages()
	if err := snap.CheckLimit(pages); err != nil {
		return nil, err
	}
	c, err := e.config(t.Policy)
	if err != nil {
		return nil, err
	}
	start := func(c *wasmtimeConfig) (*snapshotRun, error) {
		b, err := e.bakedModule(ctx, c, snap)
		if err != nil {
			return nil, err
		}
		return e.runBaked(runCtx, c, b, req, t.Policy, t.Session, spec.Stdout, spec.Stderr, uint64(pages)*pageSize, false)
	}
	r, err := start(c)
	if errors.Is(err, errPoolRefused) { // also a self-test refused: kept in bakedSnapshot.err
		if c, err = e.overflowOf(c); err != nil {
			return nil, err
		}
		r, err = start(c)
	}
	return r, err
}

// bakedModule returns snap baked and compiled (or loaded from the cache
// directory), self-tested: once per snapshot however many tasks ask at the
// same time. A failure is kept, so that later tasks start cold at once;
// only a cancelled first caller lets the next one try again.
func (e *wasmtimeEngine) bakedModule(ctx context.Context, c *wasmtimeConfig, snap *pysnap.Snapshot) (*bakedSnapshot, error) {
	key := snap.BakedKey()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errors.New("runtime host is closed")
	}
	if b, ok := c.baked[key]; ok {
		e.mu.Unlock()
		select {
		case <-b.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return b, b.err
	}
	b := &bakedSnapshot{ready: make(chan struct{})}
	c.baked[key] = b
	e.mu.Unlock()

	if !e.enter() { // close waits for the bake
		b.err = errors.New("runtime host is closed")
	} else {
		b.err = e.buildBaked(ctx, c, snap, key, b)
		e.leave()
	}
	if b.err != nil {
		if b.mod != nil {
			b.mod.Close()
			b.mod = nil
		}
		b.err = fmt.Errorf("the Python snapshot cannot start tasks on wasmtime: %w", b.err)
	}
	close(b.ready)
	if b.err != nil && ctx.Err() != nil {
		e.mu.Lock()
		if c.baked[key] == b {
			delete(c.baked, key)
		}
		e.mu.Unlock()
	}
	return b, b.err
}

// buildBaked sets b.mod: from the cache directory when a module baked from
// this snapshot is there, otherwise baked and compiled now (and stored);
// then self-tested.
func (e *wasmtimeEngine) buildBaked(ctx context.Context, c *wasmtimeConfig, snap *pysnap.Snapshot, key string, b *bakedSnapshot) error {
	path := ""
	if c.cacheDir != "" {
		path = filepath.Join(c.cacheDir, "pysnap-"+key[:32]+".cwasm")
		if mod, err := wasmtime.NewModuleDeserializeFile(c.engine, path); err == nil {
			now := time.Now()
			_ = os.Chtimes(path, now, now) // used, for pruneBaked
			b.mod, b.fromDisk = mod, true
		}
	}
	if b.mod == nil {
		bin, err := e.bake(snap)
		if err != nil {
			return err
		}
		mod, err := wasmtime.NewModule(c.engine, bin)
		if err != nil {
			// The pool checks modules as they compile: a valid module that
			// does not fit a slot runs in the overflow.
			if o, oerr := e.overflowOf(c); oerr == nil && o != c && wasmtime.ModuleValidate(o.engine, bin) == nil {
				b.unpooled.Store(true)
				return fmt.Errorf("%w: compiling the baked module: %v", errPoolRefused, err)
			}
			return fmt.Errorf("compiling the baked module: %w", err)
		}
		e.bakeCompiles.Add(1)
		b.mod = mod
		if path != "" {
			// Loaded back from the file, wasmtime maps the memory image
			// copy-on-write from it. The cache only saves time: a module that
			// cannot be stored or loaded runs from memory.
			if ser, err := mod.Serialize(); err == nil && atomicfile.Write(path, ser, 0o644) == nil {
				if m, err := wasmtime.NewModuleDeserializeFile(c.engine, path); err == nil {
					mod.Close()
					b.mod = m
				}
				pruneBaked(c.cacheDir, bakedKeep)
			}
		}
	}
	_, err := snap.SelfTestWith(ctx, func(ctx context.Context, spec pysnap.TaskSpec) (*pysnap.Result, error) {
		req, err := snap.NewRequest(spec)
		if err != nil {
			return nil, err
		}
		mounts := make([]Mount, len(spec.Mounts))
		for i, m := range spec.Mounts {
			mounts[i] = Mount{HostPath: m.HostPath, GuestPath: m.GuestPath, Writable: m.Writable}
		}
		limit := uint64(max(snap.Meta.Pages, Policy{}.memoryPages())) * pageSize
		sess := abi.NewSession(abi.Task{}, "ork/snapshot-self-test", nil)
		defer sess.Close()
		// In the fuel configuration the self-test gets plenty: it checks the
		// restore, not a budget.
		r, err := e.runBaked(ctx, c, b, req, Policy{Mounts: mounts, CPU: selfTestFuel}, sess, spec.Stdout, spec.Stderr, limit, true)
		if err != nil {
			return nil, err
		}
		return r.out, nil
	})
	return err
}

// pruneBaked removes the least recently used baked modules of dir beyond
// the newest keep. Hosts that loaded one keep it mapped: removing the file
// does not disturb them.
func pruneBaked(dir string, keep int) {
	paths, _ := filepath.Glob(filepath.Join(dir, "pysnap-*.cwasm"))
	if len(paths) <= keep {
		return
	}
	used := map[string]time.Time{}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			used[p] = fi.ModTime()
		}
	}
	sort.Slice(paths, func(i, j int) bool { return used[paths[i]].After(used[paths[j]]) })
	for _, p := range paths[keep:] {
		_ = os.Remove(p)
	}
}

// selfTestFuel is the fuel of a baked snapshot's self-test in the fuel
// configuration.
const selfTestFuel = 1 << 40

// runBaked runs one task in a fresh instance of b: the policy's mounts, a
// memory limit of limit bytes, stdout and stderr streamed, the session
// through the clock gate, stopped by the epoch callback when runCtx is
// done. The environment, argv and code are in req. errPoolRefused when
// c's pool has no slot for it, before the guest ran; with waitSlot (the
// self-test) it waits for a slot rather than for all of them taken.
func (e *wasmtimeEngine) runBaked(runCtx context.Context, c *wasmtimeConfig, b *bakedSnapshot, req *pysnap.Request, p Policy, session *abi.Session, stdout, stderr io.Writer, limit uint64, waitSlot bool) (*snapshotRun, error) {
	if b.unpooled.Load() && c.slots != nil {
		return nil, errPoolRefused
	}
	if !e.enter() {
		return nil, errors.New("runtime host is closed")
	}
	defer e.leave()
	if waitSlot {
		if err := c.waitSlot(runCtx); err != nil {
			return nil, err
		}
	} else if !c.take() {
		return nil, errPoolRefused
	}
	defer c.give() // after the store is closed (deferred later, runs first)
	begin := time.Now()
	runCtx, cancel := context.WithCancel(runCtx)
	defer cancel()
	defer context.AfterFunc(e.closing, cancel)()

	var streams wasiStreams
	defer streams.wait() // after the store is closed (deferred later, runs first)
	// argv and the environment are the request's: the runner sets them.
	wasi, err := wasmtimeWASI(Task{Policy: Policy{Mounts: p.Mounts}, Stdout: stdout, Args: []string{"python"}},
		&streams, orDiscard(stderr))
	if err != nil {
		return nil, err
	}
	if req.Stdin != nil {
		// Too large for the mailbox. wasmtime-go takes stdin only as a path:
		// a file, unlinked once opened.
		path, err := writeTemp(req.Stdin)
		if err != nil {
			wasi.Close()
			return nil, fmt.Errorf("writing the task request: %w", err)
		}
		err = wasi.SetStdinFile(path)
		_ = os.Remove(path)
		if err != nil {
			wasi.Close()
			return nil, fmt.Errorf("opening stdin: %w", err)
		}
	}

	st := &wasmtimeTask{ctx: runCtx, session: session}
	store, fuel, release, err := e.newStore(c, st, wasi, limit, p.CPU)
	if err != nil {
		return nil, err
	}
	defer release()
	inst, err := c.linker.Instantiate(store, b.mod)
	if err != nil {
		if c.poolRefused(err) {
			b.unpooled.Store(true)
			return nil, errPoolRefused
		}
		return nil, fmt.Errorf("instantiating the baked Python snapshot: %w", err)
	}
	var mem *wasmtime.Memory
	if ext := inst.GetExport(store, "memory"); ext != nil {
		mem = ext.Memory()
	}
	entry := inst.GetFunc(store, pysnap.EntryExport)
	if mem == nil || entry == nil {
		return nil, fmt.Errorf("the baked Python snapshot exports no memory or no %s", pysnap.EntryExport)
	}
	if err := req.Write(mem.UnsafeData(store)); err != nil {
		return nil, err
	}
	out := &pysnap.Result{Restore: time.Since(begin)}
	_, callErr := entry.Call(store)
	out.Total = time.Since(begin)
	used := fuelUsed(c, store, fuel)
	if !st.interrupted {
		out.MemoryBytes = uint64(mem.DataSize(store))
	}
	store.Close()
	streams.wait() // the whole stderr, for classify
	r := &snapshotRun{out: out, fuel: used}
	var g guestError
	if callErr != nil {
		g = st.guestError(callErr)
	}
	out.SetOutcome(callErr != nil && g.kind == stopExit, g.exitCode, callErr)
	switch {
	case out.Err == pysnap.ErrRunnerReturned:
		r.stop = &guestError{kind: stopTrap, message: out.Err.Error()}
	case out.Err != nil || out.ExitCode != 0:
		r.stop = &g
	}
	return r, nil
}

func writeTemp(b []byte) (string, error) {
	f, err := os.CreateTemp("", "ork-snapshot-request-")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
