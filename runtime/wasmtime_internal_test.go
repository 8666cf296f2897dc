//go:build cgo

package runtime

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
		wm, err := h.eng.(*wasmtimeEngine).module(m)
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
