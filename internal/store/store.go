// Package store keeps ork's record of runs in an embedded SQLite database
// (.ork/ork.db): each run, every attempt of its tasks, their log lines and
// their metrics.
//
// Several ork processes may share one database: it is in WAL mode, waits up
// to ten seconds for a lock, and every write transaction takes the write lock
// up front (BEGIN IMMEDIATE). A write is on disk when its method returns
// (synchronous=FULL), so what ork reported survives a crash of the process or
// of the machine.
//
// The schema is versioned by PRAGMA user_version and migrated at Open by the
// SQL scripts in migrations/, applied in order.
package store

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned (wrapped) for a run that is not in the store.
var ErrNotFound = errors.New("not found")

// ErrNotOwner is returned (wrapped) by FinishAttempt when the attempt was
// recorded by another ork process.
var ErrNotOwner = errors.New("recorded by another ork process")

// ErrClaimed is returned (wrapped) by ClaimRun when the run changed since it
// was read: another process claimed it first.
var ErrClaimed = errors.New("changed by another ork process")

// ErrExists is returned (wrapped) by CreateRun and StartAttempt when the row
// is already there.
var ErrExists = errors.New("already exists")

// BusyTimeout is how long a connection waits for a lock held by another
// connection or process before it gives up with "database is locked".
const BusyTimeout = 10 * time.Second

// Run is one execution of a workflow.
type Run struct {
	ID             string
	Workflow       string         // workflow name
	WorkflowFile   string         // project-relative path
	WorkflowDigest string         // sha256 hex of the workflow file's bytes
	Params         map[string]any // JSON-compatible
	Status         string         // running, succeeded, failed, cancelled
	StartedAt      time.Time
	EndedAt        *time.Time
	OrkVersion     string
	Host           string   // hostname
	PID            int      // the ork process running it (to show runs whose process died as "interrupted")
	Proc           string   // that process beyond its pid (boot id and start time, on Linux); "" when unknown
	Tasks          []string // the workflow's task names in its order; nil for runs recorded before schema v4
}

// Skip records that a run skipped a task.
type Skip struct {
	RunID        string
	Task         string
	AfterAttempt int    // attempts the task had when it was skipped (0: none)
	Reason       string // e.g. upstream task "a" failed
}

// Attempt is one try at running a task of a run.
type Attempt struct {
	RunID      string
	Task       string
	Attempt    int    // 1-based
	Status     string // running, succeeded, failed, cancelled
	Reason     string // "", exit, trap, abi, memory, timeout, cancelled, host
	Error      *string
	Output     json.RawMessage // nil for none
	StartedAt  time.Time
	EndedAt    *time.Time
	DurationMS float64
	Engine     string // the WebAssembly engine that ran it ("" if not recorded)
	// Owner identifies the ork process (one execution of the run) that
	// recorded the attempt; FinishAttempt updates only an attempt of the
	// same owner.
	Owner string
}

// LogLine is one line of a task's log.
type LogLine struct {
	RunID   string
	Task    string
	Attempt int
	Seq     int64 // assigned by the store, increasing per run
	Time    time.Time
	Level   string
	Source  string // stdout, stderr, log
	Message string
	Fields  map[string]any
}

// Metric is one metric point recorded by an attempt.
type Metric struct {
	RunID   string
	Task    string
	Attempt int
	Name    string
	Value   float64
	Labels  map[string]string
	Time    time.Time
}

// RunFilter selects runs for ListRuns. Empty fields match everything.
type RunFilter struct {
	Workflow, Status string
	Limit            int // 0 means 20, negative means no limit; newest first
}

// Store is an open run database. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded scripts in order; the script of version N
// is named NNNN_something.sql and they number 1, 2, 3... without gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: the name must start with its version, as in 0001_init.sql", name)
		}
		b, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest schema version this ork knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// dsn makes the driver's data source name: a SQLite URI whose _pragma
// parameters are applied by the driver to every connection it opens, so every
// connection of the pool is configured alike. The driver runs busy_timeout
// first, so the other pragmas (journal_mode needs a lock) wait for a busy
// database rather than failing. _txlock=immediate makes every BeginTx a
// BEGIN IMMEDIATE: a write transaction takes the write lock at its start and
// so waits (busy_timeout) instead of failing when a read turns into a write
// in WAL mode.
func dsn(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows volume: file:/C:/...
	}
	// A URI path is percent-decoded by SQLite, and ends at ? or #.
	p = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
	q := []string{
		"_pragma=busy_timeout(" + strconv.FormatInt(BusyTimeout.Milliseconds(), 10) + ")",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(FULL)",
		"_pragma=fullfsync(ON)", // macOS: flush the drive's cache too; elsewhere a no-op
		"_pragma=foreign_keys(ON)",
		"_txlock=immediate",
	}
	return "file:" + p + "?" + strings.Join(q, "&")
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// checkFile refuses a path that exists but is not a SQLite database. An
// empty file is a database yet to be made.
func checkFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening the run database %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening the run database %s: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("the run database %s is a directory, not a file", path)
	}
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil
	}
	if n < len(head) || !bytes.Equal(head, []byte(sqliteHeader)) {
		return notADatabase(path)
	}
	return nil
}

