package cli_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/orkrun/ork/internal/store"
)

// pyTasks writes a project whose tasks are Python functions.
func pyTasks(t *testing.T, ork string, workflow string, tasks map[string]string) string {
	t.Helper()
	files := map[string]string{"ork.yaml": ork, "wf.yaml": workflow}
	for name, body := range tasks {
		files["tasks/"+name+".py"] = body
		files["tasks/"+name+".yaml"] = "file: tasks/" + name + ".py\n"
	}
	return writeProject(t, files)
}

type testDB struct{ st *store.Store }

func openDB(t *testing.T, dir string) *testDB {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(dir, ".ork", "ork.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return &testDB{st}
}

func (d *testDB) attempts(t *testing.T, runID, task string) []store.Attempt {
	t.Helper()
	all, err := d.st.Attempts(context.Background(), runID)
	require.NoError(t, err)
	var out []store.Attempt
	for _, a := range all {
		if a.Task == task {
			out = append(out, a)
		}
	}
	return out
}

func (d *testDB) attemptStarts(t *testing.T, runID, task string) []time.Time {
	var out []time.Time
	for _, a := range d.attempts(t, runID, task) {
		out = append(out, a.StartedAt)
	}
	return out
}

func (d *testDB) statuses(t *testing.T, runID, task string) []string {
	var out []string
	for _, a := range d.attempts(t, runID, task) {
		out = append(out, a.Status)
	}
	return out
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	require.NoError(t, err)
	return out
}

func showRun(t *testing.T, dir, id string) summary {
	t.Helper()
	r := ork(t, dir, "runs", "show", id, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	return decodeSummary(t, r)
}

func TestRetriesWithBackoffAreRecorded(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", `name: flaky
tasks:
  flaky:
    executor: python
    config_file: tasks/flaky.yaml
    retries: {max_attempts: 3, backoff: exponential, initial: 100ms, max: 1s}
  hopeless:
    executor: python
    config_file: tasks/hopeless.yaml
    retries: {max_attempts: 2, backoff: constant, initial: 50ms}
`, map[string]string{
		"flaky":    "def run(ctx, upstream):\n    print(f'attempt {ctx.attempt} starts')\n    if ctx.attempt < 3:\n        raise RuntimeError(f'attempt {ctx.attempt} fails')\n    return {'attempt': ctx.attempt}\n",
		"hopeless": "def run(ctx, upstream):\n    raise RuntimeError('always')\n",
	})
	r := ork(t, dir, "run", "wf.yaml", "--json")
	assert.Equal(t, 1, r.code, r.stderr)
	s := decodeSummary(t, r)
	assert.Equal(t, "succeeded", s.Tasks["flaky"].Status)
	assert.Equal(t, 3, s.Tasks["flaky"].Attempts)
	assert.JSONEq(t, `{"attempt":3}`, string(s.Tasks["flaky"].Output))
	assert.Equal(t, "failed", s.Tasks["hopeless"].Status)
	assert.Equal(t, 2, s.Tasks["hopeless"].Attempts)
	assert.Contains(t, r.stderr, "attempt 1 of 3 failed; retrying in 100ms")
	assert.Contains(t, r.stderr, "attempt 2 of 3 failed; retrying in 200ms")

	// The store has every attempt, with timings that show the backoff.
	shown := showRun(t, dir, s.RunID)
	assert.Equal(t, 3, shown.Tasks["flaky"].Attempts)
	r = ork(t, dir, "logs", s.RunID, "flaky", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var attemptsSeen = map[int]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var l struct {
			Attempt int    `json:"attempt"`
			Message string `json:"message"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		attemptsSeen[l.Attempt] = true
	}
	assert.Equal(t, map[int]bool{1: true, 2: true, 3: true}, attemptsSeen)
	db := openDB(t, dir)
	starts := db.attemptStarts(t, s.RunID, "flaky")
	require.Len(t, starts, 3)
	assert.GreaterOrEqual(t, starts[1].Sub(starts[0]), 100*time.Millisecond)
	assert.GreaterOrEqual(t, starts[2].Sub(starts[1]), 200*time.Millisecond)

	// runs show --attempts lists every attempt, in the table and in --json.
	r = ork(t, dir, "runs", "show", s.RunID, "--attempts")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^TASK +ATTEMPT +STATUS +REASON +STARTED +DURATION +ERROR$`, r.stdout)
	assert.Regexp(t, `(?m)^flaky +1 +failed +exception +\d{4}-\d\d-\d\d [0-9:.]+ +[0-9.]+m?s +RuntimeError: attempt 1 fails`, r.stdout)
	assert.Regexp(t, `(?m)^flaky +2 +failed +exception +.* +RuntimeError: attempt 2 fails`, r.stdout)
	assert.Regexp(t, `(?m)^flaky +3 +succeeded +- +.* +-$`, r.stdout)
	assert.Regexp(t, `(?m)^hopeless +2 +failed +exception +.*RuntimeError: always`, r.stdout)
	r = ork(t, dir, "runs", "show", s.RunID, "--attempts", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var withAttempts struct {
		Tasks map[string]struct {
			Attempts       int `json:"attempts"`
			AttemptHistory []struct {
				Attempt    int        `json:"attempt"`
				Status     string     `json:"status"`
				Reason     string     `json:"reason"`
				Error      *string    `json:"error"`
				StartedAt  time.Time  `json:"started_at"`
				EndedAt    *time.Time `json:"ended_at"`
				DurationMS float64    `json:"duration_ms"`
			} `json:"attempt_history"`
		} `json:"tasks"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &withAttempts))
	hist := withAttempts.Tasks["flaky"].AttemptHistory
	require.Len(t, hist, 3)
	assert.Equal(t, 3, withAttempts.Tasks["flaky"].Attempts)
	for i, a := range hist {
		assert.Equal(t, i+1, a.Attempt)
		assert.True(t, a.StartedAt.Equal(starts[i]), "attempt %d start", i+1)
		require.NotNil(t, a.EndedAt)
		assert.False(t, a.EndedAt.Before(a.StartedAt))
		assert.Greater(t, a.DurationMS, 0.0)
	}
	assert.Equal(t, "failed", hist[0].Status)
	assert.Equal(t, "exception", hist[0].Reason)
	require.NotNil(t, hist[0].Error)
	assert.Contains(t, *hist[0].Error, "attempt 1 fails")
	assert.Equal(t, "succeeded", hist[2].Status)
	assert.Nil(t, hist[2].Error)
	assert.Len(t, withAttempts.Tasks["hopeless"].AttemptHistory, 2)
	// Without --attempts, --json is the document of ork run --json.
	r = ork(t, dir, "runs", "show", s.RunID, "--json")
	assert.NotContains(t, r.stdout, "attempt_history")
	decodeSummary(t, r)
}

