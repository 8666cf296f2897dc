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
	cmd := exec.Command(orkBin, "run", "wf.yaml")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), "b  started") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Contains(t, out.String(), "b  started")
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	r := ork(t, dir, "runs", "list", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var runs []struct {
		RunID  string `json:"run_id"`
		Status string `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
	require.Len(t, runs, 1)
	assert.Equal(t, "interrupted", runs[0].Status)

	r = ork(t, dir, "run", "wf.yaml", "--resume", runs[0].RunID, "--json")
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
}

func TestLogsFollowStreamsARunningTask(t *testing.T) {
	dir := pyTasks(t, "executors: {}\n", "name: f\ntasks:\n  slow: {executor: python, config_file: tasks/slow.yaml}\n",
		map[string]string{"slow": "import time, sys\ndef run(ctx, upstream):\n    for i in range(5):\n        print(f'tick {i}', flush=True)\n        time.sleep(0.3)\n    return i\n"})
	cmd := exec.Command(orkBin, "run", "wf.yaml", "--json")
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(errOut.String(), "tick 0") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	r := ork(t, dir, "runs", "list", "--json")
	var runs []struct {
		RunID  string `json:"run_id"`
		Status string `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
	require.Len(t, runs, 1)
	assert.Equal(t, "running", runs[0].Status)
	r = ork(t, dir, "logs", runs[0].RunID, "--follow")
	require.NoError(t, cmd.Wait())
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
	dir := pyTasks(t, "telemetry:\n  otlp_endpoint: "+srv.URL+"\nexecutors: {}\n", "name: otel\ntasks:\n  t: {executor: python, config_file: tasks/t.yaml}\n",
		map[string]string{"t": "def run(ctx, upstream):\n    ctx.metrics.record('rows', 7, labels={'table': 'users'})\n    return 1\n"})
	r := ork(t, dir, "run", "wf.yaml")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "warning")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, got)
	names := map[string]bool{}
	for _, req := range got {
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					names[m.GetName()] = true
				}
			}
		}
	}
	assert.True(t, names["rows"], "names: %v", names)
	assert.True(t, names["ork.task.duration"], "names: %v", names)
}
