//go:build cgo

package runtime

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/testguests"
)

// TestWasmtimeDiskCache: a compiled module is serialized under the cache
// directory, in a directory named for the wasmtime version and settings;
// another host loads it from there, and replaces an artifact it cannot load.
func TestWasmtimeDiskCache(t *testing.T) {
	bin := testguests.Bytes(t, "probe")
	dir := t.TempDir()
	ctx := context.Background()
	load := func() (*Host, *Module, *wasmtimeModule) {
		t.Helper()
		h, err := New(WithEngine(engineWasmtime), WithCacheDir(dir))
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
	matches, err := filepath.Glob(filepath.Join(dir, "wasmtime-"+wasmtimeVersion+"-*", m.Digest+".cwasm"))
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
}

func TestWasmtimeHasNoSnapshotsYet(t *testing.T) {
	h, err := New(WithEngine(engineWasmtime))
	require.NoError(t, err)
	defer h.Close(context.Background())
	_, err = h.SnapshotEngine(context.Background(), Policy{})
	require.EqualError(t, err, "Python snapshots are not available on the wasmtime engine yet (use engine wazero, or start the task cold)")
	_, err = h.RunSnapshot(context.Background(), nil, Task{}, "pass", nil)
	require.Error(t, err)
}

// TestWasmtimeOutOfFuelTrap: the trap wasmtime raises when a store's fuel
// runs out has the code trapOutOfFuel (not wasmtime-go's OutOfFuel), and the
// engine reads it as the CPU limit; a guest's own trap in a metered store
// stays a trap.
func TestWasmtimeOutOfFuelTrap(t *testing.T) {
	c, err := newWasmtimeConfig("", true)
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
	assert.Contains(t, wasmtimeSettings(false), " fuel=off ")
	assert.Contains(t, wasmtimeSettings(true), " fuel=on ")
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
