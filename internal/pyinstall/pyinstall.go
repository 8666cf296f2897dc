// Package pyinstall installs Python packages for ork's sandboxed CPython.
//
// ork's Python is CPython 3.12 compiled to WASI (wasm32): it runs pure-Python
// code only. Install uses the host's pip to resolve and download wheels for
// that interpreter, unpacks them into a staging directory beside the target,
// refuses packages that need native code, imports every top-level module once
// in a sandbox (through a Verifier) and only then moves the result into the
// target. Nothing is left half-installed: on any failure the target keeps its
// previous content.
//
// Packages that publish no pure wheel but ship an optional C speed-up beside a
// pure-Python fallback (MarkupSafe, PyYAML, ...) are installed from their
// CPython 3.12 manylinux wheel with the compiled files left out.
package pyinstall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// PythonVersion is the Python of the sandbox that packages are installed for.
const PythonVersion = "3.12"

// Verifier imports modules inside a sandbox running ork's CPython.
type Verifier interface {
	// ImportCheck imports each module once, in a sandbox whose sys.path has
	// pathDir (a host directory) at its front, and reports one result per
	// module. The error is for a sandbox that could not run at all.
	ImportCheck(ctx context.Context, pathDir string, modules []string) ([]ImportResult, error)
}

// ImportResult is the outcome of importing one module in the sandbox.
type ImportResult struct {
	Module string
	OK     bool
	Error  string // the exception, e.g. "ModuleNotFoundError: No module named '_ctypes'"
}

// Options are the inputs of Install.
type Options struct {
	// Target is the directory to install into; it is created when missing.
	// Entries of the same top-level name are replaced.
	Target string
	// Requirements are requirements files, passed to pip with -r.
	Requirements []string
	// Packages are requirement specifiers ("jinja2>=3", "pydantic==1.10.*")
	// or paths of wheel files.
	Packages []string
	// Pip is the command that runs the host's pip; default python3 -m pip.
	Pip []string
	// Dir is pip's working directory (relative paths in Requirements and
	// Packages are resolved from it); default the current directory.
	Dir string
	// Verifier imports the installed modules in a sandbox. Nil skips the
	// check (Result.Verified is false).
	Verifier Verifier
	// Log receives pip's output and progress notes; nil discards them.
	Log io.Writer
	// Warn receives warnings, e.g. that pip's Python is not 3.12; nil
	// sends them to Log.
	Warn func(msg string)
}

// DefaultPip is the command that runs the host's pip by default.
var DefaultPip = []string{"python3", "-m", "pip"}

// Kind says how a package was installed.
type Kind int

const (
	// Pure is a pure-Python wheel, installed as published.
	Pure Kind = iota
	// SpeedupsLeftOut is a CPython wheel whose optional compiled speed-ups
	// were left out; the package runs on its pure-Python fallback.
	SpeedupsLeftOut
)

func (k Kind) String() string {
	if k == SpeedupsLeftOut {
		return "compiled speed-ups left out"
	}
	return "pure wheel"
}

// Package is one installed distribution.
type Package struct {
	Name    string   // as published, e.g. "PyYAML"
	Version string   // e.g. "6.0.2"
	Wheel   string   // the wheel's file name
	Kind    Kind     // how it was installed
	Modules []string // top-level modules it installs
	Entries []string // top-level names it installs into the target
	LeftOut []string // SpeedupsLeftOut: the compiled files left out
}

func (p Package) String() string {
	return fmt.Sprintf("%s %s (%s)", p.Name, p.Version, p.Kind)
}

// Result describes a successful install.
type Result struct {
	Target   string
	Packages []Package // sorted by name
	// Verified is true when every module was imported in a sandbox.
	Verified bool
}

// Reason is why a package was refused.
type Reason int

const (
	// NeedsNativeCode: the wheel's compiled extensions are required.
	NeedsNativeCode Reason = iota
	// ImportFailed: a module failed to import in the sandbox.
	ImportFailed
	// NoWheel: the project publishes no wheel for Python 3.12 (only a source
	// distribution, or wheels for other Pythons).
	NoWheel
	// NotFound: the package index has no such project.
	NotFound
)

