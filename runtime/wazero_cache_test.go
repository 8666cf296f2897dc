package runtime_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/testguests"
	"github.com/orkrun/ork/runtime"
)

// TestWazeroDiskCacheIsReused: a second host on the same cache directory (as
// a second `ork run` would be) finds the module compiled by the first and
// writes nothing; another ork version compiles it again, in its own directory.
func TestWazeroDiskCacheIsReused(t *testing.T) {
	bin := testguests.Bytes(t, "probe")
	dir := t.TempDir()
	ctx := context.Background()
	// files lists the cache's regular files with their modification times.
	files := func() map[string]time.Time {
		t.Helper()
		m := map[string]time.Time{}
		require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			m[p] = fi.ModTime()
			return nil
		}))
		return m
	}
	loadAndRun := func(version string) {
		t.Helper()
		h, err := runtime.New(runtime.WithEngine("wazero"), runtime.WithCacheDir(dir), runtime.WithVersion(version))
		require.NoError(t, err)
		defer func() { require.NoError(t, h.Close(ctx)) }()
		m, err := h.LoadModule(ctx, "probe.wasm", bin)
		require.NoError(t, err)
		sess := abi.NewSession(abi.Task{Params: map[string]any{"action": "echo"}}, "ork/test", nil)
		res, err := h.Run(ctx, runtime.Task{Module: m, Session: sess})
		require.NoError(t, err)
		require.Nil(t, res.Failure)
		_, ok := sess.Output()
		assert.True(t, ok)
	}

	loadAndRun("1.0.0")
	first := files()
	require.NotEmpty(t, first, "the first host wrote no compiled module")
	for p := range first {
		rel, err := filepath.Rel(dir, p)
		require.NoError(t, err)
		assert.Regexp(t, `^wazero-1\.0\.0/`, filepath.ToSlash(rel))
	}

	loadAndRun("1.0.0")
	assert.Equal(t, first, files(), "the second host compiled the module again")

	loadAndRun("1.0.1")
	after := files()
	assert.Greater(t, len(after), len(first), "another ork version reused the old compiled code")
	for p, mt := range first {
		assert.Equal(t, mt, after[p], "another ork version rewrote %s", p)
	}
}
