// Package testguests builds the Rust guests under testdata/guests for tests,
// once per test process, with the same cargo builder ork uses.
package testguests

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/orkrun/ork/internal/cargo"
)

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CacheDir is a module cache shared by every test process.
func CacheDir() string { return filepath.Join(RepoRoot(), ".cache", "ork-test") }

var (
	once sync.Once
	mu   sync.Mutex
	b    *cargo.Builder
	got  = map[string]string{}
)

// UseDebianToolchain points cargo at Debian's offline wasm32-wasi toolchain
// when it is installed and the environment names no other cargo, as the
// Makefile does.
func UseDebianToolchain() {
	if os.Getenv("CARGO") != "" {
		return
	}
	if _, err := os.Stat("/usr/lib/rustlib/wasm32-wasi"); err != nil {
		return
	}
	os.Setenv("CARGO", "/usr/bin/cargo")
	os.Setenv("RUSTC", "/usr/bin/rustc")
	os.Setenv("CARGO_HOME", filepath.Join(RepoRoot(), "toolchain", "debian-cargo"))
}

// Module returns the path of the built module of testdata/guests/<name>,
// building it if needed. It fails the test when the build fails.
func Module(t testing.TB, name string) string {
	t.Helper()
	once.Do(func() {
		UseDebianToolchain()
		b = cargo.New(CacheDir(), os.Stderr)
	})
	mu.Lock()
	defer mu.Unlock()
	if p, ok := got[name]; ok {
		return p
	}
	dir := filepath.Join(RepoRoot(), "testdata", "guests", name)
	m, err := b.Build(context.Background(), dir, "testdata/guests/"+name)
	if err != nil {
		t.Fatalf("building test guest %s: %v", name, err)
	}
	got[name] = m.Path
	return m.Path
}

// Bytes returns the module's bytes.
func Bytes(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Module(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
