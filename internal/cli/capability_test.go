package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/internal/testguests"
	"github.com/orkrun/ork/runtime"
)

// TestCapabilitiesRustAndPython runs one capability table through ork run
// against the Rust probe and its Python twin: HTTP to granted and refused
// hosts (a name resolving to 127.0.0.1, a redirect to a refused host),
// host-attached secret headers, granted and ungranted secrets and
// connections, SQL and its errors; and checks that secret values are
// redacted everywhere they could leak.
func TestCapabilitiesRustAndPython(t *testing.T) {
	const token, visible, hidden = "tok-3f9a1c", "vis-8d2e7b", "hid-1c4f0a"
	refusedHits := 0
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refusedHits++
		fmt.Fprint(w, "should not be reached")
	}))
	defer refused.Close()
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, refused.URL+"/x", http.StatusFound)
		default:
			if r.Header.Get("X-Token") == token {
				fmt.Fprintf(w, "token-ok %s", r.Method)
			} else {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, "no token")
			}
		}
	}))
	defer allowed.Close()
	allowedHost := strings.TrimPrefix(allowed.URL, "http://")
	_, port, _ := strings.Cut(allowedHost, ":")
	// A name that resolves to 127.0.0.1: names under localhost are loopback
	// (RFC 6761), whatever DNS says, so this holds on every machine.
	namedHits := 0
	named := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		namedHits++
		fmt.Fprintf(w, "named %s", r.Host)
	}))
	defer named.Close()
	_, namedPort, _ := strings.Cut(strings.TrimPrefix(named.URL, "http://"), ":")
	namedURL := "http://api.localhost:" + namedPort + "/"

	type capCase struct {
		task, params string
		check        func(t *testing.T, out map[string]any)
		executor     string // default probe
	}
	errIs := func(want string) func(t *testing.T, out map[string]any) {
		return func(t *testing.T, out map[string]any) {
			assert.Equal(t, false, out["ok"], "%v", out)
			assert.Equal(t, want, out["error"])
		}
	}
	okIs := func(want bool, errContains string) func(t *testing.T, out map[string]any) {
		return func(t *testing.T, out map[string]any) {
			assert.Equal(t, want, out["ok"], "%v", out)
			if errContains != "" {
				assert.Contains(t, fmt.Sprint(out["error"]), errContains)
			}
		}
	}
	cases := []capCase{
		{"http_ok", fmt.Sprintf("{action: http, method: GET, url: '%s/'}", allowed.URL), func(t *testing.T, out map[string]any) {
			assert.Equal(t, true, out["ok"], "%v", out)
			assert.EqualValues(t, 200, out["status"])
			assert.Equal(t, "token-ok GET", out["body"], "the host attached the secret header")
		}, ""},
		{"http_refused", fmt.Sprintf("{action: http, method: GET, url: '%s/'}", refused.URL),
			errIs(fmt.Sprintf(`127.0.0.1 is a loopback address; to allow it, add "%s" to executors.probe.sandbox.allowed_hosts in ork.yaml`, strings.TrimPrefix(refused.URL, "http://"))), ""},
		{"http_localhost", fmt.Sprintf("{action: http, method: GET, url: 'http://localhost:%s/'}", port),
			errIs(fmt.Sprintf(`localhost is a loopback name; to allow it, add "localhost:%s" to executors.probe.sandbox.allowed_hosts in ork.yaml`, port)), ""},
		{"http_name_to_loopback", fmt.Sprintf("{action: http, method: GET, url: '%s'}", namedURL),
			errIs(fmt.Sprintf(`host api.localhost resolves to 127.0.0.1, a loopback address; ::1, a loopback address, and is allowed only by the name "api.localhost:%[1]s"; a host name never allows loopback, private, link-local or other non-public addresses by itself; to allow the address, add "127.0.0.1:%[1]s" and "[::1]:%[1]s" to executors.probe.sandbox.allowed_hosts in ork.yaml`, namedPort)), ""},
		{"http_name_and_address", fmt.Sprintf("{action: http, method: GET, url: '%s'}", namedURL), func(t *testing.T, out map[string]any) {
			assert.Equal(t, true, out["ok"], "%v", out)
			assert.EqualValues(t, 200, out["status"])
			assert.Equal(t, "named api.localhost:"+namedPort, out["body"])
		}, "probe_ip"},
		{"http_redirect", fmt.Sprintf("{action: http, method: GET, url: '%s/redirect'}", allowed.URL), okIs(false, "redirect"), ""},
		{"secret_granted", "{action: secret, name: VISIBLE}", func(t *testing.T, out map[string]any) {
			assert.Equal(t, true, out["ok"], "%v", out)
			assert.Equal(t, "[redacted]", out["value"], "the output is redacted")
		}, ""},
		{"secret_ungranted", "{action: secret, name: HIDDEN}", okIs(false, `secret "HIDDEN" is not granted to executor "probe"; add it to executors.probe.sandbox.secrets in ork.yaml`), ""},
		{"sql_create", "{action: sql_execute, connection: db, sql: 'CREATE TABLE IF NOT EXISTS t (id INTEGER, name TEXT)'}", okIs(true, ""), ""},
		{"sql_error", "{action: sql_query, connection: db, sql: 'SELECT * FROM missing_table'}", okIs(false, "no such table: missing_table"), ""},
		{"sql_ungranted", "{action: sql_query, connection: other, sql: 'SELECT 1'}", okIs(false, `connection "other" is not granted to executor "probe"; add it to executors.probe.sandbox.connections in ork.yaml`), ""},
	}
	probePy, err := os.ReadFile(filepath.Join(testguests.RepoRoot(), "testdata", "guests", "python", "probe.py"))
	require.NoError(t, err)

	for _, mode := range engineModes("rust", "python") {
		lang, engine := mode.lang, mode.engine
		t.Run(mode.name, func(t *testing.T) {
			orkYAML := fmt.Sprintf(`secrets:
  TOKEN: {env: ORK_T_TOKEN}
  VISIBLE: {env: ORK_T_VISIBLE}
  HIDDEN: {env: ORK_T_HIDDEN}
connections:
  db: {type: sqlite, path: data/db.sqlite}
  other: {type: sqlite, path: data/other.sqlite}
executors:
  probe:
    type: %s
    sandbox:
      allowed_hosts:
        - host: "%[2]s"
          headers: {X-Token: "{{ secret.TOKEN }}"}
        - "api.localhost:%[3]s"
      secrets: [VISIBLE]
      connections: [db]
  probe_ip:
    type: %[1]s
    sandbox:
      allowed_hosts: ["api.localhost:%[3]s", "127.0.0.1:%[3]s", "[::1]:%[3]s"]
`, lang, allowedHost, namedPort)
			files := map[string]string{"ork.yaml": orkYAML, "probe.py": string(probePy)}
			var wf strings.Builder
			wf.WriteString("name: caps\ntasks:\n")
			code := "module: modules/probe.wasm"
			if lang == "python" {
				code = "file: probe.py"
			}
			for _, c := range cases {
				files["tasks/"+c.task+".yaml"] = code + "\nparams: " + c.params + "\n"
				ex := c.executor
				if ex == "" {
					ex = "probe"
				}
				fmt.Fprintf(&wf, "  %s: {executor: %s, config_file: tasks/%s.yaml}\n", c.task, ex, c.task)
			}
			files["tasks/sql_insert.yaml"] = code + "\nparams: {action: sql_execute, connection: db, sql: 'INSERT INTO t VALUES (?, ?), (?, ?)', params: [1, a, 2, b]}\n"
			files["tasks/sql_select.yaml"] = code + "\nparams: {action: sql_query, connection: db, sql: 'SELECT id, name FROM t WHERE id >= ? ORDER BY id', params: [1]}\n"
			files["tasks/leak.yaml"] = code + "\nparams: {action: secret, name: VISIBLE, print: true, fail: true}\n"
			wf.WriteString("  sql_insert: {executor: probe, config_file: tasks/sql_insert.yaml, depends_on: [sql_create]}\n")
			wf.WriteString("  sql_select: {executor: probe, config_file: tasks/sql_select.yaml, depends_on: [sql_insert]}\n")
			wf.WriteString("  leak: {executor: probe, config_file: tasks/leak.yaml}\n")
			files["wf.yaml"] = wf.String()
			dir := writeProject(t, files)
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o755))
			copyModule(t, dir, "probe", "probe.wasm")

			cmd := exec.Command(orkBin, "run", "wf.yaml", "--json", "--engine", engine)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "ORK_T_TOKEN="+token, "ORK_T_VISIBLE="+visible, "ORK_T_HIDDEN="+hidden)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run()
			s := decodeSummary(t, result{stdout: stdout.String(), stderr: stderr.String()})
			for _, c := range cases {
				task := s.Tasks[c.task]
				if !assert.Equal(t, "succeeded", task.Status, "%s: %v", c.task, task.Error) {
					continue
				}
				var out map[string]any
				require.NoError(t, json.Unmarshal(task.Output, &out))
				t.Run(c.task, func(t *testing.T) { c.check(t, out) })
			}
			var sel map[string]any
			require.NoError(t, json.Unmarshal(s.Tasks["sql_select"].Output, &sel))
			assert.Equal(t, []any{"id", "name"}, sel["columns"])
			assert.Equal(t, []any{[]any{1.0, "a"}, []any{2.0, "b"}}, sel["rows"])
			var ins map[string]any
			require.NoError(t, json.Unmarshal(s.Tasks["sql_insert"].Output, &ins))
			assert.EqualValues(t, 2, ins["rows_affected"])

			// The leak task printed the secret, returned it and failed with it.
			require.Equal(t, "failed", s.Tasks["leak"].Status)
			require.NotNil(t, s.Tasks["leak"].Error)
			assert.Contains(t, *s.Tasks["leak"].Error, "[redacted]")
			for _, secret := range []string{token, visible, hidden} {
				assert.NotContains(t, stdout.String(), secret, "--json")
				assert.NotContains(t, stderr.String(), secret, "progress and logs")
				r := ork(t, dir, "logs", s.RunID)
				assert.NotContains(t, r.stdout, secret, "run store logs")
				r = ork(t, dir, "runs", "show", s.RunID, "--json")
				assert.NotContains(t, r.stdout, secret, "run store outputs and errors")
				b, err := os.ReadFile(filepath.Join(dir, ".ork", "runs", s.RunID, "leak", "task.log"))
				require.NoError(t, err)
				assert.NotContains(t, string(b), secret, "task.log")
			}
			assert.Contains(t, stderr.String(), "[redacted]")
			assert.Equal(t, 0, refusedHits, "a refused host was reached")
			assert.Equal(t, 1, namedHits, "only the task whose executor lists the address reached the named server")
			namedHits = 0
		})
	}
}

// engineMode is one language on one engine.
type engineMode struct{ name, lang, engine string }

// engineModes crosses langs with every engine compiled into ork, so that
// the behaviour tables run on each.
func engineModes(langs ...string) []engineMode {
	var out []engineMode
	for _, e := range runtime.Engines() {
		for _, l := range langs {
			out = append(out, engineMode{name: e + "/" + l, lang: l, engine: e})
		}
	}
	return out
}
