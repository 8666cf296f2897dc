//go:build cgo

package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/pyruntime"
	"github.com/orkrun/ork/internal/pysnap"
	"github.com/orkrun/ork/internal/testguests"
)

// TestWasmtimeDiskCache: a compiled module is serialized under the cache
// directory, in a directory named for the wasmtime version and settings;
// another host loads it from there, and replaces an artifact it cannot load.
func TestWasmtimeDiskCache(t *testing.T) {
	bin := testguests.Bytes(t, "probe")
	dir := t.TempDir()
	ctx := context.Background()
	version := "1.0.0"
	load := func() (*Host, *Module, *wasmtimeModule) {
		t.Helper()
		h, err := New(WithEngine(engineWasmtime), WithCacheDir(dir), WithVersion(version))
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Close(ctx) })
		m, err := h.LoadModule(ctx, "probe.wasm", bin)
		require.NoError(t, err)
		wm, err := h.eng.(*wasmtimeEngine).module(h.eng.(*wasmtimeEngine).plain, m)
		require.NoError(t, err)
		return h, m, wm
	}
	echo := func(h *Host, m *Module) {
		t.Helper()
		sess := abi.NewSession(abi.Task{Params: map[string]any{"action": "echo"}}, "ork/test", nil)
		res, err := h.Run(ctx, Task{Module: m, Session: sess})
		require.NoError(t, err)
		require.Nil(t, res.Failure)
		_, ok := sess.Output()
		assert.True(t, ok)
	}

	h, m, wm := load()
	assert.False(t, wm.fromDisk)
	matches, err := filepath.Glob(filepath.Join(dir, "wasmtime-"+wasmtimeVersion+"-ork-1.0.0-*", m.Digest+".cwasm"))
	require.NoError(t, err)
	require.Len(t, matches, 1)
	echo(h, m)

	h, m, wm = load()
	assert.True(t, wm.fromDisk, "the second host compiled the module again")
	echo(h, m)

	// Replaced, not rewritten in place: the hosts above have it mapped, and
	// truncating a mapped file makes their next access fault (SIGBUS).
	require.NoError(t, os.Remove(matches[0]))
	require.NoError(t, os.WriteFile(matches[0], []byte("not a compiled module"), 0o644))
	h, m, wm = load()
	assert.False(t, wm.fromDisk)
	echo(h, m)
	_, _, wm = load()
	assert.True(t, wm.fromDisk, "the broken artifact was not replaced")

	// Another ork version compiles again, into its own directory.
	version = "1.0.1"
	_, m, wm = load()
	assert.False(t, wm.fromDisk, "another ork version loaded the old compiled code")
	matches, err = filepath.Glob(filepath.Join(dir, "wasmtime-"+wasmtimeVersion+"-ork-1.0.1-*", m.Digest+".cwasm"))
	require.NoError(t, err)
	assert.Len(t, matches, 1)
}

// buildSnapshot boots a snapshot for h (on its wazero boot engine), with an
// image cache in dir, and returns it with the interpreter loaded on h.
func buildSnapshot(t *testing.T, h *Host, dir string) (*pysnap.Snapshot, *Module) {
	t.Helper()
	bin, err := pyruntime.Wasm()
	if err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	py, err := h.LoadInterpreter(ctx, "python.wasm", bin)
	require.NoError(t, err)
	p, err := pysnap.Prepare(bin)
	require.NoError(t, err)
	eng, err := h.SnapshotEngine(ctx, Policy{})
	require.NoError(t, err)
	snap, err := pysnap.Build(ctx, eng, p, pysnap.BootSpec{Mounts: []pysnap.Mount{{GuestPath: "/"}}, CacheDir: dir})
	require.NoError(t, err)
	t.Cleanup(snap.Close)
	return snap, py
}

func runFromSnapshot(t *testing.T, h *Host, snap *pysnap.Snapshot, py *Module, code string) (*Result, string, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := h.RunSnapshot(context.Background(), snap, Task{Module: py, Session: abi.NewSession(abi.Task{}, "ork/test", nil),
		Stdout: &out, Stderr: &out, Policy: Policy{Mounts: []Mount{{HostPath: t.TempDir(), GuestPath: "/"}}}}, code, nil)
	return res, out.String(), err
}

