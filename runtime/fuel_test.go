package runtime_test

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/runtime"
)

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

	_, err = f.host.RunSnapshot(context.Background(), nil, runtime.Task{Policy: runtime.Policy{CPU: 1}}, "pass", nil)
	require.EqualError(t, err, want)
}
