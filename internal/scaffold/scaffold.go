// Package scaffold writes a new ork project: ork.yaml, a workflow, a Rust
// custom executor, a built-in rust task, and a vendored copy of the Rust SDK.
package scaffold

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	rustsdk "github.com/orkrun/ork/sdk/rust"
)

//go:embed all:template
var tmpl embed.FS

// SDKDir is where a project keeps its copy of the Rust SDK.
const SDKDir = "vendor/ork-sdk"

// Write creates a project in dir, which must not exist or be empty. It
// returns the project-relative paths it wrote.
func Write(dir string) ([]string, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s already exists and is not empty; choose a new directory", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var written []string
	copyTree := func(src fs.FS, root, dest string) error {
		return fs.WalkDir(src, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
			switch {
			case path.Base(rel) == "gitignore.tmpl":
				rel = path.Join(path.Dir(rel), ".gitignore")
			case strings.HasSuffix(rel, ".tmpl"):
				rel = strings.TrimSuffix(rel, ".tmpl")
			}
			rel = path.Join(dest, rel)
			b, err := fs.ReadFile(src, p)
			if err != nil {
				return err
			}
			out := filepath.Join(dir, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
			written = append(written, rel)
			return nil
		})
	}
	if err := copyTree(tmpl, "template", ""); err != nil {
		return nil, fmt.Errorf("writing the project: %w", err)
	}
	if err := copyTree(rustsdk.FS, ".", SDKDir); err != nil {
		return nil, fmt.Errorf("writing the Rust SDK: %w", err)
	}
	return written, nil
}
