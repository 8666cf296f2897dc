package sqlcap

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The PostgreSQL half of the tests runs when this names a server to use, as
// toolchain/postgres-test-db.sh prints it; each test works in a schema of
// its own, dropped at the end.
const postgresDSNVar = "ORK_TEST_POSTGRES_DSN"

// backend is a kind of database the shared tests run against.
type backend struct {
	kind Kind
	// conn defines a connection to an empty database of the test's own.
	conn func(t *testing.T, name string) Connection
	// ph is the placeholder of the i-th (1-based) parameter.
	ph func(i int) string
	// ddl types: int, real, text, blob, bool.
	types map[string]string
}

var sqliteBackend = backend{
	kind: SQLite,
	conn: func(t *testing.T, name string) Connection {
		return Connection{Name: name, Kind: SQLite, Path: filepath.Join(t.TempDir(), "data", name+".db")}
	},
	ph:    func(int) string { return "?" },
	types: map[string]string{"int": "INTEGER", "real": "REAL", "text": "TEXT", "blob": "BLOB", "bool": "BOOLEAN"},
}

var postgresBackend = backend{
	kind: Postgres,
	conn: postgresConn,
	ph:   func(i int) string { return fmt.Sprintf("$%d", i) },
	types: map[string]string{"int": "BIGINT", "real": "DOUBLE PRECISION", "text": "TEXT", "blob": "BYTEA",
		"bool": "BOOLEAN"},
}

// postgresSplit splits the test server's DSN into the DSN without the
// password and the password, as ork.yaml and a secret give them.
func postgresSplit(t *testing.T) (dsn, password string) {
	t.Helper()
	raw := os.Getenv(postgresDSNVar)
	if raw == "" {
		t.Skip(postgresDSNVar + " is not set (toolchain/postgres-test-db.sh prints one)")
	}
	u, err := url.Parse(raw)
	require.NoError(t, err, "%s must be a postgres:// URL", postgresDSNVar)
	password, _ = u.User.Password()
	u.User = url.User(u.User.Username())
	return u.String(), password
}

// postgresConn makes a schema of the test's own and a connection whose
// search_path is that schema.
func postgresConn(t *testing.T, name string) Connection {
	t.Helper()
	dsn, password := postgresSplit(t)
	admin, err := sql.Open("pgx", os.Getenv(postgresDSNVar)) // registered by pgx's stdlib
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "sqlcap_" + hex.EncodeToString(b[:])
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		assert.NoError(t, err)
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return Connection{Name: name, Kind: Postgres, DSN: dsn + sep + "search_path=" + schema, Password: password}
}

// eachBackend runs f against SQLite, and against PostgreSQL when a server is
// given.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteBackend) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(postgresDSNVar) == "" {
			t.Skip(postgresDSNVar + " is not set (toolchain/postgres-test-db.sh prints one)")
		}
		f(t, postgresBackend)
	})
}

// newPool makes a pool with one connection, "db", to a new database.
func newPool(t *testing.T, b backend, l Limits) *Pool {
	t.Helper()
	p, err := NewPool([]Connection{b.conn(t, "db")}, l)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Close()) })
	return p
}

// sqlErr checks that err is an *Error of the kind, and returns it.
func sqlErr(t *testing.T, err error, kind ErrorKind) *Error {
	t.Helper()
	require.Error(t, err)
	var e *Error
	require.True(t, errors.As(err, &e), "want *Error, got %T: %v", err, err)
	assert.Equal(t, kind, e.Kind, "error: %v", err)
	return e
}

func mustExec(t *testing.T, p *Pool, query string, params ...any) int64 {
	t.Helper()
	n, err := p.Execute(context.Background(), "db", query, params)
	require.NoError(t, err, query)
	return n
}