// TestWasmtimeSnapshotCache: a snapshot is baked and compiled once; the
// module is serialized in the cache directory, and a second host with the
// same cache starts tasks from it without compiling anything.
func TestWasmtimeSnapshotCache(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var first string
	for i, wantCompiles := range []int64{1, 0} {
		h, err := New(WithEngine(engineWasmtime), WithCacheDir(dir))
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Close(ctx) })
		snap, py := buildSnapshot(t, h, filepath.Join(dir, "pysnap"))
		assert.Equal(t, i == 1, snap.FromCache, "the second host boots again")
		for j := range 2 {
			start := time.Now()
			res, out, err := runFromSnapshot(t, h, snap, py, "print('hello')")
			if j == 0 {
				t.Logf("host %d: first task in %v (baking, compiling or loading, self-test)", i, time.Since(start))
			}
			require.NoError(t, err)
			require.Nil(t, res.Failure, out)
			assert.Equal(t, "hello\n", out)
		}
		e := h.eng.(*wasmtimeEngine)
		assert.Equal(t, wantCompiles, e.bakeCompiles.Load(), "host %d", i)
		b, err := e.bakedModule(ctx, e.plain, snap)
		require.NoError(t, err)
		assert.Equal(t, i == 1, b.fromDisk, "host %d", i)
		matches, err := filepath.Glob(filepath.Join(dir, "wasmtime-"+wasmtimeVersion+"-*", "pysnap-"+snap.BakedKey()[:32]+".cwasm"))
		require.NoError(t, err)
		require.Len(t, matches, 1)
		if fi, err := os.Stat(matches[0]); err == nil {
			t.Logf("serialized baked module: %d bytes", fi.Size())
		}
		if i == 0 {
			first = matches[0]
		} else {
			assert.Equal(t, first, matches[0])
		}
	}
}

// TestWasmtimeSnapshotFallback: when the snapshot cannot be baked, the
// baked module does not compile, or it fails the self-test, RunSnapshot
// returns an error (the runner then starts the task cold), without trying
// again for every task; cold starts still work.
func TestWasmtimeSnapshotFallback(t *testing.T) {
	ctx := context.Background()
	h, err := New(WithEngine(engineWasmtime))
	require.NoError(t, err)
	defer h.Close(ctx)
	e := h.eng.(*wasmtimeEngine)
	snap, py := buildSnapshot(t, h, "")
	returns, err := wasmtime.Wat2Wasm(fmt.Sprintf(`(module (memory (export "memory") %d) (func (export "%s")))`, snap.Meta.Pages, pysnap.EntryExport))
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		bake func(*pysnap.Snapshot) ([]byte, error)
		want string
	}{
		{"bake fails", func(*pysnap.Snapshot) ([]byte, error) { return nil, errors.New("no bake today") }, "no bake today"},
		{"compile fails", func(*pysnap.Snapshot) ([]byte, error) { return []byte("\x00asm\x01\x00\x00\x00\x05"), nil }, "compiling the baked module"},
		{"no entry", func(s *pysnap.Snapshot) ([]byte, error) {
			return wasmtime.Wat2Wasm(fmt.Sprintf(`(module (memory (export "memory") %d))`, s.Meta.Pages))
		}, "exports no memory or no " + pysnap.EntryExport},
		{"self-test fails", func(*pysnap.Snapshot) ([]byte, error) { return returns, nil }, "self-test failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bakes := 0
			e.mu.Lock()
			clear(e.plain.baked)
			e.bake = func(s *pysnap.Snapshot) ([]byte, error) { bakes++; return tc.bake(s) }
			e.mu.Unlock()
			for range 2 {
				_, _, err := runFromSnapshot(t, h, snap, py, "pass")
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.want)
				assert.Contains(t, err.Error(), "cannot start tasks on wasmtime")
			}
			assert.Equal(t, 1, bakes, "baked again for the second task")
			res, err := h.Run(ctx, Task{Module: py, Session: abi.NewSession(abi.Task{}, "ork/test", nil), Args: []string{"python", "-c", "pass"}})
			require.NoError(t, err)
			assert.Nil(t, res.Failure)
		})
	}
	// With the real bake, the same host and snapshot work.
	e.mu.Lock()
	clear(e.plain.baked)
	e.bake = (*pysnap.Snapshot).Bake
	e.mu.Unlock()
	res, out, err := runFromSnapshot(t, h, snap, py, "print(1 + 1)")
	require.NoError(t, err)
	require.Nil(t, res.Failure, out)
	assert.Equal(t, "2\n", out)
}

