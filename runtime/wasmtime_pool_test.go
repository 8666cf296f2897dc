//go:build cgo

package runtime

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/testguests"
)

func pooledHost(t *testing.T, dir string) (*Host, *wasmtimeEngine) {
	t.Helper()
	if !poolingAvailable {
		t.Skip("the wasmtime engine allocates on demand here (no PAGEMAP_SCAN)")
	}
	h, err := New(WithEngine(engineWasmtime), WithCacheDir(dir))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	e := h.eng.(*wasmtimeEngine)
	require.NotNil(t, e.plain.slots, "the engine is not pooled")
	return h, e
}

// TestWasmtimePoolOverflow: with every slot of the pool taken, tasks run
// in the on-demand overflow configuration, plain modules and Python
// snapshots alike, and the slots are all given back.
func TestWasmtimePoolOverflow(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	h, e := pooledHost(t, dir)
	m, err := h.LoadModule(ctx, "probe.wasm", testguests.Bytes(t, "probe"))
	require.NoError(t, err)
	echo := func() {
		t.Helper()
		sess := abi.NewSession(abi.Task{Params: map[string]any{"action": "echo"}}, "ork/test", nil)
		res, err := h.Run(ctx, Task{Module: m, Session: sess})
		require.NoError(t, err)
		require.Nil(t, res.Failure)
		_, ok := sess.Output()
		assert.True(t, ok)
	}
	snap, py := buildSnapshot(t, h, filepath.Join(dir, "pysnap"))
	python := func() {
		t.Helper()
		res, out, err := runFromSnapshot(t, h, snap, py, "print('hello')")
		require.NoError(t, err)
		require.Nil(t, res.Failure, out)
		assert.Equal(t, "hello\n", out)
	}

	echo()
	python()
	assert.Nil(t, e.plain.overflow, "a task overflowed with slots free")
	assert.Empty(t, e.plain.slots, "a slot was not given back")

	for range cap(e.plain.slots) {
		e.plain.slots <- struct{}{}
	}
	echo()
	python()
	require.NotNil(t, e.plain.overflow)
	assert.Contains(t, e.plain.overflow.modules, m.Digest)
	assert.Len(t, e.plain.overflow.baked, 1)
	for range cap(e.plain.slots) {
		<-e.plain.slots
	}
	echo()
	python()
	assert.Empty(t, e.plain.slots, "a slot was not given back")
}

// TestWasmtimePoolUnfit: a module that does not fit a pool slot (two
// tables) runs in the overflow, from the first task on.
func TestWasmtimePoolUnfit(t *testing.T) {
	ctx := context.Background()
	h, e := pooledHost(t, t.TempDir())
	bin, err := wasmtime.Wat2Wasm(`(module
		(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
		(import "ork:host/v1" "call" (func (param i32 i32 i32 i32) (result i32)))
		(memory (export "memory") 1)
		(table 1 funcref)
		(table 1 funcref)
		(func (export "_start") i32.const 7 call $exit))`)
	require.NoError(t, err)
	m, err := h.LoadModule(ctx, "tables.wasm", bin)
	require.NoError(t, err)
	for range 2 {
		res, err := h.Run(ctx, Task{Module: m, Session: abi.NewSession(abi.Task{}, "ork/test", nil)})
		require.NoError(t, err)
		require.NotNil(t, res.Failure)
		assert.Contains(t, res.Failure.Error(), "7")
	}
	assert.True(t, e.plain.modules[m.Digest].unpooled.Load())
	require.NotNil(t, e.plain.overflow)
	assert.Empty(t, e.plain.slots, "a slot was not given back")
}
