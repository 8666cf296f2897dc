package cli_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/internal/testguests"
	"github.com/orkrun/ork/runtime"
)

// conformanceCase is one behaviour every guest language must show the same
// way through `ork run`.
type conformanceCase struct {
	task   string
	params string // YAML flow mapping
	ok     bool   // the task succeeds
	check  func(t *testing.T, output map[string]any, errMsg string)
}

func conformanceCases(addr string) []conformanceCase {
	okField := func(want bool) func(t *testing.T, out map[string]any, _ string) {
		return func(t *testing.T, out map[string]any, _ string) {
			assert.Equal(t, want, out["ok"], "output: %v", out)
		}
	}
	errContains := func(s string) func(t *testing.T, _ map[string]any, e string) {
		return func(t *testing.T, _ map[string]any, e string) { assert.Contains(t, e, s) }
	}
	return []conformanceCase{
		{"echo", "{action: echo, x: 1}", true, func(t *testing.T, out map[string]any, _ string) {
			assert.Equal(t, "echo", out["task"])
			assert.Equal(t, "conformance", out["workflow"])
			assert.EqualValues(t, 1, out["attempt"])
			assert.Equal(t, "probe", out["executor"])
			assert.Equal(t, "tasks/echo.yaml", out["config_file"])
			assert.Equal(t, "/tmp", out["scratch_dir"])
			assert.Equal(t, "/output", out["output_dir"])
			assert.Equal(t, map[string]any{"action": "echo", "x": float64(1)}, out["params"])
			assert.Equal(t, map[string]any{}, out["upstream"])
		}},
		{"config", "{action: config}", true, func(t *testing.T, out map[string]any, _ string) {
			assert.Equal(t, map[string]any{"answer": float64(42), "tags": []any{"a", "b"}}, out["config"])
		}},
		{"fail", "{action: fail, message: no such table}", false, func(t *testing.T, _ map[string]any, e string) {
			assert.Contains(t, e, "no such table")
			assert.True(t, strings.HasSuffix(e, "\nexit status 1"), "the error does not end with the exit status: %q", e)
		}},
		{"panic", "{action: panic}", false, errContains("probe panic")},
		{"alloc_small", "{action: alloc, mb: 8}", true, func(t *testing.T, out map[string]any, _ string) {
			assert.EqualValues(t, 8, out["allocated_mb"])
		}},
		{"alloc_big", "{action: alloc, mb: 200}", false, errContains("exceeded the memory limit of 64 MiB (executors.probe.sandbox.memory in ork.yaml)")},
		{"spin", "{action: spin}", false, func(t *testing.T, _ map[string]any, e string) {
			// wasmtime names the guest function it stopped, wazero cannot.
			assert.Regexp(t, `^timed out after 3s( in .+)? \(the timeout of task "spin" in wf.yaml\)$`, e)
		}},
		{"trap", "{action: trap}", false, errContains("trapped")},
		{"exit", "{action: exit, code: 3}", false, errContains("exited with status 3")},
		{"read_project", "{action: read_file, path: data.txt}", true, func(t *testing.T, out map[string]any, _ string) {
			assert.Equal(t, "project data\n", out["content"])
		}},
		{"read_outside", "{action: read_file, path: /etc/passwd}", true, okField(false)},
		{"read_dotdot", "{action: read_file, path: ../../../etc/passwd}", true, okField(false)},
		{"write_project", "{action: write_file, path: new.txt, content: x}", true, okField(false)},
		{"write_scratch", "{action: write_file, path: /tmp/x.txt, content: x}", true, okField(true)},
		{"write_output", "{action: write_file, path: /output/x.txt, content: x}", true, okField(true)},
		{"env", "{action: env}", true, func(t *testing.T, out map[string]any, _ string) {
			assert.Equal(t, map[string]any{}, out["vars"])
		}},
		{"net", "{action: net, addr: '" + addr + "'}", true, okField(false)},
		{"sleep", "{action: sleep, ms: 20}", true, func(t *testing.T, out map[string]any, _ string) {
			assert.EqualValues(t, 20, out["slept_ms"])
		}},
		{"time", "{action: time}", true, func(t *testing.T, out map[string]any, _ string) {
			ms, _ := out["unix_ms"].(float64)
			assert.InDelta(t, float64(time.Now().UnixMilli()), ms, 120_000)
		}},
	}
}

// conformanceReasons is the reason a failing row's task must fail with, in
// every language. The panic row is left out: a Rust panic aborts the module
// (trap), while its Python twin raises an exception.
var conformanceReasons = map[string]string{
	"fail":      "exception",
	"alloc_big": "memory",
	"spin":      "timeout",
	"trap":      "trap",
	"exit":      "exit",
}

