//go:build cgo

// The epoch deadline callback of the wasmtime engine (wasmtime.go). The
// wasmtime C API is declared here rather than included: its headers live in
// the wasmtime-go module, and the library itself is linked through it.

#include <stddef.h>
#include <stdint.h>

#include "_cgo_export.h"

typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef uint8_t wasmtime_update_deadline_kind_t;

extern void wasmtime_store_epoch_deadline_callback(
    wasmtime_store_t *store,
    wasmtime_error_t *(*func)(wasmtime_context_t *context, void *data,
                              uint64_t *epoch_deadline_delta,
                              wasmtime_update_deadline_kind_t *update_kind),
    void *data, void (*finalizer)(void *));
extern wasmtime_error_t *wasmtime_error_new(const char *message);

// Called when a store's epoch deadline passes: stop the guest if its task's
// context is done, otherwise look again at the next tick.
static wasmtime_error_t *ork_epoch_deadline(wasmtime_context_t *context, void *data,
                                            uint64_t *delta,
                                            wasmtime_update_deadline_kind_t *kind) {
	(void)context;
	*kind = 0; // WASMTIME_UPDATE_DEADLINE_CONTINUE
	if (orkEpochDeadline((uintptr_t)data)) {
		return wasmtime_error_new("interrupted: the task's context is done");
	}
	*delta = 1;
	return NULL;
}

void ork_set_epoch_callback(void *store, uintptr_t handle) {
	wasmtime_store_epoch_deadline_callback((wasmtime_store_t *)store, ork_epoch_deadline,
	                                       (void *)handle, NULL);
}
