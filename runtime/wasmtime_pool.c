//go:build cgo

// The pooling instance allocator of the wasmtime engine (wasmtime_pool.go).
// wasmtime-go has no setter for it; its C API does. Declared here rather
// than included, as in wasmtime_epoch.c.

#include <stddef.h>
#include <stdint.h>

typedef struct wasm_config_t wasm_config_t;
typedef struct wasmtime_pooling_allocation_config_t wasmtime_pooling_allocation_config_t;

extern wasmtime_pooling_allocation_config_t *wasmtime_pooling_allocation_config_new(void);
extern void wasmtime_pooling_allocation_config_delete(wasmtime_pooling_allocation_config_t *);
extern void wasmtime_pooling_allocation_config_total_core_instances_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_total_memories_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_total_tables_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_max_memory_size_set(
    wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_max_unused_warm_slots_set(
    wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(
    wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_table_keep_resident_set(
    wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_table_elements_set(
    wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_max_core_instance_size_set(
    wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_strategy_set(wasm_config_t *,
                                                     const wasmtime_pooling_allocation_config_t *);

// Sets the pooling allocator on cfg (which must not have made an engine
// yet); wasmtime copies the pooling configuration.
void ork_set_pooling(void *cfg, uint32_t slots, uint64_t max_memory, uint32_t warm,
                     uint64_t memory_keep_resident, uint64_t table_keep_resident,
                     uint64_t table_elements, uint64_t instance_size) {
	wasmtime_pooling_allocation_config_t *p = wasmtime_pooling_allocation_config_new();
	wasmtime_pooling_allocation_config_total_core_instances_set(p, slots);
	wasmtime_pooling_allocation_config_total_memories_set(p, slots);
	wasmtime_pooling_allocation_config_total_tables_set(p, slots);
	wasmtime_pooling_allocation_config_max_memory_size_set(p, (size_t)max_memory);
	wasmtime_pooling_allocation_config_max_unused_warm_slots_set(p, warm);
	wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(p, (size_t)memory_keep_resident);
	wasmtime_pooling_allocation_config_table_keep_resident_set(p, (size_t)table_keep_resident);
	wasmtime_pooling_allocation_config_table_elements_set(p, (size_t)table_elements);
	wasmtime_pooling_allocation_config_max_core_instance_size_set(p, (size_t)instance_size);
	wasmtime_pooling_allocation_strategy_set((wasm_config_t *)cfg, p);
	wasmtime_pooling_allocation_config_delete(p);
}