// TestExecutorRetriesAndMaxConcurrency: an executor's retries apply to its
// tasks unless a task has its own, and sandbox.max_concurrency keeps an
// executor's tasks from overlapping while other tasks run beside them.
func TestExecutorRetriesAndMaxConcurrency(t *testing.T) {
	dir := pyTasks(t, `executors:
  flaky_py:
    type: python
    retries: {max_attempts: 3, backoff: constant, initial: 50ms}
  serial:
    type: python
    sandbox: {max_concurrency: 1}
`, `name: limits
tasks:
  flaky: {executor: flaky_py, config_file: tasks/flaky.yaml}
  once:
    executor: flaky_py
    config_file: tasks/flaky.yaml
    retries: {max_attempts: 1}
  s1: {executor: serial, config_file: tasks/nap.yaml}
  s2: {executor: serial, config_file: tasks/nap.yaml}
  s3: {executor: serial, config_file: tasks/nap.yaml}
  free: {executor: python, config_file: tasks/long.yaml}
`, map[string]string{
		"flaky": "def run(ctx, upstream):\n    if ctx.attempt < 3:\n        raise RuntimeError(f'attempt {ctx.attempt} fails')\n    return ctx.attempt\n",
		"nap":   "import time\ndef run(ctx, upstream):\n    time.sleep(0.3)\n    return ctx.task_name\n",
		"long":  "import time\ndef run(ctx, upstream):\n    time.sleep(1.5)\n    return 1\n",
	})
	r := ork(t, dir, "run", "wf.yaml", "--json", "--concurrency", "6")
	require.Equal(t, 1, r.code, r.stderr)
	s := decodeSummary(t, r)
	assert.Equal(t, "succeeded", s.Tasks["flaky"].Status)
	assert.Equal(t, 3, s.Tasks["flaky"].Attempts, "the executor's retries apply")
	assert.Equal(t, "failed", s.Tasks["once"].Status)
	assert.Equal(t, 1, s.Tasks["once"].Attempts, "the task's own retries win over its executor's")

	db := openDB(t, dir)
	assert.Equal(t, []string{"failed", "failed", "succeeded"}, db.statuses(t, s.RunID, "flaky"))
	type span struct {
		task       string
		start, end time.Time
	}
	spanOf := func(task string) span {
		atts := db.attempts(t, s.RunID, task)
		require.Len(t, atts, 1, task)
		require.NotNil(t, atts[0].EndedAt, task)
		return span{task, atts[0].StartedAt, *atts[0].EndedAt}
	}
	serial := []span{spanOf("s1"), spanOf("s2"), spanOf("s3")}
	for i := range serial {
		for j := i + 1; j < len(serial); j++ {
			a, b := serial[i], serial[j]
			overlap := a.start.Before(b.end) && b.start.Before(a.end)
			assert.False(t, overlap, "%s [%s, %s] overlaps %s [%s, %s]", a.task, a.start, a.end, b.task, b.start, b.end)
		}
	}
	free := spanOf("free")
	beside := false
	for _, a := range serial {
		beside = beside || (a.start.Before(free.end) && free.start.Before(a.end))
	}
	assert.True(t, beside, "a task of another executor ran beside the serial ones")
}

