package wasifs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
)

// fixture: outside/secret.txt beside a mount directory holding a file, a
// subdirectory and links of every kind.
func fixture(t *testing.T) (mount, outside string) {
	t.Helper()
	base := t.TempDir()
	mount, outside = filepath.Join(base, "mount"), filepath.Join(base, "outside")
	for _, d := range []string{mount, outside, filepath.Join(mount, "sub")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(mount, "data.txt"), []byte("data"), 0o644))
	links := map[string]string{
		"alias.txt":    "data.txt",              // inside
		"sub/up.txt":   "../data.txt",           // inside, through ..
		"chain.txt":    "sub/up.txt",            // inside, link to a link
		"escape.txt":   "../outside/secret.txt", // out, relative
		"absolute.txt": filepath.Join(outside, "secret.txt"),
		"outdir":       "../outside",               // a directory out
		"sub/deep.txt": "../../outside/secret.txt", // out from a subdirectory
		"loop1":        "loop2",
		"loop2":        "loop1",
		"dangling.txt": "nothing-here",
	}
	for name, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(mount, name)))
	}
	return mount, outside
}

func read(t *testing.T, fs experimentalsys.FS, path string) (string, experimentalsys.Errno) {
	t.Helper()
	f, errno := fs.OpenFile(path, experimentalsys.O_RDONLY, 0)
	if errno != 0 {
		return "", errno
	}
	defer f.Close()
	buf := make([]byte, 64)
	n, errno := f.Read(buf)
	return string(buf[:n]), errno
}

func TestLinksStayBeneathTheMount(t *testing.T) {
	mount, _ := fixture(t)
	fs := New(sysfs.DirFS(mount), mount)
	for _, path := range []string{"data.txt", "alias.txt", "sub/up.txt", "chain.txt", "sub/../alias.txt"} {
		got, errno := read(t, fs, path)
		assert.Equal(t, experimentalsys.Errno(0), errno, path)
		assert.Equal(t, "data", got, path)
	}
	for _, path := range []string{"escape.txt", "absolute.txt", "outdir/secret.txt", "sub/deep.txt", "../outside/secret.txt", "sub/../../outside/secret.txt"} {
		_, errno := read(t, fs, path)
		assert.Equal(t, experimentalsys.EPERM, errno, path)
		_, errno = fs.Stat(path)
		assert.Equal(t, experimentalsys.EPERM, errno, "stat "+path)
	}
	_, errno := read(t, fs, "loop1")
	assert.Equal(t, experimentalsys.ELOOP, errno)
	_, errno = read(t, fs, "dangling.txt")
	assert.Equal(t, experimentalsys.ENOENT, errno)

	// Not following the last link is fine: lstat and readlink see the link
	// itself, and unlinking it removes the link, not its target.
	st, errno := fs.Lstat("escape.txt")
	require.Equal(t, experimentalsys.Errno(0), errno)
	assert.NotZero(t, st.Mode&os.ModeSymlink)
	target, errno := fs.Readlink("escape.txt")
	require.Equal(t, experimentalsys.Errno(0), errno)
	assert.Equal(t, "../outside/secret.txt", target)
	_, errno = fs.OpenFile("escape.txt", experimentalsys.O_RDONLY|experimentalsys.O_NOFOLLOW, 0)
	assert.NotEqual(t, experimentalsys.Errno(0), errno, "O_NOFOLLOW never opens a link")
}

func TestWritesStayBeneathTheMount(t *testing.T) {
	mount, outside := fixture(t)
	fs := New(sysfs.DirFS(mount), mount)
	// Creating through a link that leads out, or into a linked directory
	// outside, writes nothing there.
	for _, path := range []string{"outdir/new.txt", "escape.txt"} {
		_, errno := fs.OpenFile(path, experimentalsys.O_WRONLY|experimentalsys.O_CREAT|experimentalsys.O_TRUNC, 0o644)
		assert.Equal(t, experimentalsys.EPERM, errno, path)
	}
	assert.Equal(t, experimentalsys.EPERM, fs.Mkdir("outdir/d", 0o755))
	assert.Equal(t, experimentalsys.EPERM, fs.Rename("data.txt", "outdir/stolen.txt"))
	assert.Equal(t, experimentalsys.EPERM, fs.Link("data.txt", "outdir/hard.txt"))
	assert.Equal(t, experimentalsys.EPERM, fs.Chmod("escape.txt", 0o777))
	assert.Equal(t, experimentalsys.EPERM, fs.Utimens("escape.txt", 0, 0))
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing new outside")
	b, err := os.ReadFile(filepath.Join(outside, "secret.txt"))
	require.NoError(t, err)
	assert.Equal(t, "secret", string(b))
	info, err := os.Stat(filepath.Join(outside, "secret.txt"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())

	// Links a guest creates must stay inside too.
	for _, target := range []string{"../../outside/secret.txt", "/etc/passwd", "sub/../../../x", "../../x"} {
		assert.Equal(t, experimentalsys.EPERM, fs.Symlink(target, "sub/made"), target)
	}
	require.Equal(t, experimentalsys.Errno(0), fs.Symlink("../data.txt", "sub/made"))
	got, errno := read(t, fs, "sub/made")
	require.Equal(t, experimentalsys.Errno(0), errno)
	assert.Equal(t, "data", got)

	// Ordinary writes work.
	f, errno := fs.OpenFile("sub/new.txt", experimentalsys.O_WRONLY|experimentalsys.O_CREAT, 0o644)
	require.Equal(t, experimentalsys.Errno(0), errno)
	_, errno = f.Write([]byte("ok"))
	require.Equal(t, experimentalsys.Errno(0), errno)
	require.Equal(t, experimentalsys.Errno(0), f.Close())
	require.Equal(t, experimentalsys.Errno(0), fs.Rename("sub/new.txt", "moved.txt"))
	b, err = os.ReadFile(filepath.Join(mount, "moved.txt"))
	require.NoError(t, err)
	assert.Equal(t, "ok", string(b))
	require.Equal(t, experimentalsys.Errno(0), fs.Unlink("escape.txt"), "removing a link that leads out is fine")
	_, err = os.Stat(filepath.Join(outside, "secret.txt"))
	assert.NoError(t, err, "and leaves its target alone")
}