// TestWasmtimeOutOfFuelTrap: the trap wasmtime raises when a store's fuel
// runs out has the code trapOutOfFuel (not wasmtime-go's OutOfFuel), and the
// engine reads it as the CPU limit; a guest's own trap in a metered store
// stays a trap.
func TestWasmtimeOutOfFuelTrap(t *testing.T) {
	c, err := newWasmtimeConfig(wasmtimeCache{}, true)
	require.NoError(t, err)
	defer c.close()
	bin, err := wasmtime.Wat2Wasm(`(module
		(func (export "spin") (loop (br 0)))
		(func (export "trap") unreachable))`)
	require.NoError(t, err)
	mod, err := wasmtime.NewModule(c.engine, bin)
	require.NoError(t, err)
	defer mod.Close()
	call := func(name string) (uint64, error) {
		store := wasmtime.NewStore(c.engine)
		defer store.Close()
		store.SetEpochDeadline(1 << 62)
		require.NoError(t, store.SetFuel(10_000))
		inst, err := wasmtime.NewInstance(store, mod, nil)
		require.NoError(t, err)
		_, err = inst.GetFunc(store, name).Call(store)
		left, ferr := store.GetFuel()
		require.NoError(t, ferr)
		return left, err
	}

	left, err := call("spin")
	var trap *wasmtime.Trap
	require.ErrorAs(t, err, &trap)
	require.NotNil(t, trap.Code())
	assert.Equal(t, trapOutOfFuel, *trap.Code(), "message: %s", trap.Message())
	assert.NotEqual(t, wasmtime.OutOfFuel, *trap.Code(), "wasmtime-go's constant is right now: use it")
	assert.Contains(t, trap.Message(), "fuel")
	assert.Zero(t, left)
	g := (&wasmtimeTask{}).guestError(err)
	assert.Equal(t, stopFuel, g.kind)
	assert.Equal(t, "out of fuel", g.message)

	left, err = call("trap")
	assert.NotZero(t, left)
	g = (&wasmtimeTask{}).guestError(err)
	assert.Equal(t, stopTrap, g.kind)
	assert.Equal(t, "unreachable", g.message)
}

// TestWasmtimeFuelIsOnlyForCPULimits: tasks without a CPU limit run on the
// configuration without fuel, and the fuel-metered one is created for the
// first task with a limit, with its own directory of serialized modules
// (fuel changes the compiled code), which another host loads from.
func TestWasmtimeFuelIsOnlyForCPULimits(t *testing.T) {
	bin := testguests.Bytes(t, "probe")
	dir := t.TempDir()
	ctx := context.Background()
	assert.Contains(t, wasmtimeSettings(false, false), " fuel=off ")
	assert.Contains(t, wasmtimeSettings(true, false), " fuel=on ")
	host := func() (*Host, *wasmtimeEngine, *Module) {
		t.Helper()
		h, err := New(WithEngine(engineWasmtime), WithCacheDir(dir))
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Close(ctx) })
		m, err := h.LoadModule(ctx, "probe.wasm", bin)
		require.NoError(t, err)
		return h, h.eng.(*wasmtimeEngine), m
	}
	echo := func(h *Host, m *Module, cpu uint64) *Result {
		t.Helper()
		sess := abi.NewSession(abi.Task{Params: map[string]any{"action": "echo"}}, "ork/test", nil)
		res, err := h.Run(ctx, Task{Module: m, Session: sess, Policy: Policy{CPU: cpu}})
		require.NoError(t, err)
		require.Nil(t, res.Failure)
		_, ok := sess.Output()
		assert.True(t, ok)
		return res
	}
	fuelConfig := func(e *wasmtimeEngine) *wasmtimeConfig {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.fuel
	}
	artifacts := func() []string {
		t.Helper()
		matches, err := filepath.Glob(filepath.Join(dir, "wasmtime-*", "*.cwasm"))
		require.NoError(t, err)
		return matches
	}

	h, e, m := host()
	assert.Zero(t, echo(h, m, 0).Fuel)
	assert.Nil(t, fuelConfig(e), "a task without a CPU limit created the fuel-metered engine")
	require.Len(t, artifacts(), 1)

	assert.Positive(t, echo(h, m, 1_000_000_000).Fuel)
	fuel := fuelConfig(e)
	require.NotNil(t, fuel)
	assert.True(t, fuel.fuel)
	assert.NotEqual(t, e.plain.cacheDir, fuel.cacheDir)
	wm, err := e.module(fuel, m)
	require.NoError(t, err)
	assert.False(t, wm.fromDisk)
	got := artifacts()
	require.Len(t, got, 2)
	assert.Equal(t, filepath.Base(got[0]), filepath.Base(got[1]), "the same module, once per configuration")
	assert.Zero(t, echo(h, m, 0).Fuel)

	h, e, m = host()
	assert.Positive(t, echo(h, m, 1_000_000_000).Fuel)
	wm, err = e.module(fuelConfig(e), m)
	require.NoError(t, err)
	assert.True(t, wm.fromDisk, "the second host compiled the module with fuel again")
}

