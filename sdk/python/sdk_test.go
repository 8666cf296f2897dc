package pysdk_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/orkrun/ork/internal/testguests"
)

// The SDK's own tests (pytest, on the host's CPython, through the mock host).
func TestPythonSDK(t *testing.T) {
	dir := filepath.Join(testguests.RepoRoot(), "sdk", "python")
	cmd := exec.Command("python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pytest in sdk/python failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
