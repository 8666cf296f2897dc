//go:build !cgo

package runtime

import "errors"

const wasmtimeAvailable = false

func newWasmtimeEngine(hostConfig) (engine, error) {
	return nil, errors.New("this ork binary was built without cgo, so the wasmtime engine is not in it; use engine wazero or rebuild with CGO_ENABLED=1")
}
