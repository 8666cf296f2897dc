//go:build cgo

package runtime

/*
#include <stdint.h>

// Defined in wasmtime_pool.c.
extern void ork_set_pooling(void *cfg, uint32_t slots, uint64_t max_memory, uint32_t warm,
                            uint64_t memory_keep_resident, uint64_t table_keep_resident,
                            uint64_t table_elements, uint64_t instance_size);
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	goruntime "runtime"
	"syscall"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// The pooling instance allocator. With wasmtime's default (on-demand)
// allocator every instance mmaps its linear memory's reservation and its
// copy-on-write image and munmaps them when its store closes: each takes the
// process's mmap_lock for writing (stalling page faults on every other
// thread) and munmap shoots down TLBs on every CPU, so concurrent Python
// tasks ran no faster than one at a time. The pool reserves its slots once,
// per engine; a slot is reset in place, and the slot of the last instance
// of the same module keeps its image mapped. What pays is
// linear_memory_keep_resident: the pages a task dirtied within it are
// restored from the image (found with the PAGEMAP_SCAN ioctl, Linux 6.7)
// instead of dropped, so the next task of the same module does not fault
// them in again. Without PAGEMAP_SCAN wasmtime would memset all of it on
// every reset, and the pool alone measured no faster than on-demand: there
// the engine keeps the on-demand allocator (poolingAvailable).
//
// A pooled configuration never fails a task for the pool: when all its
// slots are taken, or when a module does not fit a slot (more tables or
// memories than one, a bigger table or VMContext), the task runs in the
// configuration's overflow, identical but on-demand (errPoolRefused).

// poolMemory is the largest linear memory a slot holds: the largest memory
// limit ork allows (4 GiB, internal/project.MaxMemory; all a wasm32 memory
// can address). wasmtime requires it to be within the memory reservation
// plus guard (4 GiB + 32 MiB on 64-bit hosts, its defaults, kept), so a
// slot costs no more address space than an on-demand instance's
// reservation: about 4 GiB of it, reserved, not committed.
const poolMemory = 4 << 30

// poolKeepResident is how much of a slot's linear memory, from its start,
// is reset by copying its dirtied pages back from the image rather than
// dropped: covers the Python snapshot's image (about 14 MiB) and what a
// small task adds. Measured: 8 MiB gains nothing, 16 MiB or more cuts page
// faults by three quarters. The pages stay resident in warm slots.
const poolKeepResident = 32 << 20

// poolTableElements bounds a slot's table (wasmtime's default is 20,000);
// a module with a bigger one runs in the overflow.
const poolTableElements = 65536

// poolInstanceSize bounds an instance's VMContext (wasmtime's default,
// 1 MiB); a module with a bigger one runs in the overflow.
const poolInstanceSize = 1 << 20

// poolSlots is how many instances a pooled engine holds at once: twice the
// CPUs (ork's default concurrency is one task per CPU; snapshot self-tests
// and tasks waiting on the host take slots too), at least 16, at most 128:
// 4 GiB of address space each, 64 GiB to 512 GiB per engine. More tasks
// at once run in the overflow.
func poolSlots() int { return min(max(2*goruntime.NumCPU(), 16), 128) }

// poolWarmSlots is how many unused slots keep their image mapped and their
// kept-resident pages (up to poolKeepResident each).
func poolWarmSlots() int { return min(max(goruntime.NumCPU(), 4), poolSlots()) }

// poolSettings is what wasmtimeSettings says of the pool: all that could
// matter to compiled code (the memory's maximum); the slot counts do not.
var poolSettings = fmt.Sprintf("alloc=pooling max-memory=%d", uint64(poolMemory))

// errPoolRefused: the pool has no slot for the task (all taken, or its
// module does not fit one); it runs in the overflow configuration.
var errPoolRefused = errors.New("the wasmtime instance pool has no slot for the task")

// poolingAvailable reports whether engines use the pooling allocator: on
// Linux 6.7 or later, which has PAGEMAP_SCAN.
var poolingAvailable = func() bool {
	if goruntime.GOOS != "linux" {
		return false
	}
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return false
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(b), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 6 || major == 6 && minor >= 7
}()

// setPooling makes cfg's engine use the pooling allocator; before
// NewEngineWithConfig, which consumes cfg.
func setPooling(cfg *wasmtime.Config) error {
	ptr := configPointer(cfg)
	if ptr == nil {
		return errors.New("the wasmtime engine cannot reach wasmtime-go's config pointer (has its Config type changed?)")
	}
	C.ork_set_pooling(ptr, C.uint32_t(poolSlots()), C.uint64_t(poolMemory), C.uint32_t(poolWarmSlots()),
		C.uint64_t(poolKeepResident), 0, C.uint64_t(poolTableElements), C.uint64_t(poolInstanceSize))
	goruntime.KeepAlive(cfg)
	return nil
}

// configPointer is the wasm_config_t* behind a Config, which the pooling
// allocator needs and wasmtime-go does not expose (nil if that changed, or
// if the Config was used up).
func configPointer(c *wasmtime.Config) unsafe.Pointer {
	f := reflect.ValueOf(c).Elem().FieldByName("_ptr")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil
	}
	return f.UnsafePointer()
}

// take takes one of c's pool slots for an instance, false when all are
// taken; true at once when c is on-demand. give returns it once the
// instance's store is closed.
func (c *wasmtimeConfig) take() bool {
	if c.slots == nil {
		return true
	}
	select {
	case c.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// waitSlot takes a slot, waiting for one while ctx allows.
func (c *wasmtimeConfig) waitSlot(ctx context.Context) error {
	if c.slots == nil {
		return nil
	}
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *wasmtimeConfig) give() {
	if c.slots != nil {
		<-c.slots
	}
}

// poolRefused reports whether err, instantiating in c, is the pool's
// refusal: c is pooled and the error is not a trap of the module's start
// function (a link error, refused also in the overflow, is reported from
// there).
func (c *wasmtimeConfig) poolRefused(err error) bool {
	var trap *wasmtime.Trap
	return c.slots != nil && !errors.As(err, &trap)
}

// overflowOf is the on-demand configuration of c's tasks the pool refuses;
// c itself when it is on-demand.
func (e *wasmtimeEngine) overflowOf(c *wasmtimeConfig) (*wasmtimeConfig, error) {
	if c.slots == nil {
		return c, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("runtime host is closed")
	}
	if c.overflow == nil {
		o, err := newWasmtimeConfigAlloc(e.cache, c.fuel, false)
		if err != nil {
			return nil, err
		}
		c.overflow = o
	}
	return c.overflow, nil
}
