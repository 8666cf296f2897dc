//go:build !linux

package pysnap

import (
	"errors"
	"os"

	"github.com/tetratelabs/wazero/experimental"
)

const cowSupported = false

type cowMemory struct{}

func mapImage(*os.File, int, uint64) (*cowMemory, error) {
	return nil, errors.New("copy-on-write mapping is only implemented on Linux")
}

func (m *cowMemory) Allocate(_, _ uint64) experimental.LinearMemory { return nil }
func (m *cowMemory) Reallocate(uint64) []byte                       { return nil }
func (m *cowMemory) Free()                                          {}
func (m *cowMemory) free()                                          {}
