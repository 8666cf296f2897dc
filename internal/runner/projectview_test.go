package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/runtime"
)

// Tasks see the project at the same paths, without .ork (the run store, run
// directories, databases) and without what their own scratch and output
// directories would hide; links are followed only inside the project.
func TestProjectMounts(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "proj")
	files := map[string]string{
		"ork.yaml": "executors: {}\n", "data.csv": "a,b\n", "tasks/t.py": "x = 1\n",
		"vendor/pkg/__init__.py": "", ".ork/ork.db": "runs", ".ork/warehouse.db": "rows",
		"output/old.txt": "", "tmp/x": "", ".hidden": "dotfile",
	}
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(base, "outside.txt"), []byte("host"), 0o644))
	require.NoError(t, os.Symlink("data.csv", filepath.Join(root, "alias.csv")))
	require.NoError(t, os.Symlink("tasks", filepath.Join(root, "steps")))
	require.NoError(t, os.Symlink("../outside.txt", filepath.Join(root, "escape.txt")))
	require.NoError(t, os.Symlink(".ork", filepath.Join(root, "state")))

	mounts, err := projectMounts(root)
	require.NoError(t, err)
	view := filepath.Join(root, ".ork", "view")
	require.Equal(t, runtime.Mount{HostPath: view, GuestPath: "/"}, mounts[0])
	got := map[string]string{}
	for _, m := range mounts {
		got[m.GuestPath] = m.HostPath
		assert.False(t, m.Writable)
	}
	real := func(p string) string { r, err := filepath.EvalSymlinks(p); require.NoError(t, err); return r }
	assert.Equal(t, map[string]string{
		"/": view, "/steps": real(filepath.Join(root, "tasks")), "/tasks": real(filepath.Join(root, "tasks")),
		"/vendor": real(filepath.Join(root, "vendor")),
	}, got, ".ork (even through a link), tmp and output are not mounted")
	entries, err := os.ReadDir(view)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{".hidden", "alias.csv", "data.csv", "ork.yaml", "steps", "tasks", "vendor"}, names)
	b, err := os.ReadFile(filepath.Join(view, "alias.csv"))
	require.NoError(t, err)
	assert.Equal(t, "a,b\n", string(b))

	// The view follows the project: a new file, a changed one (replaced,
	// as editors do), a removed one.
	require.NoError(t, os.Remove(filepath.Join(root, "data.csv")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "data.csv"), []byte("c,d\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "new.txt"), []byte("new"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(root, ".hidden")))
	_, err = projectMounts(root)
	require.NoError(t, err)
	b, err = os.ReadFile(filepath.Join(view, "data.csv"))
	require.NoError(t, err)
	assert.Equal(t, "c,d\n", string(b))
	b, err = os.ReadFile(filepath.Join(view, "new.txt"))
	require.NoError(t, err)
	assert.Equal(t, "new", string(b))
	assert.NoFileExists(t, filepath.Join(view, ".hidden"))
}

// Links a task leaves in its output directory that point outside it are
// removed; others stay.
func TestRemoveEscapingLinks(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(base, "output")
	require.NoError(t, os.MkdirAll(filepath.Join(out, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "a.txt"), []byte("a"), 0o644))
	require.NoError(t, os.Symlink("a.txt", filepath.Join(out, "in.txt")))
	require.NoError(t, os.Symlink("../a.txt", filepath.Join(out, "sub", "up.txt")))
	require.NoError(t, os.Symlink("../../etc/passwd", filepath.Join(out, "sub", "out.txt")))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(out, "abs.txt")))
	require.NoError(t, os.Symlink("..", filepath.Join(out, "parent")))
	assert.ElementsMatch(t, []string{"abs.txt", "parent", "sub/out.txt"}, removeEscapingLinks(out))
	for _, kept := range []string{"a.txt", "in.txt", "sub/up.txt"} {
		_, err := os.Lstat(filepath.Join(out, kept))
		assert.NoError(t, err, kept)
	}
}
