package cli_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writerPy stores the secrets it is granted in a shared SQLite table and
// returns their digests (its output would be redacted otherwise).
const writerPy = `import hashlib

def run(ctx, upstream, names):
    db = ctx.sql("shared")
    db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT, v TEXT)")
    db.execute("DELETE FROM kv")
    out = {}
    for n in names:
        v = ctx.secret(n)
        db.execute("INSERT INTO kv VALUES (?, ?)", [n, v])
        out[n] = hashlib.sha256(v.encode()).hexdigest()
    return out
`

// readerPy is granted the table but none of the secrets: it reads them
// back and leaks them every way it can.
const readerPy = `import sys

def run(ctx, upstream, fail=False):
    rows = ctx.sql("shared").query("SELECT k, v FROM kv ORDER BY k").rows
    for k, v in rows:
        ctx.log.info("read %s=%s", k, v, extra={"value": v})
        print("stdout", k, v)
        print("stderr", k, v, file=sys.stderr)
    if fail:
        raise RuntimeError("leaking " + " ".join(v for _, v in rows))
    return {"rows": rows, "joined": "|".join(v for _, v in rows)}
`

// metricPy records its secret as a metric name, as a label name and value,
// and inside a longer name: the ABI accepts all of them, as the secret fits
// the metric name charset.
const metricPy = `def run(ctx, upstream):
    s = ctx.secret("S_METRIC")
    ctx.metrics.record(s, 2, labels={s: s, "kind": "plain"})
    ctx.metrics.record("rows_" + s, 3)
    ctx.metrics.record("rows_plain", 4)
    return "recorded"
`

