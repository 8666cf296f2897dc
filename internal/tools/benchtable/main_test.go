package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
cpu: AMD EPYC
BenchmarkPythonTrivialTask-2           	      20	   9612345 ns/op	         9.600 ms/task
BenchmarkPythonTrivialTaskCold-2       	      20	 464000000 ns/op	       464.0 ms/task
BenchmarkRustTrivialTask-2             	      20	    850000 ns/op	         0.8500 ms/task
BenchmarkWorkflowRustIndependent-2     	       1	         1.525 p50-ms	         4.022 p99-ms	         1.552 s/run	       644.5 tasks/s
BenchmarkMemoryPythonSandboxes-2       	       1	         6.161 MiB/sandbox	       319.7 idle-MiB	       627.8 live50-MiB
PASS
`

func TestTable(t *testing.T) {
	res, pass, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	assert.Equal(t, []string{"goos: linux", "cpu: AMD EPYC"}, pass)
	assert.Equal(t, 1.552, res["BenchmarkWorkflowRustIndependent"]["s/run"])

	var b strings.Builder
	render(&b, table(res))
	out := b.String()
	assert.Contains(t, out, "| 1. trivial Python task (snapshot) | 9.60 ms | cold: 464 ms; native process: — | ≤ 3 ms | missed (3.2x) |")
	assert.Contains(t, out, "| 3. trivial Rust task | 0.85 ms | native process: — | ≤ 1 ms | met |")
	assert.Contains(t, out, "| 5. 1,000 independent Rust tasks | 1.55 s (644 tasks/s; p50 1.52 ms, p99 4.02 ms) |  | ≤ 2 s | met |")
	assert.Contains(t, out, "| 5. 1,000 independent Python tasks | — |  | ≤ 5 s | not run |")
	assert.Contains(t, out, "| 6. RSS per live Python sandbox (50 live) | 6.16 MiB | idle 320 MiB, 50 live 628 MiB | ≤ 16 MiB | met |")
}

func TestParseRejectsGarbledMetrics(t *testing.T) {
	_, _, err := parse(strings.NewReader("BenchmarkX-2  1  abc ms/task\n"))
	assert.ErrorContains(t, err, "BenchmarkX")
}
