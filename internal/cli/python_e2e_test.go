package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/internal/testguests"
)

// TestWarehouseExampleEndToEnd installs the example's packages from PyPI
// (pydantic 1.10, Jinja2, PyYAML) into a copy of the project, checks them in
// the sandbox, and runs its workflow.
func TestWarehouseExampleEndToEnd(t *testing.T) {
	src := filepath.Join(testguests.RepoRoot(), "examples", "warehouse")
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(src)))
	os.RemoveAll(filepath.Join(dir, "vendor"))
	os.RemoveAll(filepath.Join(dir, ".ork"))

	// ork.yaml names vendor, which does not exist yet.
	r := ork(t, dir, "validate", "workflows/warehouse_refresh.yaml")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "ork.yaml:6:10: python path entry vendor is not a directory of the project; create it (e.g. with `ork python install --target vendor`)")

	r = ork(t, dir, "python", "install", "-r", "requirements.txt")
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Regexp(t, `pydantic 1\.10\.\d+ \(pure wheel\)`, r.stdout)
	assert.Regexp(t, `MarkupSafe [0-9.]+ \(compiled speed-ups left out\)`, r.stdout)
	assert.NotContains(t, r.stderr, "were not checked")

	r = ork(t, dir, "run", "workflows/warehouse_refresh.yaml", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	s := decodeSummary(t, r)
	for name, task := range s.Tasks {
		assert.Equal(t, "succeeded", task.Status, name)
	}
	var facts struct {
		TargetTable    string   `json:"target_table"`
		BytesProcessed int64    `json:"bytes_processed"`
		EstimatedCost  float64  `json:"estimated_cost_usd"`
		SQLFile        string   `json:"sql_file"`
		Lineage        []string `json:"lineage"`
		RowsAffected   int      `json:"rows_affected"`
	}
	require.NoError(t, json.Unmarshal(s.Tasks["build_facts"].Output, &facts))
	assert.Equal(t, "warehouse.user_order_facts", facts.TargetTable)
	assert.ElementsMatch(t, []string{"staging.users", "staging.orders"}, facts.Lineage)
	assert.Equal(t, "/output/build_facts.sql", facts.SQLFile)
	assert.Greater(t, facts.EstimatedCost, 0.0)

	sql, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", s.RunID, "build_facts", "output", "build_facts.sql"))
	require.NoError(t, err)
	assert.Contains(t, string(sql), "FROM staging.users u\nLEFT JOIN staging.orders o USING (user_id)")
	orders, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", s.RunID, "stage_orders", "output", "stage_orders.sql"))
	require.NoError(t, err)
	assert.Contains(t, string(orders), "status IN ('paid', 'shipped')")

	m := s.Tasks["stage_users"].Metrics
	require.Len(t, m, 1)
	assert.Equal(t, "bytes_processed", m[0].Name)
	assert.Equal(t, map[string]string{"task": "stage_users", "workflow": "warehouse_refresh"}, m[0].Labels)

	var summary map[string]any
	require.NoError(t, json.Unmarshal(s.Tasks["summarize"].Output, &summary))
	assert.Equal(t, "Warehouse refresh", summary["title"])
	assert.Regexp(t, `summarize +\| INFO summarized 3 tables`, r.stderr)
	assert.Regexp(t, `stage_users +\| INFO rendered sql/staging/users.sql for demo-warehouse`, r.stderr)

	// A refused package leaves vendor as it was.
	r = ork(t, dir, "python", "install", "numpy")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "cannot run in the sandbox: it needs native code")
	r = ork(t, dir, "run", "workflows/warehouse_refresh.yaml")
	assert.Equal(t, 0, r.code, r.stderr)
}

