package cargo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTargetFor(t *testing.T) {
	for v, want := range map[string]string{
		"1.63.0": "wasm32-wasi", "1.77.2": "wasm32-wasi", "1.78.0": "wasm32-wasip1",
		"1.95.0": "wasm32-wasip1", "2.0.0": "wasm32-wasip1", "": "wasm32-wasip1",
	} {
		assert.Equal(t, want, TargetFor(v), v)
	}
}

func crate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Cargo.toml"), []byte("[package]\nname = \"x\"\nversion = \"0.1.0\"\n"), 0o644))
	return dir
}

func TestMissingCargoSaysWhatToInstall(t *testing.T) {
	t.Setenv("CARGO", "/nonexistent/cargo")
	_, err := New(t.TempDir(), nil).Build(context.Background(), crate(t), "executors/x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `building crate executors/x: cargo ("/nonexistent/cargo") was not found: install Rust with rustup and run `+"`rustup target add wasm32-wasip1`"+`, or on Debian 12: apt-get install rustc cargo libstd-rust-dev-wasm32 lld-14`)
}

func TestMissingTargetSaysWhatToInstall(t *testing.T) {
	bin := t.TempDir()
	sysroot := t.TempDir()
	rustc := filepath.Join(bin, "rustc")
	script := "#!/bin/sh\nif [ \"$1\" = -vV ]; then echo 'rustc 1.95.0'; echo 'release: 1.95.0'; else echo " + sysroot + "; fi\n"
	require.NoError(t, os.WriteFile(rustc, []byte(script), 0o755))
	t.Setenv("CARGO", "/bin/true")
	t.Setenv("RUSTC", rustc)
	_, err := New(t.TempDir(), nil).Build(context.Background(), crate(t), "tasks/y")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "building crate tasks/y: the Rust target wasm32-wasip1 is not installed for "+rustc+" (rustc 1.95.0): run `rustup target add wasm32-wasip1`, or on Debian 12")
}

// The Debian hint points at a README section that has the config it asks for.
func TestDebianHintMatchesTheREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	assert.Contains(t, debianHint, `(see "Debian's Rust toolchain in your own projects" in ork's README)`)
	assert.Contains(t, string(readme), "\n### Debian's Rust toolchain in your own projects\n")
	assert.Contains(t, debianHint, `[target.wasm32-wasi] linker = "wasm-ld-14"`)
	assert.Contains(t, string(readme), "```toml\n[target.wasm32-wasi]\nlinker = \"wasm-ld-14\"\n```")
	assert.Contains(t, debianHint, "apt-get install rustc cargo libstd-rust-dev-wasm32 lld-14")
}

func TestNotACrate(t *testing.T) {
	_, err := New(t.TempDir(), nil).Build(context.Background(), t.TempDir(), "tasks/z")
	assert.EqualError(t, err, "building crate tasks/z: no Cargo.toml in tasks/z")
}

