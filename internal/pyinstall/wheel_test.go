package pyinstall

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPythonWheelUnpack(t *testing.T) {
	tests := []struct {
		name        string
		project     string
		tag         string
		members     []member
		leaveOut    bool
		wantModules []string
		wantEntries []string
		wantNative  []string // Native, largest first
		wantExt     []string
		wantLeftOut []string
		wantFiles   map[string]string // files under the install dir (dist-info excluded)
		wantRecord  []string          // RECORD paths
	}{
		{
			name:    "pure package and module",
			project: "demo-pkg", tag: "py3-none-any",
			members: []member{
				{name: "demo_pkg/__init__.py", data: "X = 1\n"},
				{name: "demo_pkg/sub/mod.py", data: "Y = 2\n"},
				{name: "demo_single.py", data: "Z = 3\n"},
				{name: "demo_pkg/py.typed"},
				{name: "demo-pkg.pth", data: "import os\n"},
			},
			wantModules: []string{"demo_pkg", "demo_single"},
			wantEntries: []string{"demo-pkg.pth", "demo_pkg", "demo_pkg-1.0.dist-info", "demo_single.py"},
			wantFiles: map[string]string{
				"demo_pkg/__init__.py": "X = 1\n", "demo_pkg/sub/mod.py": "Y = 2\n", "demo_single.py": "Z = 3\n",
				"demo_pkg/py.typed": "", "demo-pkg.pth": "import os\n",
			},
			wantRecord: []string{"demo_pkg/__init__.py", "demo_pkg/sub/mod.py", "demo_single.py", "demo_pkg/py.typed", "demo-pkg.pth",
				"demo_pkg-1.0.dist-info/METADATA", "demo_pkg-1.0.dist-info/WHEEL", "demo_pkg-1.0.dist-info/RECORD", "demo_pkg-1.0.dist-info/INSTALLER"},
		},
		{
			name:    "data directories",
			project: "datapkg", tag: "py3-none-any",
			members: []member{
				{name: "datapkg-1.0.data/purelib/datapkg/__init__.py", data: "A = 1\n"},
				{name: "datapkg-1.0.data/platlib/plat_mod.py", data: "B = 2\n"},
				{name: "datapkg-1.0.data/scripts/datapkg-run", data: "#!python\n", exec: true},
				{name: "datapkg-1.0.data/headers/datapkg.h", data: "int x;\n"},
				{name: "datapkg-1.0.data/data/share/doc.txt", data: "doc\n"},
				{name: "tool.sh", data: "#!/bin/sh\n", exec: true},
			},
			wantModules: []string{"datapkg", "plat_mod"},
			wantEntries: []string{"datapkg", "datapkg-1.0.dist-info", "plat_mod.py", "tool.sh"},
			wantFiles:   map[string]string{"datapkg/__init__.py": "A = 1\n", "plat_mod.py": "B = 2\n", "tool.sh": "#!/bin/sh\n"},
			wantRecord: []string{"datapkg/__init__.py", "plat_mod.py", "tool.sh",
				"datapkg-1.0.dist-info/METADATA", "datapkg-1.0.dist-info/WHEEL", "datapkg-1.0.dist-info/RECORD", "datapkg-1.0.dist-info/INSTALLER"},
		},
		{
			name:    "native files found, largest extension first",
			project: "natpkg", tag: "cp312-cp312-manylinux2014_x86_64",
			members: []member{
				{name: "natpkg/__init__.py", data: "from ._core import *\n"},
				{name: "natpkg/_core.cpython-312-x86_64-linux-gnu.so", data: strings.Repeat("x", 300)},
				{name: "natpkg/_small.cpython-312-x86_64-linux-gnu.so", data: "x"},
				{name: "natpkg.libs/libblas-1234.so.3", data: strings.Repeat("x", 1000)},
				{name: "_natshim.abi3.so", data: "xx"},
			},
			wantModules: []string{"_natshim", "natpkg"},
			wantEntries: []string{"_natshim.abi3.so", "natpkg", "natpkg-1.0.dist-info", "natpkg.libs"},
			wantNative: []string{"natpkg.libs/libblas-1234.so.3", "natpkg/_core.cpython-312-x86_64-linux-gnu.so",
				"_natshim.abi3.so", "natpkg/_small.cpython-312-x86_64-linux-gnu.so"},
			wantExt: []string{"natpkg/_core.cpython-312-x86_64-linux-gnu.so", "_natshim.abi3.so", "natpkg/_small.cpython-312-x86_64-linux-gnu.so"},
		},
		{
			name:    "compiled speed-ups left out",
			project: "Fast-Pkg", tag: "cp312-cp312-manylinux2014_x86_64",
			members: []member{
				{name: "fast_pkg/__init__.py", data: "try:\n    from ._speedups import f\nexcept ImportError:\n    from ._native import f\n"},
				{name: "fast_pkg/_native.py", data: "def f(): pass\n"},
				{name: "fast_pkg/_speedups.cpython-312-x86_64-linux-gnu.so", data: "ELF"},
				{name: "fast_pkg/_speedups.pyi", data: "def f() -> None: ...\n"},
				{name: "fast_pkg.libs/libfast.so", data: "ELF"},
				{name: "Fast_Pkg-1.0.data/platlib/fast_pkg/_other.pyd", data: "MZ"},
			},
			leaveOut:    true,
			wantModules: []string{"fast_pkg"},
			wantEntries: []string{"fast_pkg", "fast_pkg-1.0.dist-info"},
			wantLeftOut: []string{"fast_pkg.libs/libfast.so", "fast_pkg/_other.pyd", "fast_pkg/_speedups.cpython-312-x86_64-linux-gnu.so"},
			wantFiles: map[string]string{
				"fast_pkg/__init__.py":   "try:\n    from ._speedups import f\nexcept ImportError:\n    from ._native import f\n",
				"fast_pkg/_native.py":    "def f(): pass\n",
				"fast_pkg/_speedups.pyi": "def f() -> None: ...\n",
			},
			wantRecord: []string{"fast_pkg/__init__.py", "fast_pkg/_native.py", "fast_pkg/_speedups.pyi",
				"fast_pkg-1.0.dist-info/METADATA", "fast_pkg-1.0.dist-info/WHEEL", "fast_pkg-1.0.dist-info/RECORD", "fast_pkg-1.0.dist-info/INSTALLER"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := makeWheel(t, t.TempDir(), tt.project, "1.0", tt.tag, tt.members...)
			w, zr, err := openWheel(file)
			require.NoError(t, err)
			defer zr.Close()
			assert.Equal(t, tt.project, w.Name)
			assert.Equal(t, "1.0", w.Version)
			assert.Equal(t, tt.tag == "py3-none-any", isPureTag(file))
			if tt.leaveOut {
				assert.NotEmpty(t, w.Native)
				assert.Equal(t, tt.wantLeftOut, w.leaveOutCompiled())
				assert.Empty(t, w.Native)
			}
			assert.Equal(t, tt.wantModules, w.Modules)
			assert.Equal(t, tt.wantEntries, w.Entries)
			assert.Equal(t, tt.wantNative, w.Native)
			assert.Equal(t, tt.wantExt, w.Extensions)
			if tt.wantFiles == nil {
				return
			}
			dir := t.TempDir()
			require.NoError(t, w.unpack(dir))
			got := map[string]string{}
			for p, data := range tree(t, dir) {
				if !strings.HasSuffix(p, "/") && !strings.Contains(p, ".dist-info/") {
					got[p] = data
				}
			}
			assert.Equal(t, tt.wantFiles, got)
			var record []string
			for _, line := range strings.Split(strings.TrimSpace(tree(t, dir)[w.DistInfo+"/RECORD"]), "\n") {
				p, _, _ := strings.Cut(line, ",")
				record = append(record, p)
			}
			assert.ElementsMatch(t, tt.wantRecord, record)
			assert.Equal(t, "ork\n", tree(t, dir)[w.DistInfo+"/INSTALLER"])
		})
	}
}

