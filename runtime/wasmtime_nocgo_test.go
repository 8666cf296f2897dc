//go:build !cgo

package runtime_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/runtime"
)

func TestWasmtimeNeedsCgo(t *testing.T) {
	assert.Equal(t, []string{"wazero"}, runtime.Engines())
	_, err := runtime.New(runtime.WithEngine("wasmtime"))
	require.EqualError(t, err, "this ork binary was built without cgo, so the wasmtime engine is not in it; use engine wazero or rebuild with CGO_ENABLED=1")
}
