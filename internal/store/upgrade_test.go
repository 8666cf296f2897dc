package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpenMigratesASchemaV1Database opens a database written by the first
// ork with a run store (schema v1, made here with that version's DDL, kept
// verbatim in testdata) and checks it is brought to the current schema with
// its data intact and usable.
func TestOpenMigratesASchemaV1Database(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ork.db")
	ddl, err := os.ReadFile("testdata/schema-v1.sql")
	require.NoError(t, err)
	raw, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	for _, q := range []string{
		string(ddl),
		`PRAGMA user_version = 1`,
		`INSERT INTO runs VALUES ('r1', 'etl', 'workflows/etl.yaml', 'abc', '{"day":"2026-11-28"}', 'failed',
			'2025-03-14T15:09:26.000000000Z', '2025-03-14T15:09:30.000000000Z', '0.1.0', 'box', 4242)`,
		`INSERT INTO attempts VALUES ('r1', 'load', 1, 'succeeded', '', NULL, '{"rows":3}',
			'2025-03-14T15:09:26.000000000Z', '2025-03-14T15:09:27.000000000Z', 1000.5)`,
		`INSERT INTO attempts VALUES ('r1', 'report', 1, 'running', '', NULL, NULL,
			'2025-03-14T15:09:28.000000000Z', NULL, 0)`,
		`INSERT INTO logs VALUES ('r1', 1, 'load', 1, '2025-03-14T15:09:26.500000000Z', 'info', 'stdout', 'loaded', '{"n":3}')`,
		`INSERT INTO metrics (run_id, task, attempt, name, value, labels, time)
			VALUES ('r1', 'load', 1, 'rows', 3, '{"table":"users"}', '2025-03-14T15:09:27.000000000Z')`,
	} {
		_, err := raw.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, raw.Close())

	s, err := Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	var v int
	require.NoError(t, s.db.QueryRow("PRAGMA user_version").Scan(&v))
	assert.Equal(t, SchemaVersion(), v)
	assert.Greater(t, v, 1)

	run, err := s.GetRun(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, "etl", run.Workflow)
	assert.Equal(t, "failed", run.Status)
	assert.Equal(t, map[string]any{"day": "2026-11-28"}, run.Params)
	assert.Equal(t, 4242, run.PID)
	assert.Nil(t, run.Tasks, "a v1 run has no recorded task list")
	require.NotNil(t, run.EndedAt)

	atts, err := s.Attempts(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, atts, 2)
	assert.Equal(t, "load", atts[0].Task)
	assert.Equal(t, "succeeded", atts[0].Status)
	assert.JSONEq(t, `{"rows":3}`, string(atts[0].Output))
	assert.Equal(t, 1000.5, atts[0].DurationMS)
	assert.Equal(t, "", atts[0].Engine)
	assert.Equal(t, "", atts[0].Owner)
	assert.Equal(t, "running", atts[1].Status)

	lines, err := s.Logs(ctx, "r1", "", 0, 0)
	require.NoError(t, err)
	require.Len(t, lines, 1)
	assert.Equal(t, "loaded", lines[0].Message)
	assert.Equal(t, map[string]any{"n": float64(3)}, lines[0].Fields)
	ms, err := s.Metrics(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, ms, 1)
	assert.Equal(t, map[string]string{"table": "users"}, ms[0].Labels)
	assert.Equal(t, 3.0, ms[0].Value)

	// The old data takes new writes: closing the old running attempt as a
	// resume does (same, empty owner), a new attempt, a skip, a log line.
	old := atts[1]
	old.Status, old.Reason = "cancelled", "interrupted"
	require.NoError(t, s.FinishAttempt(ctx, old, nil))
	require.NoError(t, s.StartAttempt(ctx, Attempt{RunID: "r1", Task: "report", Attempt: 2, StartedAt: at(10), Owner: "new"}))
	require.ErrorIs(t, s.FinishAttempt(ctx, Attempt{RunID: "r1", Task: "load", Attempt: 1, Status: "failed", Owner: "new"}, nil), ErrNotOwner)
	require.NoError(t, s.SkipTask(ctx, Skip{RunID: "r1", Task: "notify", AfterAttempt: 0, Reason: "x"}))
	require.NoError(t, s.AppendLogs(ctx, []LogLine{{RunID: "r1", Task: "report", Attempt: 2, Time: at(11), Level: "info", Source: "log", Message: "again"}}))
	lines, err = s.Logs(ctx, "r1", "", 0, 0)
	require.NoError(t, err)
	require.Len(t, lines, 2)
	assert.Equal(t, int64(2), lines[1].Seq)
	atts, err = s.Attempts(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, atts, 3)
	byKey := map[string]Attempt{}
	for _, a := range atts {
		byKey[fmt.Sprintf("%s/%d", a.Task, a.Attempt)] = a
	}
	assert.Equal(t, "cancelled", byKey["report/1"].Status)
	assert.Equal(t, "running", byKey["report/2"].Status)
	assert.Equal(t, "succeeded", byKey["load/1"].Status, "the v1 attempt of another owner is left alone")
	assert.JSONEq(t, `{"rows":3}`, string(byKey["load/1"].Output))
}