func TestPythonWheelRejected(t *testing.T) {
	tests := []struct {
		name    string
		members []member
		want    string
	}{
		{"parent path", []member{{name: "../evil.py"}}, `unsafe member path "../evil.py"`},
		{"inner parent path", []member{{name: "pkg/../../evil.py"}}, `unsafe member path "pkg/../../evil.py"`},
		{"absolute path", []member{{name: "/etc/evil.py"}}, `unsafe member path "/etc/evil.py"`},
		{"backslash", []member{{name: "pkg\\evil.py"}}, `unsafe member path "pkg\\evil.py"`},
		{"no metadata", []member{{name: "bad-1.0.dist-info/METADATA", data: "Summary: x\n"}}, "bad-1.0.dist-info/METADATA has no Name or Version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := makeWheel(t, t.TempDir(), "bad", "1.0", "py3-none-any", tt.members...)
			_, _, err := openWheel(file)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	t.Run("no dist-info", func(t *testing.T) {
		file := makeWheelRaw(t, t.TempDir(), "other-1.0-py3-none-any.whl", member{name: "other.py"})
		_, _, err := openWheel(file)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "wheel other-1.0-py3-none-any.whl has no .dist-info directory")
	})
}

func TestPythonWheelFileTags(t *testing.T) {
	tests := []struct {
		file          string
		pure          bool
		name, version string
	}{
		{"pydantic-1.10.27-py3-none-any.whl", true, "pydantic", "1.10.27"},
		{"six-1.16.0-py2.py3-none-any.whl", true, "six", "1.16.0"},
		{"pkg-1.0-1build-py3-none-any.whl", true, "pkg", "1.0"},
		{"markupsafe-3.0.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", false, "markupsafe", "3.0.2"},
		{"cryptography-43.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", false, "cryptography", "43.0.0"},
		{"odd-1.0-py3-none-win_amd64.whl", false, "odd", "1.0"},
		{"not-a-wheel.zip", false, "", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.pure, isPureTag(tt.file), tt.file)
		name, version, _ := wheelNameVersion(tt.file)
		assert.Equal(t, tt.name, name, tt.file)
		assert.Equal(t, tt.version, version, tt.file)
	}
}
