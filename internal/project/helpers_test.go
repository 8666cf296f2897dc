package project

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles creates files (and, for names ending in "/", directories)
// under a new temporary directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// merge returns the union of maps, later ones winning.
func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// checkErr fails unless err is an invalid-project error (an *Error found
// by errors.As) whose text is want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want:\n%s", want)
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Errorf("errors.As(%T, *Error) = false", err)
	}
	if got := err.Error(); got != want {
		t.Errorf("wrong error\n got: %s\nwant: %s\n(got %q)", got, want, got)
	}
}

// mustLoad loads the project at root and fails the test on error.
func mustLoad(t *testing.T, root string) *Project {
	t.Helper()
	p, err := Load(root)
	if err != nil {
		t.Fatalf("Load: unexpected error:\n%v", err)
	}
	return p
}
