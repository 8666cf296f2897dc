package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/internal/testguests"
)

// copyWarehouse copies examples/warehouse without its vendor directory or
// run history.
func copyWarehouse(t *testing.T) string {
	t.Helper()
	src := filepath.Join(testguests.RepoRoot(), "examples", "warehouse")
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(src)))
	os.RemoveAll(filepath.Join(dir, "vendor"))
	os.RemoveAll(filepath.Join(dir, ".ork"))
	return dir
}

var (
	warehouseVendorOnce sync.Once
	warehouseVendor     string
)

// installWarehouse installs the example's packages from PyPI (pydantic 1.10,
// Jinja2, PyYAML) once per test process and copies them into dir.
func installWarehouse(t *testing.T, dir string) {
	t.Helper()
	warehouseVendorOnce.Do(func() {
		// Outlives this test: the other warehouse tests copy it.
		src, err := os.MkdirTemp("", "ork-warehouse-vendor-")
		require.NoError(t, err)
		require.NoError(t, os.CopyFS(src, os.DirFS(filepath.Join(testguests.RepoRoot(), "examples", "warehouse"))))
		os.RemoveAll(filepath.Join(src, "vendor"))
		r := ork(t, src, "python", "install", "-r", "requirements.txt")
		require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		assert.Regexp(t, `pydantic 1\.10\.\d+ \(pure wheel\)`, r.stdout)
		assert.Regexp(t, `MarkupSafe [0-9.]+ \(compiled speed-ups left out\)`, r.stdout)
		assert.NotContains(t, r.stderr, "were not checked")
		warehouseVendor = filepath.Join(src, "vendor")
	})
	require.NotEmpty(t, warehouseVendor, "installing the example's packages failed")
	require.NoError(t, os.CopyFS(filepath.Join(dir, "vendor"), os.DirFS(warehouseVendor)))
}

// checkWarehouse runs warehouse_refresh and checks the outputs against the
// data in data/*.csv.
func checkWarehouse(t *testing.T, dir string, env []string, args ...string) summary {
	t.Helper()
	cmd := exec.Command(orkBin, append([]string{"run", "workflows/warehouse_refresh.yaml", "--json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	s := decodeSummary(t, result{stdout: stdout.String(), stderr: stderr.String()})
	for name, task := range s.Tasks {
		assert.Equal(t, "succeeded", task.Status, name)
	}
	assert.JSONEq(t, `{"source_users":6,"source_orders":8}`, string(mustField(t, s.Tasks["seed"].Output, "loaded")))
	var users, orders, facts struct {
		TargetTable    string   `json:"target_table"`
		RowsAffected   int      `json:"rows_affected"`
		BytesProcessed int64    `json:"bytes_processed"`
		EstimatedCost  float64  `json:"estimated_cost_usd"`
		Lineage        []string `json:"lineage"`
	}
	require.NoError(t, json.Unmarshal(s.Tasks["stage_users"].Output, &users))
	require.NoError(t, json.Unmarshal(s.Tasks["stage_orders"].Output, &orders))
	require.NoError(t, json.Unmarshal(s.Tasks["build_facts"].Output, &facts))
	assert.Equal(t, 4, users.RowsAffected, "active users updated in the last 7 days")
	assert.Equal(t, 5, orders.RowsAffected, "paid or shipped orders of the last 7 days")
	assert.Equal(t, "user_order_facts", facts.TargetTable)
	assert.Equal(t, 4, facts.RowsAffected)
	assert.ElementsMatch(t, []string{"staging_users", "staging_orders"}, facts.Lineage)
	assert.Greater(t, facts.BytesProcessed, int64(0))
	var summary struct {
		ByCountry map[string]struct {
			Orders  int     `json:"orders"`
			Revenue float64 `json:"revenue"`
		} `json:"by_country"`
	}
	require.NoError(t, json.Unmarshal(s.Tasks["summarize"].Output, &summary))
	assert.Equal(t, 2, summary.ByCountry["UK"].Orders)
	assert.InDelta(t, 42.5, summary.ByCountry["UK"].Revenue, 0.001)
	assert.Equal(t, 2, summary.ByCountry["US"].Orders)
	assert.InDelta(t, 118.24, summary.ByCountry["US"].Revenue, 0.001)
	assert.Equal(t, 0, summary.ByCountry["NL"].Orders)

	m := s.Tasks["stage_users"].Metrics
	require.Len(t, m, 1)
	assert.Equal(t, "bytes_processed", m[0].Name)
	assert.Equal(t, float64(users.BytesProcessed), m[0].Value)
	assert.Equal(t, map[string]string{"task": "stage_users", "workflow": "warehouse_refresh"}, m[0].Labels)
	sql, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", s.RunID, "build_facts", "output", "build_facts.sql"))
	require.NoError(t, err)
	assert.Contains(t, string(sql), "-- Built from staging_users (4 rows)\n-- and staging_orders (5 rows).")
	return s
}

func mustField(t *testing.T, doc json.RawMessage, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(doc, &m))
	return m[key]
}

// TestWarehouseExampleOnSQLite installs the example's packages, checks them
// in the sandbox, and runs its workflow on the embedded SQLite connection.
func TestWarehouseExampleOnSQLite(t *testing.T) {
	dir := copyWarehouse(t)
	// ork.yaml names vendor, which does not exist yet.
	r := ork(t, dir, "validate", "workflows/warehouse_refresh.yaml")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "python path entry vendor is not a directory of the project; create it (e.g. with `ork python install --target vendor`)")

	installWarehouse(t, dir)
	checkWarehouse(t, dir, nil)
	// Again: the source tables are replaced, the results are the same.
	checkWarehouse(t, dir, nil)

	// PostgreSQL without its DSN: the tasks that use it fail, naming the
	// connection and the variable.
	t.Setenv("ORK_WAREHOUSE_DSN", "")
	os.Unsetenv("ORK_WAREHOUSE_DSN")
	r = ork(t, dir, "run", "workflows/warehouse_refresh.yaml", "--json", "--param", "connection=warehouse_pg")
	assert.Equal(t, 1, r.code, r.stderr)
	s := decodeSummary(t, r)
	require.Equal(t, "failed", s.Tasks["seed"].Status)
	require.NotNil(t, s.Tasks["seed"].Error)
	assert.Contains(t, *s.Tasks["seed"].Error, "connection warehouse_pg: the environment variable ORK_WAREHOUSE_DSN is not set (ork.yaml connections.warehouse_pg.dsn_env); set it to the PostgreSQL DSN")

	// A refused package leaves vendor as it was.
	r = ork(t, dir, "python", "install", "numpy")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "cannot run in the sandbox: it needs native code")
	_, err := os.Stat(filepath.Join(dir, "vendor", "pydantic"))
	assert.NoError(t, err)
}