func TestTimeoutIsItsOwnExitReason(t *testing.T) {
	dir := pyTasks(t, "executors:\n  quick:\n    type: python\n    sandbox: {timeout: 1s}\n", "name: slow\ntasks:\n  slow: {executor: quick, config_file: tasks/slow.yaml}\n",
		map[string]string{"slow": "def run(ctx, upstream):\n    while True:\n        pass\n"})
	r := ork(t, dir, "run", "wf.yaml", "--json")
	assert.Equal(t, 1, r.code)
	s := decodeSummary(t, r)
	shown := showRun(t, dir, s.RunID)
	assert.Equal(t, "failed", shown.Tasks["slow"].Status)
	require.NotNil(t, shown.Tasks["slow"].Error)
	assert.Regexp(t, `^timed out after 1s( in .+)? \(executors.quick.sandbox.timeout in ork.yaml\)$`, *shown.Tasks["slow"].Error)
	r = ork(t, dir, "runs", "show", s.RunID)
	assert.Regexp(t, `slow +failed +1 +[0-9.]+s +(wazero|wasmtime) +timeout: timed out after 1s`, r.stdout)
}

func TestResumeRerunsOnlyWhatDidNotSucceed(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", `name: resumable
tasks:
  first: {executor: python, config_file: tasks/first.yaml}
  gate:  {executor: python, config_file: tasks/gate.yaml, depends_on: [first]}
  last:  {executor: python, config_file: tasks/last.yaml, depends_on: [gate]}
`, map[string]string{
		"first": "import time\ndef run(ctx, upstream):\n    return {'made_at': time.time_ns()}\n",
		"gate":  "import os\ndef run(ctx, upstream):\n    if not os.path.exists('open.flag'):\n        raise RuntimeError('gate closed')\n    return {'first': upstream['first']['made_at']}\n",
		"last":  "def run(ctx, upstream):\n    return {'seen': upstream['gate']['first']}\n",
	})
	r := ork(t, dir, "run", "wf.yaml", "--json")
	require.Equal(t, 1, r.code, r.stderr)
	first := decodeSummary(t, r)
	assert.Equal(t, "skipped", first.Tasks["last"].Status)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "open.flag"), nil, 0o644))
	r = ork(t, dir, "run", "wf.yaml", "--resume", first.RunID, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	resumed := decodeSummary(t, r)
	assert.Equal(t, first.RunID, resumed.RunID)
	assert.Equal(t, "succeeded", resumed.Status)
	assert.Equal(t, 1, resumed.Tasks["first"].Attempts, "a succeeded task is not run again")
	assert.JSONEq(t, string(first.Tasks["first"].Output), string(resumed.Tasks["first"].Output))
	assert.Equal(t, 2, resumed.Tasks["gate"].Attempts)
	assert.Equal(t, 1, resumed.Tasks["last"].Attempts)
	var made, seen map[string]any
	require.NoError(t, json.Unmarshal(first.Tasks["first"].Output, &made))
	require.NoError(t, json.Unmarshal(resumed.Tasks["last"].Output, &seen))
	assert.Equal(t, made["made_at"], seen["seen"], "the recorded output flowed downstream")
	assert.NotContains(t, r.stderr, "first  started")

	// run --json and runs show --json share one schema and agree.
	shown := showRun(t, dir, first.RunID)
	assert.Equal(t, resumed.Status, shown.Status)
	for name, task := range resumed.Tasks {
		assert.Equal(t, task.Status, shown.Tasks[name].Status, name)
		assert.Equal(t, task.Attempts, shown.Tasks[name].Attempts, name)
		assert.JSONEq(t, string(task.Output), string(shown.Tasks[name].Output), name)
	}

	r = ork(t, dir, "run", "wf.yaml", "--resume", first.RunID)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "already succeeded; there is nothing to resume")
}

// TestRunsShowMatchesRunJSON: for a failed run whose downstream task was
// skipped, `ork runs show --json` prints the very document `ork run --json`
// printed, and the table lists the skipped task.
func TestRunsShowMatchesRunJSON(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", `name: ab
tasks:
  a: {executor: python, config_file: tasks/a.yaml}
  b: {executor: python, config_file: tasks/b.yaml, depends_on: [a]}
`, map[string]string{
		"a": "def run(ctx, upstream):\n    ctx.metrics.record('tried', 1)\n    raise RuntimeError('a is broken')\n",
		"b": "def run(ctx, upstream):\n    return 1\n",
	})
	r := ork(t, dir, "run", "wf.yaml", "--json")
	require.Equal(t, 1, r.code, r.stderr)
	s := decodeSummary(t, r)
	require.Equal(t, "skipped", s.Tasks["b"].Status)
	shown := ork(t, dir, "runs", "show", s.RunID, "--json")
	require.Equal(t, 0, shown.code, shown.stderr)
	assert.JSONEq(t, r.stdout, shown.stdout)

	table := ork(t, dir, "runs", "show", s.RunID)
	assert.Regexp(t, `(?m)^a +failed +1 `, table.stdout)
	assert.Regexp(t, `(?m)^b +skipped +0 +- +- +upstream task "a" failed`, table.stdout)
	assert.Less(t, strings.Index(table.stdout, "\na "), strings.Index(table.stdout, "\nb "), "tasks in workflow order")
}

func TestResumeRefusesAChangedWorkflowUnlessForced(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", "name: w\ntasks:\n  bad: {executor: python, config_file: tasks/bad.yaml}\n",
		map[string]string{"bad": "import os\ndef run(ctx, upstream):\n    assert os.path.exists('ok.flag'), 'not yet'\n    return 1\n"})
	r := ork(t, dir, "run", "wf.yaml", "--json")
	require.Equal(t, 1, r.code)
	id := decodeSummary(t, r).RunID
	require.NoError(t, os.WriteFile(filepath.Join(dir, "wf.yaml"), []byte("name: w\n# edited\ntasks:\n  bad: {executor: python, config_file: tasks/bad.yaml}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ok.flag"), nil, 0o644))
	r = ork(t, dir, "run", "wf.yaml", "--resume", id)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "wf.yaml changed since run "+id+" started")
	assert.Contains(t, r.stderr, "--force")
	r = ork(t, dir, "run", "wf.yaml", "--resume", id, "--force")
	assert.Equal(t, 0, r.code, r.stderr)
}

// TestKillNineAndResume kills the ork process while a task runs, then
// resumes: every task output is present exactly once, nothing that completed
// runs again.
func TestKillNineAndResume(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", `name: crashy
tasks:
  a: {executor: python, config_file: tasks/a.yaml}
  b: {executor: python, config_file: tasks/b.yaml, depends_on: [a]}
  c: {executor: python, config_file: tasks/c.yaml, depends_on: [b]}
`, map[string]string{
		"a": "def run(ctx, upstream):\n    print('a ran')\n    return {'a': ctx.attempt}\n",
		"b": "import time\ndef run(ctx, upstream):\n    if ctx.attempt == 1:\n        time.sleep(60)\n    return {'b': ctx.attempt, 'a': upstream['a']}\n",
		"c": "def run(ctx, upstream):\n    return {'c': 1, 'b': upstream['b']}\n",
	})
	run := startOrk(t, dir, "run", "wf.yaml")
	run.waitFor(t, "b  started")
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, run.cmd.Process.Signal(syscall.SIGKILL))
	_ = run.cmd.Wait()

	id, status := onlyRun(t, dir)
	assert.Equal(t, "interrupted", status)

	r := ork(t, dir, "run", "wf.yaml", "--resume", id, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	s := decodeSummary(t, r)
	assert.Equal(t, 1, s.Tasks["a"].Attempts)
	assert.Equal(t, 2, s.Tasks["b"].Attempts)
	assert.Equal(t, 1, s.Tasks["c"].Attempts)
	assert.JSONEq(t, `{"c":1,"b":{"b":2,"a":{"a":1}}}`, string(s.Tasks["c"].Output))

	db := openDB(t, dir)
	assert.Equal(t, []string{"succeeded"}, db.statuses(t, s.RunID, "a"), "a ran exactly once")
	assert.Equal(t, []string{"cancelled", "succeeded"}, db.statuses(t, s.RunID, "b"))
	r = ork(t, dir, "logs", s.RunID, "a")
	assert.Equal(t, 1, strings.Count(r.stdout, "a ran"))
}

// TestResumeOfALiveRunIsRefused resumes a run whose ork process is still
// running it: the resume is refused and the run's record stays as the
// original process writes it.
func TestResumeOfALiveRunIsRefused(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", "name: live\ntasks:\n  slow: {executor: python, config_file: tasks/slow.yaml}\n",
		map[string]string{"slow": "import time\ndef run(ctx, upstream):\n    print('slow ran', flush=True)\n    time.sleep(3)\n    return {'attempt': ctx.attempt}\n"})
	run := startOrk(t, dir, "run", "wf.yaml", "--json")
	run.waitFor(t, "slow ran")
	id, _ := onlyRun(t, dir)

	r := ork(t, dir, "run", "wf.yaml", "--resume", id)
	assert.Equal(t, 2, r.code, r.stderr)
	host, _ := os.Hostname()
	assert.Contains(t, r.stderr, fmt.Sprintf("run %s is still running in process %d on host %s", id, run.cmd.Process.Pid, host))
	assert.Contains(t, r.stderr, "wait for it to finish, or stop that process")

	first := run.wait(t)
	require.Equal(t, 0, first.code, first.stderr)
	s := decodeSummary(t, first)
	assert.Equal(t, "succeeded", s.Status)
	shown := showRun(t, dir, id)
	assert.Equal(t, "succeeded", shown.Status)
	assert.Equal(t, 1, shown.Tasks["slow"].Attempts)
	assert.JSONEq(t, `{"attempt":1}`, string(shown.Tasks["slow"].Output))
	db := openDB(t, dir)
	assert.Equal(t, []string{"succeeded"}, db.statuses(t, id, "slow"), "the task ran once and its attempt is intact")
	r = ork(t, dir, "logs", id, "slow")
	assert.Equal(t, 1, strings.Count(r.stdout, "slow ran"))
}

// TestInterruptThenResume interrupts a run with SIGINT (Ctrl-C) while a task
// runs, then resumes it: the cancelled task runs again, the completed one
// does not, and the downstream task runs with the recorded output.
func TestInterruptThenResume(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", `name: ctrlc
tasks:
  a: {executor: python, config_file: tasks/a.yaml}
  b: {executor: python, config_file: tasks/b.yaml, depends_on: [a]}
  c: {executor: python, config_file: tasks/c.yaml, depends_on: [b]}
`, map[string]string{
		"a": "import time\ndef run(ctx, upstream):\n    print('a ran')\n    return {'made_at': time.time_ns()}\n",
		"b": "import os, time\ndef run(ctx, upstream):\n    print(f'b attempt {ctx.attempt}', flush=True)\n    while not os.path.exists('go.flag'):\n        time.sleep(0.05)\n    return {'a': upstream['a']['made_at']}\n",
		"c": "def run(ctx, upstream):\n    return upstream['b']\n",
	})
	run := startOrk(t, dir, "run", "wf.yaml")
	run.waitFor(t, "b attempt 1")
	require.NoError(t, run.cmd.Process.Signal(syscall.SIGINT))
	interrupted := run.wait(t)
	assert.Equal(t, 130, interrupted.code, interrupted.stdout+interrupted.stderr)

	id, status := onlyRun(t, dir)
	assert.Equal(t, "cancelled", status)
	before := showRun(t, dir, id)
	assert.Equal(t, "succeeded", before.Tasks["a"].Status)
	assert.Equal(t, "cancelled", before.Tasks["b"].Status)
	assert.Equal(t, "skipped", before.Tasks["c"].Status)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.flag"), nil, 0o644))
	resumed := ork(t, dir, "run", "wf.yaml", "--resume", id, "--json")
	require.Equal(t, 0, resumed.code, resumed.stderr)
	s := decodeSummary(t, resumed)
	assert.Equal(t, id, s.RunID)
	assert.Equal(t, "succeeded", s.Status)
	assert.Equal(t, 1, s.Tasks["a"].Attempts)
	assert.Equal(t, 2, s.Tasks["b"].Attempts)
	assert.Equal(t, 1, s.Tasks["c"].Attempts)
	assert.JSONEq(t, string(before.Tasks["a"].Output), string(s.Tasks["a"].Output), "a's recorded output is reused")
	assert.JSONEq(t, fmt.Sprintf(`{"a":%v}`, mustJSONNumber(t, before.Tasks["a"].Output, "made_at")), string(s.Tasks["c"].Output))

	db := openDB(t, dir)
	assert.Equal(t, []string{"succeeded"}, db.statuses(t, id, "a"), "a ran once")
	assert.Equal(t, []string{"cancelled", "succeeded"}, db.statuses(t, id, "b"))
	assert.Equal(t, []string{"succeeded"}, db.statuses(t, id, "c"))
	r := ork(t, dir, "logs", id, "a")
	assert.Equal(t, 1, strings.Count(r.stdout, "a ran"))
	shown := ork(t, dir, "runs", "show", id, "--json")
	require.Equal(t, 0, shown.code, shown.stderr)
	assert.JSONEq(t, resumed.stdout, shown.stdout)
}

// mustJSONNumber returns the text of a number field of a JSON object.
func mustJSONNumber(t *testing.T, doc json.RawMessage, key string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(doc, &m))
	require.Contains(t, m, key)
	return string(m[key])
}

func TestConcurrentRunsShareTheStore(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", "name: par\ntasks:\n  x: {executor: python, config_file: tasks/x.yaml}\n  y: {executor: python, config_file: tasks/x.yaml}\n",
		map[string]string{"x": "def run(ctx, upstream):\n    ctx.metrics.record('n', 1)\n    return ctx.run_id\n"})
	var wg sync.WaitGroup
	results := make([]result, 3)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = ork(t, dir, "run", "wf.yaml", "--json")
		}(i)
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, r := range results {
		require.Equal(t, 0, r.code, r.stderr)
		s := decodeSummary(t, r)
		ids[s.RunID] = true
		shown := showRun(t, dir, s.RunID)
		assert.Equal(t, "succeeded", shown.Status)
		assert.JSONEq(t, `"`+s.RunID+`"`, string(shown.Tasks["x"].Output))
	}
	assert.Len(t, ids, 3)
	r := ork(t, dir, "runs", "list", "--workflow", "par", "--status", "succeeded", "--limit", "2", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var runs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
	assert.Len(t, runs, 2)
}

func TestParamsReachTasksAndTheRecord(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", "name: p\ntasks:\n  t: {executor: python, config_file: tasks/t.yaml}\n",
		map[string]string{"t": "def run(ctx, upstream):\n    return ctx.workflow_params\n"})
	r := ork(t, dir, "run", "wf.yaml", "--json", "--param", "day=2026-11-28", "--param", "limit=3", "--param", "dry=true", "--param", "tags=[a, b]", "--param", "code='007'")
	require.Equal(t, 0, r.code, r.stderr)
	s := decodeSummary(t, r)
	assert.JSONEq(t, `{"day":"2026-11-28","limit":3,"dry":true,"tags":["a","b"],"code":"007"}`, string(s.Tasks["t"].Output))
	r = ork(t, dir, "runs", "list", "--json")
	assert.Contains(t, r.stdout, `"limit": 3`)
	r = ork(t, dir, "run", "wf.yaml", "--param", "nope")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `--param "nope" must be key=value`)
}

func TestHistoryCommands(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", "name: hist\ntasks:\n  m: {executor: python, config_file: tasks/m.yaml}\n",
		map[string]string{"m": "import logging\ndef run(ctx, upstream):\n    ctx.metrics.record('rows_total', 42, labels={'table': 'users \"main\"'})\n    ctx.metrics.record('bytes', 1.5e9, labels={'task': ctx.task_name})\n    logging.info('hello %s', 'log')\n    print('plain line')\n    return 1\n"})
	r := ork(t, dir, "run", "wf.yaml", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	id := decodeSummary(t, r).RunID

	r = ork(t, dir, "runs", "list")
	assert.Regexp(t, `(?m)^`+id+` +hist +succeeded`, r.stdout)
	r = ork(t, dir, "runs", "show", id)
	assert.Regexp(t, `m +succeeded +1 +`, r.stdout)
	r = ork(t, dir, "logs", id)
	assert.Contains(t, r.stdout, "m[1] | INFO hello log")
	assert.Contains(t, r.stdout, "m[1] | plain line")
	r = ork(t, dir, "logs", id, "nosuch")
	assert.Equal(t, 2, r.code)
	r = ork(t, dir, "logs", "no-such-run")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "ork runs list")

	r = ork(t, dir, "metrics", id)
	assert.Regexp(t, `m +1 +rows_total\{table=users "main"\} +42`, r.stdout)
	assert.Regexp(t, `m +1 +bytes\{task=m\} +1500000000`, r.stdout)
	r = ork(t, dir, "metrics", id, "--format", "json")
	var points []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &points))
	assert.Len(t, points, 2)
	r = ork(t, dir, "metrics", id, "--format", "prometheus")
	require.Equal(t, 0, r.code, r.stderr)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(r.stdout))
	require.NoError(t, err, r.stdout)
	require.Contains(t, fams, "rows_total")
	m := fams["rows_total"].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	assert.Equal(t, `users "main"`, labels["table"])
	assert.Equal(t, id, labels["run_id"])
	assert.Equal(t, "hist", labels["workflow"])
	assert.Equal(t, 42.0, m.GetGauge().GetValue())
	r = ork(t, dir, "metrics", id, "--format", "xml")
	assert.Equal(t, 2, r.code)
	r = ork(t, dir, "metrics", id, "--format", "prometheus", "--json")
	assert.Equal(t, 2, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "--json and --format prometheus ask for two different outputs; pass one of them")
	r = ork(t, dir, "metrics", id, "--format", "json", "--json")
	assert.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &points))
}

// TestRunsListByEffectiveStatus: running and interrupted runs are both
// recorded as running; --status picks by whether the process lives, and
// --limit counts what is left after that.
func TestRunsListByEffectiveStatus(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "ork.db")
	st, err := store.Open(ctx, db)
	require.NoError(t, err)
	defer st.Close()
	dead := exec.Command("true")
	require.NoError(t, dead.Run()) // reaped: its pid is gone
	host, _ := os.Hostname()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	add := func(id, status string, pid int, at time.Time) {
		require.NoError(t, st.CreateRun(ctx, store.Run{ID: id, Workflow: "w", WorkflowFile: "wf.yaml", WorkflowDigest: "d",
			Status: status, StartedAt: at, OrkVersion: "test", Host: host, PID: pid}))
	}
	// Old interrupted runs, below 30 newer finished runs and 24 newer
	// running runs, one in four of them dead (recent-03, -07, ... -23).
	for i := range 3 {
		add(fmt.Sprintf("old-interrupted-%d", i), "running", dead.Process.Pid, base.Add(time.Duration(i)*time.Minute))
	}
	for i := range 30 {
		add(fmt.Sprintf("done-%02d", i), "succeeded", 1, base.Add(time.Hour+time.Duration(i)*time.Minute))
	}
	for i := range 24 {
		pid := os.Getpid()
		if i%4 == 3 {
			pid = dead.Process.Pid
		}
		add(fmt.Sprintf("recent-%02d", i), "running", pid, base.Add(2*time.Hour+time.Duration(i)*time.Minute))
	}
	list := func(args ...string) []string {
		t.Helper()
		r := ork(t, t.TempDir(), append([]string{"runs", "list", "--db", db, "--json"}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		var runs []struct {
			RunID  string `json:"run_id"`
			Status string `json:"status"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
		var ids []string
		for _, run := range runs {
			assert.Equal(t, args[1], run.Status, run.RunID)
			ids = append(ids, run.RunID)
		}
		return ids
	}
	assert.Equal(t, []string{"recent-23", "recent-19", "recent-15", "recent-11", "recent-07", "recent-03",
		"old-interrupted-2", "old-interrupted-1", "old-interrupted-0"}, list("--status", "interrupted"))
	assert.Equal(t, []string{"recent-23", "recent-19", "recent-15", "recent-11"}, list("--status", "interrupted", "--limit", "4"))
	assert.Equal(t, []string{"recent-22", "recent-21"}, list("--status", "running", "--limit", "2"))
	assert.Len(t, list("--status", "running"), 18)
	assert.Len(t, list("--status", "running", "--limit", "100"), 18)
	assert.Len(t, list("--status", "succeeded", "--limit", "25"), 25)
}