func mustQuery(t *testing.T, p *Pool, query string, params ...any) *Result {
	t.Helper()
	r, err := p.Query(context.Background(), "db", query, params)
	require.NoError(t, err, query)
	return r
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// count is a query of n rows, 1 to n, in a column x.
func count(n int) string {
	return fmt.Sprintf("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d) SELECT x FROM c", n)
}

// endless never ends, yielding row after row.
const endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c"

// endlessCount never returns a row.
const endlessCount = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"

func TestCreateInsertQuery(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		p := newPool(t, b, Limits{})
		ty := b.types
		assert.Equal(t, int64(0), mustExec(t, p, fmt.Sprintf(
			"CREATE TABLE items (id %s PRIMARY KEY, n %s, r %s, s %s, z %s, b %s, ok %s)",
			ty["int"], ty["int"], ty["real"], ty["text"], ty["text"], ty["blob"], ty["bool"])))
		insert := fmt.Sprintf("INSERT INTO items (id, n, r, s, z, b, ok) VALUES (%s, %s, %s, %s, %s, %s, %s)",
			b.ph(1), b.ph(2), b.ph(3), b.ph(4), b.ph(5), b.ph(6), b.ph(7))
		blob := []byte{0xff, 0x00, 0x01}
		// JSON numbers arrive as float64 or json.Number.
		assert.Equal(t, int64(1), mustExec(t, p, insert,
			float64(1), float64(42), 2.5, `héllo "w" <&>`, nil,
			map[string]any{"base64": base64.StdEncoding.EncodeToString(blob)}, true))
		assert.Equal(t, int64(1), mustExec(t, p, insert,
			json.Number("2"), json.Number("-7"), json.Number("1e3"), "text", nil,
			map[string]any{"base64": base64.StdEncoding.EncodeToString([]byte("plain"))}, false))

		res := mustQuery(t, p, "SELECT id, n, r, s, z, b, ok FROM items ORDER BY id")
		assert.Equal(t, []string{"id", "n", "r", "s", "z", "b", "ok"}, res.Columns)
		require.Len(t, res.Rows, 2)
		assert.Equal(t, []any{int64(1), int64(42), 2.5, `héllo "w" <&>`, nil,
			map[string]string{"base64": "/wAB"}, true}, res.Rows[0])
		assert.Equal(t, []any{int64(2), int64(-7), 1000.0, "text", nil, "plain", false}, res.Rows[1])
		assert.Equal(t,
			`{"columns":["id","n","r","s","z","b","ok"],"rows":[[1,42,2.5,"héllo \"w\" \u003c\u0026\u003e",null,{"base64":"/wAB"},true],[2,-7,1000,"text",null,"plain",false]]}`,
			toJSON(t, res))

		// Parameters in a WHERE, and rows affected.
		res = mustQuery(t, p, "SELECT s FROM items WHERE n = "+b.ph(1), float64(42))
		assert.Equal(t, [][]any{{`héllo "w" <&>`}}, res.Rows)
		assert.Equal(t, int64(2), mustExec(t, p, "UPDATE items SET n = n + 1"))
		assert.Equal(t, int64(0), mustExec(t, p, "DELETE FROM items WHERE id = "+b.ph(1), 99))

		// A whole number is an integer to the database, even in a text
		// column; a fraction stays one.
		mustExec(t, p, "UPDATE items SET s = "+b.ph(1)+", r = "+b.ph(2)+" WHERE id = 1", 5.0, 0.25)
		res = mustQuery(t, p, "SELECT s, r FROM items WHERE id = 1")
		assert.Equal(t, [][]any{{"5", 0.25}}, res.Rows)

		// No rows: empty, not null, in JSON.
		res = mustQuery(t, p, "SELECT id FROM items WHERE id < 0")
		assert.Equal(t, `{"columns":["id"],"rows":[]}`, toJSON(t, res))

		// Expressions.
		res = mustQuery(t, p, "SELECT 1 AS i, 1.5 AS f, 'x' AS s, NULL AS z")
		f := map[Kind]any{SQLite: 1.5, Postgres: "1.5"}[b.kind] // PostgreSQL's 1.5 is a numeric
		assert.Equal(t, []any{int64(1), f, "x", nil}, res.Rows[0])

		// Arrays and objects are bound as their JSON text.
		res = mustQuery(t, p, "SELECT CAST("+b.ph(1)+" AS TEXT) AS j", map[string]any{"a": []any{1.0, "b"}})
		assert.Equal(t, `{"a":[1,"b"]}`, res.Rows[0][0])
	})
}

func TestDatabaseErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		p := newPool(t, b, Limits{})
		_, err := p.Query(context.Background(), "db", "SELECT * FROM users", nil)
		e := sqlErr(t, err, ErrDatabase)
		assert.Equal(t, "db", e.Connection)
		want := map[Kind]string{
			SQLite:   "sqlite: no such table: users",
			Postgres: `postgres: relation "users" does not exist (SQLSTATE 42P01)`,
		}[b.kind]
		assert.Equal(t, want, e.Msg)
		assert.Equal(t, want, err.Error())

		_, err = p.Execute(context.Background(), "db", "CREATE TABLE (", nil)
		assert.Contains(t, sqlErr(t, err, ErrDatabase).Msg, "syntax error")

		mustExec(t, p, "CREATE TABLE t (id "+b.types["int"]+" PRIMARY KEY)")
		mustExec(t, p, "INSERT INTO t VALUES (1)")
		_, err = p.Execute(context.Background(), "db", "INSERT INTO t VALUES ("+b.ph(1)+")", []any{1.0})
		e = sqlErr(t, err, ErrDatabase)
		switch b.kind {
		case SQLite:
			assert.Equal(t, "sqlite: UNIQUE constraint failed: t.id", e.Msg)
		case Postgres:
			assert.Equal(t, `postgres: duplicate key value violates unique constraint "t_pkey" (SQLSTATE 23505) DETAIL: Key (id)=(1) already exists.`, e.Msg)
		}

		// A value that is not JSON cannot be bound.
		_, err = p.Execute(context.Background(), "db", "INSERT INTO t VALUES ("+b.ph(1)+")", []any{struct{}{}})
		assert.Equal(t, string(b.kind)+": parameter 1: cannot bind a value of Go type struct {}", sqlErr(t, err, ErrDatabase).Msg)

		// The pool goes on after errors.
		assert.Equal(t, [][]any{{int64(1)}}, mustQuery(t, p, "SELECT count(*) FROM t").Rows)
	})
}

func TestUnknownConnection(t *testing.T) {
	p := newPool(t, sqliteBackend, Limits{})
	_, err := p.Query(context.Background(), "wh", "SELECT 1", nil)
	e := sqlErr(t, err, ErrUnknownConnection)
	assert.Equal(t, `connection "wh" is not defined in ork.yaml connections`, e.Msg)
	assert.Equal(t, "wh", e.Connection)
	_, err = p.Execute(context.Background(), "wh", "SELECT 1", nil)
	sqlErr(t, err, ErrUnknownConnection)
	assert.Equal(t, []string{"db"}, p.Connections())
}

func TestTimeout(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		p := newPool(t, b, Limits{Timeout: 300 * time.Millisecond})
		start := time.Now()
		_, err := p.Query(context.Background(), "db", endlessCount, nil)
		e := sqlErr(t, err, ErrTimeout)
		assert.Equal(t, string(b.kind)+": the statement did not finish within 300ms (the SQL time limit)", e.Msg)
		assert.Less(t, time.Since(start), 5*time.Second)

		_, err = p.Execute(context.Background(), "db", endlessCount, nil)
		sqlErr(t, err, ErrTimeout)

		// The caller's context ending stops the statement too.
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err = p.Query(ctx, "db", endlessCount, nil)
		e = sqlErr(t, err, ErrTimeout)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, e.Msg, "cancelled")

		// And the connection is fine afterwards.
		assert.Equal(t, [][]any{{int64(1)}}, mustQuery(t, p, "SELECT 1").Rows)
	})
}