// TestConformanceRustAndPython runs one behaviour table against the Rust
// probe (testdata/guests/probe) and its Python twin
// (testdata/guests/python/probe.py): the host ABI, every sandbox limit and
// what is not ambient must look the same from both languages.
func TestConformanceRustAndPython(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	cases := conformanceCases(ln.Addr().String())
	probePy, err := os.ReadFile(filepath.Join(testguests.RepoRoot(), "testdata", "guests", "python", "probe.py"))
	require.NoError(t, err)

	// Every row runs on every engine compiled in, and Python twice: from
	// the interpreter snapshot (the default) and cold; the limits (memory
	// beyond the image, timeout) and every other row must hold the same
	// whichever way a task runs.
	for _, engine := range runtime.Engines() {
		for _, mode := range []string{"rust", "python", "python-cold"} {
			conformanceRun(t, engine, mode, cases, string(probePy))
		}
	}
	select {
	case <-accepted:
		t.Fatal("a guest reached a TCP listener on the host")
	default:
	}
}

func conformanceRun(t *testing.T, engine, mode string, cases []conformanceCase, probePy string) {
	lang, cold := strings.CutSuffix(mode, "-cold")
	{
		t.Run(engine+"/"+mode, func(t *testing.T) {
			files := map[string]string{
				"ork.yaml": fmt.Sprintf("executors:\n  probe:\n    type: %s\n    config: {answer: 42, tags: [a, b]}\n    sandbox: {memory: 64MiB, timeout: 2m}\n", lang),
				"data.txt": "project data\n",
				"probe.py": probePy,
			}
			var wf strings.Builder
			wf.WriteString("name: conformance\ntasks:\n")
			for _, c := range cases {
				code := "module: modules/probe.wasm"
				if lang == "python" {
					code = "file: probe.py"
				}
				files["tasks/"+c.task+".yaml"] = code + "\nparams: " + c.params + "\n"
				fmt.Fprintf(&wf, "  %s:\n    executor: probe\n    config_file: tasks/%s.yaml\n", c.task, c.task)
				if c.task == "spin" {
					wf.WriteString("    timeout: 3s\n")
				}
			}
			wf.WriteString("  downstream:\n    executor: probe\n    config_file: tasks/echo.yaml\n    depends_on: [echo]\n")
			files["wf.yaml"] = wf.String()
			dir := writeProject(t, files)
			copyModule(t, dir, "probe", "probe.wasm")

			args := []string{"run", "wf.yaml", "--json", "--concurrency", "2", "--engine", engine}
			if cold {
				args = append(args, "--no-snapshot")
			}
			r := ork(t, dir, args...)
			assert.Equal(t, 1, r.code, r.stderr)
			if lang == "python" && !cold && os.Getenv("ORK_NO_SNAPSHOT") != "1" {
				assert.NotContains(t, r.stderr, "snapshot unavailable", "the snapshot rows ran cold")
			}
			s := decodeSummary(t, r)
			for _, c := range cases {
				task := s.Tasks[c.task]
				errMsg := ""
				if task.Error != nil {
					errMsg = *task.Error
				}
				want := "failed"
				if c.ok {
					want = "succeeded"
				}
				if !assert.Equal(t, want, task.Status, "%s/%s: %s", lang, c.task, errMsg) {
					continue
				}
				if reason, ok := conformanceReasons[c.task]; ok {
					assert.Equal(t, reason, task.Reason, "%s/%s: %s", lang, c.task, errMsg)
				}
				var out map[string]any
				_ = json.Unmarshal(task.Output, &out)
				t.Run(c.task, func(t *testing.T) { c.check(t, out, errMsg) })
			}
			// Identity, metrics, logs and upstream outputs.
			echo := s.Tasks["echo"]
			var out map[string]any
			require.NoError(t, json.Unmarshal(echo.Output, &out))
			assert.Equal(t, s.RunID, out["run_id"])
			require.Len(t, echo.Metrics, 1)
			assert.Equal(t, "probe_calls", echo.Metrics[0].Name)
			assert.Equal(t, map[string]string{"task": "echo", "kind": "echo"}, echo.Metrics[0].Labels)
			assert.Regexp(t, `echo +\| INFO echo n=1`, r.stderr)
			assert.Regexp(t, `echo +\| stdout line`, r.stderr)
			assert.Regexp(t, `echo +\| stderr line`, r.stderr)
			var down map[string]any
			require.NoError(t, json.Unmarshal(s.Tasks["downstream"].Output, &down))
			up, _ := down["upstream"].(map[string]any)
			require.Contains(t, up, "echo")
			assert.Equal(t, "echo", up["echo"].(map[string]any)["task"])
			_, err := os.Stat(filepath.Join(dir, "new.txt"))
			assert.True(t, os.IsNotExist(err), "a task wrote into the read-only project")
			for name, task := range s.Tasks {
				assert.Equal(t, engine, task.Engine, "task %s ran on another engine", name)
			}
		})
	}
}