// Refusal is a package that cannot be installed for the sandbox.
type Refusal struct {
	Name    string
	Version string // "" when no wheel was chosen
	Reason  Reason
	Detail  string // the compiled file, the module and its import error, or pip's error
	Message string // the full explanation for the user
}

// RefusedError is returned when packages cannot be installed for the
// sandbox. The target is untouched.
type RefusedError struct {
	Refusals []Refusal
}

func (e *RefusedError) Error() string {
	msgs := make([]string, len(e.Refusals))
	for i, r := range e.Refusals {
		msgs[i] = r.Message
	}
	return strings.Join(msgs, "\n")
}

// speedup describes a project whose compiled extension is optional.
type speedup struct {
	// skip are top-level modules that are part of the speed-up only and so
	// are not import-checked.
	skip []string
}

// optionalSpeedups are projects known to fall back to pure Python when their
// compiled extension is missing, by normalized name. Any other project that
// publishes only compiled wheels is installed without its compiled files too,
// and the import check in the sandbox decides: a package that then fails to
// import needs its native code and is refused. This list only matters when
// there is no sandbox to check in (Options.Verifier is nil), and for the
// modules a known speed-up leaves unimportable on purpose (skip).
var optionalSpeedups = map[string]speedup{
	// markupsafe/_speedups: `except ImportError: from ._native import ...`.
	"markupsafe": {},
	// yaml/_yaml (libyaml): yaml sets __with_libyaml__ = False. The top-level
	// _yaml is a compatibility shim that raises ImportError without it.
	"pyyaml": {skip: []string{"_yaml"}},
	// msgpack/_cmsgpack: `except ImportError: from .fallback import ...`.
	"msgpack": {},
	// simplejson/_speedups: every use goes through a try/except ImportError.
	"simplejson": {},
}

