package runtime

import (
	"context"
	"errors"

	"github.com/orkrun/ork/internal/pysnap"
)

// Python snapshots (package pysnap) on either engine. They are always built
// on wazero, which can stop a booting interpreter at the snapshot trigger
// and copy its memory: the wazero engine builds them on the runtime of the
// task's memory limit, the wasmtime engine on a wazero runtime it keeps for
// boots only. Tasks then start on the host's own engine: wazero maps the
// image into a fresh instance (pysnap.Snapshot.Start); wasmtime instantiates
// the snapshot baked into a module (wasmtime_snapshot.go). Both write the
// same request (pysnap.Request) and read the runner's end the same way
// (pysnap.Result.SetOutcome, then classify).

// snapshotRun is how a task started from a snapshot ended.
type snapshotRun struct {
	out  *pysnap.Result
	stop *guestError // nil: exited with status 0
	fuel uint64      // consumed, when metered
}

// SnapshotEngine is the pysnap engine Python snapshots for p's memory limit
// are built on (pysnap.Build), on every engine: on wasmtime it is a wazero
// runtime kept for boots, with the host's compilation cache.
func (h *Host) SnapshotEngine(ctx context.Context, p Policy) (*pysnap.Engine, error) {
	return h.eng.snapshotEngine(ctx, p.memoryPages())
}

// RunSnapshot runs a Python task from snap: code runs in a fresh __main__
// with argv as sys.argv, under t's policy (mounts in the snapshot's layout,
// environment, memory, timeout) and session. The returned error is for
// host-side problems only (the task did not run; start it cold instead);
// everything the guest did wrong is a Failure.
func (h *Host) RunSnapshot(ctx context.Context, snap *pysnap.Snapshot, t Task, code string, argv []string) (*Result, error) {
	if snap == nil {
		return nil, errors.New("no Python snapshot to start the task from")
	}
	mounts := make([]pysnap.Mount, len(t.Policy.Mounts))
	for i, m := range t.Policy.Mounts {
		mounts[i] = pysnap.Mount{HostPath: m.HostPath, GuestPath: m.GuestPath, Writable: m.Writable}
	}
	// The task's time starts once the engine is ready to start it.
	if err := h.eng.prepareSnapshot(ctx, snap, t.Policy); err != nil {
		return nil, err
	}
	stderr := &tailWriter{w: orDiscard(t.Stderr)}
	runCtx, cancel := context.WithTimeout(ctx, t.Policy.timeout())
	defer cancel()
	runCtx = context.WithValue(runCtx, sessionKey{}, t.Session)
	r, err := h.eng.startSnapshot(ctx, runCtx, snap, t, pysnap.TaskSpec{
		Mounts: mounts,
		Argv:   argv,
		Env:    t.Policy.Env,
		Code:   code,
		Stdout: t.Stdout,
		Stderr: stderr,
	})
	if err != nil {
		return nil, err
	}
	t.Session.Close()
	res := &Result{Duration: r.out.Total, MemoryBytes: r.out.MemoryBytes, Fuel: r.fuel}
	if r.stop != nil {
		res.Failure = classify(ctx, t, *r.stop, res.MemoryBytes, uint64(t.Policy.memoryPages())*pageSize, stderr.String())
	}
	return res, nil
}
