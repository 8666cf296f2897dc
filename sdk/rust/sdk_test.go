package rustsdk_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orkrun/ork/internal/testguests"
)

func cargo(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("CARGO")
	if bin == "" {
		bin = "cargo"
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// The SDK's own unit, integration (mock host) and doc tests, on the host target.
func TestSDKCrates(t *testing.T) {
	testguests.UseDebianToolchain()
	root := filepath.Join(testguests.RepoRoot(), "sdk", "rust")
	out, err := cargo(t, root, "test", "--workspace", "--quiet")
	if err != nil {
		t.Fatalf("cargo test in sdk/rust failed: %v\n%s", err, out)
	}
}

// Every misuse of #[executor] and #[ork::task] under tests/compile_fail must
// fail to compile with the error its first line names.
func TestMacroMisuseIsACompileError(t *testing.T) {
	testguests.UseDebianToolchain()
	repo := testguests.RepoRoot()
	sdk := filepath.Join(repo, "sdk", "rust", "ork")
	cases, err := filepath.Glob(filepath.Join(sdk, "tests", "compile_fail", "*.rs"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no compile_fail cases found: %v", err)
	}
	target := filepath.Join(repo, ".cache", "compile-fail-target")
	t.Setenv("CARGO_TARGET_DIR", target)
	for _, c := range cases {
		name := strings.TrimSuffix(filepath.Base(c), ".rs")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(c)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(src), "\n")
			want, ok := strings.CutPrefix(first, "// error: ")
			if !ok {
				t.Fatalf("%s: the first line must be `// error: <expected text>`", c)
			}
			dir := t.TempDir()
			manifest := "[package]\nname = \"cf-" + strings.ReplaceAll(name, "_", "-") + "\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n" +
				"[dependencies]\nork = { path = \"" + sdk + "\" }\n\n[workspace]\n"
			if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "Cargo.toml"), []byte(manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "src", "main.rs"), src, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := cargo(t, dir, "check", "--quiet")
			if err == nil {
				t.Fatalf("%s compiled, but it must fail with %q", name, want)
			}
			if !strings.Contains(out, want) {
				t.Fatalf("%s failed without %q:\n%s", name, want, out)
			}
			if strings.Contains(out, "panicked") {
				t.Fatalf("the macro panicked instead of reporting a spanned error:\n%s", out)
			}
		})
	}
}