func TestMaxRows(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		p := newPool(t, b, Limits{MaxRows: 10, Timeout: 20 * time.Second})
		assert.Len(t, mustQuery(t, p, count(10)).Rows, 10)

		_, err := p.Query(context.Background(), "db", count(11), nil)
		e := sqlErr(t, err, ErrTooLarge)
		assert.Contains(t, e.Msg, string(b.kind)+": the result has more than 10 rows (the limit)")

		// Reading stops at the limit: a query without end fails at once,
		// not at the timeout.
		start := time.Now()
		_, err = p.Query(context.Background(), "db", endless, nil)
		sqlErr(t, err, ErrTooLarge)
		assert.Less(t, time.Since(start), 5*time.Second)

		assert.Equal(t, [][]any{{int64(1)}}, mustQuery(t, p, "SELECT 1").Rows)
	})
}

func TestMaxResultBytes(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		const limit = 4096
		p := newPool(t, b, Limits{MaxResultBytes: limit, Timeout: 20 * time.Second})
		s := strings.Repeat("é", 50) // 100 bytes
		res := mustQuery(t, p, "SELECT x, "+b.ph(1)+" AS s FROM ("+count(30)+") c", s)
		assert.Len(t, res.Rows, 30)
		assert.LessOrEqual(t, len(toJSON(t, res)), limit)

		_, err := p.Query(context.Background(), "db", "SELECT x, "+b.ph(1)+" AS s FROM ("+count(40)+") c", []any{s})
		e := sqlErr(t, err, ErrTooLarge)
		assert.Equal(t, string(b.kind)+": the result is larger than 4 KiB (the limit); select fewer rows or columns (LIMIT), or aggregate in SQL", e.Msg)

		start := time.Now()
		_, err = p.Query(context.Background(), "db", "SELECT x, "+b.ph(1)+" AS s FROM ("+endless+") c", []any{s})
		sqlErr(t, err, ErrTooLarge)
		assert.Less(t, time.Since(start), 5*time.Second)

		assert.Equal(t, [][]any{{int64(1)}}, mustQuery(t, p, "SELECT 1").Rows)
	})
}

func TestConcurrentUse(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		def := b.conn(t, "db")
		// Two pools on one database, as two ork processes would be.
		var pools []*Pool
		for range 2 {
			p, err := NewPool([]Connection{def}, Limits{Timeout: 30 * time.Second})
			require.NoError(t, err)
			t.Cleanup(func() { p.Close() })
			pools = append(pools, p)
		}
		mustExec(t, pools[0], "CREATE TABLE log (task "+b.types["int"]+", i "+b.types["int"]+", PRIMARY KEY (task, i))")
		const tasks, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, tasks*each*2)
		for task := range tasks {
			p := pools[task%2]
			wg.Go(func() {
				ctx := context.Background()
				for i := range each {
					if _, err := p.Execute(ctx, "db", "INSERT INTO log VALUES ("+b.ph(1)+", "+b.ph(2)+")", []any{float64(task), float64(i)}); err != nil {
						errs <- err
						return
					}
					res, err := p.Query(ctx, "db", "SELECT count(*) FROM log WHERE task = "+b.ph(1), []any{float64(task)})
					if err != nil {
						errs <- err
						return
					}
					if got := res.Rows[0][0]; got != int64(i+1) {
						errs <- fmt.Errorf("task %d sees %v rows of its own after %d inserts", task, got, i+1)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		assert.Equal(t, [][]any{{int64(tasks * each)}}, mustQuery(t, pools[1], "SELECT count(*) FROM log").Rows)
	})
}

func TestTransactions(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		p := newPool(t, b, Limits{})
		// A script without parameters may hold several statements, and a
		// whole transaction.
		mustExec(t, p, "CREATE TABLE t (id "+b.types["int"]+" PRIMARY KEY); BEGIN; INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); COMMIT")
		assert.Equal(t, [][]any{{int64(2)}}, mustQuery(t, p, "SELECT count(*) FROM t").Rows)

		// A transaction left open is rolled back, and said to be.
		_, err := p.Execute(context.Background(), "db", "BEGIN; INSERT INTO t VALUES (3)", nil)
		assert.Contains(t, sqlErr(t, err, ErrDatabase).Msg, "left a transaction open, and it was rolled back")
		// One that failed half way too.
		_, err = p.Execute(context.Background(), "db", "BEGIN; INSERT INTO t VALUES (4); INSERT INTO t VALUES (1); COMMIT", nil)
		sqlErr(t, err, ErrDatabase)
		assert.Equal(t, [][]any{{int64(1)}, {int64(2)}}, mustQuery(t, p, "SELECT id FROM t ORDER BY id").Rows)

		// Every connection of the pool is out of any transaction: the
		// table can be written and dropped.
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				_, err := p.Execute(context.Background(), "db", "INSERT INTO t VALUES ("+b.ph(1)+")", []any{float64(10 + i)})
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		mustExec(t, p, "DROP TABLE t")
	})
}

