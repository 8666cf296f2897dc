package runtime

import (
	"context"

	"github.com/orkrun/ork/internal/pysnap"
)

// engine is what a Host needs from a WebAssembly engine. There are two:
// wazeroEngine (wazero.go) and wasmtimeEngine (wasmtime.go, cgo builds only).
//
// Everything a guest can observe is decided here, in engine-neutral code, and
// both engines call it: the host ABI (hostabi.go), the clock gate (gate.go),
// poll_oneoff (poll.go), the clocks, and how a failure is classified
// (classify, from the guestError each engine makes of its own errors). An
// engine only wires these into its own host functions, applies the Policy
// (mounts, environment, memory limit, timeout, cancellation) to a fresh
// instance per task, and caches compiled modules.
type engine interface {
	// name is the engine's name, as WithEngine takes it.
	name() string
	// compile compiles m (once: the result is cached in memory, and on disk
	// when the host has a cache directory) and lists the functions it imports.
	compile(ctx context.Context, m *Module) ([]funcImport, error)
	// run executes a task in a fresh instance, as Host.Run documents.
	run(ctx context.Context, t Task) (*Result, error)
	// snapshotEngine is the pysnap engine that builds Python snapshots for
	// tasks with a memory limit of pages (snapshot.go).
	snapshotEngine(ctx context.Context, pages uint32) (*pysnap.Engine, error)
	// prepareSnapshot does, once per snapshot, what starting tasks from snap
	// needs beyond the snapshot itself (wasmtime bakes and compiles it), so
	// that the first task's timeout does not count it.
	prepareSnapshot(ctx context.Context, snap *pysnap.Snapshot, p Policy) error
	// startSnapshot runs the task of spec from snap under runCtx (the task's
	// timeout and session), with t's policy. The error is for host-side
	// problems: the task did not run.
	startSnapshot(ctx, runCtx context.Context, snap *pysnap.Snapshot, t Task, spec pysnap.TaskSpec) (*snapshotRun, error)
	// close releases everything the engine created; later calls fail.
	close(ctx context.Context) error
}
