package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/orkrun/ork/internal/atomicfile"
	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/internal/pysandbox"
	"github.com/orkrun/ork/runtime"
)

// The project's part of a Python snapshot: the modules of its executor
// classes are imported at boot (with what they import: pydantic, Jinja2, ...),
// so a task of a custom executor starts with them loaded. Whatever the boot
// reads is frozen into the image, so the snapshot's key includes a digest of
// the project's Python sources and of its python.path directories; editing a
// module or running `ork python install` builds a new snapshot.

// executorModules lists the modules of the project's Python executor classes,
// sorted and without duplicates.
func executorModules(p *project.Project) []string {
	seen := map[string]bool{}
	var mods []string
	for _, ex := range p.Executors {
		if ex.Kind != project.KindPythonClass {
			continue
		}
		mod, _, _ := strings.Cut(ex.Type, ":")
		if mod != "" && !seen[mod] {
			seen[mod] = true
			mods = append(mods, mod)
		}
	}
	sort.Strings(mods)
	return mods
}

// warmImports is the snapshot boot's code for the project: the SDK, then
// each executor module. A module that fails to import at boot is left out
// (the failed import leaves nothing in sys.modules): its tasks import it
// themselves and report the error as they would from a cold start.
func warmImports(mods []string) string {
	var b strings.Builder
	b.WriteString("import ork._main, ork._output\nork._abi.get_transport()  # the mailbox, allocated once in the image\n")
	if len(mods) == 0 {
		return b.String()
	}
	b.WriteString("for _ork_mod in [")
	for i, m := range mods {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(m))
	}
	b.WriteString("]:\n    try:\n        __import__(_ork_mod)\n    except BaseException:\n        pass\ndel _ork_mod\n")
	return b.String()
}

// skipDir says whether a project directory holds no importable sources of
// the project's own (run history, VCS data, build output).
func skipDir(name string) bool {
	switch name {
	case "__pycache__", "node_modules", "target":
		return true
	}
	return strings.HasPrefix(name, ".")
}

// pythonSourcesDigest identifies what a snapshot boot may import from the
// project: every .py file under the project root, and every file under its
// python.path directories (packages may read data files at import), by path,
// size and modification time.
func pythonSourcesDigest(p *project.Project) (string, error) {
	h := sha256.New()
	add := func(root string, all bool) error {
		return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && skipDir(d.Name()) && (!all || d.Name() != "__pycache__") {
					return filepath.SkipDir
				}
				return nil
			}
			if !all && !strings.HasSuffix(d.Name(), ".py") {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(p.Root, path)
			fmt.Fprintf(h, "%q %d %d\n", filepath.ToSlash(rel), fi.Size(), fi.ModTime().UnixNano())
			return nil
		})
	}
	if err := add(p.Root, false); err != nil {
		return "", fmt.Errorf("reading the project's Python sources: %w", err)
	}
	for _, d := range p.PythonPath {
		fmt.Fprintf(h, "python.path %q\n", d)
		if err := add(filepath.Join(p.Root, filepath.FromSlash(d)), true); err != nil {
			return "", fmt.Errorf("reading python.path directory %s: %w", d, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// compileProject compiles the project's Python modules to bytecode (see
// pysandbox.CompileProject) when its sources changed since the last time,
// which a stamp in the cache directory remembers. A failure only costs
// speed: tasks compile what they import, as they would without it.
func (r *Runner) compileProject(ctx context.Context, host *runtime.Host) {
	digest, err := pythonSourcesDigest(r.proj)
	if err != nil {
		return
	}
	r.pySource = digest
	var stamp string
	if r.cacheDir != "" {
		sum := sha256.Sum256([]byte(r.proj.Root))
		stamp = filepath.Join(r.cacheDir, "pyc-stamps", hex.EncodeToString(sum[:16]))
		if b, err := os.ReadFile(stamp); err == nil && string(b) == digest {
			return
		}
	}
	if err := pysandbox.CompileProject(ctx, host, "runner", r.proj.Root, r.proj.PythonPath); err != nil || stamp == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(stamp), 0o755); err == nil {
		_ = atomicfile.Write(stamp, []byte(digest), 0o644)
	}
}
