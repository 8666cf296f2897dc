package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/internal/testguests"
	"github.com/orkrun/ork/runtime"
)

var orkBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ork-e2e-bin-")
	if err != nil {
		panic(err)
	}
	orkBin = filepath.Join(dir, "ork")
	cmd := exec.Command("go", "build", "-o", orkBin, "./cmd/ork")
	cmd.Dir = testguests.RepoRoot()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ork:", err)
		os.Exit(1)
	}
	testguests.UseDebianToolchain()
	os.Setenv("ORK_CACHE_DIR", testguests.CacheDir())
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code   int
	stdout string
	stderr string
}

func ork(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(orkBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, stdout.String(), stderr.String()}
}

// syncBuffer is a buffer a test may read while a child process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bgOrk is an ork process a test started and that keeps running beside it.
type bgOrk struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
}

// startOrk starts ork in dir without waiting for it.
func startOrk(t *testing.T, dir string, args ...string) *bgOrk {
	t.Helper()
	b := &bgOrk{cmd: exec.Command(orkBin, args...)}
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	require.NoError(t, b.cmd.Start())
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Kill()
			_ = b.cmd.Wait()
		}
	})
	return b
}

// waitFor waits until text shows on the process's stdout or stderr.
func (b *bgOrk) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(b.stdout.String()+b.stderr.String(), text) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.FailNow(t, "ork never printed "+strconv.Quote(text), "stdout:\n%s\nstderr:\n%s", b.stdout.String(), b.stderr.String())
}

// wait waits for the process to exit and returns what it printed.
func (b *bgOrk) wait(t *testing.T) result {
	t.Helper()
	err := b.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, b.stdout.String(), b.stderr.String()}
}

