package runtime_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/runtime"
)

// meteredFixture is the wasmtime fixture: only wasmtime meters fuel.
func meteredFixture(t *testing.T) *fixture {
	t.Helper()
	if !slices.Contains(runtime.Engines(), "wasmtime") {
		t.Skip("CPU limits need the wasmtime engine, which this binary lacks (built without cgo)")
	}
	return setupEngine(t, "wasmtime")
}

func TestFormatFuel(t *testing.T) {
	for in, want := range map[uint64]string{
		0:               "0 fuel units",
		1:               "1 fuel unit",
		999:             "999 fuel units",
		1000:            "1K fuel units",
		1_500_000:       "1.5M fuel units",
		2_000_000_000:   "2G fuel units",
		20e12:           "20T fuel units",
		math.MaxUint64:  "18446744.1T fuel units",
		123_456_789_012: "123.5G fuel units",
	} {
		assert.Equal(t, want, runtime.FormatFuel(in), "%d", in)
	}
}

// TestCPULimitStopsARunawayGuest: a guest that spins forever stops when its
// fuel runs out, long before its timeout, with a reason of its own.
func TestCPULimitStopsARunawayGuest(t *testing.T) {
	f := meteredFixture(t)
	r := f.probeRun(t, map[string]any{"action": "spin"}, runtime.Policy{CPU: 20_000_000})
	require.NotNil(t, r.res.Failure, "stderr: %s", r.stderr)
	assert.Equal(t, runtime.ReasonCPU, r.res.Failure.Reason)
	assert.Equal(t, "exceeded the CPU limit of 20M fuel units (sandbox.cpu)", r.res.Failure.Message)
	assert.Equal(t, uint64(20_000_000), r.res.Fuel, "it consumed all of it")
}

// TestCPULimitMetersTheTask: a task within its limit succeeds and reports
// the fuel it consumed; without a limit it is not metered.
func TestCPULimitMetersTheTask(t *testing.T) {
	f := meteredFixture(t)
	const limit = 1_000_000_000
	r := f.probeRun(t, map[string]any{"action": "echo"}, runtime.Policy{CPU: limit})
	require.Nil(t, r.res.Failure, "%v %s", r.res.Failure, r.stderr)
	assert.Equal(t, "t1", r.output["task"])
	assert.Contains(t, r.stdout, "stdout line")
	assert.Positive(t, r.res.Fuel)
	assert.LessOrEqual(t, r.res.Fuel, uint64(limit))

	r = f.probeRun(t, map[string]any{"action": "echo"}, runtime.Policy{})
	require.Nil(t, r.res.Failure, "%v %s", r.res.Failure, r.stderr)
	assert.Zero(t, r.res.Fuel)
}

// TestCPULimitLeavesOtherFailuresAlone: with a CPU limit it does not reach,
// a task fails exactly as it does without one: running out of memory or
// time, a trap or an exit is never taken for running out of fuel. The
// timeout is reached with all the fuel a uint64 holds: epoch interruption
// and fuel work together.
func TestCPULimitLeavesOtherFailuresAlone(t *testing.T) {
	f := meteredFixture(t)
	tests := []struct {
		name   string
		params map[string]any
		policy runtime.Policy
		reason runtime.Reason
	}{
		{"memory limit", map[string]any{"action": "alloc", "mb": 200}, runtime.Policy{MemoryBytes: 32 << 20}, runtime.ReasonMemory},
		{"memory limit gradually", map[string]any{"action": "alloc", "mb": 200, "chunk_kb": 64}, runtime.Policy{MemoryBytes: 32 << 20}, runtime.ReasonMemory},
		{"trap", map[string]any{"action": "trap"}, runtime.Policy{}, runtime.ReasonTrap},
		{"panic", map[string]any{"action": "panic"}, runtime.Policy{}, runtime.ReasonTrap},
		{"exit", map[string]any{"action": "exit", "code": 3}, runtime.Policy{}, runtime.ReasonExit},
		{"timeout", map[string]any{"action": "spin"}, runtime.Policy{Timeout: 300 * time.Millisecond}, runtime.ReasonTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain := f.probeRun(t, tc.params, tc.policy)
			require.NotNil(t, plain.res.Failure)
			require.Equal(t, tc.reason, plain.res.Failure.Reason)
			metered := tc.policy
			metered.CPU = math.MaxUint64
			r := f.probeRun(t, tc.params, metered)
			assert.Equal(t, plain.res.Failure, r.res.Failure)
			assert.Positive(t, r.res.Fuel, "fuel is reported for failed tasks too")
			assert.Less(t, r.res.Fuel, uint64(math.MaxUint64))
		})
	}
}

// TestCPULimitStopsPython: CPython's startup alone takes more than a few
// million fuel units; `-c pass` fits in a few billion.
func TestCPULimitStopsPython(t *testing.T) {
	f := meteredFixture(t)
	m := f.python(t)
	py := func(script string, cpu uint64) *runtime.Result {
		t.Helper()
		res, err := f.host.Run(context.Background(), runtime.Task{Module: m, Session: abi.NewSession(abi.Task{}, "ork/test", nil),
			Policy: runtime.Policy{CPU: cpu}, Args: []string{"python", "-c", script}})
		require.NoError(t, err)
		return res
	}
	res := py("while True: pass", 5_000_000)
	require.NotNil(t, res.Failure)
	assert.Equal(t, runtime.ReasonCPU, res.Failure.Reason)
	assert.Equal(t, "exceeded the CPU limit of 5M fuel units (sandbox.cpu)", res.Failure.Message)
	assert.Equal(t, uint64(5_000_000), res.Fuel)

	res = py("pass", 20_000_000_000)
	require.Nil(t, res.Failure, "%v", res.Failure)
	assert.Positive(t, res.Fuel)
	assert.Less(t, res.Fuel, uint64(20_000_000_000))
}

// TestWazeroRefusesCPULimits: wazero cannot meter instructions, and must not
// run a task with a CPU limit unmetered.
func TestWazeroRefusesCPULimits(t *testing.T) {
	f := setupEngine(t, "wazero")
	const want = "sandbox.cpu needs the wasmtime engine; wazero enforces wall time (sandbox.timeout) only"
	sess := abi.NewSession(abi.Task{Params: map[string]any{"action": "echo"}}, "ork/test", nil)
	res, err := f.host.Run(context.Background(), runtime.Task{Module: f.probe, Session: sess, Policy: runtime.Policy{CPU: 1_000_000_000}})
	require.EqualError(t, err, want)
	assert.Nil(t, res)
	_, ran := sess.Output()
	assert.False(t, ran, "the task ran")

}
