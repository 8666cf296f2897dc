package pyinstall

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requirePip skips the test when the host has no pip to download with.
func requirePip(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(DefaultPip[0], append(DefaultPip[1:], "--version")...).CombinedOutput(); err != nil {
		t.Skipf("no pip on this machine (%v: %s)", err, out)
	}
}

// installCase is one install from PyPI; the downloads are cached by pip.
type installCase struct {
	name     string
	reqFile  string   // content of a requirements file, if any
	packages []string // PACKAGE arguments
	fail     map[string]string

	wantPkgs    map[string]Kind // by name, with the version prefix checked below
	wantVersion map[string]string
	wantFiles   []string // under the target
	wantChecked []string // modules import-checked, in order
	wantLeftOut map[string]string

	wantRefused []Refusal // Name, Reason, and Message when not ""
}

func TestPythonInstallFromPyPI(t *testing.T) {
	requirePip(t)
	tests := []installCase{
		{
			name:        "pydantic 1.10 with typing_extensions",
			packages:    []string{"pydantic==1.10.*", "typing_extensions"},
			wantPkgs:    map[string]Kind{"pydantic": Pure, "typing_extensions": Pure},
			wantVersion: map[string]string{"pydantic": "1.10."},
			wantFiles:   []string{"pydantic/__init__.py", "pydantic/main.py", "typing_extensions.py"},
			wantChecked: []string{"pydantic", "typing_extensions"},
		},
		{
			name:        "jinja2 from a requirements file, markupsafe without its speed-up",
			reqFile:     "# templates\njinja2>=3\n",
			wantPkgs:    map[string]Kind{"Jinja2": Pure, "MarkupSafe": SpeedupsLeftOut},
			wantFiles:   []string{"jinja2/__init__.py", "markupsafe/__init__.py", "markupsafe/_native.py"},
			wantChecked: []string{"jinja2", "markupsafe"},
			wantLeftOut: map[string]string{"MarkupSafe": "markupsafe/_speedups.cpython-312-x86_64-linux-gnu.so"},
		},
		{
			// markupsafe sends the resolution to CPython wheels, where pydantic
			// 1.10 has a compiled wheel too: its pure wheel replaces it.
			name:        "pydantic 1.10 beside markupsafe",
			packages:    []string{"pydantic==1.10.*", "markupsafe"},
			wantPkgs:    map[string]Kind{"pydantic": Pure, "typing_extensions": Pure, "MarkupSafe": SpeedupsLeftOut},
			wantVersion: map[string]string{"pydantic": "1.10."},
			wantFiles:   []string{"pydantic/__init__.py", "pydantic/main.py", "typing_extensions.py", "markupsafe/__init__.py"},
			wantChecked: []string{"markupsafe", "pydantic", "typing_extensions"},
			wantLeftOut: map[string]string{"MarkupSafe": "markupsafe/_speedups.cpython-312-x86_64-linux-gnu.so"},
		},
		{
			name:        "PyYAML without libyaml",
			packages:    []string{"PyYAML"},
			wantPkgs:    map[string]Kind{"PyYAML": SpeedupsLeftOut},
			wantFiles:   []string{"yaml/__init__.py", "yaml/constructor.py", "_yaml/__init__.py"},
			wantChecked: []string{"yaml"},
			wantLeftOut: map[string]string{"PyYAML": "yaml/_yaml.cpython-312-x86_64-linux-gnu.so"},
		},
		{
			// Not a known speed-up: installed without its compiled files
			// on trust, and kept because it imports (on its pure fallback).
			name:        "immutables without its C extension",
			packages:    []string{"immutables==0.21"},
			wantPkgs:    map[string]Kind{"immutables": SpeedupsLeftOut},
			wantFiles:   []string{"immutables/__init__.py", "immutables/map.py"},
			wantChecked: []string{"immutables"},
			wantLeftOut: map[string]string{"immutables": "immutables/_map.cpython-312-x86_64-linux-gnu.so"},
		},
		{
			// Installed without its compiled files too, but numpy does not
			// import without them (the sandbox's error below): refused as
			// needing native code, naming its largest extension.
			name:     "numpy is refused and takes jinja2 down with it",
			packages: []string{"jinja2", "numpy==2.1.3"},
			fail:     map[string]string{"numpy": "ImportError: Unable to import required dependencies: No module named 'numpy._core._multiarray_umath'"},
			wantRefused: []Refusal{{Name: "numpy", Reason: NeedsNativeCode,
				Message: "numpy 2.1.3 cannot run in the sandbox: it needs native code (numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so), and ork's Python runs in WebAssembly, which can only run pure-Python packages"}},
		},
		{
			name:     "pydantic 2 needs pydantic-core, which is native",
			packages: []string{"pydantic>=2"},
			fail: map[string]string{
				"pydantic":      "ModuleNotFoundError: No module named 'pydantic_core._pydantic_core'",
				"pydantic_core": "ModuleNotFoundError: No module named 'pydantic_core._pydantic_core'",
			},
			wantRefused: []Refusal{{Name: "pydantic", Reason: ImportFailed}, {Name: "pydantic_core", Reason: NeedsNativeCode}},
		},
		{
			name:     "a package with only a source distribution",
			packages: []string{"docopt"},
			wantRefused: []Refusal{{Name: "docopt", Reason: NoWheel,
				Message: "docopt cannot be installed for the sandbox: it publishes no wheel that Python 3.12 can use (only a source distribution, or wheels for other Pythons), and ork installs wheels only. Ask the docopt maintainers to publish a pure-Python wheel (py3-none-any), or use an alternative package that has one; if docopt is pure Python, you can build its wheel yourself with `python3 -m pip wheel --no-deps docopt -w wheels` and install the .whl file: `ork python install wheels/FILE.whl`"}},
		},
		{
			name:     "no such package",
			packages: []string{"ork-no-such-package-4f1c9"},
			wantRefused: []Refusal{{Name: "ork-no-such-package-4f1c9", Reason: NotFound,
				Message: "ork-no-such-package-4f1c9: no package of that name was found on the package index; check the spelling"}},
		},
		{
			name:     "an import that fails in the sandbox",
			packages: []string{"typing_extensions==4.12.2"},
			fail:     map[string]string{"typing_extensions": "ModuleNotFoundError: No module named '_ctypes'"},
			wantRefused: []Refusal{{Name: "typing_extensions", Reason: ImportFailed,
				Message: "typing_extensions 4.12.2 cannot run in the sandbox: importing typing_extensions there failed: ModuleNotFoundError: No module named '_ctypes'"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runInstallCase(t, tt)
		})
	}
}

// Without a sandbox to check imports in, only the known speed-ups are
// installed without their compiled files; anything else compiled is refused.
func TestPythonInstallWithoutVerifierTrustsOnlyKnownSpeedups(t *testing.T) {
	requirePip(t)
	target := filepath.Join(t.TempDir(), "vendor")
	_, err := Install(context.Background(), Options{Target: target, Packages: []string{"immutables==0.21"}, Log: &testLog{t: t}})
	var re *RefusedError
	require.True(t, errors.As(err, &re), "want a *RefusedError, got %v", err)
	require.Len(t, re.Refusals, 1)
	assert.Equal(t, NeedsNativeCode, re.Refusals[0].Reason)
	assert.Equal(t, "immutables 0.21 cannot run in the sandbox: it needs native code (immutables/_map.cpython-312-x86_64-linux-gnu.so), and ork's Python runs in WebAssembly, which can only run pure-Python packages", re.Refusals[0].Message)
	assert.NoDirExists(t, target)

	res, err := Install(context.Background(), Options{Target: target, Packages: []string{"PyYAML"}, Log: &testLog{t: t}})
	require.NoError(t, err)
	assert.False(t, res.Verified)
	require.Len(t, res.Packages, 1)
	assert.Equal(t, SpeedupsLeftOut, res.Packages[0].Kind)
}

// previous is what every target holds before an install.
var previous = map[string]string{"handmade.py": "X = 1\n", "keep/data.txt": "kept\n"}

func runInstallCase(t *testing.T, tt installCase) {
	root := t.TempDir()
	target := filepath.Join(root, "vendor")
	writeTree(t, target, previous)
	opts := Options{Target: target, Packages: tt.packages, Verifier: &fakeVerifier{fail: tt.fail}, Log: &testLog{t: t}}
	if tt.reqFile != "" {
		f := filepath.Join(root, "requirements.txt")
		require.NoError(t, os.WriteFile(f, []byte(tt.reqFile), 0o644))
		opts.Requirements = []string{f}
	}
	start := time.Now()
	res, err := Install(context.Background(), opts)
	t.Logf("install took %s", time.Since(start).Round(time.Millisecond))

	for _, n := range names(t, root) {
		assert.NotContains(t, n, ".ork-", "left beside the target")
	}
	if tt.wantRefused != nil {
		require.Error(t, err)
		var re *RefusedError
		require.True(t, errors.As(err, &re), "want a *RefusedError, got %v", err)
		require.Len(t, re.Refusals, len(tt.wantRefused), err.Error())
		for i, want := range tt.wantRefused {
			got := re.Refusals[i]
			assert.Equal(t, want.Name, got.Name)
			assert.Equal(t, want.Reason, got.Reason)
			if want.Message != "" {
				assert.Equal(t, want.Message, got.Message)
			}
		}
		assert.Equal(t, withDirs(previous), tree(t, target), "the target is untouched")
		return
	}
	require.NoError(t, err)
	assert.True(t, res.Verified)
	got := map[string]Kind{}
	for _, p := range res.Packages {
		got[p.Name] = p.Kind
		if v, ok := tt.wantVersion[p.Name]; ok {
			assert.True(t, strings.HasPrefix(p.Version, v), "%s version %s, want %s*", p.Name, p.Version, v)
		}
		if f, ok := tt.wantLeftOut[p.Name]; ok {
			assert.Contains(t, p.LeftOut, f)
		} else {
			assert.Empty(t, p.LeftOut, p.Name)
		}
		assert.FileExists(t, filepath.Join(target, distInfoDir(t, p), "RECORD"))
	}
	assert.Equal(t, tt.wantPkgs, got)
	for _, f := range tt.wantFiles {
		assert.FileExists(t, filepath.Join(target, f))
	}
	files := tree(t, target)
	for p, data := range previous {
		assert.Equal(t, data, files[p], "earlier content is kept")
	}
	for p := range files {
		assert.False(t, isCompiled(p), "compiled file installed: %s", p)
	}
	assert.Equal(t, tt.wantChecked, opts.Verifier.(*fakeVerifier).modules())
}

func distInfoDir(t *testing.T, p Package) string {
	t.Helper()
	for _, e := range p.Entries {
		if strings.HasSuffix(e, ".dist-info") {
			return e
		}
	}
	t.Fatalf("%s has no dist-info among %v", p.Name, p.Entries)
	return ""
}

// testLog sends pip's output to the test log.
type testLog struct{ t *testing.T }

func (l *testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestInstallLocalWheels installs wheel files given by path: pip needs no
// index for them (beyond looking for a pure build of the native one).
func TestPythonInstallLocalWheels(t *testing.T) {
	requirePip(t)
	wheels := t.TempDir()
	pure := makeWheel(t, wheels, "ork-test-pure", "1.0", "py3-none-any",
		member{name: "ork_test_pure/__init__.py", data: "VALUE = 42\n"},
		member{name: "ork_test_pure-1.0.data/scripts/ork-test", data: "#!python\n"})
	native := makeWheel(t, wheels, "ork-test-native", "2.0", "cp312-cp312-manylinux2014_x86_64",
		member{name: "ork_test_native/__init__.py", data: "from ._core import *\n"},
		member{name: "ork_test_native/_core.cpython-312-x86_64-linux-gnu.so", data: "\x7fELF"})

	t.Run("pure", func(t *testing.T) {
		t.Parallel()
		target := filepath.Join(t.TempDir(), "deep", "vendor")
		v := &fakeVerifier{}
		res, err := Install(context.Background(), Options{Target: target, Packages: []string{pure}, Verifier: v, Log: &testLog{t: t}})
		require.NoError(t, err)
		require.Len(t, res.Packages, 1)
		assert.Equal(t, "ork-test-pure 1.0 (pure wheel)", res.Packages[0].String())
		assert.Equal(t, []string{"ork_test_pure"}, v.modules())
		assert.Equal(t, map[string]string{
			"ork_test_pure/": "", "ork_test_pure/__init__.py": "VALUE = 42\n",
			"ork_test_pure-1.0.dist-info/": "", "ork_test_pure-1.0.dist-info/INSTALLER": "ork\n",
		}, withoutMeta(tree(t, target)))
		info, err := os.Stat(target)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o755), info.Mode().Perm())
	})
	t.Run("native", func(t *testing.T) {
		t.Parallel()
		target := filepath.Join(t.TempDir(), "vendor")
		// Installed without its .so, the package fails to import in the
		// sandbox, as the real one would (from ._core import *).
		v := &fakeVerifier{fail: map[string]string{"ork_test_native": "ModuleNotFoundError: No module named 'ork_test_native._core'"}}
		_, err := Install(context.Background(), Options{Target: target, Packages: []string{pure, native}, Verifier: v, Log: &testLog{t: t}})
		require.Error(t, err)
		assert.Equal(t, "ork-test-native 2.0 cannot run in the sandbox: it needs native code (ork_test_native/_core.cpython-312-x86_64-linux-gnu.so), and ork's Python runs in WebAssembly, which can only run pure-Python packages", err.Error())
		assert.NoDirExists(t, target)
	})
	t.Run("no pip", func(t *testing.T) {
		t.Parallel()
		_, err := Install(context.Background(), Options{Target: t.TempDir(), Packages: []string{pure}, Pip: []string{"ork-no-such-python", "-m", "pip"}})
		require.Error(t, err)
		assert.Equal(t, "cannot run pip: ork-no-such-python was not found; ork needs a Python 3 with pip on this machine to download packages", err.Error())
	})
	t.Run("pip on another Python", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		wrapper := filepath.Join(root, "pip313")
		script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'pip 24.0 from /x/pip (python 3.13)'; exit 0; fi\nexec " +
			strings.Join(DefaultPip, " ") + " \"$@\"\n"
		require.NoError(t, os.WriteFile(wrapper, []byte(script), 0o755))
		var warnings []string
		_, err := Install(context.Background(), Options{Target: filepath.Join(root, "vendor"), Packages: []string{pure}, Pip: []string{wrapper},
			Warn: func(m string) { warnings = append(warnings, m) }})
		require.NoError(t, err)
		assert.Equal(t, []string{"pip runs on Python 3.13, so it picks the conditional dependencies (python_version markers) of Python 3.13, not of the sandbox's 3.12; use a Python 3.12 with pip for exact results"}, warnings)
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		target := filepath.Join(root, "vendor")
		writeTree(t, target, previous)
		// pip sleeps through a slow "python3": cancelling must kill it
		// quickly even though it is a child of the launcher.
		slow := filepath.Join(root, "slowpip")
		require.NoError(t, os.WriteFile(slow, []byte("#!/bin/sh\nsleep 30\n"), 0o755))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Install(ctx, Options{Target: target, Packages: []string{pure}, Pip: []string{slow}})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.Equal(t, withDirs(previous), tree(t, target))
		assert.Equal(t, []string{"slowpip", "vendor"}, names(t, root))
	})
	t.Run("target is a file", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "vendor")
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		_, err := Install(context.Background(), Options{Target: f, Packages: []string{pure}})
		require.Error(t, err)
		assert.Equal(t, "target "+f+" is not a directory", err.Error())
	})
}

// withoutMeta drops the METADATA, WHEEL and RECORD files of a tree.
func withoutMeta(files map[string]string) map[string]string {
	for p := range files {
		switch filepath.Base(p) {
		case "METADATA", "WHEEL", "RECORD":
			delete(files, p)
		}
	}
	return files
}
