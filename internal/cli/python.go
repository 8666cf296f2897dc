package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/internal/pyinstall"
	"github.com/orkrun/ork/internal/pysandbox"
	"github.com/orkrun/ork/runtime"
)

// PythonInstallOptions are the inputs of `ork python install`.
type PythonInstallOptions struct {
	IO           *IO
	Project      string
	Requirements []string
	Target       string
	Python       string
	Packages     []string
	Verbose      bool
	// Verifier imports the installed modules in a sandbox; nil uses
	// pythonSandboxVerifier.
	Verifier pyinstall.Verifier
}

// NewCmdPython builds `ork python`, the parent of the Python commands.
func NewCmdPython(ios *IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "python",
		Short: "Manage the Python packages of a project",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(NewCmdPythonInstall(ios, nil))
	return cmd
}

// NewCmdPythonInstall builds `ork python install`. runF replaces the logic
// in tests.
func NewCmdPythonInstall(ios *IO, runF func(context.Context, *PythonInstallOptions) error) *cobra.Command {
	opts := &PythonInstallOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "install [-r requirements.txt] [--target vendor] [PACKAGE...]",
		Short: "Install Python packages into the project for its sandboxes",
		Long: `Install Python packages into a project directory (vendor by default) for the
sandboxes' Python: CPython ` + pyinstall.PythonVersion + ` compiled to WebAssembly, which runs
pure-Python code only.

The host's pip resolves and downloads wheels for that Python: pure-Python
wheels where they exist, otherwise the CPython wheel without its compiled
files, which works when the compiled part is an optional speed-up (MarkupSafe,
PyYAML, ...). Every module is then imported once in a sandbox: a package that
fails there needs native code (numpy, pydantic 2's pydantic-core, ...) and is
refused, and so is one that publishes no wheel.
Nothing is installed unless everything is: the target keeps its previous
content otherwise. Entries of the target with the same names are replaced.

PACKAGE is a requirement ("jinja2>=3", "pydantic==1.10.*") or a wheel file.
pip is "python3 -m pip" unless --python or $ORK_PIP (a command, e.g.
"/opt/py312/bin/python -m pip") says otherwise; it honours its own
configuration (index URL, proxies, cache).`,
		Example: "  ork python install -r requirements.txt\n  ork python install jinja2 'pydantic==1.10.*' --target lib",
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Packages = args
			if len(opts.Packages) == 0 && len(opts.Requirements) == 0 {
				return usageErr(fmt.Errorf("%s expects packages or -r with a requirements file\nUsage: %s", cmd.CommandPath(), cmd.UseLine()))
			}
			if opts.Target == "" {
				return usageErr(errors.New("--target must not be empty"))
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return pythonInstallRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Requirements, "requirement", "r", nil, "install from this requirements file (repeatable)")
	cmd.Flags().StringVar(&opts.Target, "target", "vendor", "directory of the project to install into")
	cmd.Flags().StringVar(&opts.Project, "project", "", "project root (default: the nearest directory above the current one holding ork.yaml)")
	cmd.Flags().StringVar(&opts.Python, "python", "", "the host Python whose pip downloads the packages (default: $ORK_PIP, else python3 -m pip)")
	cmd.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "show pip's output")
	return cmd
}

// pythonSandboxVerifier returns the import check that `ork python install`
// runs in a sandbox, and a function releasing it.
var pythonSandboxVerifier = func(ctx context.Context) (pyinstall.Verifier, func(), error) {
	dir, err := cacheDir()
	if err != nil {
		return nil, nil, err
	}
	host, err := runtime.New(runtime.WithCacheDir(dir), runtime.WithVersion(Version))
	if err != nil {
		return nil, nil, err
	}
	return &pysandbox.ImportChecker{Host: host, Version: Version}, func() { _ = host.Close(context.Background()) }, nil
}