// postgresDSN returns the test database's DSN (parsed too) and its
// password, skipping the test where there is none.
func postgresDSN(t *testing.T) (dsn string, u *url.URL, password string) {
	t.Helper()
	dsn = os.Getenv("ORK_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("ORK_TEST_POSTGRES_DSN is not set (toolchain/postgres-test-db.sh prints one)")
	}
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	password, _ = u.User.Password()
	require.NotEmpty(t, password, "the test DSN holds the password")
	return dsn, u, password
}

// TestWarehouseExampleOnPostgres runs the same workflow on PostgreSQL: CI
// starts one on 127.0.0.1 (toolchain/postgres-test-db.sh) and sets
// ORK_TEST_POSTGRES_DSN.
func TestWarehouseExampleOnPostgres(t *testing.T) {
	dsn, _, password := postgresDSN(t)
	dir := copyWarehouse(t)
	installWarehouse(t, dir)
	// Unchanged ork.yaml: the DSN, password included, comes from the environment.
	s := checkWarehouse(t, dir, []string{"ORK_WAREHOUSE_DSN=" + dsn}, "--param", "connection=warehouse_pg")
	assert.NotContains(t, string(mustJSON(t, s)), password)
}

// pgPasswordPy runs SQL on the PostgreSQL connection "pg", whose password
// comes from a secret the task cannot read, and reports an SQL error and a
// connection with a wrong password as values rather than failing.
const pgPasswordPy = `import ork

def run(ctx, upstream, table):
    db = ctx.sql("pg")
    db.execute(f"CREATE TABLE {table} (id INTEGER, name TEXT)")
    inserted = db.execute(f"INSERT INTO {table} VALUES ($1, $2), ($3, $4), ($5, $6)", [1, "a", 2, "b", 3, "c"])
    updated = db.execute(f"UPDATE {table} SET name = upper(name) WHERE id >= $1", [2])
    q = db.query(f"SELECT id, name, current_user AS who FROM {table} ORDER BY id")
    out = {"inserted": inserted, "updated": updated, "columns": q.columns, "rows": q.rows}
    try:
        db.query("SELECT * FROM ork_no_such_table")
    except ork.SqlError as e:
        out["sql_error"] = str(e)
    try:
        ctx.sql("pg_bad").query("SELECT 1")
        out["bad_password"] = "connected"
    except ork.SqlError as e:
        out["bad_password"] = str(e)
    ctx.log.info("done with %s", table)
    return out
`

