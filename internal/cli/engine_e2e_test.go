package cli_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/runtime"
)

func needWasmtime(t *testing.T) {
	t.Helper()
	if !slices.Contains(runtime.Engines(), "wasmtime") {
		t.Skip("this build has no wasmtime engine (built without cgo)")
	}
}

// TestCPULimit: sandbox.cpu runs the executor on wasmtime with a fuel
// budget; a task that burns it fails with reason cpu and a message naming
// the limit, and every metered task records the fuel it used.
func TestCPULimit(t *testing.T) {
	needWasmtime(t)
	dir := writeProject(t, map[string]string{
		"ork.yaml": `executors:
  metered:
    type: rust
    sandbox: {cpu: 20M, timeout: 1m}
  free:
    type: rust
`,
		"tasks/spin.yaml": "module: modules/probe.wasm\nparams: {action: spin}\n",
		"tasks/echo.yaml": "module: modules/probe.wasm\nparams: {action: trivial}\n",
		"wf.yaml": `name: cpu
tasks:
  spin: {executor: metered, config_file: tasks/spin.yaml}
  echo: {executor: metered, config_file: tasks/echo.yaml}
  free: {executor: free, config_file: tasks/echo.yaml}
`,
	})
	copyModule(t, dir, "probe", "probe.wasm")
	r := ork(t, dir, "run", "wf.yaml", "--json")
	require.Equal(t, 1, r.code, r.stderr)
	s := decodeSummary(t, r)

	spin := s.Tasks["spin"]
	assert.Equal(t, "failed", spin.Status)
	assert.Equal(t, "cpu", spin.Reason)
	require.NotNil(t, spin.Error)
	assert.Equal(t, "exceeded the CPU limit of 20M fuel units (sandbox.cpu)", *spin.Error)
	assert.Equal(t, "wasmtime", spin.Engine)

	echo := s.Tasks["echo"]
	assert.Equal(t, "succeeded", echo.Status)
	assert.Equal(t, "wasmtime", echo.Engine)
	var fuel float64
	for _, m := range echo.Metrics {
		if m.Name == "ork_fuel" {
			fuel = m.Value
			assert.Equal(t, map[string]string{"task": "echo", "workflow": "cpu"}, m.Labels)
		}
	}
	assert.Greater(t, fuel, 0.0, "no ork_fuel metric")
	assert.LessOrEqual(t, fuel, 20e6)

	for _, m := range s.Tasks["free"].Metrics {
		assert.NotEqual(t, "ork_fuel", m.Name, "an unmetered task recorded fuel")
	}

	// Recorded: ork runs show says which engine and why.
	shown := showRun(t, dir, s.RunID)
	assert.Equal(t, "cpu", shown.Tasks["spin"].Reason)
	assert.Equal(t, "wasmtime", shown.Tasks["spin"].Engine)
	r = ork(t, dir, "runs", "show", s.RunID)
	assert.Regexp(t, `spin +failed +1 +\S+ +wasmtime +cpu: exceeded the CPU limit of 20M fuel units`, r.stdout)
}

// TestEngineSelection: --engine runs every task on one engine; without it,
// each executor's engine: decides.
func TestEngineSelection(t *testing.T) {
	needWasmtime(t)
	dir := writeProject(t, map[string]string{
		"ork.yaml": `engine: wazero
executors:
  fast:
    type: rust
    engine: wasmtime
`,
		"tasks/echo.yaml": "module: modules/probe.wasm\nparams: {action: trivial}\n",
		"wf.yaml": `name: engines
tasks:
  a: {executor: fast, config_file: tasks/echo.yaml}
  b: {executor: rust, config_file: tasks/echo.yaml}
`,
	})
	copyModule(t, dir, "probe", "probe.wasm")
	engines := func(args ...string) map[string]string {
		r := ork(t, dir, append([]string{"run", "wf.yaml", "--json"}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		out := map[string]string{}
		for n, task := range decodeSummary(t, r).Tasks {
			out[n] = task.Engine
		}
		return out
	}
	assert.Equal(t, map[string]string{"a": "wasmtime", "b": "wazero"}, engines())
	assert.Equal(t, map[string]string{"a": "wazero", "b": "wazero"}, engines("--engine", "wazero"))
	assert.Equal(t, map[string]string{"a": "wasmtime", "b": "wasmtime"}, engines("--engine", "wasmtime"))

	r := ork(t, dir, "run", "wf.yaml", "--engine", "v8")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `unknown --engine "v8"; use wazero or wasmtime`)
}
