package runner

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/runtime"
)

func loadProject(t *testing.T, orkYAML, workflow string) (*project.Project, *project.Workflow) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ork.yaml"), []byte(orkYAML), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "workflows", "wf.yaml"), []byte(workflow), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "m.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644))
	for _, f := range []string{"a.yaml", "b.yaml"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("module: m.wasm\n"), 0o644))
	}
	p, err := project.Load(dir)
	require.NoError(t, err)
	wf, err := p.LoadWorkflow(filepath.Join(dir, "workflows", "wf.yaml"))
	require.NoError(t, err)
	return p, wf
}

// With nothing set, a task gets ork's default policy: 256 MiB, 10 minutes,
// no CPU limit, no environment (not even variables the host has), and only
// the project's mounts (read-only), its scratch and its output directory.
func TestTaskPolicyDefaults(t *testing.T) {
	t.Setenv("HOME", "/home/someone") // set on the host, never passed by default
	p, wf := loadProject(t, "executors: {}\n", "name: w\ntasks:\n  a: {executor: rust, config_file: a.yaml}\n")
	proj := []runtime.Mount{{HostPath: "/view", GuestPath: "/"}, {HostPath: p.Root + "/tasks", GuestPath: "/tasks"}}
	pol := taskPolicy(proj, wf, wf.Tasks["a"], p.Executors["rust"], "/s", "/o")
	assert.Equal(t, uint64(256<<20), pol.MemoryBytes)
	assert.Equal(t, "the default memory limit; set executors.rust.sandbox.memory in ork.yaml to change it", pol.MemoryLimitFrom())
	assert.Equal(t, 10*time.Minute, pol.Timeout)
	assert.Equal(t, `the default timeout; set timeout on task "a" in workflows/wf.yaml or executors.rust.sandbox.timeout in ork.yaml to change it`, pol.TimeoutFrom)
	assert.Zero(t, pol.CPU)
	assert.Empty(t, pol.Env)
	assert.Equal(t, []runtime.Mount{
		{HostPath: "/view", GuestPath: "/"},
		{HostPath: p.Root + "/tasks", GuestPath: "/tasks"},
		{HostPath: "/s", GuestPath: abi.ScratchDir, Writable: true},
		{HostPath: "/o", GuestPath: abi.OutputDir, Writable: true},
	}, pol.Mounts)
	// The network is not part of a policy: no sandbox has sockets, and
	// HTTP goes through capabilities the executor must grant.
	assert.Empty(t, p.Executors["rust"].Sandbox.AllowedHosts)
}

// A task's timeout wins over its executor's sandbox.timeout, and the policy
// says which one applied, for the error of a task that exceeds it.
func TestTaskPolicyTimeoutSource(t *testing.T) {
	t.Setenv("ORK_POLICY_VISIBLE", "yes")
	p, wf := loadProject(t,
		"executors:\n  slow:\n    type: rust\n    sandbox:\n      timeout: 2s\n      memory: 64MiB\n      env: [ORK_POLICY_VISIBLE, ORK_POLICY_UNSET]\n",
		"name: w\ntasks:\n  a: {executor: slow, config_file: a.yaml}\n  b: {executor: slow, config_file: b.yaml, timeout: 300ms}\n")
	a := taskPolicy(nil, wf, wf.Tasks["a"], p.Executors["slow"], "/s", "/o")
	assert.Equal(t, 2*time.Second, a.Timeout)
	assert.Equal(t, "executors.slow.sandbox.timeout in ork.yaml", a.TimeoutFrom)
	assert.Equal(t, uint64(64<<20), a.MemoryBytes)
	assert.Equal(t, "executors.slow.sandbox.memory in ork.yaml", a.MemoryLimitFrom())
	assert.Equal(t, []string{"ORK_POLICY_VISIBLE=yes"}, a.Env)
	b := taskPolicy(nil, wf, wf.Tasks["b"], p.Executors["slow"], "/s", "/o")
	assert.Equal(t, 300*time.Millisecond, b.Timeout)
	assert.Equal(t, `the timeout of task "b" in workflows/wf.yaml`, b.TimeoutFrom)
}