// TestPostgresPasswordFromSecret: a PostgreSQL connection defined by a DSN
// without the password plus password_secret, as ork.yaml's documentation
// recommends, works end to end through ork run: the host reads the secret
// and logs in, the task executes and queries SQL, and the password appears
// nowhere, not in --json, the logs or the run store. The task's executor
// is granted the connection but not the secret.
func TestPostgresPasswordFromSecret(t *testing.T) {
	dsn, u, password := postgresDSN(t)
	u.User = url.User(u.User.Username())
	bare := u.String()
	require.NotContains(t, bare, password)

	// A fresh table per run, dropped afterwards whatever happens.
	table := fmt.Sprintf("ork_pw_secret_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+table)
			_ = conn.Close(ctx)
		}
	})
	// Whether the server asks for a password at all (Debian's default for
	// 127.0.0.1 does; a trust setup would not).
	needsPassword := false
	{
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := pgx.Connect(ctx, bare)
		if err != nil {
			needsPassword = strings.Contains(err.Error(), "password")
		} else {
			_ = conn.Close(ctx)
		}
		cancel()
	}

	const wrong = "wrong-pw-4e7d1a"
	dir := writeProject(t, map[string]string{
		"ork.yaml": `secrets:
  PGPW: {env: ORK_T_PGPW}
  PGBAD: {env: ORK_T_PGBAD}
connections:
  pg: {type: postgres, dsn: "` + bare + `", password_secret: PGPW}
  pg_bad: {type: postgres, dsn: "` + bare + `", password_secret: PGBAD}
executors:
  db:
    type: python
    sandbox:
      connections: [pg, pg_bad]
`,
		"pg.py":      pgPasswordPy,
		"tasks.yaml": "file: pg.py\nparams: {table: " + table + "}\n",
		"wf.yaml":    "name: pg_password\ntasks:\n  sql: {executor: db, config_file: tasks.yaml}\n",
	})
	cmd := exec.Command(orkBin, "run", "wf.yaml", "--json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ORK_T_PGPW="+password, "ORK_T_PGBAD="+wrong)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	s := decodeSummary(t, result{stdout: stdout.String(), stderr: stderr.String()})
	task := s.Tasks["sql"]
	require.Equal(t, "succeeded", task.Status, "%v", task.Error)

	var out struct {
		Inserted    int      `json:"inserted"`
		Updated     int      `json:"updated"`
		Columns     []string `json:"columns"`
		Rows        [][]any  `json:"rows"`
		SQLError    string   `json:"sql_error"`
		BadPassword string   `json:"bad_password"`
	}
	require.NoError(t, json.Unmarshal(task.Output, &out))
	assert.Equal(t, 3, out.Inserted)
	assert.Equal(t, 2, out.Updated)
	assert.Equal(t, []string{"id", "name", "who"}, out.Columns)
	user := u.User.Username()
	assert.Equal(t, [][]any{{1.0, "a", user}, {2.0, "B", user}, {3.0, "C", user}}, out.Rows)
	assert.Contains(t, out.SQLError, `relation "ork_no_such_table" does not exist`, "the database's message")
	if needsPassword {
		assert.Contains(t, out.BadPassword, "password authentication failed", "the wrong secret is the one used")
	} else {
		t.Log("the server does not ask for a password on " + bare + "; the wrong-password check is skipped")
	}

	logs := ork(t, dir, "logs", s.RunID)
	require.Equal(t, 0, logs.code, logs.stderr)
	assert.Contains(t, logs.stdout, "done with "+table)
	show := ork(t, dir, "runs", "show", s.RunID, "--json")
	require.Equal(t, 0, show.code, show.stderr)
	storeFiles, err := filepath.Glob(filepath.Join(dir, ".ork", "ork.db*"))
	require.NoError(t, err)
	require.NotEmpty(t, storeFiles)
	for _, secret := range []string{password, wrong} {
		assert.NotContains(t, stdout.String(), secret, "--json")
		assert.NotContains(t, stderr.String(), secret, "progress and logs")
		assert.NotContains(t, logs.stdout, secret, "ork logs")
		assert.NotContains(t, show.stdout, secret, "ork runs show --json")
		for _, f := range storeFiles {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			assert.False(t, bytes.Contains(b, []byte(secret)), "the run store file %s holds a password", f)
		}
		b, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", s.RunID, "sql", "task.log"))
		require.NoError(t, err)
		assert.NotContains(t, string(b), secret, "task.log")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestBigQueryExecutorAgainstALocalAPI runs the example's BigQuery executor
// against a stand-in for the REST API's jobs.query and getQueryResults, and
// checks what it receives: the rendered SQL and the token the host attached.
func TestBigQueryExecutorAgainstALocalAPI(t *testing.T) {
	const token = "ya29.test-token-value"
	var mu sync.Mutex
	var queries []map[string]any
	var auth []string
	polls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		auth = append(auth, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == "/bigquery/v2/projects/my-gcp-project/queries":
			var q map[string]any
			_ = json.NewDecoder(r.Body).Decode(&q)
			queries = append(queries, q)
			fmt.Fprint(w, `{"jobReference":{"projectId":"my-gcp-project","jobId":"job_1","location":"US"},"jobComplete":false}`)
		case r.Method == "GET" && r.URL.Path == "/bigquery/v2/projects/my-gcp-project/queries/job_1":
			polls++
			fmt.Fprint(w, `{"jobReference":{"jobId":"job_1"},"jobComplete":true,"totalBytesProcessed":"1099511627776","numDmlAffectedRows":"42"}`)
		default:
			http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	dir := copyWarehouse(t)
	installWarehouse(t, dir)
	orkYAML, err := os.ReadFile(filepath.Join(dir, "ork.yaml"))
	require.NoError(t, err)
	patched := strings.Replace(string(orkYAML), "        - host: bigquery.googleapis.com", "        - host: "+host, 1)
	patched = strings.Replace(patched, "      cost_per_tb: 5.0\n    sandbox:\n      allowed_hosts:", "      cost_per_tb: 5.0\n      api: "+srv.URL+"/bigquery/v2\n    sandbox:\n      allowed_hosts:", 1)
	require.NotEqual(t, string(orkYAML), patched)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ork.yaml"), []byte(patched), 0o644))

	cmd := exec.Command(orkBin, "run", "bigquery/bigquery_refresh.yaml", "--json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ORK_BQ_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	s := decodeSummary(t, result{stdout: stdout.String(), stderr: stderr.String()})
	assert.JSONEq(t, `{"rows_affected":42,"bytes_processed":1099511627776,"estimated_cost_usd":5.0,"job_id":"job_1"}`, string(s.Tasks["stage_users"].Output))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, queries, 1)
	assert.Contains(t, queries[0]["query"], "CREATE OR REPLACE TABLE staging.users AS")
	assert.Contains(t, queries[0]["query"], "INTERVAL 7 DAY")
	assert.Equal(t, false, queries[0]["useLegacySql"])
	assert.Equal(t, 1, polls)
	for _, a := range auth {
		assert.Equal(t, "Bearer "+token, a, "the host attaches the token to every request")
	}
	// The token never reaches the task's record.
	assert.NotContains(t, stdout.String(), token)
	assert.NotContains(t, stderr.String(), token)
}

func TestPythonSDKThroughOrkRun(t *testing.T) {
	dir := writeProject(t, map[string]string{
		// fakes: a pydantic v2 as pip would install it (below).
		"ork.yaml": `python: {path: [fakes]}
executors:
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
  td_bad:
    type: executors.shapes:TypedDictExecutor
    config: {name: 3, nmae: x}
  missing:
    type: executors.shapes:NoSuchExecutor
  v2:
    type: executors.v2:PydanticV2Executor
    config: {name: x}
`,
		// What installing pydantic v2 for the host would leave on
		// python.path: its pure-Python package importing pydantic_core,
		// whose native module cannot load in the sandbox.
		"fakes/pydantic/__init__.py":                                         "VERSION = \"2.7.0\"\nfrom pydantic_core import SchemaValidator\n\nclass BaseModel:\n    pass\n",
		"fakes/pydantic_core/__init__.py":                                    "from ._pydantic_core import SchemaValidator\n",
		"fakes/pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so": "\x7fELF not loadable in WebAssembly",
		"executors/v2.py": `from pydantic import BaseModel
from ork import executor

class Cfg(BaseModel):
    name: str

@executor
class PydanticV2Executor:
    def __init__(self, config: Cfg):
        self.config = config
    def run(self, config_file, ctx, upstream={}):
        return {}
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
		"tasks/bye.py":     "import sys\n\ndef run(ctx, upstream):\n    sys.exit(3)\n",
		"tasks/bye.yaml":   "file: tasks/bye.py\n",
		"tasks/exec.yaml":  "# read by no executor here\n",
		"wf.yaml": `name: sdk
tasks:
  dc: {executor: dc, config_file: tasks/exec.yaml}
  dc_bad: {executor: dc_bad, config_file: tasks/exec.yaml}
  td: {executor: td, config_file: tasks/exec.yaml}
  plain: {executor: plain, config_file: tasks/exec.yaml, depends_on: [dc, td]}
  missing: {executor: missing, config_file: tasks/exec.yaml}
  crash: {executor: python, config_file: tasks/crash.yaml}
  obj: {executor: python, config_file: tasks/obj.yaml}
  fn: {executor: python, config_file: tasks/fn.yaml}
  nofn: {executor: python, config_file: tasks/nofn.yaml}
  bye: {executor: python, config_file: tasks/bye.yaml}
  td_bad: {executor: td_bad, config_file: tasks/exec.yaml}
  v2: {executor: v2, config_file: tasks/exec.yaml}
`,
	})

	r := ork(t, dir, "run", "wf.yaml", "--json")
	assert.Equal(t, 1, r.code, r.stderr)
	s := decodeSummary(t, r)
	status := map[string]string{}
	errs := map[string]string{}
	reasons := map[string]string{}
	for n, task := range s.Tasks {
		status[n] = task.Status
		if task.Error != nil {
			errs[n] = *task.Error
		}
		if task.Reason != "" {
			reasons[n] = task.Reason
		}
	}
	assert.Equal(t, map[string]string{
		"dc": "succeeded", "dc_bad": "failed", "td": "succeeded", "plain": "succeeded", "missing": "failed",
		"crash": "failed", "obj": "failed", "fn": "succeeded", "nofn": "failed", "bye": "failed",
		"td_bad": "failed", "v2": "failed",
	}, status, "errors: %v", errs)
	// The reason is the kind of failure the SDK reported.
	assert.Equal(t, map[string]string{
		"dc_bad": "config", "td_bad": "config", "missing": "config", "nofn": "config",
		"crash": "exception", "v2": "exception", "obj": "output", "bye": "exit",
	}, reasons, "errors: %v", errs)

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
	assert.True(t, strings.HasPrefix(errs["crash"], "KeyError: 'nope'\nTraceback (most recent call last):\n"), errs["crash"])
	assert.Contains(t, errs["crash"], `tasks/crash.py", line 2, in helper`)
	assert.True(t, strings.HasSuffix(errs["crash"], "\nexit status 1"), errs["crash"])
	assert.NotContains(t, errs["crash"], "_main.py")
	assert.NotContains(t, errs["crash"], "/sdk/ork/")
	assert.Contains(t, errs["bye"], "the task exited with status 3 (sys.exit(3))")
	assert.Contains(t, errs["bye"], `tasks/bye.py", line 4, in run`)

	assert.Equal(t, "invalid config for executor `td_bad` in ork.yaml:\n"+
		"  executors.td_bad.config.name: expected a string, got a number (3)\n"+
		"  executors.td_bad.config.nmae: unknown key; did you mean 'name'?", errs["td_bad"])
	assert.True(t, strings.HasPrefix(errs["v2"], "pydantic v2 needs its native core (pydantic-core), which cannot run in the WebAssembly sandbox; "+
		"use pydantic 1.10 (`pydantic<2`)\n\nModuleNotFoundError: No module named 'pydantic_core._pydantic_core'"), errs["v2"])
	assert.Contains(t, errs["obj"], `output["x"][1] is a`)
	assert.Contains(t, errs["obj"], "Thing")
	assert.Contains(t, errs["nofn"], "nothere")

	// pydantic 1.10, the real one from PyPI, inside the sandbox.
	t.Run("pydantic v1 config", func(t *testing.T) {
		if out, err := exec.Command("python3", "-m", "pip", "--version").CombinedOutput(); err != nil {
			t.Skipf("no pip on this machine (%v: %s)", err, out)
		}
		dir := writeProject(t, map[string]string{
			"ork.yaml": `python: {path: [vendor]}
executors:
  good:
    type: executors.pyd:PydanticExecutor
    config: {project: p, cost_per_tb: "6.5", nested: {region: eu}}
  bad:
    type: executors.pyd:PydanticExecutor
    config:
      cost_per_tb: cheap
      nested: {zone: x}
`,
			"executors/__init__.py": "",
			"executors/pyd.py": `from pydantic import BaseModel
from ork import executor

class Nested(BaseModel):
    region: str
    zone: int = 0

class Cfg(BaseModel):
    project: str
    cost_per_tb: float = 5.0
    nested: Nested

@executor
class PydanticExecutor:
    def __init__(self, config: Cfg):
        self.config = config
    def run(self, config_file, ctx, upstream={}):
        return self.config
`,
			"exec.yaml": "{}\n",
			"wf.yaml":   "name: pyd\ntasks:\n  good: {executor: good, config_file: exec.yaml}\n  bad: {executor: bad, config_file: exec.yaml}\n",
		})
		installWarehouse(t, dir)
		r := ork(t, dir, "run", "wf.yaml", "--json")
		assert.Equal(t, 1, r.code, r.stderr)
		s := decodeSummary(t, r)
		assert.Equal(t, "succeeded", s.Tasks["good"].Status)
		assert.JSONEq(t, `{"project":"p","cost_per_tb":6.5,"nested":{"region":"eu","zone":0}}`, string(s.Tasks["good"].Output))
		bad := s.Tasks["bad"]
		assert.Equal(t, "failed", bad.Status)
		assert.Equal(t, "config", bad.Reason)
		require.NotNil(t, bad.Error)
		assert.Equal(t, "invalid config for executor `bad` in ork.yaml:\n"+
			"  executors.bad.config.project: field required\n"+
			"  executors.bad.config.cost_per_tb: value is not a valid float\n"+
			"  executors.bad.config.nested.region: field required\n"+
			"  executors.bad.config.nested.zone: value is not a valid integer", *bad.Error)
		assert.Equal(t, 1, bad.Attempts, "a config error is not retried")
	})
}

// TestPythonSnapshotMatchesColdStart runs one Python workflow from the
// interpreter snapshot and with --no-snapshot: the outputs must be the same,
// and consecutive snapshot tasks must not see each other's module globals or
// environment.
func TestPythonSnapshotMatchesColdStart(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"ork.yaml":          "executors: {}\n",
		"tasks/__init__.py": "",
		"tasks/state.py": `import os, sys, json, random, time
import ork
import tasks.shared as shared

def mutate(ctx, upstream):
    before = {"counter": shared.counter, "env": os.environ.get("ORK_SNAP_TEST"),
              "json_marker": getattr(json, "marker", None), "argv_leak": "leaked" in sys.argv,
              "sdk_marker": getattr(ork, "marker", None)}
    shared.counter += 1
    os.environ["ORK_SNAP_TEST"] = "leaked"
    json.marker = "leaked"
    ork.marker = "leaked"
    sys.argv.append("leaked")
    time.sleep(0.05)  # overlap with the other tasks when run concurrently
    return {"before": before}

def observe(ctx, upstream):
    return {"counter": shared.counter, "env": os.environ.get("ORK_SNAP_TEST"),
            "json_marker": getattr(json, "marker", None), "argv_leak": "leaked" in sys.argv,
            "sdk_marker": getattr(ork, "marker", None), "task": ctx.task_name, "attempt": ctx.attempt, "upstream": upstream}

def rand(ctx, upstream):
    return {"r": random.random()}

def warm(ctx, upstream):
    return {"warm": "decimal" in sys.modules}
`,
		"tasks/shared.py":    "counter = 0\n",
		"tasks/mutate.yaml":  "file: tasks/state.py\nfunction: mutate\n",
		"tasks/observe.yaml": "file: tasks/state.py\nfunction: observe\n",
		"tasks/rand.yaml":    "file: tasks/state.py\nfunction: rand\n",
		"tasks/warm.yaml":    "file: tasks/state.py\nfunction: warm\n",
		"wf.yaml": `name: snap
tasks:
  first: {executor: python, config_file: tasks/mutate.yaml}
  second: {executor: python, config_file: tasks/mutate.yaml, depends_on: [first]}
  look: {executor: python, config_file: tasks/observe.yaml, depends_on: [second]}
  rand1: {executor: python, config_file: tasks/rand.yaml, depends_on: [look]}
  rand2: {executor: python, config_file: tasks/rand.yaml, depends_on: [rand1]}
  warm: {executor: python, config_file: tasks/warm.yaml, depends_on: [rand2]}
`,
		"concurrent.yaml": `name: concurrent
tasks:
  m1: {executor: python, config_file: tasks/mutate.yaml}
  m2: {executor: python, config_file: tasks/mutate.yaml}
  m3: {executor: python, config_file: tasks/mutate.yaml}
  m4: {executor: python, config_file: tasks/mutate.yaml}
  m5: {executor: python, config_file: tasks/mutate.yaml}
  m6: {executor: python, config_file: tasks/mutate.yaml}
`,
	})
	outputs := func(args ...string) (map[string]json.RawMessage, string) {
		r := ork(t, dir, append([]string{"run", "wf.yaml", "--json", "-c", "1"}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		s := decodeSummary(t, r)
		out := map[string]json.RawMessage{}
		for n, task := range s.Tasks {
			require.Equal(t, "succeeded", task.Status, n)
			out[n] = task.Output
		}
		return out, r.stderr
	}
	snap, stderr := outputs()
	cold, _ := outputs("--no-snapshot")
	snapshotOn := os.Getenv("ORK_NO_SNAPSHOT") != "1"
	if snapshotOn {
		assert.NotContains(t, stderr, "snapshot unavailable")
	}

	fresh := `{"before":{"counter":0,"env":null,"json_marker":null,"argv_leak":false,"sdk_marker":null}}`
	for _, out := range []map[string]json.RawMessage{snap, cold} {
		assert.JSONEq(t, fresh, string(out["first"]))
		assert.JSONEq(t, fresh, string(out["second"]), "the second task saw the first one's state")
		assert.JSONEq(t, `{"counter":0,"env":null,"json_marker":null,"argv_leak":false,"sdk_marker":null,"task":"look","attempt":1,"upstream":{"second":{"before":{"counter":0,"env":null,"json_marker":null,"argv_leak":false,"sdk_marker":null}}}}`, string(out["look"]))
		assert.NotEqual(t, string(out["rand1"]), string(out["rand2"]), "two tasks drew the same random numbers")
	}
	for _, n := range []string{"first", "second", "look"} {
		assert.JSONEq(t, string(cold[n]), string(snap[n]), n)
	}
	// Six tasks of one snapshot at once, each mutating module state.
	r := ork(t, dir, "run", "concurrent.yaml", "--json", "-c", "6")
	require.Equal(t, 0, r.code, r.stderr)
	for n, task := range decodeSummary(t, r).Tasks {
		assert.JSONEq(t, fresh, string(task.Output), "concurrent task %s saw another's state", n)
	}
	assert.JSONEq(t, `{"warm":false}`, string(cold["warm"]), "--no-snapshot started from a snapshot")
	if snapshotOn {
		assert.JSONEq(t, `{"warm":true}`, string(snap["warm"]), "the tasks did not start from the snapshot")
	}
}

// TestPythonSnapshotImportsProjectExecutors: a custom executor's module is
// imported when the snapshot is built (its module-level code runs then,
// without the task's environment), and editing it builds a new snapshot.
func TestPythonSnapshotImportsProjectExecutors(t *testing.T) {
	if os.Getenv("ORK_NO_SNAPSHOT") == "1" {
		t.Skip("ORK_NO_SNAPSHOT=1")
	}
	t.Setenv("ORK_WARM_TEST", "task-env")
	src := func(answer string) string {
		return `import os
from ork import executor

AT_IMPORT = os.environ.get("ORK_WARM_TEST")

@executor
class Hello:
    def __init__(self, config: dict):
        self.config = config

    def run(self, config_file, ctx, upstream={}):
        return {"at_import": AT_IMPORT, "in_run": os.environ.get("ORK_WARM_TEST"), "answer": ` + answer + `}
`
	}
	dir := writeProject(t, map[string]string{
		"ork.yaml":          "executors:\n  hello:\n    type: execs.hello:Hello\n    sandbox: {env: [ORK_WARM_TEST]}\n",
		"execs/__init__.py": "",
		"execs/hello.py":    src("1"),
		"exec.yaml":         "{}\n",
		"wf.yaml":           "name: warm\ntasks:\n  t: {executor: hello, config_file: exec.yaml}\n",
	})
	output := func(args ...string) map[string]any {
		t.Helper()
		r := ork(t, dir, append([]string{"run", "wf.yaml", "--json"}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.NotContains(t, r.stderr, "snapshot unavailable")
		var out map[string]any
		require.NoError(t, json.Unmarshal(decodeSummary(t, r).Tasks["t"].Output, &out))
		return out
	}
	// From the snapshot, the module was imported at boot: its module-level
	// code did not see the task's environment, run does.
	assert.Equal(t, map[string]any{"at_import": nil, "in_run": "task-env", "answer": 1.0}, output())
	assert.Equal(t, map[string]any{"at_import": "task-env", "in_run": "task-env", "answer": 1.0}, output("--no-snapshot"))

	// An edited module is a new snapshot, not a stale one.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "execs", "hello.py"), []byte(src("2")), 0o644))
	assert.Equal(t, 2.0, output()["answer"])
}

// TestPythonProjectBytecode: ork compiles the project's modules into
// __pycache__ (tasks see the project read-only and would compile them on
// every task); an edited module is recompiled, not served stale, and a file
// that does not compile does not stop the run.
func TestPythonProjectBytecode(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"ork.yaml":         "executors: {}\n",
		"tasks/t.py":       "from helpers import answer\n\ndef run(ctx, upstream):\n    return {'answer': answer()}\n",
		"tasks/helpers.py": "def answer():\n    return 1\n",
		"tasks/broken.py":  "def nope(:\n",
		"tasks/t.yaml":     "file: tasks/t.py\n",
		"wf.yaml":          "name: pyc\ntasks:\n  t: {executor: python, config_file: tasks/t.yaml}\n",
	})
	answer := func() any {
		t.Helper()
		r := ork(t, dir, "run", "wf.yaml", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var out map[string]any
		require.NoError(t, json.Unmarshal(decodeSummary(t, r).Tasks["t"].Output, &out))
		return out["answer"]
	}
	assert.Equal(t, 1.0, answer())
	for _, f := range []string{"t", "helpers"} {
		assert.FileExists(t, filepath.Join(dir, "tasks", "__pycache__", f+".cpython-312.pyc"))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks", "helpers.py"), []byte("def answer():\n    return 22\n"), 0o644))
	assert.Equal(t, 22.0, answer())
}

// TestPythonInstallUnlistedSpeedup installs a package that ork knows nothing
// about, which publishes only compiled wheels but falls back to pure Python
// (immutables: `try: from ._map import Map except ImportError: from .map
// import Map`): it goes in without its C extension, passes the sandbox's
// import check, and works in a task.
func TestPythonInstallUnlistedSpeedup(t *testing.T) {
	if out, err := exec.Command("python3", "-m", "pip", "--version").CombinedOutput(); err != nil {
		t.Skipf("no pip on this machine (%v: %s)", err, out)
	}
	dir := writeProject(t, map[string]string{
		"ork.yaml":       "python: {path: [vendor]}\nexecutors: {}\n",
		"tasks/imm.py":   "import immutables\n\ndef run(ctx, upstream):\n    m = immutables.Map(a=1).set('b', 2)\n    return {'items': sorted(m.items()), 'impl': type(m).__module__}\n",
		"tasks/imm.yaml": "file: tasks/imm.py\n",
		"wf.yaml":        "name: imm\ntasks:\n  imm: {executor: python, config_file: tasks/imm.yaml}\n",
	})
	require.NoError(t, os.Mkdir(filepath.Join(dir, "vendor"), 0o755))
	r := ork(t, dir, "python", "install", "immutables==0.21")
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "immutables 0.21 (compiled speed-ups left out)")
	assert.NoFileExists(t, filepath.Join(dir, "vendor", "immutables", "_map.cpython-312-x86_64-linux-gnu.so"))

	r = ork(t, dir, "run", "wf.yaml", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	s := decodeSummary(t, r)
	assert.JSONEq(t, `{"items":[["a",1],["b",2]],"impl":"immutables.map"}`, string(s.Tasks["imm"].Output))
}
