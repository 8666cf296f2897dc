// Package pysdk embeds ork's Python SDK (the `ork` package), which every
// Python sandbox mounts read-only.
package pysdk

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
)

// FS holds the ork/ package: its modules, type stubs and py.typed marker
// (listed by pattern so that __init__.py is included and caches are not).
//
//go:embed ork/*.py ork/*.pyi ork/py.typed
var FS embed.FS

// Digest identifies the embedded SDK's content.
func Digest() string {
	h := sha256.New()
	_ = fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(FS, p)
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

var (
	sdkMu   sync.Mutex
	sdkDirs = map[string]string{}
)

// Dir writes the embedded SDK under cacheDir (once per content) and returns
// the directory to put on the sandbox's PYTHONPATH.
func Dir(cacheDir string) (string, error) {
	sdkMu.Lock()
	defer sdkMu.Unlock()
	if d, ok := sdkDirs[cacheDir]; ok {
		return d, nil
	}
	dir := filepath.Join(cacheDir, "python-sdk", Digest())
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return "", err
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".sdk-")
		if err != nil {
			return "", err
		}
		err = fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(FS, p)
			if err != nil {
				return err
			}
			out := filepath.Join(tmp, filepath.FromSlash(path.Clean(p)))
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			return os.WriteFile(out, b, 0o644)
		})
		if err == nil {
			err = os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644)
		}
		if err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("writing the Python SDK to %s: %w", dir, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			os.RemoveAll(tmp)
			if _, statErr := os.Stat(filepath.Join(dir, ".complete")); statErr != nil {
				return "", fmt.Errorf("writing the Python SDK to %s: %w", dir, err)
			}
		}
	}
	sdkDirs[cacheDir] = dir
	return dir, nil
}
