// Package pysandbox runs short Python programs of ork's own in the same
// sandbox as Python tasks: today, the import check of `ork python install`.
package pysandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/pyinstall"
	"github.com/orkrun/ork/internal/pyruntime"
	"github.com/orkrun/ork/runtime"
)

// ImportChecker imports modules inside the sandbox's CPython.
type ImportChecker struct {
	Host    *runtime.Host
	Version string
}

var _ pyinstall.Verifier = (*ImportChecker)(nil)

const guestPkgs = "/pkgs"

// importScript compiles every module under /pkgs to bytecode for this
// interpreter (read-only project mounts cannot cache it at run time, and
// compiling pydantic on every task costs seconds), validated by source hash
// rather than mtime so that copies and checkouts of the project keep it,
// then imports each module
// named in argv and prints one JSON document: [{"module", "ok", "error"}].
const importScript = `
import compileall, importlib, json, py_compile, sys
compileall.compile_dir("/pkgs", quiet=2, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
out = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        out.append({"module": name, "ok": True, "error": ""})
    except BaseException as e:
        out.append({"module": name, "ok": False, "error": f"{type(e).__name__}: {e}"})
sys.stdout.write("\n" + json.dumps(out) + "\n")
`

// ImportCheck imports every module with pathDir first on sys.path.
func (c *ImportChecker) ImportCheck(ctx context.Context, pathDir string, modules []string) ([]pyinstall.ImportResult, error) {
	bin, err := pyruntime.Wasm()
	if err != nil {
		return nil, err
	}
	m, err := c.Host.LoadInterpreter(ctx, "python.wasm", bin)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	sess := abi.NewSession(abi.Task{Info: abi.TaskInfo{Task: "import-check", Workflow: "ork-python-install"}}, "ork/"+c.Version, nil)
	res, err := c.Host.Run(ctx, runtime.Task{
		Module:  m,
		Session: sess,
		Policy: runtime.Policy{
			MemoryBytes: 512 << 20,
			Timeout:     10 * time.Minute,
			Mounts:      []runtime.Mount{{HostPath: pathDir, GuestPath: guestPkgs, Writable: true}},
			Env:         []string{"PYTHONPATH=" + guestPkgs, "PYTHONDONTWRITEBYTECODE=1"},
		},
		Stdout: &stdout,
		Stderr: &stderr,
		Args:   append([]string{"python", "-c", importScript}, modules...),
	})
	if err != nil {
		return nil, err
	}
	if res.Failure != nil {
		return nil, fmt.Errorf("the import check failed in the sandbox: %s\n%s", res.Failure.Message, tail(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var out []pyinstall.ImportResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		return nil, fmt.Errorf("the import check printed no result: %v\n%s", err, tail(stderr.String()))
	}
	return out, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// compileScript compiles a directory that never changes (it is keyed by its
// content), so its bytecode is not revalidated against the sources.
const compileScript = `import compileall, py_compile, sys
ok = compileall.compile_dir(sys.argv[1], quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
sys.exit(0 if ok else 1)`

// CompileDir compiles every module under dir to bytecode for the sandbox's
// interpreter, with dir mounted at guestPath (where tasks will see it), and
// leaves a marker so it happens once.
func CompileDir(ctx context.Context, host *runtime.Host, version, dir, guestPath string) error {
	marker := filepath.Join(dir, ".ork-compiled")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := runWritable(ctx, host, version, dir, guestPath, compileScript, guestPath); err != nil {
		return fmt.Errorf("compiling %s to bytecode: %w", dir, err)
	}
	return os.WriteFile(marker, nil, 0o644)
}

// runWritable runs script in the sandbox's CPython with dir mounted
// writable at guestPath and args as its argv; a failure carries the tail of
// its stderr.
func runWritable(ctx context.Context, host *runtime.Host, version, dir, guestPath, script string, args ...string) error {
	bin, err := pyruntime.Wasm()
	if err != nil {
		return err
	}
	m, err := host.LoadInterpreter(ctx, "python.wasm", bin)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	sess := abi.NewSession(abi.Task{Info: abi.TaskInfo{Task: "compile", Workflow: "ork"}}, "ork/"+version, nil)
	res, err := host.Run(ctx, runtime.Task{
		Module:  m,
		Session: sess,
		Policy: runtime.Policy{
			Timeout: 5 * time.Minute,
			Mounts:  []runtime.Mount{{HostPath: dir, GuestPath: guestPath, Writable: true}},
		},
		Stderr: &stderr,
		Args:   append([]string{"python", "-c", script}, args...),
	})
	if err != nil {
		return err
	}
	if res.Failure != nil {
		return fmt.Errorf("%s\n%s", res.Failure.Message, tail(stderr.String()))
	}
	return nil
}

// projectCompileScript compiles the project's own modules (argv[1:] names
// the python.path directories to leave alone: `ork python install` compiles
// them) into __pycache__ next to them, as Python would if the project were
// writable at run time. Timestamp-validated, like Python's own: an edited
// file's bytecode is stale and ignored until the next compile. Files whose
// bytecode is current are skipped, and a file that does not compile is left
// for the task that imports it to report.
const projectCompileScript = `import compileall, os, sys
skip = {os.path.join("/", d) for d in sys.argv[1:]}
for top, dirs, files in os.walk("/"):
    dirs[:] = sorted(d for d in dirs
        if not d.startswith(".") and d not in ("__pycache__", "node_modules", "target")
        and os.path.join(top, d) not in skip)
    for f in sorted(files):
        if f.endswith(".py"):
            compileall.compile_file(os.path.join(top, f), quiet=2)`

// CompileProject compiles a project's Python modules to bytecode in the
// sandbox, with the project mounted writable at / (only this step writes
// to it, and only __pycache__ directories): tasks mount the project
// read-only, so without it every task would compile its task file and the
// project modules it imports (~37 ms for 200 lines). skip lists the
// project-relative directories to leave out.
func CompileProject(ctx context.Context, host *runtime.Host, version, root string, skip []string) error {
	if err := runWritable(ctx, host, version, root, "/", projectCompileScript, skip...); err != nil {
		return fmt.Errorf("compiling the project's Python modules: %w", err)
	}
	return nil
}