// TestSecretsRedactedAcrossExecutors: redaction covers every secret the
// project can resolve, not only those of the task's executor, so a secret
// that one executor stores in a shared table and another reads back is
// masked in the second one's logs, output and error too. The secrets come
// from the environment and from files (relative and absolute paths). A
// secret recorded as a metric name or label name is masked as well, in the
// summary table, --json, summary.json, ork metrics and the run store.
func TestSecretsRedactedAcrossExecutors(t *testing.T) {
	const envSecret, relSecret, absSecret = "env-5b1e9c77", "rel-a04d3f12", "abs-7c9e21b0"
	const metricSecret = "mtok_5e0c2a91"
	absDir := t.TempDir()
	absFile := filepath.Join(absDir, "abs-secret.txt")
	require.NoError(t, os.WriteFile(absFile, []byte(absSecret+"\n"), 0o600))

	dir := writeProject(t, map[string]string{
		"ork.yaml": `secrets:
  S_ENV: {env: ORK_T_S_ENV}
  S_REL: {file: secrets/rel.txt}
  S_ABS: {file: ` + absFile + `}
  S_METRIC: {env: ORK_T_S_METRIC}
connections:
  shared: {type: sqlite, path: data/shared.sqlite}
executors:
  writer:
    type: python
    sandbox:
      secrets: [S_ENV, S_REL, S_ABS, S_METRIC]
      connections: [shared]
  reader:
    type: python
    sandbox:
      connections: [shared]
`,
		"secrets/rel.txt":   relSecret + "\r\n",
		"writer.py":         writerPy,
		"reader.py":         readerPy,
		"metric.py":         metricPy,
		"tasks/metric.yaml": "file: metric.py\n",
		"metric_wf.yaml":    "name: secret_metric\ntasks:\n  metric: {executor: writer, config_file: tasks/metric.yaml}\n",
		"tasks/write.yaml":  "file: writer.py\nparams: {names: [S_ENV, S_REL, S_ABS]}\n",
		"tasks/read.yaml":   "file: reader.py\n",
		"tasks/leak.yaml":   "file: reader.py\nparams: {fail: true}\n",
		"wf.yaml": `name: shared_secrets
tasks:
  write: {executor: writer, config_file: tasks/write.yaml}
  read: {executor: reader, config_file: tasks/read.yaml, depends_on: [write]}
  leak: {executor: reader, config_file: tasks/leak.yaml, depends_on: [write]}
  metric: {executor: writer, config_file: tasks/metric.yaml}
`,
	})

	cmd := exec.Command(orkBin, "run", "wf.yaml", "--json")
	cmd.Dir = dir
	env := append(os.Environ(), "ORK_T_S_ENV="+envSecret, "ORK_T_S_METRIC="+metricSecret)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	s := decodeSummary(t, result{stdout: stdout.String(), stderr: stderr.String()})

	require.Equal(t, "succeeded", s.Tasks["write"].Status, "%v", s.Tasks["write"].Error)
	var digests map[string]string
	require.NoError(t, json.Unmarshal(s.Tasks["write"].Output, &digests))
	sum := func(v string) string { h := sha256.Sum256([]byte(v)); return hex.EncodeToString(h[:]) }
	assert.Equal(t, map[string]string{"S_ENV": sum(envSecret), "S_REL": sum(relSecret), "S_ABS": sum(absSecret)}, digests,
		"the secrets read from the environment and from files (without the trailing line break)")

	require.Equal(t, "succeeded", s.Tasks["read"].Status, "%v", s.Tasks["read"].Error)
	var read struct {
		Rows   [][]string `json:"rows"`
		Joined string     `json:"joined"`
	}
	require.NoError(t, json.Unmarshal(s.Tasks["read"].Output, &read))
	assert.Equal(t, [][]string{{"S_ABS", "[redacted]"}, {"S_ENV", "[redacted]"}, {"S_REL", "[redacted]"}}, read.Rows)
	assert.Equal(t, "[redacted]|[redacted]|[redacted]", read.Joined)
	require.Equal(t, "failed", s.Tasks["leak"].Status)
	require.NotNil(t, s.Tasks["leak"].Error)
	assert.Contains(t, *s.Tasks["leak"].Error, "leaking [redacted] [redacted] [redacted]")
	assert.Contains(t, stderr.String(), "read S_ENV=[redacted]", "the reader's log line, masked")

	require.Equal(t, "succeeded", s.Tasks["metric"].Status, "%v", s.Tasks["metric"].Error)
	type point struct {
		Name   string
		Value  float64
		Labels map[string]string
	}
	var got []point
	for _, m := range s.Tasks["metric"].Metrics {
		got = append(got, point{m.Name, m.Value, m.Labels})
	}
	want := []point{
		{"[redacted]", 2, map[string]string{"[redacted]": "[redacted]", "kind": "plain"}},
		{"rows_[redacted]", 3, map[string]string{}},
		{"rows_plain", 4, map[string]string{}},
	}
	assert.Equal(t, want, got, "--json: metric names and label names masked")
	metricsJSON := ork(t, dir, "metrics", s.RunID, "--json")
	require.Equal(t, 0, metricsJSON.code, metricsJSON.stderr)
	var stored []point
	require.NoError(t, json.Unmarshal([]byte(metricsJSON.stdout), &stored))
	assert.Equal(t, want, stored, "ork metrics --json: the run store holds the masked names")
	metricsTable := ork(t, dir, "metrics", s.RunID)
	assert.Contains(t, metricsTable.stdout, "[redacted]{[redacted]=[redacted],kind=plain}")
	metricsProm := ork(t, dir, "metrics", s.RunID, "--format", "prometheus")
	summaryJSON, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", s.RunID, "summary.json"))
	require.NoError(t, err)
	assert.Contains(t, string(summaryJSON), "rows_[redacted]")

	// The summary table of ork run without --json.
	cmd = exec.Command(orkBin, "run", "metric_wf.yaml")
	cmd.Dir, cmd.Env = dir, env
	table, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", table)
	assert.Contains(t, string(table), "rows_[redacted] 3", "the summary table")
	assert.NotContains(t, string(table), metricSecret, "the summary table")

	// The run store itself, every file of it (the database and its WAL).
	storeFiles, err := filepath.Glob(filepath.Join(dir, ".ork", "ork.db*"))
	require.NoError(t, err)
	require.NotEmpty(t, storeFiles)

	logs := ork(t, dir, "logs", s.RunID)
	show := ork(t, dir, "runs", "show", s.RunID, "--json")
	assert.Contains(t, logs.stdout, "[redacted]")
	for _, secret := range []string{envSecret, relSecret, absSecret, metricSecret} {
		assert.NotContains(t, string(summaryJSON), secret, "summary.json")
		assert.NotContains(t, metricsJSON.stdout, secret, "ork metrics --json")
		assert.NotContains(t, metricsTable.stdout, secret, "ork metrics")
		assert.NotContains(t, metricsProm.stdout, secret, "ork metrics --format prometheus")
		for _, f := range storeFiles {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			assert.False(t, bytes.Contains(b, []byte(secret)), "the run store file %s holds %s", f, secret)
		}
		assert.NotContains(t, stdout.String(), secret, "--json")
		assert.NotContains(t, stderr.String(), secret, "progress and logs")
		assert.NotContains(t, logs.stdout, secret, "ork logs")
		assert.NotContains(t, show.stdout, secret, "ork runs show --json: outputs and errors in the run store")
		for _, task := range []string{"read", "leak"} {
			b, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", s.RunID, task, "task.log"))
			require.NoError(t, err)
			assert.NotContains(t, string(b), secret, "%s/task.log", task)
		}
	}
}

// TestSecretFileMissing: a secret whose file does not exist fails the run
// before any task starts, naming the secret and the file.
func TestSecretFileMissing(t *testing.T) {
	for _, path := range []string{"secrets/missing.txt", filepath.Join(t.TempDir(), "missing.txt")} {
		dir := writeProject(t, map[string]string{
			"ork.yaml":  "secrets:\n  S_FILE: {file: " + path + "}\nexecutors:\n  writer:\n    type: python\n    sandbox:\n      secrets: [S_FILE]\n",
			"reader.py": "def run(ctx, upstream):\n    return ctx.secret('S_FILE')\n",
			"t.yaml":    "file: reader.py\n",
			"wf.yaml":   "name: missing_secret\ntasks:\n  a: {executor: writer, config_file: t.yaml}\n",
		})
		full := path
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, path)
		}
		r := ork(t, dir, "run", "wf.yaml")
		assert.NotEqual(t, 0, r.code)
		assert.Contains(t, r.stderr, "executor writer: secret S_FILE: cannot read "+full+" (ork.yaml secrets.S_FILE.file): open "+full+": no such file or directory")
		assert.False(t, strings.Contains(r.stderr, "panic"), r.stderr)
	}
}