func TestClose(t *testing.T) {
	p, err := NewPool([]Connection{sqliteBackend.conn(t, "db")}, Limits{})
	require.NoError(t, err)
	mustQuery(t, p, "SELECT 1")
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	_, err = p.Query(context.Background(), "db", "SELECT 1", nil)
	assert.Equal(t, "sqlite: the SQL connection pool is closed", sqlErr(t, err, ErrDatabase).Msg)
}

func TestNewPoolValidation(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "x.db")
	ok := Connection{Name: "a", Kind: SQLite, Path: abs}
	for _, tc := range []struct {
		name  string
		conns []Connection
		l     Limits
		want  string
	}{
		{"no name", []Connection{{Kind: SQLite, Path: abs}}, Limits{}, "a connection has no name"},
		{"duplicate", []Connection{ok, ok}, Limits{}, `connection "a" is defined twice`},
		{"no kind", []Connection{{Name: "a", Path: abs}}, Limits{}, `connection "a" has no kind`},
		{"bad kind", []Connection{{Name: "a", Kind: "mysql"}}, Limits{}, `connection "a": unknown kind "mysql"`},
		{"memory", []Connection{{Name: "a", Kind: SQLite, Path: ":memory:"}}, Limits{}, `the path ":memory:" is not a file path`},
		{"uri", []Connection{{Name: "a", Kind: SQLite, Path: "file:x.db?mode=memory"}}, Limits{}, "is not a file path"},
		{"relative", []Connection{{Name: "a", Kind: SQLite, Path: "data/x.db"}}, Limits{}, `the sqlite path "data/x.db" is not absolute`},
		{"no path", []Connection{{Name: "a", Kind: SQLite}}, Limits{}, "needs the path"},
		{"sqlite dsn", []Connection{{Name: "a", Kind: SQLite, Path: abs, DSN: "x"}}, Limits{}, "not a DSN"},
		{"no dsn", []Connection{{Name: "a", Kind: Postgres}}, Limits{}, "needs a DSN"},
		{"pg path", []Connection{{Name: "a", Kind: Postgres, DSN: "postgres://h/db", Path: abs}}, Limits{}, "not a path"},
		{"url password", []Connection{{Name: "a", Kind: Postgres, DSN: "postgres://ork:hunter2@h/db"}}, Limits{}, "must not contain the password"},
		{"query password", []Connection{{Name: "a", Kind: Postgres, DSN: "postgres://ork@h/db?password=hunter2"}}, Limits{}, "must not contain the password"},
		{"multi-host password", []Connection{{Name: "a", Kind: Postgres, DSN: "postgresql://ork:hunter2@h1:5432,h2:5432/db"}}, Limits{}, "must not contain the password"},
		{"keyword password", []Connection{{Name: "a", Kind: Postgres, DSN: "host=h user=ork password=hunter2"}}, Limits{}, "must not contain the password"},
		{"bad dsn", []Connection{{Name: "a", Kind: Postgres, DSN: "postgres://h:notaport/db", Password: "hunter2"}}, Limits{}, `connection "a": cannot parse`},
		{"negative timeout", []Connection{ok}, Limits{Timeout: -1}, "timeout must not be negative"},
		{"negative rows", []Connection{ok}, Limits{MaxRows: -1}, "row limit must not be negative"},
		{"negative bytes", []Connection{ok}, Limits{MaxResultBytes: -1}, "size limit must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPool(tc.conns, tc.l)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}

	p, err := NewPool([]Connection{ok,
		{Name: "pg", Kind: Postgres, DSN: "host=127.0.0.1 user=ork dbname=x"},
		{Name: "pg2", Kind: Postgres, DSN: "postgres://ork@h1,h2/x?sslmode=disable&application_name=a%40b"},
		{Name: "pg3", Kind: Postgres, DSN: "postgres://h/x?user=ork"},
	}, Limits{})
	require.NoError(t, err)
	assert.Equal(t, Limits{Timeout: DefaultTimeout, MaxRows: DefaultMaxRows, MaxResultBytes: DefaultMaxResultBytes}, p.Limits())
	assert.Equal(t, []string{"a", "pg", "pg2", "pg3"}, p.Connections())
	assert.NoFileExists(t, abs, "a database is opened when first used")
	require.NoError(t, p.Close())
}

func TestSQLiteFile(t *testing.T) {
	def := sqliteBackend.conn(t, "db")
	p, err := NewPool([]Connection{def}, Limits{})
	require.NoError(t, err)
	defer p.Close()
	assert.Equal(t, [][]any{{"wal"}}, mustQuery(t, p, "PRAGMA journal_mode").Rows)
	assert.Equal(t, [][]any{{int64(1)}}, mustQuery(t, p, "PRAGMA foreign_keys").Rows)
	assert.FileExists(t, def.Path, "the file and its directory are created")

	// Foreign keys are enforced.
	mustExec(t, p, "CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (pid INTEGER REFERENCES parent(id))")
	_, err = p.Execute(context.Background(), "db", "INSERT INTO child VALUES (1)", nil)
	assert.Equal(t, "sqlite: FOREIGN KEY constraint failed", sqlErr(t, err, ErrDatabase).Msg)

	// Dates, times and booleans by declared type; what SQLite holds
	// otherwise is what it holds.
	mustExec(t, p, "CREATE TABLE ev (d DATE, ts DATETIME, b BOOLEAN, n NUMERIC, raw)")
	mustExec(t, p, "INSERT INTO ev VALUES (?, ?, ?, ?, ?)", "2024-01-31", "2024-01-31 10:11:12.5", false, 1.5, "x")
	mustExec(t, p, "INSERT INTO ev VALUES (?, ?, ?, ?, ?)", nil, "2024-01-31T10:11:12+02:00", 2.0, 3.0, []byte("\xff"))
	res := mustQuery(t, p, "SELECT * FROM ev")
	assert.Equal(t, [][]any{
		{"2024-01-31", "2024-01-31T10:11:12.5Z", false, 1.5, "x"},
		{nil, "2024-01-31T08:11:12Z", int64(2), int64(3), map[string]string{"base64": "/w=="}},
	}, res.Rows)

	// A file that is not a database.
	junk := filepath.Join(t.TempDir(), "junk.db")
	require.NoError(t, os.WriteFile(junk, []byte(strings.Repeat("not sqlite at all ", 100)), 0o644))
	p2, err := NewPool([]Connection{{Name: "junk", Kind: SQLite, Path: junk}}, Limits{})
	require.NoError(t, err)
	defer p2.Close()
	_, err = p2.Query(context.Background(), "junk", "SELECT 1", nil)
	assert.Equal(t, "sqlite: "+junk+" is not a SQLite database file", sqlErr(t, err, ErrDatabase).Msg)
}

// SQL reaches only its connection's database file: no ATTACH, no VACUUM
// INTO, even with the file name computed.
func TestSQLiteOtherFiles(t *testing.T) {
	p := newPool(t, sqliteBackend, Limits{})
	mustExec(t, p, "CREATE TABLE t (x); INSERT INTO t VALUES (1)")
	other := filepath.Join(t.TempDir(), "other.db")
	for _, q := range []string{
		"ATTACH '" + other + "' AS o",
		"ATTACH '" + filepath.Dir(other) + "/' || 'other.db' AS o",
		"ATTACH ? AS o",
		"VACUUM INTO '" + other + "'",
		"VACUUM INTO ?",
	} {
		var params []any
		if strings.Contains(q, "?") {
			params = []any{other}
		}
		_, err := p.Execute(context.Background(), "db", q, params)
		e := sqlErr(t, err, ErrDatabase)
		assert.Contains(t, e.Msg, "ATTACH and VACUUM INTO are not allowed", q)
		assert.NoFileExists(t, other, q)
	}
	_, err := p.Query(context.Background(), "db", "SELECT * FROM t WHERE x IN (SELECT 1); ATTACH ? AS o", []any{other})
	assert.Error(t, err)
	assert.NoFileExists(t, other)
	// A plain VACUUM is fine.
	mustExec(t, p, "VACUUM")
	mustExec(t, p, " vacuum main; ")
	// And ATTACH stays refused on that connection afterwards.
	_, err = p.Execute(context.Background(), "db", "ATTACH '"+other+"' AS o", nil)
	sqlErr(t, err, ErrDatabase)
	assert.NoFileExists(t, other)
}

func TestPostgresTypes(t *testing.T) {
	if os.Getenv(postgresDSNVar) == "" {
		t.Skip(postgresDSNVar + " is not set")
	}
	p := newPool(t, postgresBackend, Limits{})
	res := mustQuery(t, p, `SELECT 12345678901234567890.123456789::numeric AS n,
		1::int2 AS i2, 2::int4 AS i4, 1.5::real AS f4, 'NaN'::float8 AS nan, '-Infinity'::float8 AS ninf,
		'2024-01-31'::date AS d, '2024-01-31 10:11:12.345+02'::timestamptz AS tz,
		'2024-01-31 10:11:12'::timestamp AS ts, '{"a": [1, 2]}'::jsonb AS j,
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, ARRAY[1, 2] AS arr, '1 day'::interval AS iv,
		'\xff00'::bytea AS bin, 'hi'::bytea AS txt, true AS yes, 'x'::varchar(3) AS vc`)
	assert.Equal(t, []any{"12345678901234567890.123456789", int64(1), int64(2), 1.5, "NaN", "-Infinity",
		"2024-01-31", "2024-01-31T08:11:12.345Z", "2024-01-31T10:11:12Z", `{"a": [1, 2]}`,
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{1,2}", "1 day", map[string]string{"base64": "/wA="}, "hi", true, "x"},
		res.Rows[0])

	// Parameters are read as the statement's types: a number fits an
	// integer, numeric, real or text column, a boolean a boolean or text.
	mustExec(t, p, "CREATE TABLE t (i int4, n numeric, f real, s text, b boolean, j jsonb, big numeric)")
	mustExec(t, p, "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7)",
		7.0, 0.1, 2.0, 3.0, true, map[string]any{"k": "v"}, json.Number("123456789012345678901234567890"))
	mustExec(t, p, "INSERT INTO t (s, b) VALUES ($1, $2)", true, "false")
	res = mustQuery(t, p, "SELECT * FROM t ORDER BY i")
	assert.Equal(t, [][]any{
		{int64(7), "0.1", 2.0, "3", true, `{"k": "v"}`, "123456789012345678901234567890"},
		{nil, nil, nil, "true", false, nil, nil},
	}, res.Rows)
	_, err := p.Execute(context.Background(), "db", "INSERT INTO t (i) VALUES ($1)", []any{1.5})
	assert.Equal(t, `postgres: invalid input syntax for type integer: "1.5" (SQLSTATE 22P02)`, sqlErr(t, err, ErrDatabase).Msg)

	// The server's own backstop, and the session's name.
	assert.Equal(t, [][]any{{"70s", "ork"}}, mustQuery(t, p, "SELECT current_setting('statement_timeout'), current_setting('application_name')").Rows)
}

// The password comes from Connection.Password, and no error shows it.
func TestPostgresPassword(t *testing.T) {
	dsn, password := postgresSplit(t)
	if password == "" {
		t.Skip(postgresDSNVar + " has no password")
	}
	p := newPool(t, postgresBackend, Limits{})
	// A message that would echo it.
	_, err := p.Query(context.Background(), "db", `SELECT * FROM "`+password+`"`, nil)
	e := sqlErr(t, err, ErrDatabase)
	assert.NotContains(t, e.Msg, password)
	assert.Equal(t, `postgres: relation "[redacted]" does not exist (SQLSTATE 42P01)`, e.Msg)

	// A wrong password, and none: the server refuses, in words that do
	// not hold the password given.
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("PGPASSWORD", "")
	wrong := "wrong-" + password
	bad, err := NewPool([]Connection{
		{Name: "wrong", Kind: Postgres, DSN: dsn, Password: wrong},
		{Name: "none", Kind: Postgres, DSN: dsn},
	}, Limits{Timeout: 10 * time.Second})
	require.NoError(t, err)
	defer bad.Close()
	for _, name := range []string{"wrong", "none"} {
		_, err = bad.Query(context.Background(), name, "SELECT 1", nil)
		e = sqlErr(t, err, ErrDatabase)
		assert.Contains(t, e.Msg, "postgres: failed to connect to")
		assert.NotContains(t, e.Msg, password)
		assert.NotContains(t, e.Msg, wrong)
		t.Log(e.Msg)
	}
}

// A server that cannot be reached is a database error that says where.
func TestPostgresUnreachable(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "5")
	p, err := NewPool([]Connection{{Name: "wh", Kind: Postgres,
		DSN: "postgres://ork@127.0.0.1:1/warehouse?sslmode=disable", Password: "hunter2"}}, Limits{Timeout: 10 * time.Second})
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Execute(context.Background(), "wh", "SELECT 1", nil)
	e := sqlErr(t, err, ErrDatabase)
	assert.Equal(t, "wh", e.Connection)
	assert.Contains(t, e.Msg, "postgres: failed to connect to `user=ork database=warehouse`: 127.0.0.1:1")
	assert.NotContains(t, e.Msg, "hunter2")
}

// Query runs statements that return rows of their own.
func TestQueryReturning(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		p := newPool(t, b, Limits{})
		mustExec(t, p, "CREATE TABLE t (id "+b.types["int"]+" PRIMARY KEY, s "+b.types["text"]+")")
		res := mustQuery(t, p, "INSERT INTO t VALUES ("+b.ph(1)+", "+b.ph(2)+") RETURNING id, s", 1.0, "a")
		assert.Equal(t, &Result{Columns: []string{"id", "s"}, Rows: [][]any{{int64(1), "a"}}}, res)
		res = mustQuery(t, p, "UPDATE t SET s = 'b'")
		assert.Equal(t, `{"columns":[],"rows":[]}`, toJSON(t, res))
		assert.Equal(t, [][]any{{"b"}}, mustQuery(t, p, "SELECT s FROM t").Rows)
	})
}

// A DSN read from the environment may carry the password; it is then
// redacted from errors like a password given apart.
func TestPasswordInDSN(t *testing.T) {
	dsn := "postgres://ork:hunter2-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"
	if _, err := NewPool([]Connection{{Name: "a", Kind: Postgres, DSN: dsn}}, Limits{}); err == nil || !strings.Contains(err.Error(), "must not contain the password") {
		t.Fatalf("a DSN from ork.yaml with a password: %v", err)
	}
	p, err := NewPool([]Connection{{Name: "a", Kind: Postgres, DSN: dsn, PasswordInDSN: true}}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Query(context.Background(), "a", "SELECT 1", nil)
	if err == nil {
		t.Fatal("nothing listens on port 1, yet the query succeeded")
	}
	if strings.Contains(err.Error(), "hunter2-pw") {
		t.Fatalf("the error shows the password: %v", err)
	}
	if DSNPassword(dsn) != "hunter2-pw" || DSNPassword("host=h user=u password=x2") != "x2" {
		t.Fatal("DSNPassword does not find the password")
	}
}
