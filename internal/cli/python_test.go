package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/internal/pyinstall"
)

// runPython runs `ork python ARGS...` as Main would once the command is
// wired into the root, with runF as the install logic.
func runPython(t *testing.T, runF func(context.Context, *PythonInstallOptions) error, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ios := &IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	root := NewCmdRoot(ios)
	for _, c := range root.Commands() {
		if c.Name() == "python" {
			root.RemoveCommand(c) // replaced below, with runF when given
		}
	}
	py := NewCmdPython(ios)
	if runF != nil {
		py = &cobra.Command{Use: "python"}
		py.AddCommand(NewCmdPythonInstall(ios, runF))
	}
	root.AddCommand(py)
	root.SetArgs(append([]string{"python"}, args...))
	err := root.ExecuteContext(context.Background())
	var ee *ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.Code
		if ee.Err != nil {
			fmt.Fprintln(&errOut, "ork: "+ee.Err.Error())
		}
	default:
		code = ExitUsage
		fmt.Fprintf(&errOut, "ork: %v\n", err)
	}
	return code, out.String(), dropPipPythonWarning(errOut.String())
}

// dropPipPythonWarning removes the warning that the host's pip does not run
// on Python 3.12, which depends on the machine.
func dropPipPythonWarning(s string) string {
	var keep []string
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(line, "warning: pip runs on Python ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "")
}

func TestPythonInstallFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     PythonInstallOptions
		wantCode int
		wantErr  string
	}{
		{
			name: "defaults",
			args: []string{"install", "jinja2"},
			want: PythonInstallOptions{Target: "vendor", Packages: []string{"jinja2"}},
		},
		{
			name: "everything",
			args: []string{"install", "-r", "a.txt", "--requirement", "b.txt", "--target", "lib/py", "--project", "proj", "--python", "/usr/bin/python3.12", "-v", "pydantic==1.10.*", "x.whl"},
			want: PythonInstallOptions{Target: "lib/py", Requirements: []string{"a.txt", "b.txt"}, Project: "proj", Python: "/usr/bin/python3.12", Verbose: true, Packages: []string{"pydantic==1.10.*", "x.whl"}},
		},
		{
			name: "requirements only",
			args: []string{"install", "-r", "requirements.txt"},
			want: PythonInstallOptions{Target: "vendor", Requirements: []string{"requirements.txt"}, Packages: []string{}},
		},
		{
			name:     "nothing to install",
			args:     []string{"install"},
			wantCode: ExitUsage,
			wantErr:  "ork: ork python install expects packages or -r with a requirements file\nUsage: ork python install [-r requirements.txt] [--target vendor] [PACKAGE...] [flags]\n",
		},
		{
			name:     "empty target",
			args:     []string{"install", "--target", "", "jinja2"},
			wantCode: ExitUsage,
			wantErr:  "ork: --target must not be empty\n",
		},
		{
			name:     "unknown flag",
			args:     []string{"install", "--targt", "x", "jinja2"},
			wantCode: ExitUsage,
			wantErr:  "ork: unknown flag: --targt\nRun 'ork python install --help' for usage\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *PythonInstallOptions
			code, _, stderr := runPython(t, func(_ context.Context, o *PythonInstallOptions) error {
				got = o
				return nil
			}, tt.args...)
			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, tt.wantErr, stderr)
			if tt.wantCode != 0 {
				assert.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			got.IO = nil
			assert.Equal(t, tt.want, *got)
		})
	}
}

// filesVerifier "imports" a module when its files exist.
type filesVerifier struct{}

func (filesVerifier) ImportCheck(_ context.Context, dir string, modules []string) ([]pyinstall.ImportResult, error) {
	var out []pyinstall.ImportResult
	for _, m := range modules {
		r := pyinstall.ImportResult{Module: m, OK: true}
		_, err1 := os.Stat(filepath.Join(dir, m, "__init__.py"))
		_, err2 := os.Stat(filepath.Join(dir, m+".py"))
		if err1 != nil && err2 != nil {
			r = pyinstall.ImportResult{Module: m, Error: fmt.Sprintf("ModuleNotFoundError: No module named '%s'", m)}
		}
		out = append(out, r)
	}
	return out, nil
}

func withVerifier(v pyinstall.Verifier) func(context.Context, *PythonInstallOptions) error {
	return func(ctx context.Context, o *PythonInstallOptions) error {
		o.Verifier = v
		return pythonInstallRun(ctx, o)
	}
}

func requireHostPip(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("python3", "-m", "pip", "--version").CombinedOutput(); err != nil {
		t.Skipf("no pip on this machine (%v: %s)", err, out)
	}
}