func pythonInstallRun(ctx context.Context, opts *PythonInstallOptions) error {
	root, err := pythonProjectRoot(opts.Project)
	if err != nil {
		return err
	}
	target := filepath.FromSlash(opts.Target)
	if !filepath.IsAbs(target) {
		target = filepath.Join(root, target)
	}
	target = filepath.Clean(target)
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return usageErr(fmt.Errorf("--target %s must be a directory inside the project %s (sandboxes see only the project)", opts.Target, root))
	}
	for _, r := range opts.Requirements {
		if fi, err := os.Stat(r); err != nil {
			return usageErr(fmt.Errorf("requirements file %s: %w", r, errors.Unwrap(err)))
		} else if fi.IsDir() {
			return usageErr(fmt.Errorf("requirements file %s is a directory", r))
		}
	}
	pip := pyinstall.DefaultPip
	switch {
	case opts.Python != "":
		pip = []string{opts.Python, "-m", "pip"}
	case strings.TrimSpace(os.Getenv("ORK_PIP")) != "":
		pip = strings.Fields(os.Getenv("ORK_PIP"))
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	verifier := opts.Verifier
	if verifier == nil {
		v, release, err := pythonSandboxVerifier(ctx)
		if err != nil {
			return failedErr(fmt.Errorf("starting the sandbox that checks the packages: %w", err))
		}
		defer release()
		verifier = v
	}
	inOpts := pyinstall.Options{
		Target:       target,
		Requirements: opts.Requirements,
		Packages:     opts.Packages,
		Pip:          pip,
		Verifier:     verifier,
		Warn:         func(msg string) { fmt.Fprintln(opts.IO.ErrOut, "warning: "+msg) },
	}
	if opts.Verbose {
		inOpts.Log = opts.IO.ErrOut
	}
	shown := filepath.ToSlash(rel)
	res, err := pyinstall.Install(ctx, inOpts)
	if err != nil {
		if ctx.Err() != nil {
			return &ExitError{Code: ExitCancelled, Err: fmt.Errorf("interrupted; nothing was installed, %s is unchanged", shown)}
		}
		var re *pyinstall.RefusedError
		if errors.As(err, &re) {
			return failedErr(fmt.Errorf("%w\nnothing was installed; %s is unchanged", err, shown))
		}
		return failedErr(err)
	}
	fmt.Fprintf(opts.IO.Out, "installed into %s:\n", shown)
	for _, p := range res.Packages {
		fmt.Fprintf(opts.IO.Out, "  %s\n", p)
	}
	if !res.Verified {
		fmt.Fprintln(opts.IO.ErrOut, "warning: the packages' imports were not checked in a sandbox")
	}
	if hint := pythonPathHint(root, shown); hint != "" {
		fmt.Fprintln(opts.IO.Out, hint)
	}
	return nil
}

// pythonProjectRoot is dir when given (it must hold ork.yaml), else the
// nearest directory above the current one that holds ork.yaml.
func pythonProjectRoot(dir string) (string, error) {
	if dir == "" {
		root, err := project.FindRoot(".")
		if err != nil {
			return "", usageErr(err)
		}
		return root, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", usageErr(err)
	}
	if fi, err := os.Stat(filepath.Join(abs, project.ConfigFileName)); err != nil || fi.IsDir() {
		return "", usageErr(fmt.Errorf("%s has no %s; pass --project with the project directory", dir, project.ConfigFileName))
	}
	return abs, nil
}

// pythonPathHint tells how to put target on the sandboxes' sys.path unless
// ork.yaml's python.path already lists it.
func pythonPathHint(root, target string) string {
	var cfg struct {
		Python struct {
			Path []string `yaml:"path"`
		} `yaml:"python"`
	}
	data, err := os.ReadFile(filepath.Join(root, project.ConfigFileName))
	if err == nil && yaml.Unmarshal(data, &cfg) == nil {
		for _, p := range cfg.Python.Path {
			if filepath.ToSlash(filepath.Clean(filepath.FromSlash(p))) == target {
				return ""
			}
		}
		if len(cfg.Python.Path) > 0 {
			return fmt.Sprintf("hint: add %s to python.path in %s so that Python tasks can import these packages", target, project.ConfigFileName)
		}
	}
	return fmt.Sprintf("hint: add `python: {path: [%s]}` to %s so that Python tasks can import these packages", target, project.ConfigFileName)
}