func TestPythonSDKThroughOrkRun(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"ork.yaml": `executors:
  dc:
    type: executors.shapes:DataclassExecutor
    config: {prefix: p, scale: 2}
  dc_bad:
    type: executors.shapes:DataclassExecutor
    config: {prefix: 3, scael: 2}
  td:
    type: executors.shapes:TypedDictExecutor
    config: {name: x}
  plain:
    type: executors.shapes:DictExecutor
    config: {anything: [1, 2]}
  missing:
    type: executors.shapes:NoSuchExecutor
`,
		"executors/__init__.py": "",
		"executors/shapes.py": `import logging
from dataclasses import dataclass
from typing import TypedDict
from ork import executor, Context

@dataclass
class DC:
    prefix: str
    scale: float = 1.0

class TD(TypedDict):
    name: str

@executor
class DataclassExecutor:
    def __init__(self, config: DC):
        self.config = config
    def run(self, config_file: str, ctx: Context, upstream: dict[str, object] = {}):
        logging.getLogger("mine").warning("from logging", extra={"rows": 3})
        print("from print")
        ctx.metrics.record("rows", 3, labels={"task": ctx.task_name, "workflow": ctx.workflow_name})
        return {"prefix": self.config.prefix, "scale": self.config.scale, "attempt": ctx.attempt}

@executor
class TypedDictExecutor:
    def __init__(self, config: TD):
        self.config = config
    def run(self, config_file, ctx, upstream={}):
        return dict(self.config)

@executor
class DictExecutor:
    def __init__(self, config: dict):
        self.config = config
    def run(self, config_file, ctx, upstream={}):
        return {"config": self.config, "upstream": sorted(upstream)}
`,
		"tasks/crash.py":   "def helper():\n    raise KeyError('nope')\n\ndef run(ctx, upstream):\n    helper()\n",
		"tasks/crash.yaml": "file: tasks/crash.py\n",
		"tasks/obj.py":     "class Thing: pass\n\ndef run(ctx, upstream):\n    return {'x': [1, Thing()]}\n",
		"tasks/obj.yaml":   "file: tasks/obj.py\n",
		"tasks/fn.py":      "def compute(ctx, upstream, n, word='w'):\n    return {'n': n, 'word': word, 'task': ctx.task_name}\n",
		"tasks/fn.yaml":    "file: tasks/fn.py\nfunction: compute\nparams: {n: 2}\n",
		"tasks/nofn.yaml":  "file: tasks/fn.py\nfunction: nothere\n",
		"wf.yaml": `name: sdk
tasks:
  dc: {executor: dc}
  dc_bad: {executor: dc_bad}
  td: {executor: td}
  plain: {executor: plain, depends_on: [dc, td]}
  missing: {executor: missing}
  crash: {executor: python, config_file: tasks/crash.yaml}
  obj: {executor: python, config_file: tasks/obj.yaml}
  fn: {executor: python, config_file: tasks/fn.yaml}
  nofn: {executor: python, config_file: tasks/nofn.yaml}
`,
	})
	r := ork(t, dir, "run", "wf.yaml", "--json")
	assert.Equal(t, 1, r.code, r.stderr)
	s := decodeSummary(t, r)
	status := map[string]string{}
	errs := map[string]string{}
	for n, task := range s.Tasks {
		status[n] = task.Status
		if task.Error != nil {
			errs[n] = *task.Error
		}
	}
	assert.Equal(t, map[string]string{
		"dc": "succeeded", "dc_bad": "failed", "td": "succeeded", "plain": "succeeded", "missing": "failed",
		"crash": "failed", "obj": "failed", "fn": "succeeded", "nofn": "failed",
	}, status, "errors: %v", errs)

	assert.JSONEq(t, `{"prefix":"p","scale":2,"attempt":1}`, string(s.Tasks["dc"].Output))
	assert.JSONEq(t, `{"name":"x"}`, string(s.Tasks["td"].Output))
	assert.JSONEq(t, `{"config":{"anything":[1,2]},"upstream":["dc","td"]}`, string(s.Tasks["plain"].Output))
	assert.JSONEq(t, `{"n":2,"word":"w","task":"fn"}`, string(s.Tasks["fn"].Output))
	require.Len(t, s.Tasks["dc"].Metrics, 1)
	assert.Equal(t, map[string]string{"task": "dc", "workflow": "sdk"}, s.Tasks["dc"].Metrics[0].Labels)
	assert.Regexp(t, `dc +\| WARN from logging`, r.stderr)
	assert.Regexp(t, `dc +\| from print`, r.stderr)

	assert.Contains(t, errs["dc_bad"], "executors.dc_bad.config.prefix")
	assert.Contains(t, errs["dc_bad"], "executors.dc_bad.config.scael")
	assert.Contains(t, errs["missing"], "executors.shapes:NoSuchExecutor")
	assert.Contains(t, errs["crash"], "KeyError: 'nope'")
	assert.Contains(t, errs["crash"], `tasks/crash.py", line 2, in helper`)
	assert.NotContains(t, errs["crash"], "_main.py")
	assert.Contains(t, errs["obj"], `output["x"][1] is a`)
	assert.Contains(t, errs["obj"], "Thing")
	assert.Contains(t, errs["nofn"], "nothere")
}
