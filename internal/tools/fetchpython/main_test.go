package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orkrun/ork/internal/pyruntime"
)

func TestVerifyRefusesAnythingButThePinnedArtifact(t *testing.T) {
	_, err := verify([]byte("a corrupted or substituted tarball"))
	if err == nil || !strings.Contains(err.Error(), "does not match its pinned integrity") || !strings.Contains(err.Error(), "refusing to build with it") {
		t.Fatalf("got %v", err)
	}
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// An interpreter file that is already there is checked against the pinned
// sha256 of the stripped module, not merely for gzip and wasm magic, and is
// refused (not replaced behind the user's back) with the command that fixes it.
func TestExistingArtifactMustMatchThePin(t *testing.T) {
	for name, content := range map[string][]byte{
		"fake wasm":  gz(t, []byte("\x00asm\x01\x00\x00\x00\x00\x00")),
		"not gzip":   []byte("\x00asm\x01\x00\x00\x00"),
		"not wasm":   gz(t, []byte("hello, world")),
		"truncated":  gz(t, []byte("\x00asm\x01\x00\x00\x00"))[:12],
		"empty file": nil,
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "python.wasm.gz")
			if err := os.WriteFile(out, content, 0o644); err != nil {
				t.Fatal(err)
			}
			err := run(out)
			if err == nil {
				t.Fatal("a file that is not the pinned interpreter was accepted")
			}
			for _, want := range []string{out + " is not the interpreter pinned in internal/pyruntime/pyruntime.go", "refusing to build with it", "rm " + out + " && make build"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if name == "fake wasm" && !strings.Contains(err.Error(), "sha256") {
				t.Errorf("error %q does not say the digest differs", err)
			}
			if got, _ := os.ReadFile(out); !bytes.Equal(got, content) {
				t.Error("the bad file was modified")
			}
		})
	}
}

// The artifact in dist/ (when this checkout has one) is the pinned one.
func TestEmbeddedArtifactMatchesThePin(t *testing.T) {
	path := filepath.Join("..", "..", "pyruntime", "dist", pyruntime.EmbeddedName)
	err := pyruntime.VerifyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no interpreter in dist/: run make build")
	}
	if err != nil {
		t.Fatal(err)
	}
}
