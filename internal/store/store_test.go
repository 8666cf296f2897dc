package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "ork.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// at is a time with nanoseconds in a zone other than UTC, to show that the
// store keeps the instant exactly.
func at(sec int) time.Time {
	zone := time.FixedZone("X", 5*3600+30*60)
	return time.Date(2025, 3, 14, 15, 9, 26, 535897932, zone).Add(time.Duration(sec) * time.Second)
}

func ptr[T any](v T) *T { return &v }

func sampleRun(id string) Run {
	return Run{
		ID: id, Workflow: "etl", WorkflowFile: "workflows/etl.yaml",
		WorkflowDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Params: map[string]any{
			"n":      float64(3),
			"ratio":  0.25,
			"name":   "x",
			"on":     true,
			"none":   nil,
			"list":   []any{float64(1), "two", map[string]any{"three": []any{}}},
			"nested": map[string]any{"a": map[string]any{"b": "c"}},
		},
		Status: "running", StartedAt: at(0), OrkVersion: "0.3.0", Host: "box", PID: 4242,
	}
}

// utcRun is r as the store returns it: times in UTC.
func utcRun(r Run) Run {
	r.StartedAt = r.StartedAt.UTC()
	if r.EndedAt != nil {
		r.EndedAt = ptr(r.EndedAt.UTC())
	}
	return r
}

func TestMigrations(t *testing.T) {
	ms, err := migrations()
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	for i, m := range ms {
		assert.Equal(t, i+1, m.version, m.name)
	}
	assert.Equal(t, len(ms), SchemaVersion())
}

func TestOpenCreatesDirectoriesAndSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a", "b", "ork.db")
	s, err := Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, path, s.Path())
	assert.FileExists(t, path)

	var v int
	require.NoError(t, s.db.QueryRow("PRAGMA user_version").Scan(&v))
	assert.Equal(t, SchemaVersion(), v)
	for _, table := range []string{"runs", "attempts", "logs", "metrics"} {
		var n int
		require.NoError(t, s.db.QueryRow("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", table).Scan(&n))
		assert.Equal(t, 1, n, table)
	}

	// Every connection of the pool is configured: hold several at once.
	var conns []*sql.Conn
	for range 3 {
		c, err := s.db.Conn(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		var mode string
		var busy, sync, fk int
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
		assert.Equal(t, "wal", mode)
		assert.Equal(t, 10000, busy)
		assert.Equal(t, 2, sync) // FULL
		assert.Equal(t, 1, fk)
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestOpenEmptyFileAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ork.db")
	require.NoError(t, os.WriteFile(path, nil, 0o644)) // an empty file is a new database
	s, err := Open(ctx, path)
	require.NoError(t, err)
	r := sampleRun("r1")
	require.NoError(t, s.CreateRun(ctx, r))
	require.NoError(t, s.Close())

	for range 2 {
		s, err = Open(ctx, path)
		require.NoError(t, err)
		got, err := s.GetRun(ctx, "r1")
		require.NoError(t, err)
		assert.Equal(t, utcRun(r), *got)
		var v int
		require.NoError(t, s.db.QueryRow("PRAGMA user_version").Scan(&v))
		assert.Equal(t, SchemaVersion(), v)
		require.NoError(t, s.Close())
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	t.Chdir(t.TempDir())
	s, err := Open(ctx, ".ork/ork.db")
	require.NoError(t, err)
	_, err = s.db.Exec("PRAGMA user_version = 7")
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = Open(ctx, ".ork/ork.db")
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf("database .ork/ork.db has schema version 7, but this ork knows only up to %d: it was written by a newer ork; upgrade ork, or point ORK_DB/--db at another database", SchemaVersion()), err.Error())
	if SchemaVersion() == 1 {
		assert.Equal(t, "database .ork/ork.db has schema version 7, but this ork knows only up to 1: it was written by a newer ork; upgrade ork, or point ORK_DB/--db at another database", err.Error())
	}
}

func TestNotADatabaseRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"text.db":  "this is a text file, and it is long enough to look like a page header of something\n",
		"short.db": "hi",
		"json.db":  `{"runs": []}`,
		// The right magic, then garbage: SQLite itself refuses it.
		"garbage.db": sqliteHeader + strings.Repeat("\x07garbage", 600),
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
		_, err := Open(ctx, path)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), path)
		assert.Contains(t, err.Error(), "not a SQLite database file")
		// The file is left as it was.
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, content, string(b))
	}

	_, err := Open(ctx, dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), dir+" is a directory")

	// A SQLite database of something else.
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	require.NoError(t, err)
	_, err = db.Exec("CREATE TABLE t (x)")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = Open(ctx, other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), other+" is a SQLite database, but not an ork run database")
}

func TestRunRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	r := sampleRun("r1")
	require.NoError(t, s.CreateRun(ctx, r))
	got, err := s.GetRun(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, utcRun(r), *got)
	assert.Nil(t, got.EndedAt)
	assert.True(t, got.StartedAt.Equal(r.StartedAt))

	err = s.CreateRun(ctx, r)
	require.ErrorIs(t, err, ErrExists)
	assert.Contains(t, err.Error(), "r1")

	// Finish: pid 0 keeps the recorded pid.
	end := at(90)
	require.NoError(t, s.UpdateRun(ctx, "r1", "failed", &end, 0))
	got, err = s.GetRun(ctx, "r1")
	require.NoError(t, err)
	r.Status, r.EndedAt = "failed", &end
	assert.Equal(t, utcRun(r), *got)
	assert.True(t, got.EndedAt.Equal(end))

	// Resume: running again, no end, the new process.
	require.NoError(t, s.UpdateRun(ctx, "r1", "running", nil, 777))
	got, err = s.GetRun(ctx, "r1")
	require.NoError(t, err)
	r.Status, r.EndedAt, r.PID = "running", nil, 777
	assert.Equal(t, utcRun(r), *got)

	// Nil and empty params stay what they were.
	r2 := sampleRun("r2")
	r2.Params = nil
	require.NoError(t, s.CreateRun(ctx, r2))
	got, err = s.GetRun(ctx, "r2")
	require.NoError(t, err)
	assert.Nil(t, got.Params)
	r3 := sampleRun("r3")
	r3.Params = map[string]any{}
	require.NoError(t, s.CreateRun(ctx, r3))
	got, err = s.GetRun(ctx, "r3")
	require.NoError(t, err)
	assert.NotNil(t, got.Params)
	assert.Empty(t, got.Params)

	_, err = s.GetRun(ctx, "nope")
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "nope")
	err = s.UpdateRun(ctx, "nope", "failed", &end, 0)
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "nope")

	require.Error(t, s.CreateRun(ctx, Run{Status: "running"}))
}

func TestListRuns(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	// 30 runs, one a minute, inserted out of order; workflows and statuses alternate.
	for _, i := range []int{5, 29, 0, 17, 3, 11, 23, 8, 1, 26, 14, 20, 2, 9, 27, 4, 12, 19, 6, 28, 15, 10, 21, 7, 24, 13, 18, 16, 25, 22} {
		r := sampleRun(fmt.Sprintf("run-%02d", i))
		r.StartedAt = at(60 * i)
		r.Workflow = []string{"etl", "report"}[i%2]
		r.Status = []string{"succeeded", "failed", "running"}[i%3]
		require.NoError(t, s.CreateRun(ctx, r))
	}
	ids := func(runs []Run) []string {
		var out []string
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return out
	}

	runs, err := s.ListRuns(ctx, RunFilter{})
	require.NoError(t, err)
	require.Len(t, runs, 20)
	for i, r := range runs {
		assert.Equal(t, fmt.Sprintf("run-%02d", 29-i), r.ID)
	}
	assert.Equal(t, utcRun(func() Run {
		r := sampleRun("run-29")
		r.StartedAt, r.Workflow, r.Status = at(60*29), "report", "running"
		return r
	}()), runs[0])

	runs, err = s.ListRuns(ctx, RunFilter{Limit: 3})
	require.NoError(t, err)
	assert.Equal(t, []string{"run-29", "run-28", "run-27"}, ids(runs))

	runs, err = s.ListRuns(ctx, RunFilter{Limit: -1})
	require.NoError(t, err)
	assert.Len(t, runs, 30)

	runs, err = s.ListRuns(ctx, RunFilter{Workflow: "etl", Limit: 4})
	require.NoError(t, err)
	assert.Equal(t, []string{"run-28", "run-26", "run-24", "run-22"}, ids(runs))

	runs, err = s.ListRuns(ctx, RunFilter{Status: "running", Limit: 3})
	require.NoError(t, err)
	assert.Equal(t, []string{"run-29", "run-26", "run-23"}, ids(runs))

	runs, err = s.ListRuns(ctx, RunFilter{Workflow: "report", Status: "succeeded"})
	require.NoError(t, err)
	assert.Equal(t, []string{"run-27", "run-21", "run-15", "run-09", "run-03"}, ids(runs))

	runs, err = s.ListRuns(ctx, RunFilter{Workflow: "none"})
	require.NoError(t, err)
	assert.Empty(t, runs)

	// Equal start times: the order is still total (by id, descending).
	for _, id := range []string{"same-a", "same-c", "same-b"} {
		r := sampleRun(id)
		r.Workflow, r.StartedAt = "same", at(10_000)
		require.NoError(t, s.CreateRun(ctx, r))
	}
	runs, err = s.ListRuns(ctx, RunFilter{Workflow: "same"})
	require.NoError(t, err)
	assert.Equal(t, []string{"same-c", "same-b", "same-a"}, ids(runs))
}

func TestAttemptsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	require.NoError(t, s.CreateRun(ctx, sampleRun("r1")))

	// b starts first, then a; b is retried after a started.
	require.NoError(t, s.StartAttempt(ctx, Attempt{RunID: "r1", Task: "b", Attempt: 1, StartedAt: at(1)}))
	atts, err := s.Attempts(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, []Attempt{{RunID: "r1", Task: "b", Attempt: 1, Status: "running", StartedAt: at(1).UTC()}}, atts)
	assert.Nil(t, atts[0].Output)
	assert.Nil(t, atts[0].Error)
	assert.Nil(t, atts[0].EndedAt)

	err = s.StartAttempt(ctx, Attempt{RunID: "r1", Task: "b", Attempt: 1, StartedAt: at(1)})
	require.ErrorIs(t, err, ErrExists)

	require.NoError(t, s.StartAttempt(ctx, Attempt{RunID: "r1", Task: "a", Attempt: 1, StartedAt: at(2)}))
	b1 := Attempt{RunID: "r1", Task: "b", Attempt: 1, Status: "failed", Reason: "trap", Error: ptr("wasm trap: unreachable"),
		StartedAt: at(1), EndedAt: ptr(at(3)), DurationMS: 2000.125}
	require.NoError(t, s.FinishAttempt(ctx, b1, nil))
	require.NoError(t, s.StartAttempt(ctx, Attempt{RunID: "r1", Task: "b", Attempt: 2, StartedAt: at(4)}))
	a1 := Attempt{RunID: "r1", Task: "a", Attempt: 1, Status: "succeeded",
		Output:    json.RawMessage(`{"rows":[1,2,{"x":null}],"ok":true,"s":"é\n"}`),
		StartedAt: at(2), EndedAt: ptr(at(5)), DurationMS: 3000}
	require.NoError(t, s.FinishAttempt(ctx, a1, []Metric{
		{Name: "rows", Value: 3, Labels: map[string]string{"table": "t", "k": ""}, Time: at(5)},
		{RunID: "r1", Task: "a", Attempt: 1, Name: "nan", Value: math.NaN(), Time: at(5)},
		{Name: "inf", Value: math.Inf(-1), Labels: map[string]string{}, Time: at(6)},
	}))
	// Finishing with an unrecorded start inserts the attempt.
	b2 := Attempt{RunID: "r1", Task: "b", Attempt: 2, Status: "cancelled", Reason: "cancelled",
		Error: ptr(""), Output: json.RawMessage(`null`), StartedAt: at(4), EndedAt: ptr(at(7)), DurationMS: 0.5}
	require.NoError(t, s.FinishAttempt(ctx, b2, nil))
	c1 := Attempt{RunID: "r1", Task: "c", Attempt: 1, Status: "succeeded", StartedAt: at(8), EndedAt: ptr(at(9)), DurationMS: 1}
	require.NoError(t, s.FinishAttempt(ctx, c1, nil))

	utc := func(a Attempt) Attempt {
		a.StartedAt = a.StartedAt.UTC()
		if a.EndedAt != nil {
			a.EndedAt = ptr(a.EndedAt.UTC())
		}
		return a
	}
	atts, err = s.Attempts(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, []Attempt{utc(b1), utc(b2), utc(a1), utc(c1)}, atts)
	assert.Nil(t, atts[3].Output)
	assert.Nil(t, atts[3].Error)

	ms, err := s.Metrics(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, ms, 3)
	assert.Equal(t, Metric{RunID: "r1", Task: "a", Attempt: 1, Name: "rows", Value: 3, Labels: map[string]string{"table": "t", "k": ""}, Time: at(5).UTC()}, ms[0])
	assert.Equal(t, "nan", ms[1].Name)
	assert.True(t, math.IsNaN(ms[1].Value))
	assert.Nil(t, ms[1].Labels)
	assert.Equal(t, Metric{RunID: "r1", Task: "a", Attempt: 1, Name: "inf", Value: math.Inf(-1), Labels: map[string]string{}, Time: at(6).UTC()}, ms[2])

	// Finishing again (an interrupted attempt closed on resume) keeps the start.
	a1.Status, a1.StartedAt = "cancelled", at(100)
	require.NoError(t, s.FinishAttempt(ctx, a1, nil))
	atts, err = s.Attempts(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, "cancelled", atts[2].Status)
	assert.Equal(t, at(2).UTC(), atts[2].StartedAt)

	// Mistakes.
	err = s.FinishAttempt(ctx, c1, []Metric{{Task: "b", Name: "x"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `metric "x"`)
	bad := c1
	bad.Output = json.RawMessage(`{"x":`)
	require.ErrorContains(t, s.FinishAttempt(ctx, bad, nil), "not valid JSON")
	require.Error(t, s.StartAttempt(ctx, Attempt{RunID: "nope", Task: "a", Attempt: 1, StartedAt: at(0)}), "the run must exist")
	require.Error(t, s.FinishAttempt(ctx, Attempt{RunID: "nope", Task: "a", Attempt: 1, Status: "failed"}, nil))
	require.Error(t, s.StartAttempt(ctx, Attempt{RunID: "r1", Task: "a", Attempt: 0}))

	// A rejected FinishAttempt leaves nothing behind: the transaction is whole.
	before, err := s.Metrics(ctx, "r1")
	require.NoError(t, err)
	err = s.FinishAttempt(ctx, Attempt{RunID: "nope", Task: "z", Attempt: 1, Status: "failed"}, []Metric{{Name: "m"}})
	require.Error(t, err)
	after, err := s.Metrics(ctx, "r1")
	require.NoError(t, err)
	assert.Len(t, after, len(before))

	atts, err = s.Attempts(ctx, "nope")
	require.NoError(t, err)
	assert.Empty(t, atts)
}

func TestLogs(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	require.NoError(t, s.CreateRun(ctx, sampleRun("r1")))
	require.NoError(t, s.CreateRun(ctx, sampleRun("r2")))

	lines := []LogLine{
		{RunID: "r1", Task: "a", Attempt: 1, Time: at(1), Level: "info", Source: "log", Message: "hello",
			Fields: map[string]any{"n": float64(1), "deep": map[string]any{"list": []any{"x", nil, true}}}},
		{RunID: "r1", Task: "b", Attempt: 1, Time: at(2), Level: "error", Source: "stderr", Message: "oops\twith tab"},
		{RunID: "r2", Task: "a", Attempt: 1, Time: at(2), Level: "info", Source: "stdout", Message: "other run"},
		{RunID: "r1", Task: "a", Attempt: 2, Time: at(3), Level: "debug", Source: "stdout", Message: "", Fields: map[string]any{}},
	}
	require.NoError(t, s.AppendLogs(ctx, lines))
	assert.Equal(t, []int64{1, 2, 1, 3}, []int64{lines[0].Seq, lines[1].Seq, lines[2].Seq, lines[3].Seq})
	more := []LogLine{{RunID: "r1", Task: "b", Attempt: 1, Time: at(4), Level: "info", Source: "stdout", Message: "later"}}
	require.NoError(t, s.AppendLogs(ctx, more))
	assert.Equal(t, int64(4), more[0].Seq)
	require.NoError(t, s.AppendLogs(ctx, nil))

	utc := func(l LogLine) LogLine { l.Time = l.Time.UTC(); return l }
	all, err := s.Logs(ctx, "r1", "", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, []LogLine{utc(lines[0]), utc(lines[1]), utc(lines[3]), utc(more[0])}, all)
	assert.Nil(t, all[1].Fields)
	assert.NotNil(t, all[2].Fields)

	got, err := s.Logs(ctx, "r1", "a", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, []LogLine{utc(lines[0]), utc(lines[3])}, got)

	got, err = s.Logs(ctx, "r1", "", 1, 0)
	require.NoError(t, err)
	assert.Equal(t, []LogLine{utc(lines[1]), utc(lines[3]), utc(more[0])}, got)

	got, err = s.Logs(ctx, "r1", "", 1, 2)
	require.NoError(t, err)
	assert.Equal(t, []LogLine{utc(lines[1]), utc(lines[3])}, got)

	got, err = s.Logs(ctx, "r1", "b", 2, 10)
	require.NoError(t, err)
	assert.Equal(t, []LogLine{utc(more[0])}, got)

	got, err = s.Logs(ctx, "r1", "", 4, 0)
	require.NoError(t, err)
	assert.Empty(t, got)

	got, err = s.Logs(ctx, "r2", "", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, []LogLine{utc(lines[2])}, got)

	// Lines of an unknown run are refused, and the batch is not half stored.
	bad := []LogLine{{RunID: "r1", Task: "a", Message: "x", Time: at(9)}, {RunID: "nope", Task: "a", Message: "y", Time: at(9)}}
	require.Error(t, s.AppendLogs(ctx, bad))
	got, err = s.Logs(ctx, "r1", "", 0, 0)
	require.NoError(t, err)
	assert.Len(t, got, 4)
	assert.Equal(t, int64(0), bad[0].Seq)
}

// Two stores on one file, written from many goroutines at once: no
// "database is locked", and the log sequence of a shared run has no gaps or
// repeats.
func TestConcurrentStores(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ork.db")
	var stores [2]*Store
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range stores { // open concurrently, too
		wg.Go(func() {
			s, err := Open(ctx, path)
			if err != nil {
				errs <- err
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	defer stores[0].Close()
	defer stores[1].Close()
	require.NoError(t, stores[0].CreateRun(ctx, sampleRun("shared")))

	const workers, iterations, batch = 8, 25, 5
	errs = make(chan error, workers*iterations)
	for w := range workers {
		wg.Go(func() {
			s := stores[w%2]
			if err := writeRuns(ctx, s, fmt.Sprintf("g%d", w), iterations, batch); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for w := range workers {
		checkRuns(t, stores[w%2], fmt.Sprintf("g%d", w), iterations)
	}
	checkShared(t, stores[0], workers*iterations*batch)
}

// Many stores opening one new database at once: one migrates it, the others
// wait for the lock and find it done.
func TestConcurrentOpenOfNewDatabase(t *testing.T) {
	ctx := context.Background()
	for round := range 10 {
		path := filepath.Join(t.TempDir(), fmt.Sprint(round), "ork.db")
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				s, err := Open(ctx, path)
				if err != nil {
					errs <- err
					return
				}
				errs <- s.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
}

// writeRuns records n runs named prefix-i with an attempt, a metric and
// batch log lines each, and appends batch lines to the run "shared" too.
func writeRuns(ctx context.Context, s *Store, prefix string, n, batch int) error {
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		r := sampleRun(id)
		r.StartedAt = time.Now()
		if err := s.CreateRun(ctx, r); err != nil {
			return err
		}
		if err := s.StartAttempt(ctx, Attempt{RunID: id, Task: "t", Attempt: 1, StartedAt: time.Now()}); err != nil {
			return err
		}
		var lines []LogLine
		for j := range batch {
			lines = append(lines, LogLine{RunID: id, Task: "t", Attempt: 1, Time: time.Now(), Level: "info", Source: "stdout", Message: fmt.Sprint(j)})
			lines = append(lines, LogLine{RunID: "shared", Task: prefix, Attempt: 1, Time: time.Now(), Level: "info", Source: "stdout", Message: fmt.Sprint(i, j)})
		}
		if err := s.AppendLogs(ctx, lines); err != nil {
			return err
		}
		end := time.Now()
		if err := s.FinishAttempt(ctx, Attempt{RunID: id, Task: "t", Attempt: 1, Status: "succeeded", Output: json.RawMessage(fmt.Sprint(i)),
			StartedAt: r.StartedAt, EndedAt: &end, DurationMS: 1}, []Metric{{Name: "i", Value: float64(i), Time: end}}); err != nil {
			return err
		}
		if err := s.UpdateRun(ctx, id, "succeeded", &end, 0); err != nil {
			return err
		}
	}
	return nil
}

func checkRuns(t *testing.T, s *Store, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		r, err := s.GetRun(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, "succeeded", r.Status)
		atts, err := s.Attempts(ctx, id)
		require.NoError(t, err)
		require.Len(t, atts, 1, id)
		assert.Equal(t, "succeeded", atts[0].Status)
		assert.JSONEq(t, fmt.Sprint(i), string(atts[0].Output))
		ms, err := s.Metrics(ctx, id)
		require.NoError(t, err)
		require.Len(t, ms, 1, id)
		assert.Equal(t, float64(i), ms[0].Value)
		logs, err := s.Logs(ctx, id, "", 0, 0)
		require.NoError(t, err)
		for j, l := range logs {
			assert.Equal(t, int64(j+1), l.Seq)
		}
	}
}

func checkShared(t *testing.T, s *Store, want int) {
	t.Helper()
	logs, err := s.Logs(context.Background(), "shared", "", 0, 0)
	require.NoError(t, err)
	require.Len(t, logs, want)
	for i, l := range logs {
		require.Equal(t, int64(i+1), l.Seq)
	}
}

// What FinishAttempt wrote is seen by another store on the file as soon as
// it returns, with the first store still open.
func TestFinishAttemptVisibleToAnotherStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ork.db")
	s1, err := Open(ctx, path)
	require.NoError(t, err)
	defer s1.Close()
	require.NoError(t, s1.CreateRun(ctx, sampleRun("r1")))
	require.NoError(t, s1.StartAttempt(ctx, Attempt{RunID: "r1", Task: "a", Attempt: 1, StartedAt: at(0)}))
	end := at(1)
	require.NoError(t, s1.FinishAttempt(ctx, Attempt{RunID: "r1", Task: "a", Attempt: 1, Status: "succeeded",
		Output: json.RawMessage(`{"ok":true}`), StartedAt: at(0), EndedAt: &end, DurationMS: 1000},
		[]Metric{{Name: "m", Value: 1.5, Labels: map[string]string{"k": "v"}, Time: end}}))

	s2, err := Open(ctx, path)
	require.NoError(t, err)
	defer s2.Close()
	atts, err := s2.Attempts(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, atts, 1)
	assert.Equal(t, "succeeded", atts[0].Status)
	assert.JSONEq(t, `{"ok":true}`, string(atts[0].Output))
	ms, err := s2.Metrics(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, []Metric{{RunID: "r1", Task: "a", Attempt: 1, Name: "m", Value: 1.5, Labels: map[string]string{"k": "v"}, Time: end.UTC()}}, ms)
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Open(ctx, filepath.Join(t.TempDir(), "ork.db"))
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), err.Error())
}

func TestAttemptEngine(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	require.NoError(t, s.CreateRun(ctx, sampleRun("r1")))
	// Recorded at the start, kept by a finish that does not name it.
	require.NoError(t, s.StartAttempt(ctx, Attempt{RunID: "r1", Task: "a", Attempt: 1, StartedAt: at(1), Engine: "wasmtime"}))
	require.NoError(t, s.FinishAttempt(ctx, Attempt{RunID: "r1", Task: "a", Attempt: 1, Status: "succeeded", StartedAt: at(1), EndedAt: ptr(at(2))}, nil))
	// Recorded at the finish only.
	require.NoError(t, s.FinishAttempt(ctx, Attempt{RunID: "r1", Task: "b", Attempt: 1, Status: "failed", StartedAt: at(1), EndedAt: ptr(at(2)), Engine: "wazero"}, nil))
	atts, err := s.Attempts(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, atts, 2)
	assert.Equal(t, "wasmtime", atts[0].Engine)
	assert.Equal(t, "wazero", atts[1].Engine)
}

// One ork process never overwrites an attempt another one recorded.
func TestFinishAttemptKeepsAnotherOwnersAttempt(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	require.NoError(t, s.CreateRun(ctx, sampleRun("r1")))
	mine := Attempt{RunID: "r1", Task: "a", Attempt: 1, Status: "succeeded", Output: json.RawMessage(`1`),
		StartedAt: at(1), EndedAt: ptr(at(2)), Owner: "first"}
	require.NoError(t, s.StartAttempt(ctx, mine))
	require.NoError(t, s.FinishAttempt(ctx, mine, []Metric{{Name: "m", Value: 1, Time: at(2)}}))

	theirs := Attempt{RunID: "r1", Task: "a", Attempt: 1, Status: "failed", Reason: "host", Error: ptr("x"),
		StartedAt: at(3), EndedAt: ptr(at(4)), Owner: "second"}
	err := s.FinishAttempt(ctx, theirs, []Metric{{Name: "m2", Value: 2, Time: at(4)}})
	require.ErrorIs(t, err, ErrNotOwner)
	assert.Contains(t, err.Error(), "attempt 1 of task a of run r1")
	assert.Contains(t, err.Error(), "(first)")

	atts, err := s.Attempts(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, atts, 1)
	assert.Equal(t, "succeeded", atts[0].Status)
	assert.JSONEq(t, `1`, string(atts[0].Output))
	assert.Equal(t, "first", atts[0].Owner)
	ms, err := s.Metrics(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, ms, 1, "the rejected attempt's metrics are not stored")
	assert.Equal(t, "m", ms[0].Name)
}

// ClaimRun lets one process of several resume a run.
func TestClaimRun(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	r := sampleRun("r1")
	r.Status, r.PID, r.Host, r.Proc = "running", 100, "h1", "boot-a/1000"
	require.NoError(t, s.CreateRun(ctx, r))
	prev, err := s.GetRun(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, "boot-a/1000", prev.Proc)
	require.NoError(t, s.ClaimRun(ctx, *prev, 200, "h2", "boot-a/2000", []string{"x", "y"}))
	err = s.ClaimRun(ctx, *prev, 300, "h3", "", nil)
	require.ErrorIs(t, err, ErrClaimed)
	got, err := s.GetRun(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, 200, got.PID)
	assert.Equal(t, "h2", got.Host)
	assert.Equal(t, "boot-a/2000", got.Proc)
	// The same pid and host with another process identity is another claim.
	stale := *got
	stale.Proc = "boot-b/5"
	require.ErrorIs(t, s.ClaimRun(ctx, stale, 300, "h3", "", nil), ErrClaimed)
	assert.Equal(t, "running", got.Status)
	assert.Nil(t, got.EndedAt)
	assert.Equal(t, []string{"x", "y"}, got.Tasks)
	require.ErrorIs(t, s.ClaimRun(ctx, Run{ID: "nope"}, 1, "h", "", nil), ErrNotFound)
	// nil tasks keep the recorded list.
	require.NoError(t, s.ClaimRun(ctx, *got, 201, "h2", "", nil))
	got, err = s.GetRun(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, []string{"x", "y"}, got.Tasks)
}

func TestRunTasksAndSkips(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	r := sampleRun("r1")
	r.Tasks = []string{"extract", "load", "report"}
	require.NoError(t, s.CreateRun(ctx, r))
	got, err := s.GetRun(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, r.Tasks, got.Tasks)

	skips, err := s.Skips(ctx, "r1")
	require.NoError(t, err)
	assert.Empty(t, skips)
	require.NoError(t, s.SkipTask(ctx, Skip{RunID: "r1", Task: "report", Reason: `upstream task "load" failed`}))
	require.NoError(t, s.SkipTask(ctx, Skip{RunID: "r1", Task: "load", AfterAttempt: 1, Reason: "first"}))
	require.NoError(t, s.SkipTask(ctx, Skip{RunID: "r1", Task: "load", AfterAttempt: 2, Reason: "again"}))
	skips, err = s.Skips(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, map[string]Skip{
		"report": {RunID: "r1", Task: "report", Reason: `upstream task "load" failed`},
		"load":   {RunID: "r1", Task: "load", AfterAttempt: 2, Reason: "again"},
	}, skips)
	require.Error(t, s.SkipTask(ctx, Skip{RunID: "nope", Task: "a"}), "the run must exist")
}