func TestLogsFollowStreamsARunningTask(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", "name: f\ntasks:\n  slow: {executor: python, config_file: tasks/slow.yaml}\n",
		map[string]string{"slow": "import time, sys\ndef run(ctx, upstream):\n    for i in range(5):\n        print(f'tick {i}', flush=True)\n        time.sleep(0.3)\n    return i\n"})
	run := startOrk(t, dir, "run", "wf.yaml", "--json")
	run.waitFor(t, "tick 0")
	id, status := onlyRun(t, dir)
	assert.Equal(t, "running", status)
	r := ork(t, dir, "logs", id, "--follow")
	done := run.wait(t)
	require.Equal(t, 0, done.code, done.stderr)
	for i := 0; i < 5; i++ {
		assert.Contains(t, r.stdout, fmt.Sprintf("tick %d", i))
	}
}

// TestOTLPPush runs a workflow whose ork.yaml names an OTLP endpoint: a
// collector in the test receives each task's metrics and ork's own.
func TestOTLPPush(t *testing.T) {
	var mu sync.Mutex
	var got []*colmetrics.ExportMetricsServiceRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			body = gunzip(t, body)
		}
		var req colmetrics.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err == nil {
			mu.Lock()
			got = append(got, &req)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&colmetrics.ExportMetricsServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	dir := pyTasks(t, "telemetry:\n  otlp_endpoint: "+srv.URL+"\nexecutors: {}\n", "name: otel\ntasks:\n  t: {executor: python, config_file: tasks/t.yaml}\n  f: {executor: python, config_file: tasks/f.yaml}\n",
		map[string]string{
			"t": "def run(ctx, upstream):\n    ctx.metrics.record('rows', 7, labels={'table': 'users'})\n    return 1\n",
			"f": "def run(ctx, upstream):\n    raise RuntimeError('no')\n",
		})
	r := ork(t, dir, "run", "wf.yaml")
	require.Equal(t, 1, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "warning")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, got)
	names := map[string]bool{}
	// ork.tasks: the counter's latest value by attribute set.
	tasks := map[string]int64{}
	for _, req := range got {
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					names[m.GetName()] = true
					if m.GetName() != "ork.tasks" {
						continue
					}
					require.NotNil(t, m.GetSum(), "ork.tasks is a counter")
					assert.True(t, m.GetSum().GetIsMonotonic())
					for _, dp := range m.GetSum().GetDataPoints() {
						var attrs []string
						for _, kv := range dp.GetAttributes() {
							attrs = append(attrs, kv.GetKey()+"="+kv.GetValue().GetStringValue())
						}
						sort.Strings(attrs)
						tasks[strings.Join(attrs, ",")] = dp.GetAsInt()
					}
				}
			}
		}
	}
	assert.True(t, names["rows"], "names: %v", names)
	assert.True(t, names["ork.tasks"], "names: %v", names)
	assert.Equal(t, map[string]int64{
		"status=succeeded,task=t":               1,
		"reason=exception,status=failed,task=f": 1,
	}, tasks)
	assert.True(t, names["ork.task.duration"], "names: %v", names)
}