func TestPythonInstall(t *testing.T) {
	requireHostPip(t)
	newProject := func(t *testing.T, orkYAML string) string {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "ork.yaml"), []byte(orkYAML), 0o644))
		return dir
	}
	pinned := []string{"pydantic==1.10.21", "typing_extensions==4.12.2"}

	t.Run("pure packages, with the hint", func(t *testing.T) {
		t.Parallel()
		dir := newProject(t, "executors: {}\n")
		code, stdout, stderr := runPython(t, withVerifier(filesVerifier{}), append([]string{"install", "--project", dir}, pinned...)...)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "installed into vendor:\n  pydantic 1.10.21 (pure wheel)\n  typing_extensions 4.12.2 (pure wheel)\n"+
			"hint: add `python: {path: [vendor]}` to ork.yaml so that Python tasks can import these packages\n", stdout)
		assert.Empty(t, stderr)
		assert.FileExists(t, filepath.Join(dir, "vendor", "pydantic", "main.py"))
		assert.FileExists(t, filepath.Join(dir, "vendor", "typing_extensions.py"))
	})

	t.Run("target listed in ork.yaml", func(t *testing.T) {
		t.Parallel()
		dir := newProject(t, "python:\n  path: [./lib/py/]\n")
		code, stdout, stderr := runPython(t, withVerifier(filesVerifier{}), append([]string{"install", "--project", dir, "--target", "lib/py"}, pinned...)...)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "installed into lib/py:\n  pydantic 1.10.21 (pure wheel)\n  typing_extensions 4.12.2 (pure wheel)\n", stdout)
	})

	t.Run("another path listed in ork.yaml", func(t *testing.T) {
		t.Parallel()
		dir := newProject(t, "python:\n  path: [src]\n")
		code, stdout, stderr := runPython(t, withVerifier(filesVerifier{}), "install", "--project", dir, "typing_extensions==4.12.2")
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "installed into vendor:\n  typing_extensions 4.12.2 (pure wheel)\n"+
			"hint: add vendor to python.path in ork.yaml so that Python tasks can import these packages\n", stdout)
	})

	t.Run("numpy is refused and vendor is untouched", func(t *testing.T) {
		t.Parallel()
		dir := newProject(t, "executors: {}\n")
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "vendor", "mine"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "vendor", "mine", "__init__.py"), []byte("X = 1\n"), 0o644))
		// The sandbox's own import check: numpy is unpacked without its
		// compiled files, fails to import, and is refused.
		code, stdout, stderr := runPython(t, nil, "install", "--project", dir, "numpy==2.1.3", "typing_extensions==4.12.2")
		assert.Equal(t, ExitFailed, code)
		assert.Empty(t, stdout)
		assert.Equal(t, "ork: numpy 2.1.3 cannot run in the sandbox: it needs native code (numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so), and ork's Python runs in WebAssembly, which can only run pure-Python packages\n"+
			"nothing was installed; vendor is unchanged\n", stderr)
		ents, err := os.ReadDir(filepath.Join(dir, "vendor"))
		require.NoError(t, err)
		require.Len(t, ents, 1)
		assert.Equal(t, "mine", ents[0].Name())
		top, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, top, 2, "only ork.yaml and vendor")
	})

	t.Run("usage errors", func(t *testing.T) {
		t.Parallel()
		dir := newProject(t, "executors: {}\n")
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"install", "--project", dir, "--target", "../elsewhere", "jinja2"},
				"ork: --target ../elsewhere must be a directory inside the project " + dir + " (sandboxes see only the project)\n"},
			{[]string{"install", "--project", dir, "--target", ".", "jinja2"},
				"ork: --target . must be a directory inside the project " + dir + " (sandboxes see only the project)\n"},
			{[]string{"install", "--project", dir, "-r", filepath.Join(dir, "nope.txt")},
				"ork: requirements file " + filepath.Join(dir, "nope.txt") + ": no such file or directory\n"},
			{[]string{"install", "--project", filepath.Join(dir, "vendor"), "jinja2"},
				"ork: " + filepath.Join(dir, "vendor") + " has no ork.yaml; pass --project with the project directory\n"},
		}
		for _, tt := range tests {
			code, stdout, stderr := runPython(t, withVerifier(filesVerifier{}), tt.args...)
			assert.Equal(t, ExitUsage, code, tt.args)
			assert.Empty(t, stdout)
			assert.Equal(t, tt.want, stderr)
		}
		assert.NoDirExists(t, filepath.Join(dir, "vendor"))
	})
}

// TestPythonInstallFromSubdirectory finds the project from the current
// directory, reads a requirements file relative to it, and warns when no
// sandbox checked the imports.
func TestPythonInstallFromSubdirectory(t *testing.T) {
	requireHostPip(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ork.yaml"), []byte("python: {path: [vendor]}\n"), 0o644))
	sub := filepath.Join(dir, "tasks")
	require.NoError(t, os.Mkdir(sub, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sub, "requirements.txt"), []byte("typing_extensions==4.12.2\n"), 0o644))
	t.Chdir(sub)
	saved := pythonSandboxVerifier
	t.Cleanup(func() { pythonSandboxVerifier = saved })
	pythonSandboxVerifier = func(context.Context) (pyinstall.Verifier, func(), error) { return nil, func() {}, nil }

	code, stdout, stderr := runPython(t, nil, "install", "-r", "requirements.txt")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "installed into vendor:\n  typing_extensions 4.12.2 (pure wheel)\n", stdout)
	assert.Equal(t, "warning: the packages' imports were not checked in a sandbox\n", stderr)
	assert.FileExists(t, filepath.Join(dir, "vendor", "typing_extensions.py"))
}

// TestPythonInstallRealSandbox checks the proof set with the sandbox check
// wired into the CLI (pythonSandboxVerifier): every module is imported in
// ork's real WASI CPython.
func TestPythonInstallRealSandbox(t *testing.T) {
	requireHostPip(t)
	v, release, err := pythonSandboxVerifier(context.Background())
	require.NoError(t, err)
	release()
	require.NotNil(t, v, "pythonSandboxVerifier returns no Verifier: wire ork's WASI CPython into it")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ork.yaml"), []byte("python: {path: [vendor]}\n"), 0o644))
	code, stdout, stderr := runPython(t, nil, "install", "--project", dir, "pydantic==1.10.*", "typing_extensions", "jinja2", "PyYAML")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	for _, want := range []string{"pydantic 1.10.", "typing_extensions ", "Jinja2 ", "MarkupSafe ", "PyYAML "} {
		assert.Contains(t, stdout, "\n  "+want)
	}
	assert.Contains(t, stdout, "(compiled speed-ups left out)")

	code, _, stderr = runPython(t, nil, "install", "--project", dir, "numpy")
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, stderr, "cannot run in the sandbox: it needs native code")
}
