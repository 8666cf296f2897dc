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

func TestNotACrate(t *testing.T) {
	_, err := New(t.TempDir(), nil).Build(context.Background(), t.TempDir(), "tasks/z")
	assert.EqualError(t, err, "building crate tasks/z: no Cargo.toml in tasks/z")
}
