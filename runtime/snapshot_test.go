package runtime_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/pyruntime"
	"github.com/orkrun/ork/internal/pysnap"
	"github.com/orkrun/ork/runtime"
)

// TestRunSnapshot starts tasks from a snapshot built on the host's own
// engine: the clock gate reaches the task's session, exit statuses and
// timeouts are classified as for a cold start.
func TestRunSnapshot(t *testing.T) {
	f := setup(t)
	bin, err := pyruntime.Wasm()
	if err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	m, err := f.host.LoadInterpreter(ctx, "python.wasm", bin)
	require.NoError(t, err)
	p, err := pysnap.Prepare(bin)
	require.NoError(t, err)
	eng, err := f.host.SnapshotEngine(ctx, runtime.Policy{})
	require.NoError(t, err)
	snap, err := pysnap.Build(ctx, eng, p, pysnap.BootSpec{Mounts: []pysnap.Mount{{GuestPath: "/"}}})
	require.NoError(t, err)
	defer snap.Close()

	run := func(policy runtime.Policy, code string) (*runtime.Result, *abi.Session, string) {
		t.Helper()
		policy.Mounts = []runtime.Mount{{HostPath: f.project, GuestPath: "/"}}
		sess := abi.NewSession(abi.Task{Info: abi.TaskInfo{Task: "snap", Workflow: "wf", RunID: "r"}}, "ork/test", nil)
		var out bytes.Buffer
		res, err := f.host.RunSnapshot(ctx, snap, runtime.Task{
			Module: m, Session: sess, Stdout: &out, Stderr: &out, Policy: policy,
		}, gatePrelude+code, []string{"-c", "a1"})
		require.NoError(t, err)
		return res, sess, out.String()
	}

	res, sess, out := run(runtime.Policy{Env: []string{"X=1"}}, `
import os, sys
mb = bytearray(256)
status, n, body = call(mb, "abi.hello", '{"abi":1,"sdk":"raw"}')
status, n, body = call(mb, "task.info", "")
print("task", json.loads(body)["task"], sys.argv, os.environ.get("X"))
`)
	require.Nil(t, res.Failure, out)
	assert.Contains(t, out, "task snap ['-c', 'a1'] 1")
	assert.True(t, sess.HelloDone())
	assert.Greater(t, res.Duration, time.Duration(0))

	res, _, out = run(runtime.Policy{}, "import sys; sys.exit(3)")
	require.NotNil(t, res.Failure, out)
	assert.Equal(t, runtime.ReasonExit, res.Failure.Reason)
	assert.Equal(t, 3, res.Failure.ExitCode)

	res, _, out = run(runtime.Policy{}, `mb = bytearray(256); call(mb, "task.info", "")`)
	require.NotNil(t, res.Failure, out)
	assert.Equal(t, runtime.ReasonABI, res.Failure.Reason, res.Failure.Message)

	res, _, out = run(runtime.Policy{Timeout: 200 * time.Millisecond}, "while True: pass")
	require.NotNil(t, res.Failure, out)
	assert.Equal(t, runtime.ReasonTimeout, res.Failure.Reason, res.Failure.Message)

	// A different layout is a host-side error: the caller starts it cold.
	_, err = f.host.RunSnapshot(ctx, snap, runtime.Task{Module: m, Session: abi.NewSession(abi.Task{}, "ork/test", nil),
		Policy: runtime.Policy{Mounts: []runtime.Mount{{HostPath: f.project, GuestPath: "/", Writable: true}}}}, "pass", nil)
	assert.ErrorIs(t, err, pysnap.ErrMountMismatch)
}