func notADatabase(path string) error {
	return fmt.Errorf("%s is not an ork run database: it is not a SQLite database file; move it away, or point ORK_DB/--db at another database", path)
}

// Open opens the run database at path, creating it and its parent
// directories if need be, and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("no run database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory of the run database %s: %w", path, err)
	}
	if err := checkFile(abs); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("opening the run database %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.connect(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// connect makes the first connection, retrying while the database is busy.
//
// The first connection to a new database turns it to WAL mode, which writes
// the file's header. SQLite does that in a read transaction that it then
// upgrades to a write one, and an upgrade that meets another connection's
// lock fails at once with SQLITE_BUSY instead of waiting (the busy handler
// would deadlock). That happens when processes open one new database at the
// same moment; the database is in WAL mode for good once one succeeds, and
// later connections change nothing, so waiting and trying again is enough.
func (s *Store) connect(ctx context.Context) error {
	deadline := time.Now().Add(BusyTimeout)
	delay := time.Millisecond
	for {
		err := s.db.PingContext(ctx)
		if err == nil {
			return nil
		}
		if !isBusy(err) || time.Now().After(deadline) {
			return s.openError(err)
		}
		t := time.NewTimer(delay + rand.N(delay))
		select {
		case <-ctx.Done():
			t.Stop()
			return s.openError(ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// openError explains an error of the database as a whole.
func (s *Store) openError(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return notADatabase(s.path)
	}
	return fmt.Errorf("opening the run database %s: %w", s.path, err)
}

func (s *Store) userVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, s.openError(err)
	}
	return v, nil
}

func (s *Store) newerError(v, known int) error {
	return fmt.Errorf("database %s has schema version %d, but this ork knows only up to %d: it was written by a newer ork; upgrade ork, or point ORK_DB/--db at another database", s.path, v, known)
}

// migrate applies the migrations the database lacks, all in one
// transaction. Two processes may open a new database at once: the write lock
// taken by BEGIN IMMEDIATE serialises them, and the version is read again
// under it, so the second finds the work done.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	v, err := s.userVersion(ctx, s.db)
	if err != nil {
		return err
	}
	if v > len(ms) {
		return s.newerError(v, len(ms))
	}
	if v == len(ms) {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.openError(err)
	}
	defer tx.Rollback()
	if v, err = s.userVersion(ctx, tx); err != nil {
		return err
	}
	if v > len(ms) {
		return s.newerError(v, len(ms))
	}
	if v == len(ms) {
		return nil
	}
	if v == 0 {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
			return s.openError(err)
		}
		if n > 0 {
			return fmt.Errorf("%s is a SQLite database, but not an ork run database; point ORK_DB/--db at another database", s.path)
		}
	}
	for _, m := range ms[v:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrating the run database %s to schema version %d (%s): %w", s.path, m.version, m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(ms))); err != nil {
		return s.openError(err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrating the run database %s: %w", s.path, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// timeLayout has a fixed width, so stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func fmtTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return fmtTime(*t)
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		// Tolerate other RFC 3339 text, say written by hand.
		if t2, err2 := time.Parse(time.RFC3339Nano, s); err2 == nil {
			return t2.UTC(), nil
		}
		return time.Time{}, fmt.Errorf("bad time %q in the run database: %w", s, err)
	}
	return t, nil
}

func parseTimePtr(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// jsonValue encodes a map as JSON text; a nil map is NULL.
func jsonValue[M ~map[string]V, V any](m M) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// jsonList encodes a list as JSON text; a nil list is NULL.
func jsonList(l []string) (any, error) {
	if l == nil {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// jsonMap decodes JSON text written by jsonValue; NULL is a nil map.
func jsonMap[V any](s sql.NullString) (map[string]V, error) {
	if !s.Valid {
		return nil, nil
	}
	var m map[string]V
	if err := json.Unmarshal([]byte(s.String), &m); err != nil {
		return nil, fmt.Errorf("bad JSON in the run database: %w", err)
	}
	return m, nil
}

// floatValue stores NaN, which SQLite cannot keep as a REAL, as NULL.
func floatValue(f float64) any {
	if math.IsNaN(f) {
		return nil
	}
	return f
}

func floatOf(f sql.NullFloat64) float64 {
	if !f.Valid {
		return math.NaN()
	}
	return f.Float64
}