// Install resolves opts' requirements for the sandbox's CPython 3.12 with the
// host's pip and installs them into opts.Target. It returns a *RefusedError
// when packages cannot run in the sandbox; on any error the target is left as
// it was.
func Install(ctx context.Context, opts Options) (*Result, error) {
	if len(opts.Requirements) == 0 && len(opts.Packages) == 0 {
		return nil, errors.New("nothing to install: give requirements files or packages")
	}
	if opts.Target == "" {
		return nil, errors.New("no target directory")
	}
	target, err := filepath.Abs(opts.Target)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(target); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("target %s is not a directory", target)
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	p := &pip{cmd: opts.Pip, dir: opts.Dir, log: log}
	if len(p.cmd) == 0 {
		p.cmd = DefaultPip
	}

	warn := opts.Warn
	if warn == nil {
		warn = func(msg string) { fmt.Fprintln(log, "warning: "+msg) }
	}
	if v, err := p.pythonVersion(ctx); err != nil {
		return nil, err
	} else if v != "" && v != PythonVersion {
		// pip evaluates dependencies' environment markers for the Python
		// it runs on, whatever --python-version says (pypa/pip#11010).
		warn(fmt.Sprintf("pip runs on Python %s, so it picks the conditional dependencies (python_version markers) of Python %s, not of the sandbox's %s; use a Python %s with pip for exact results", v, v, PythonVersion, PythonVersion))
	}

	tmp, err := os.MkdirTemp("", "ork-pip-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var reqs []string
	for _, r := range opts.Requirements {
		reqs = append(reqs, "-r", r)
	}
	reqs = append(reqs, opts.Packages...)
	files, err := p.resolve(ctx, tmp, reqs)
	if err != nil {
		return nil, err
	}

	// Inspect and classify every wheel before writing anything.
	var wheels []*wheel
	defer func() {
		for _, w := range wheels {
			w.close()
		}
	}()
	for _, f := range files {
		w, zr, err := openWheel(f)
		if err != nil {
			return nil, err
		}
		w.closer = zr
		wheels = append(wheels, w)
	}
	sort.Slice(wheels, func(i, j int) bool { return normalize(wheels[i].Name) < normalize(wheels[j].Name) })
	pkgs := make([]Package, len(wheels))
	var refused []Refusal
	for i, w := range wheels {
		pkg := Package{Name: w.Name, Version: w.Version, Wheel: filepath.Base(w.File)}
		if len(w.Native) > 0 {
			sp, known := optionalSpeedups[normalize(w.Name)]
			native := nativeRefusal(w)
			if !known && opts.Verifier == nil {
				// Nothing can tell whether it works without its
				// compiled files: only trust the known speed-ups.
				refused = append(refused, native)
				continue
			}
			pkg.Kind = SpeedupsLeftOut
			pkg.LeftOut = w.leaveOutCompiled()
			w.skip = sp.skip
			if !known {
				if len(w.Modules) == 0 {
					// Nothing but compiled modules.
					refused = append(refused, native)
					continue
				}
				w.native = &native
			}
		}
		pkg.Entries = w.Entries
		pkg.Modules = w.Modules
		pkgs[i] = pkg
	}
	if len(refused) > 0 {
		return nil, &RefusedError{Refusals: refused}
	}

	// Stage beside the target, so that moving into it is a rename.
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	staging, err := os.MkdirTemp(parent, filepath.Base(target)+".ork-staging-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)
	if err := os.Chmod(staging, 0o755); err != nil {
		return nil, err
	}
	for _, w := range wheels {
		if err := w.unpack(staging); err != nil {
			return nil, err
		}
	}

	res := &Result{Target: target, Packages: pkgs}
	if opts.Verifier != nil {
		if refused, err := verify(ctx, opts.Verifier, staging, wheels); err != nil {
			return nil, err
		} else if len(refused) > 0 {
			return nil, &RefusedError{Refusals: refused}
		}
		res.Verified = true
	}

	installing := map[string]bool{}
	for _, w := range wheels {
		installing[normalize(w.Name)] = true
	}
	if err := commit(staging, target, installing); err != nil {
		return nil, err
	}
	return res, nil
}

// verify imports every module of every wheel in the sandbox and returns the
// packages whose imports failed.
func verify(ctx context.Context, v Verifier, dir string, wheels []*wheel) ([]Refusal, error) {
	providers := map[string][]*wheel{}
	var modules []string
	for _, w := range wheels {
		for _, m := range w.Modules {
			if slices.Contains(w.skip, m) {
				continue
			}
			if providers[m] == nil {
				modules = append(modules, m)
			}
			providers[m] = append(providers[m], w)
		}
	}
	sort.Strings(modules)
	if len(modules) == 0 {
		return nil, nil
	}
	results, err := v.ImportCheck(ctx, dir, modules)
	if err != nil {
		return nil, fmt.Errorf("checking the packages in the sandbox: %w", err)
	}
	byModule := map[string]ImportResult{}
	for _, r := range results {
		byModule[r.Module] = r
	}
	var refused []Refusal
	seen := map[*wheel]bool{}
	for _, m := range modules {
		r, ok := byModule[m]
		if !ok {
			return nil, fmt.Errorf("checking the packages in the sandbox: no result for module %s", m)
		}
		if r.OK {
			continue
		}
		for _, w := range providers[m] {
			if seen[w] {
				continue
			}
			seen[w] = true
			msg := strings.TrimSpace(r.Error)
			if msg == "" {
				msg = "unknown error"
			}
			if w.native != nil {
				// Its compiled files were left out on trust, and it
				// does not work without them.
				refused = append(refused, *w.native)
				continue
			}
			refused = append(refused, Refusal{
				Name: w.Name, Version: w.Version, Reason: ImportFailed, Detail: m + ": " + msg,
				Message: fmt.Sprintf("%s %s cannot run in the sandbox: importing %s there failed: %s", w.Name, w.Version, m, msg),
			})
		}
	}
	return refused, nil
}

func nativeRefusal(w *wheel) Refusal {
	file := w.Native[0]
	if len(w.Extensions) > 0 {
		file = w.Extensions[0]
	}
	return Refusal{
		Name: w.Name, Version: w.Version, Reason: NeedsNativeCode, Detail: file,
		Message: fmt.Sprintf("%s %s cannot run in the sandbox: it needs native code (%s), and ork's Python runs in WebAssembly, which can only run pure-Python packages", w.Name, w.Version, file),
	}
}
