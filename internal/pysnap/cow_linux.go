//go:build linux

package pysnap

import (
	"errors"
	"os"
	"sync"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

const cowSupported = true

// cowMemory is linear memory whose first bytes are the snapshot image mapped
// copy-on-write (MAP_PRIVATE): pages a task never writes stay shared with the
// page cache. It sits at the bottom of a MAP_NORESERVE reservation as large
// as the memory limit, so growing never moves or copies it.
type cowMemory struct {
	mu   sync.Mutex
	base unsafe.Pointer
	size uintptr // the reservation
	mem  []byte  // base[:size]
}

var _ experimental.MemoryAllocator = (*cowMemory)(nil)

func mapImage(f *os.File, imageLen int, limit uint64) (*cowMemory, error) {
	if limit < uint64(imageLen) {
		return nil, errors.New("the memory limit is below the image size")
	}
	size := uintptr(limit)
	base, err := unix.MmapPtr(-1, 0, nil, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, err
	}
	if imageLen > 0 {
		_, err = unix.MmapPtr(int(f.Fd()), 0, base, uintptr(imageLen), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_FIXED)
		if err != nil {
			_ = unix.MunmapPtr(base, size)
			return nil, err
		}
	}
	return &cowMemory{base: base, size: size, mem: unsafe.Slice((*byte)(base), size)}, nil
}

// Allocate implements experimental.MemoryAllocator: the memory is mapped
// already, by mapImage.
func (m *cowMemory) Allocate(_, _ uint64) experimental.LinearMemory { return m }

// Reallocate implements experimental.LinearMemory.
func (m *cowMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mem == nil || size > uint64(m.size) {
		return nil
	}
	return m.mem[:size:size]
}

func (m *cowMemory) free() { m.Free() }

// Free implements experimental.LinearMemory. It may be called twice (by
// wazero when the module closes, and by Start).
func (m *cowMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mem == nil {
		return
	}
	m.mem = nil
	_ = unix.MunmapPtr(m.base, m.size)
}
