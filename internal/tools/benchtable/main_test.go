package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
cpu: AMD EPYC
BenchmarkPythonTrivialTask/wazero-2           	      20	   9612345 ns/op	         9.600 ms/task
BenchmarkPythonTrivialTask/wasmtime-2         	      20	   2612345 ns/op	         2.600 ms/task
BenchmarkPythonTrivialTaskCold/wazero-2       	      20	 464000000 ns/op	       464.0 ms/task
BenchmarkRustTrivialTask/wazero-2             	      20	    850000 ns/op	         0.8500 ms/task
BenchmarkRustTrivialTask/wasmtime-2           	      20	   1250000 ns/op	         1.250 ms/task
BenchmarkBaselineNativePythonProcess-2        	      20	  92000000 ns/op	        92.00 ms/task
BenchmarkWorkflowRustIndependent/wazero-2     	       1	         1.525 p50-ms	         4.022 p99-ms	         1.552 s/run	       644.5 tasks/s
BenchmarkMemoryPythonSandboxes/wazero-2       	       1	         6.161 MiB/sandbox	       319.7 idle-MiB	       627.8 live50-MiB
PASS
`

func TestTable(t *testing.T) {
	res, pass, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	assert.Equal(t, []string{"goos: linux", "cpu: AMD EPYC"}, pass)
	assert.Equal(t, 1.552, res["BenchmarkWorkflowRustIndependent/wazero"]["s/run"])

	var b strings.Builder
	render(&b, table(res))
	out := b.String()
	assert.Contains(t, out, "| measurement | wazero | wasmtime | beside it | target | verdict |")
	assert.Contains(t, out, "| 1. trivial Python task, snapshot | 9.60 ms | 2.60 ms | native process: 92.0 ms | ≤ 3 ms | met (wasmtime) |")
	assert.Contains(t, out, "| 1. trivial Python task, cold | 464 ms | — |")
	assert.Contains(t, out, "| 3. trivial Rust task | 0.85 ms | 1.25 ms | native process: 92.0 ms | ≤ 1 ms | met (wazero) |")
	assert.Contains(t, out, "| 4. native `python3 -c` per task (baseline) | 92.0 ms | 92.0 ms |")
	assert.Contains(t, out, "| 5. 1,000 independent Rust tasks | 1.55 s (644/s; p50 1.52 ms, p99 4.02 ms) | — |  | ≤ 2 s | met (wazero) |")
	assert.Contains(t, out, "| 5. 1,000 independent Python tasks | — | — |  | ≤ 5 s | not run |")
	assert.Contains(t, out, "| 6. RSS per live Python sandbox | 6.16 MiB (idle 320, 50 live 628 MiB) | — |  | ≤ 16 MiB | met (wazero) |")
}

func TestMissedTarget(t *testing.T) {
	res, _, err := parse(strings.NewReader("BenchmarkPythonTrivialTask/wazero-2  20  1 ns/op  9.6 ms/task\n"))
	require.NoError(t, err)
	assert.Equal(t, "missed (wazero: 3.20x)", res.verdict("BenchmarkPythonTrivialTask", "ms/task", 3))
}

func TestParseRejectsGarbledMetrics(t *testing.T) {
	_, _, err := parse(strings.NewReader("BenchmarkX-2  1  abc ms/task\n"))
	assert.ErrorContains(t, err, "BenchmarkX")
}
