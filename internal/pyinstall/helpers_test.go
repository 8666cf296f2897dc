package pyinstall

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// member is one file of a test wheel.
type member struct {
	name string
	data string
	exec bool
}

// makeWheel writes a wheel file into dir. Unless members hold them, it adds
// the dist-info METADATA, WHEEL and a RECORD listing every file.
func makeWheel(t *testing.T, dir, name, version, tag string, members ...member) string {
	t.Helper()
	file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.whl", normalizeFile(name), version, tag))
	distInfo := normalizeFile(name) + "-" + version + ".dist-info"
	has := map[string]bool{}
	for _, m := range members {
		has[m.name] = true
	}
	if !has[distInfo+"/METADATA"] {
		members = append(members, member{name: distInfo + "/METADATA", data: fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n\nA test package.\n", name, version)})
	}
	if !has[distInfo+"/WHEEL"] {
		members = append(members, member{name: distInfo + "/WHEEL", data: "Wheel-Version: 1.0\nGenerator: ork-test\nRoot-Is-Purelib: true\nTag: " + tag + "\n"})
	}
	if !has[distInfo+"/RECORD"] {
		var rec strings.Builder
		for _, m := range members {
			sum := sha256.Sum256([]byte(m.data))
			fmt.Fprintf(&rec, "%s,sha256=%s,%d\n", m.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(m.data))
		}
		fmt.Fprintf(&rec, "%s/RECORD,,\n", distInfo)
		members = append(members, member{name: distInfo + "/RECORD", data: rec.String()})
	}
	return writeZip(t, file, members...)
}

// makeWheelRaw writes a zip holding exactly members.
func makeWheelRaw(t *testing.T, dir, base string, members ...member) string {
	t.Helper()
	return writeZip(t, filepath.Join(dir, base), members...)
}

func writeZip(t *testing.T, file string, members ...member) string {
	t.Helper()
	f, err := os.Create(file)
	require.NoError(t, err)
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		mode := os.FileMode(0o644)
		if m.exec {
			mode = 0o755
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		require.NoError(t, err)
		_, err = w.Write([]byte(m.data))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return file
}

func normalizeFile(name string) string {
	return strings.ReplaceAll(normalize(name), "-", "_")
}

// tree lists every file under dir (slash paths) with its content, and every
// directory with a trailing slash.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = string(b)
		return nil
	})
	require.NoError(t, err)
	return out
}

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// fakeVerifier "imports" a module when its files exist and hold no compiled
// code, and fails the modules in fail with the given error.
type fakeVerifier struct {
	fail map[string]string

	mu    sync.Mutex
	calls [][]string
}

func (v *fakeVerifier) ImportCheck(ctx context.Context, dir string, modules []string) ([]ImportResult, error) {
	v.mu.Lock()
	v.calls = append(v.calls, append([]string(nil), modules...))
	v.mu.Unlock()
	var out []ImportResult
	for _, m := range modules {
		r := ImportResult{Module: m, OK: true}
		if e, ok := v.fail[m]; ok {
			r = ImportResult{Module: m, Error: e}
		} else if err := moduleLooksImportable(dir, m); err != nil {
			r = ImportResult{Module: m, Error: err.Error()}
		}
		out = append(out, r)
	}
	return out, nil
}

func (v *fakeVerifier) modules() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, c := range v.calls {
		out = append(out, c...)
	}
	return out
}

func moduleLooksImportable(dir, m string) error {
	if fi, err := os.Stat(filepath.Join(dir, m+".py")); err == nil && !fi.IsDir() {
		return nil
	}
	pkg := filepath.Join(dir, m)
	fi, err := os.Stat(pkg)
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("ModuleNotFoundError: No module named '%s'", m)
	}
	return filepath.WalkDir(pkg, func(p string, d fs.DirEntry, err error) error {
		if err == nil && isCompiled(p) {
			return fmt.Errorf("ImportError: %s is native code", p)
		}
		return err
	})
}