// onlyRun returns the id and status `ork runs list` shows for the project's
// one run.
func onlyRun(t *testing.T, dir string) (id, status string) {
	t.Helper()
	r := ork(t, dir, "runs", "list", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var runs []struct {
		RunID  string `json:"run_id"`
		Status string `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
	require.Len(t, runs, 1)
	return runs[0].RunID, runs[0].Status
}

type summary struct {
	RunID    string `json:"run_id"`
	Workflow string `json:"workflow"`
	Status   string `json:"status"`
	Tasks    map[string]struct {
		Status     string          `json:"status"`
		Attempts   int             `json:"attempts"`
		DurationMS *float64        `json:"duration_ms"`
		Output     json.RawMessage `json:"output"`
		Error      *string         `json:"error"`
		Reason     string          `json:"reason"`
		Engine     string          `json:"engine"`
		Metrics    []struct {
			Name   string            `json:"name"`
			Value  float64           `json:"value"`
			Labels map[string]string `json:"labels"`
		} `json:"metrics"`
	} `json:"tasks"`
}

func decodeSummary(t *testing.T, r result) summary {
	t.Helper()
	var s summary
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&s), "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.False(t, dec.More(), "stdout holds more than one JSON document")
	return s
}

// writeProject writes files (path -> content) into a new project directory.
func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(c), 0o644))
	}
	return dir
}

func copyModule(t *testing.T, dir, guest, name string) {
	t.Helper()
	b := testguests.Bytes(t, guest)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "modules"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "modules", name), b, 0o644))
}

func TestSalesExampleEndToEnd(t *testing.T) {
	dir := filepath.Join(testguests.RepoRoot(), "examples", "sales")
	r := ork(t, dir, "validate", "workflows/sales.yaml")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "workflows/sales.yaml: workflow \"sales_report\" is valid (4 tasks)\n", r.stdout)

	r = ork(t, dir, "run", "workflows/sales.yaml", "--json")
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	s := decodeSummary(t, r)
	t.Cleanup(func() { os.RemoveAll(filepath.Join(dir, ".ork", "runs", s.RunID)) })
	assert.Equal(t, "sales_report", s.Workflow)
	assert.Equal(t, "succeeded", s.Status)
	require.Len(t, s.Tasks, 4)
	for name, task := range s.Tasks {
		assert.Equal(t, "succeeded", task.Status, name)
		assert.Equal(t, 1, task.Attempts, name)
		assert.Nil(t, task.Error, name)
		require.NotNil(t, task.DurationMS, name)
		assert.Greater(t, *task.DurationMS, 0.0, name)
	}
	var report struct {
		Total      float64 `json:"total"`
		TopRegion  string  `json:"top_region"`
		TopProduct string  `json:"top_product"`
		File       string  `json:"file"`
	}
	require.NoError(t, json.Unmarshal(s.Tasks["report"].Output, &report))
	assert.Equal(t, 1011.26, report.Total)
	assert.Equal(t, "north", report.TopRegion)
	assert.Equal(t, "gadget", report.TopProduct)
	assert.Equal(t, "/output/report.md", report.File)
	md, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", s.RunID, "report", "output", "report.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| north | 444.97 | 3 |")

	var byProduct struct {
		Groups []struct {
			Key   string  `json:"key"`
			Total float64 `json:"total"`
		} `json:"groups"`
	}
	require.NoError(t, json.Unmarshal(s.Tasks["by_product"].Output, &byProduct))
	require.Len(t, byProduct.Groups, 2) // top: 2
	assert.Equal(t, "gadget", byProduct.Groups[0].Key)
	assert.Equal(t, 596.0, byProduct.Groups[0].Total)

	load := s.Tasks["load"].Metrics
	require.Len(t, load, 1)
	assert.Equal(t, "rows_loaded", load[0].Name)
	assert.Equal(t, 10.0, load[0].Value)
	assert.Equal(t, map[string]string{"task": "load", "workflow": "sales_report"}, load[0].Labels)
	assert.Len(t, s.Tasks["by_region"].Metrics, 4)

	// Human progress went to stderr, with a summary table.
	assert.Contains(t, r.stderr, "load        started")
	assert.Contains(t, r.stderr, "load       | INFO loaded 10 rows from data/sales.csv")
	assert.Contains(t, r.stderr, "TASK        STATUS     DURATION")
	assert.Regexp(t, `report +succeeded +[0-9.]+[mµ]?s +revenue_total\{currency=EUR,task=report\} 1011.26`, r.stderr)

	// The run directory keeps the summary and each task's log.
	_, err = os.Stat(filepath.Join(dir, ".ork", "runs", s.RunID, "summary.json"))
	assert.NoError(t, err)
	log, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", s.RunID, "load", "task.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "loaded 10 rows")
}

func TestInitValidateRun(t *testing.T) {
	dir := t.TempDir()
	r := ork(t, dir, "init", "demo")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "ork run workflows/hello.yaml")
	demo := filepath.Join(dir, "demo")

	r = ork(t, demo, "validate", "workflows/hello.yaml")
	require.Equal(t, 0, r.code, r.stderr)

	r = ork(t, demo, "run", "workflows/hello.yaml")
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "greet | INFO greeted 3 people")
	assert.Regexp(t, `count +succeeded`, r.stdout)

	r = ork(t, demo, "run", "workflows/hello.yaml", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	s := decodeSummary(t, r)
	assert.JSONEq(t, `{"greetings":["Hello, Ada!","Hello, Grace!","Hello, Linus!"]}`, string(s.Tasks["greet"].Output))
	assert.JSONEq(t, `{"total":3,"long":3}`, string(s.Tasks["count"].Output))
	assert.NotContains(t, r.stderr, "building", "the second run must not rebuild")

	r = ork(t, dir, "init", "demo")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "already exists and is not empty")
}

func probeProject(t *testing.T, workflow string) string {
	t.Helper()
	files := map[string]string{
		"ork.yaml": "executors:\n  limited:\n    type: rust\n    sandbox:\n      memory: 32MiB\n      timeout: 5s\n",
		"wf.yaml":  workflow,
	}
	for _, a := range []string{"echo", "fail", "spin", "alloc", "trap", "panic"} {
		files["tasks/"+a+".yaml"] = "module: modules/probe.wasm\nparams:\n  action: " + a + "\n  mb: 100\n  message: boom\n"
	}
	dir := writeProject(t, files)
	copyModule(t, dir, "probe", "probe.wasm")
	return dir
}

func TestFailureSkipsDownstreamAndBranchesFinish(t *testing.T) {
	dir := probeProject(t, `name: failing
tasks:
  ok:
    executor: rust
    config_file: tasks/echo.yaml
  bad:
    executor: rust
    config_file: tasks/fail.yaml
  after_bad:
    executor: rust
    config_file: tasks/echo.yaml
    depends_on: [bad]
  after_ok:
    executor: rust
    config_file: tasks/echo.yaml
    depends_on: [ok]
`)
	r := ork(t, dir, "run", "wf.yaml", "--json")
	assert.Equal(t, 1, r.code, r.stderr)
	s := decodeSummary(t, r)
	assert.Equal(t, "failed", s.Status)
	assert.Equal(t, "succeeded", s.Tasks["ok"].Status)
	assert.Equal(t, "succeeded", s.Tasks["after_ok"].Status)
	assert.Equal(t, "failed", s.Tasks["bad"].Status)
	require.NotNil(t, s.Tasks["bad"].Error)
	assert.Equal(t, "boom\nexit status 1", *s.Tasks["bad"].Error)
	assert.Equal(t, "exception", s.Tasks["bad"].Reason, "a Rust Err is reported as an exception")
	assert.Equal(t, "skipped", s.Tasks["after_bad"].Status)
	assert.JSONEq(t, "null", string(s.Tasks["after_bad"].Output))
	assert.Contains(t, r.stderr, `after_bad  skipped: upstream task "bad" failed`)
	// The upstream output reached the downstream task.
	var out map[string]any
	require.NoError(t, json.Unmarshal(s.Tasks["after_ok"].Output, &out))
	assert.Contains(t, out["upstream"], "ok")
}

func TestLimitsThroughOrkRun(t *testing.T) {
	dir := probeProject(t, `name: limits
tasks:
  memory:
    executor: limited
    config_file: tasks/alloc.yaml
  default_memory:
    executor: rust
    config_file: tasks/alloc_300.yaml
  time:
    executor: limited
    config_file: tasks/spin.yaml
    timeout: 300ms
  executor_time:
    executor: quick
    config_file: tasks/spin.yaml
  trap:
    executor: limited
    config_file: tasks/trap.yaml
  panic:
    executor: limited
    config_file: tasks/panic.yaml
`)
	// The built-in rust executor has no sandbox settings: ork's default of
	// 256 MiB applies.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks", "alloc_300.yaml"), []byte("module: modules/probe.wasm\nparams: {action: alloc, mb: 300}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ork.yaml"), []byte("executors:\n  limited:\n    type: rust\n    sandbox:\n      memory: 32MiB\n      timeout: 5s\n  quick:\n    type: rust\n    sandbox: {timeout: 200ms}\n"), 0o644))
	for _, engine := range runtime.Engines() {
		t.Run(engine, func(t *testing.T) {
			r := ork(t, dir, "run", "wf.yaml", "--json", "--engine", engine)
			assert.Equal(t, 1, r.code, r.stderr)
			s := decodeSummary(t, r)
			errs := map[string]string{}
			for name, task := range s.Tasks {
				assert.Equal(t, "failed", task.Status, name)
				require.NotNil(t, task.Error, name)
				errs[name] = *task.Error
			}
			assert.Contains(t, errs["memory"], "exceeded the memory limit of 32 MiB (executors.limited.sandbox.memory in ork.yaml)")
			assert.Contains(t, errs["default_memory"], "exceeded the memory limit of 256 MiB (the default memory limit; set executors.rust.sandbox.memory in ork.yaml to change it)")
			// The error names the setting that applied; wasmtime also names
			// the guest function it stopped (wazero cannot).
			assert.Regexp(t, `^timed out after 300ms( in \S+)? \(the timeout of task "time" in wf.yaml\)$`, errs["time"])
			assert.Regexp(t, `^timed out after 200ms( in \S+)? \(executors.quick.sandbox.timeout in ork.yaml\)$`, errs["executor_time"])
			if engine == "wasmtime" {
				assert.Regexp(t, `^timed out after 300ms in probe::`, errs["time"])
			}
			assert.Contains(t, errs["trap"], "trapped in probe::probe_trap: unreachable")
			assert.Contains(t, errs["panic"], "panicked at")
			assert.Contains(t, errs["panic"], "probe panic")
		})
	}
}

// Each task gets its own scratch directory at /tmp: empty when the task
// starts (whatever an earlier task wrote into its own), and removed from the
// host when the task ends.
func TestScratchIsEmptyPerTaskAndRemoved(t *testing.T) {
	dir := probeProject(t, `name: scratch
tasks:
  first:
    executor: rust
    config_file: tasks/list.yaml
  write:
    executor: rust
    config_file: tasks/write.yaml
    depends_on: [first]
  second:
    executor: rust
    config_file: tasks/list.yaml
    depends_on: [write]
  hold:
    executor: rust
    config_file: tasks/hold.yaml
`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks", "hold.yaml"), []byte("module: modules/probe.wasm\nparams: {action: sleep, ms: 1500}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks", "list.yaml"), []byte("module: modules/probe.wasm\nparams: {action: list_dir, path: /tmp}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks", "write.yaml"), []byte("module: modules/probe.wasm\nparams: {action: write_file, path: /tmp/left-behind.txt, content: x}\n"), 0o644))
	for _, engine := range runtime.Engines() {
		t.Run(engine, func(t *testing.T) {
			// ork makes scratch directories under $TMPDIR: watch one appear
			// there while hold sleeps.
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			done := make(chan result, 1)
			go func() { done <- ork(t, dir, "run", "wf.yaml", "--json", "--engine", engine) }()
			sawScratch := false
			for deadline := time.Now().Add(10 * time.Second); !sawScratch && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				entries, _ := os.ReadDir(tmp)
				sawScratch = len(entries) > 0
			}
			r := <-done
			require.Equal(t, 0, r.code, r.stderr)
			assert.True(t, sawScratch, "no scratch directory appeared in $TMPDIR during the run")
			s := decodeSummary(t, r)
			assert.JSONEq(t, `{"ok": true, "entries": []}`, string(s.Tasks["first"].Output))
			assert.JSONEq(t, `{"ok": true}`, string(s.Tasks["write"].Output))
			assert.JSONEq(t, `{"ok": true, "entries": []}`, string(s.Tasks["second"].Output))
			left, err := os.ReadDir(tmp)
			require.NoError(t, err)
			var names []string
			for _, e := range left {
				names = append(names, e.Name())
			}
			assert.Empty(t, names, "scratch directories left in $TMPDIR after the run")
		})
	}
}

// WASI's random_get gives every task fresh, unpredictable bytes: two tasks
// of a run, and the same task in two runs, never draw the same.
func TestRandomIsNotDeterministic(t *testing.T) {
	dir := probeProject(t, "name: random\ntasks:\n  a: {executor: rust, config_file: tasks/random.yaml}\n  b: {executor: rust, config_file: tasks/random.yaml}\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks", "random.yaml"), []byte("module: modules/probe.wasm\nparams: {action: random}\n"), 0o644))
	for _, engine := range runtime.Engines() {
		t.Run(engine, func(t *testing.T) {
			seen := map[string]string{}
			for run := 1; run <= 2; run++ {
				r := ork(t, dir, "run", "wf.yaml", "--json", "--engine", engine)
				require.Equal(t, 0, r.code, r.stderr)
				s := decodeSummary(t, r)
				for _, task := range []string{"a", "b"} {
					var out struct{ Hex string }
					require.NoError(t, json.Unmarshal(s.Tasks[task].Output, &out))
					require.Regexp(t, `^[0-9a-f]{64}$`, out.Hex)
					assert.NotEqual(t, strings.Repeat("0", 64), out.Hex)
					who := fmt.Sprintf("task %s of run %d", task, run)
					if other, ok := seen[out.Hex]; ok {
						t.Errorf("%s drew the same random bytes as %s: %s", who, other, out.Hex)
					}
					seen[out.Hex] = who
				}
			}
		})
	}
}

func TestInterruptCancelsRunningSandboxes(t *testing.T) {
	dir := probeProject(t, `name: long
tasks:
  spin:
    executor: rust
    config_file: tasks/spin.yaml
  later:
    executor: rust
    config_file: tasks/echo.yaml
    depends_on: [spin]
`)
	run := startOrk(t, dir, "run", "wf.yaml", "--json")
	run.waitFor(t, "spin   started")
	sent := time.Now()
	require.NoError(t, run.cmd.Process.Signal(syscall.SIGINT))
	r := run.wait(t)
	elapsed := time.Since(sent)
	assert.Equal(t, 130, r.code, r.stderr)
	assert.Less(t, elapsed, 10*time.Second)
	s := decodeSummary(t, r)
	assert.Equal(t, "cancelled", s.Status)
	assert.Equal(t, "cancelled", s.Tasks["spin"].Status)
	assert.Equal(t, "skipped", s.Tasks["later"].Status)
}

func TestInvalidInputExitsTwoWithPosition(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"ork.yaml":     "executors: {}\n",
		"wf.yaml":      "name: bad\ntasks:\n  a:\n    executor: rust\n    config_file: a.yaml\n    depends_on: [b]\n  b:\n    executor: rust\n    config_file: a.yaml\n    depends_on: [a]\n",
		"a.yaml":       "module: nothing.wasm\n",
		"nothing.wasm": "",
	})
	r := ork(t, dir, "run", "wf.yaml")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "wf.yaml:3:3: dependency cycle: a -> b -> a")
	assert.NotContains(t, r.stderr, "goroutine")

	r = ork(t, dir, "run")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "expects a workflow file")

	r = ork(t, dir, "run", "wf.yaml", "--concurrency", "0")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--concurrency must be at least 1")

	r = ork(t, dir, "run", "missing.yaml")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "missing.yaml")

	r = ork(t, dir, "frobnicate")
	assert.Equal(t, 2, r.code)
}

func TestModuleForAnotherABIVersionIsRefused(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"ork.yaml": "executors:\n  old:\n    type: modules/v2.wasm\n",
		"wf.yaml":  "name: v\ntasks:\n  t:\n    executor: old\n    config_file: wf.yaml\n",
	})
	copyModule(t, dir, "abi-v2", "v2.wasm")
	r := ork(t, dir, "run", "wf.yaml")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "module modules/v2.wasm was built for ork host ABI v2, but this ork speaks v1: upgrade ork, or rebuild it with an ork SDK for ABI v1")
}

func TestCustomExecutorConfigAndErrors(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"ork.yaml": `executors:
  hello:
    type: modules/executor-probe.wasm
    config:
      greeting: hi
  broken:
    type: modules/executor-probe.wasm
    config:
      greting: typo
  refusing:
    type: modules/executor-probe.wasm
    config:
      greeting: hi
      fail_new: true
`,
		"wf.yaml": `name: exec
tasks:
  first:
    executor: hello
    config_file: tasks/first.yaml
  second:
    executor: hello
    config_file: tasks/second.yaml
    depends_on: [first]
  broken:
    executor: broken
    config_file: tasks/first.yaml
  refusing:
    executor: refusing
    config_file: tasks/first.yaml
`,
		"tasks/first.yaml":  "rows: 3\n",
		"tasks/second.yaml": "rows: 1\n",
		// A custom executor is always given a config file to read, so a
		// task without one is refused before anything runs.
		"no-config.yaml": "name: nc\ntasks:\n  ok:\n    executor: hello\n    config_file: tasks/first.yaml\n  bare:\n    executor: hello\n",
	})
	copyModule(t, dir, "executor-probe", "executor-probe.wasm")
	wantNoConfig := "no-config.yaml:6:3: task \"bare\" has no config_file; executor \"hello\" (a .wasm executor module) is given the path of its task's config file to read, so add config_file: with the path of that file, relative to the project root"
	for _, cmd := range []string{"validate", "run"} {
		r := ork(t, dir, cmd, "no-config.yaml")
		assert.Equal(t, 2, r.code, cmd)
		assert.Contains(t, r.stderr, wantNoConfig, cmd)
	}
	_, err := os.Stat(filepath.Join(dir, ".ork", "runs"))
	assert.True(t, os.IsNotExist(err), "nothing ran: %v", err)

	r := ork(t, dir, "run", "wf.yaml", "--json")
	assert.Equal(t, 1, r.code, r.stderr)
	s := decodeSummary(t, r)
	assert.Equal(t, "succeeded", s.Tasks["first"].Status)
	assert.JSONEq(t, `{"greeting":"hi","config_file":"tasks/first.yaml","config_len":8,"upstream_keys":[]}`, string(s.Tasks["first"].Output))
	assert.Equal(t, "succeeded", s.Tasks["second"].Status)
	var second map[string]any
	require.NoError(t, json.Unmarshal(s.Tasks["second"].Output, &second))
	assert.Equal(t, []any{"first"}, second["upstream_keys"])
	require.Len(t, s.Tasks["first"].Metrics, 1)
	assert.Equal(t, map[string]string{"task": "first", "workflow": "exec"}, s.Tasks["first"].Metrics[0].Labels)

	require.NotNil(t, s.Tasks["broken"].Error)
	assert.Contains(t, *s.Tasks["broken"].Error, "invalid executor config for executor `broken` (ork.yaml executors.broken.config)")
	assert.Contains(t, *s.Tasks["broken"].Error, "greeting")
	require.NotNil(t, s.Tasks["refusing"].Error)
	assert.Contains(t, *s.Tasks["refusing"].Error, "refusing to start")
}

func TestSandboxPolicyFromOrkYAML(t *testing.T) {
	shared := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(shared, "ref.txt"), []byte("reference data"), 0o644))
	dir := writeProject(t, map[string]string{
		"ork.yaml": "executors:\n  granted:\n    type: rust\n    sandbox:\n      mounts:\n        - host: " + shared + "\n          guest: /ref\n      env: [ORK_E2E_VISIBLE]\n",
		"wf.yaml": `name: policy
tasks:
  mount:
    executor: granted
    config_file: tasks/mount.yaml
  env:
    executor: granted
    config_file: tasks/env.yaml
  default_env:
    executor: rust
    config_file: tasks/env.yaml
`,
		"tasks/mount.yaml": "module: modules/probe.wasm\nparams: {action: read_file, path: /ref/ref.txt}\n",
		"tasks/env.yaml":   "module: modules/probe.wasm\nparams: {action: env}\n",
	})
	copyModule(t, dir, "probe", "probe.wasm")
	cmd := exec.Command(orkBin, "run", "wf.yaml", "--json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ORK_E2E_VISIBLE=yes", "ORK_E2E_HIDDEN=no")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	s := decodeSummary(t, result{stdout: stdout.String(), stderr: stderr.String()})
	assert.JSONEq(t, `{"ok":true,"content":"reference data"}`, string(s.Tasks["mount"].Output))
	assert.JSONEq(t, `{"vars":{"ORK_E2E_VISIBLE":"yes"}}`, string(s.Tasks["env"].Output))
	assert.JSONEq(t, `{"vars":{}}`, string(s.Tasks["default_env"].Output))
}

func TestBuildCommand(t *testing.T) {
	crate := filepath.Join(testguests.RepoRoot(), "testdata", "guests", "executor-probe")
	r := ork(t, testguests.RepoRoot(), "build", crate)
	require.Equal(t, 0, r.code, r.stderr)
	r = ork(t, testguests.RepoRoot(), "build", crate)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `executor-probe: up to date \(wasm32-wasip?1?, [0-9.]+ KiB\) .*\.wasm`, r.stdout)

	r = ork(t, t.TempDir(), "build", "nowhere")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "nowhere is not a crate directory (no Cargo.toml)")
}

// No task sees the project's .ork directory (run store, run outputs,
// embedded databases), even one started after earlier runs filled it; the
// rest of the project is there at the same paths.
func TestTasksDoNotSeeTheStateDirectory(t *testing.T) {
	dir := probeProject(t, `name: state
tasks:
  list:
    executor: rust
    config_file: tasks/list_root.yaml
  store:
    executor: rust
    config_file: tasks/read_store.yaml
  config:
    executor: rust
    config_file: tasks/read_config.yaml
`)
	for name, params := range map[string]string{
		"list_root":   "{action: list_dir, path: /}",
		"read_store":  "{action: read_file, path: .ork/ork.db}",
		"read_config": "{action: read_file, path: tasks/echo.yaml}",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks", name+".yaml"), []byte("module: modules/probe.wasm\nparams: "+params+"\n"), 0o644))
	}
	for _, engine := range runtime.Engines() {
		t.Run(engine, func(t *testing.T) {
			for i := 0; i < 2; i++ { // the second run starts with .ork/ork.db there
				r := ork(t, dir, "run", "wf.yaml", "--json", "--engine", engine)
				require.Equal(t, 0, r.code, r.stderr)
				s := decodeSummary(t, r)
				var list struct {
					OK      bool     `json:"ok"`
					Entries []string `json:"entries"`
				}
				require.NoError(t, json.Unmarshal(s.Tasks["list"].Output, &list))
				assert.True(t, list.OK)
				assert.NotContains(t, list.Entries, ".ork")
				assert.Subset(t, list.Entries, []string{"modules", "ork.yaml", "tasks", "wf.yaml"})
				assert.JSONEq(t, `{"ok": false, "error": "No such file or directory (os error 44)"}`, string(s.Tasks["store"].Output))
				assert.Contains(t, string(s.Tasks["config"].Output), "module: modules/probe.wasm")
			}
			require.FileExists(t, filepath.Join(dir, ".ork", "ork.db"))
		})
	}
}

// TestProjectFlagFromAnotherDirectory: with --project, a relative workflow
// path is found in the project when it is not in the current directory, and
// the closing line names the run directory so that it can be opened from
// where the user is.
func TestProjectFlagFromAnotherDirectory(t *testing.T) {
	dir := probeProject(t, "name: unused\ntasks: {}\n")
	wf := "name: elsewhere\ntasks:\n  ok:\n    executor: rust\n    config_file: tasks/echo.yaml\n"
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "workflows", "x.yaml"), []byte(wf), 0o644))
	outside := t.TempDir()

	r := ork(t, outside, "validate", "--project", dir, "workflows/x.yaml")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "workflows/x.yaml: workflow \"elsewhere\" is valid (1 tasks)\n", r.stdout)

	// Outside the project: the run directory is absolute.
	r = ork(t, outside, "run", "--project", dir, "workflows/x.yaml", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	s := decodeSummary(t, r)
	runDir := filepath.Join(dir, ".ork", "runs", s.RunID)
	assert.Contains(t, r.stderr, "outputs and logs in "+runDir+"\n")
	assert.DirExists(t, runDir)

	// Inside the project, below its root: relative to the current directory.
	r = ork(t, filepath.Join(dir, "workflows"), "run", "--project", dir, "workflows/x.yaml", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	s = decodeSummary(t, r)
	assert.Contains(t, r.stderr, "outputs and logs in ../.ork/runs/"+s.RunID+"\n")

	// A path that exists from the current directory wins.
	r = ork(t, filepath.Join(dir, "workflows"), "validate", "--project", dir, "x.yaml")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "workflows/x.yaml: workflow \"elsewhere\" is valid (1 tasks)\n", r.stdout)

	// Found in neither place: the error says where ork looked.
	r = ork(t, outside, "run", "--project", dir, "workflows/missing.yaml")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "workflow file workflows/missing.yaml: not found in the current directory nor in the project "+dir+"; check the path")
}