// TestWasmtimeSnapshotFuel: a Python task with a CPU limit starts from the
// snapshot too, baked for the fuel configuration: it reports the fuel it
// used, and a runaway one fails with ReasonCPU.
func TestWasmtimeSnapshotFuel(t *testing.T) {
	ctx := context.Background()
	h, err := New(WithEngine(engineWasmtime))
	require.NoError(t, err)
	defer h.Close(ctx)
	snap, py := buildSnapshot(t, h, "")
	run := func(code string, cpu uint64) (*Result, string) {
		t.Helper()
		var out bytes.Buffer
		res, err := h.RunSnapshot(ctx, snap, Task{Module: py, Session: abi.NewSession(abi.Task{}, "ork/test", nil),
			Stdout: &out, Stderr: &out, Policy: Policy{CPU: cpu, Mounts: []Mount{{HostPath: t.TempDir(), GuestPath: "/"}}}}, code, nil)
		require.NoError(t, err)
		return res, out.String()
	}
	res, out := run("print(sum(range(1000)))", 10_000_000_000)
	require.Nil(t, res.Failure, out)
	assert.Equal(t, "499500\n", out)
	assert.Positive(t, res.Fuel)
	assert.Less(t, res.Fuel, uint64(10_000_000_000))

	res, _ = run("while True: pass", 50_000_000)
	require.NotNil(t, res.Failure)
	assert.Equal(t, ReasonCPU, res.Failure.Reason)
	assert.Equal(t, uint64(50_000_000), res.Fuel)

	e := h.eng.(*wasmtimeEngine)
	e.mu.Lock()
	baked := len(e.fuel.baked)
	e.mu.Unlock()
	assert.Equal(t, 1, baked, "the fuel configuration has its own baked snapshot")

	res2, _ := run("pass", 0)
	assert.Zero(t, res2.Fuel, "an unmetered task reported fuel")
}

// TestWasmtimeSnapshotBakeNotTimed: baking and compiling a snapshot (seconds,
// once) happens before the first task's clock starts, so a task with a short
// timeout does not time out because it was first.
func TestWasmtimeSnapshotBakeNotTimed(t *testing.T) {
	ctx := context.Background()
	h, err := New(WithEngine(engineWasmtime)) // no cache: bake and compile now
	require.NoError(t, err)
	defer h.Close(ctx)
	snap, py := buildSnapshot(t, h, "")
	var out bytes.Buffer
	res, err := h.RunSnapshot(ctx, snap, Task{Module: py, Session: abi.NewSession(abi.Task{}, "ork/test", nil),
		Stdout: &out, Stderr: &out, Policy: Policy{Timeout: time.Second, Mounts: []Mount{{HostPath: t.TempDir(), GuestPath: "/"}}}}, "import time; time.sleep(0.2); print('in time')", nil)
	require.NoError(t, err)
	require.Nil(t, res.Failure, out.String())
	assert.Equal(t, "in time\n", out.String())
	assert.Less(t, res.Duration, time.Second)
}

// A task stopped by its deadline names the guest function wasmtime's
// backtrace puts innermost.
func TestInterruptedIn(t *testing.T) {
	const msg = "error while executing at wasm backtrace:\n    0:  0x1b211 - <unknown>!probe::probe::hf5a1c27bd6165539\n    1:  0x21ef1 - <unknown>!probe::main::h3bdf5a57ca8817ed\n\nCaused by:\n    interrupted: the task's context is done\n"
	for in, want := range map[string]string{
		msg: "probe::probe",
		"error while executing at wasm backtrace:\n    0:  0x10 - m!<wasm function 7>\n":                "$7",
		"error while executing at wasm backtrace:\n    0:  0x10 - _ZN5probe4spin17h0123456789abcdefE\n": "probe::spin",
		"interrupted: the task's context is done":                                                       "",
	} {
		if got := interruptedIn(in); got != want {
			t.Errorf("interruptedIn(%q) = %q, want %q", in, got, want)
		}
	}
}