// useCargo points the builder at Debian's offline wasm32-wasi toolchain when
// it is installed and no other cargo is named, as the Makefile does.
func useCargo(t *testing.T) {
	t.Helper()
	if os.Getenv("CARGO") != "" {
		return
	}
	if _, err := os.Stat("/usr/lib/rustlib/wasm32-wasi"); err != nil {
		return
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	t.Setenv("CARGO", "/usr/bin/cargo")
	t.Setenv("RUSTC", "/usr/bin/rustc")
	t.Setenv("CARGO_HOME", filepath.Join(root, "toolchain", "debian-cargo"))
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// workspace writes a virtual workspace: app depends on the path crate lib,
// other is an unrelated member, and the release profile is in the root
// manifest, as in a scaffolded project.
func workspace(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	write(t, filepath.Join(ws, "Cargo.toml"), "[workspace]\nmembers = [\"app\", \"other\"]\nresolver = \"2\"\n\n[profile.release]\nopt-level = \"s\"\n")
	write(t, filepath.Join(ws, "app", "Cargo.toml"), "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nlib = { path = \"../lib\" }\n")
	write(t, filepath.Join(ws, "app", "src", "main.rs"), "fn main() { println!(\"{}\", lib::N); }\n")
	write(t, filepath.Join(ws, "lib", "Cargo.toml"), "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
	write(t, filepath.Join(ws, "lib", "src", "lib.rs"), "pub const N: u32 = 1;\n")
	write(t, filepath.Join(ws, "other", "Cargo.toml"), "[package]\nname = \"other\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
	write(t, filepath.Join(ws, "other", "src", "main.rs"), "fn main() {}\n")
	write(t, filepath.Join(ws, "notes.txt"), "unrelated\n")
	return ws
}

// TestSourceKey checks, change by change, which edits make the crate's cache
// key (and so a rebuild) change: everything the build reads, and nothing
// else.
func TestSourceKey(t *testing.T) {
	useCargo(t)
	ws := workspace(t)
	b := New(t.TempDir(), nil)
	app := filepath.Join(ws, "app")
	tc, err := b.detect(context.Background(), "app")
	require.NoError(t, err)
	key := func() string {
		t.Helper()
		k, bin, err := b.sourceKey(context.Background(), app, "app", tc)
		require.NoError(t, err)
		assert.Equal(t, "app", bin)
		return k
	}
	last := key()
	require.Equal(t, last, key(), "the key is stable")
	for _, c := range []struct {
		what    string
		change  func()
		rebuild bool
	}{
		{"the crate's source", func() {
			write(t, filepath.Join(app, "src", "main.rs"), "fn main() { println!(\"{}\", lib::N + 1); }\n")
		}, true},
		{"a path dependency's source", func() { write(t, filepath.Join(ws, "lib", "src", "lib.rs"), "pub const N: u32 = 2;\n") }, true},
		{"the root manifest's profile", func() {
			write(t, filepath.Join(ws, "Cargo.toml"), "[workspace]\nmembers = [\"app\", \"other\"]\nresolver = \"2\"\n\n[profile.release]\nopt-level = 3\n")
		}, true},
		{"the workspace's .cargo/config.toml", func() {
			write(t, filepath.Join(ws, ".cargo", "config.toml"), "[build]\nrustflags = [\"-Cdebug-assertions\"]\n")
		}, true},
		{"the crate's .cargo/config (legacy name)", func() { write(t, filepath.Join(app, ".cargo", "config"), "[build]\nincremental = false\n") }, true},
		{"$CARGO_HOME/config.toml", func() {
			home := t.TempDir()
			if old := os.Getenv("CARGO_HOME"); old != "" {
				cfg, err := os.ReadFile(filepath.Join(old, "config.toml"))
				require.NoError(t, err)
				write(t, filepath.Join(home, "config.toml"), string(cfg)+"\n[profile.release]\ndebug = 1\n")
			} else {
				write(t, filepath.Join(home, "config.toml"), "[profile.release]\ndebug = 1\n")
			}
			t.Setenv("CARGO_HOME", home)
		}, true},
		{"RUSTFLAGS", func() { t.Setenv("RUSTFLAGS", "-Copt-level=1") }, true},
		{"CARGO_PROFILE_RELEASE_LTO", func() { t.Setenv("CARGO_PROFILE_RELEASE_LTO", "true") }, true},
		{"CARGO_BUILD_RUSTFLAGS", func() { t.Setenv("CARGO_BUILD_RUSTFLAGS", "-Copt-level=2") }, true},
		{"CARGO_ENCODED_RUSTFLAGS", func() { t.Setenv("CARGO_ENCODED_RUSTFLAGS", "-Copt-level=2") }, true},
		{"a sibling workspace member", func() { write(t, filepath.Join(ws, "other", "src", "main.rs"), "fn main() { println!(); }\n") }, false},
		{"an unrelated file in the workspace", func() { write(t, filepath.Join(ws, "notes.txt"), "changed\n") }, false},
		{"build output", func() { write(t, filepath.Join(app, "target", "x"), "x") }, false},
		{"CARGO_TARGET_DIR", func() { t.Setenv("CARGO_TARGET_DIR", filepath.Join(ws, "elsewhere")) }, false},
	} {
		c.change()
		k := key()
		if c.rebuild {
			assert.NotEqual(t, last, k, "changing %s must rebuild", c.what)
		} else {
			assert.Equal(t, last, k, "changing %s must not rebuild", c.what)
		}
		last = k
	}
}

// TestBuildRebuildsOnlyOnChange builds for real: a second build is cached,
// a change to the root manifest's release profile rebuilds, a change to a
// sibling crate does not.
func TestBuildRebuildsOnlyOnChange(t *testing.T) {
	useCargo(t)
	ws := workspace(t)
	b := New(t.TempDir(), nil)
	app := filepath.Join(ws, "app")
	build := func() *Module {
		t.Helper()
		m, err := b.Build(context.Background(), app, "app")
		require.NoError(t, err)
		return m
	}
	first := build()
	assert.False(t, first.Cached)
	assert.True(t, build().Cached, "nothing changed")
	write(t, filepath.Join(ws, "other", "src", "main.rs"), "fn main() { println!(); }\n")
	assert.True(t, build().Cached, "a sibling crate changed")
	write(t, filepath.Join(ws, "Cargo.toml"), "[workspace]\nmembers = [\"app\", \"other\"]\nresolver = \"2\"\n\n[profile.release]\nopt-level = 1\n")
	m := build()
	assert.False(t, m.Cached, "the release profile changed")
	assert.NotEqual(t, first.Path, m.Path)
	write(t, filepath.Join(app, "src", "main.rs"), "fn main() { println!(\"{}\", lib::N * 2); }\n")
	assert.False(t, build().Cached, "the crate's source changed")
}
