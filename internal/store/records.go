package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// write runs fn in a write transaction (BEGIN IMMEDIATE, see dsn) and
// commits it; with synchronous=FULL the commit is on disk when write returns.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// CreateRun records a new run. It fails with ErrExists if the id is taken.
func (s *Store) CreateRun(ctx context.Context, r Run) error {
	if r.ID == "" {
		return errors.New("recording a run: no run id")
	}
	if r.Status == "" {
		return fmt.Errorf("recording run %s: no status", r.ID)
	}
	params, err := jsonValue(r.Params)
	if err != nil {
		return fmt.Errorf("recording run %s: params: %w", r.ID, err)
	}
	tasks, err := jsonList(r.Tasks)
	if err != nil {
		return fmt.Errorf("recording run %s: tasks: %w", r.ID, err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO runs
		(id, workflow, workflow_file, workflow_digest, params, status, started_at, ended_at, ork_version, host, pid, tasks, proc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		r.ID, r.Workflow, r.WorkflowFile, r.WorkflowDigest, params, r.Status,
		fmtTime(r.StartedAt), fmtTimePtr(r.EndedAt), r.OrkVersion, r.Host, r.PID, tasks, r.Proc)
	if err != nil {
		return fmt.Errorf("recording run %s: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("recording run %s: %w", r.ID, err)
	} else if n == 0 {
		return fmt.Errorf("recording run %s: the run %w", r.ID, ErrExists)
	}
	return nil
}

// UpdateRun sets a run's status and end time: to finish it (endedAt set), or
// to resume it (status running, endedAt nil, the new process's pid). A pid of
// 0 keeps the recorded one. It fails with ErrNotFound for an unknown run.
func (s *Store) UpdateRun(ctx context.Context, id, status string, endedAt *time.Time, pid int) error {
	if status == "" {
		return fmt.Errorf("updating run %s: no status", id)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET status = ?, ended_at = ?,
		pid = CASE WHEN ? = 0 THEN pid ELSE ? END WHERE id = ?`,
		status, fmtTimePtr(endedAt), pid, pid, id)
	if err != nil {
		return fmt.Errorf("updating run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("updating run %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return nil
}

// ClaimRun makes the calling process the one running run prev.ID again: it
// sets the status to running, clears the end time and records pid and host
// (and the task list, unless tasks is nil), provided the run's status, pid,
// host and process identity are still those of prev. Otherwise another process got there
// first, and it fails with ErrClaimed.
func (s *Store) ClaimRun(ctx context.Context, prev Run, pid int, host, proc string, tasks []string) error {
	list, err := jsonList(tasks)
	if err != nil {
		return fmt.Errorf("resuming run %s: tasks: %w", prev.ID, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET status = 'running', ended_at = NULL, pid = ?, host = ?, proc = ?,
		tasks = coalesce(?, tasks)
		WHERE id = ? AND status = ? AND pid = ? AND host = ? AND proc = ?`,
		pid, host, proc, list, prev.ID, prev.Status, prev.PID, prev.Host, prev.Proc)
	if err != nil {
		return fmt.Errorf("resuming run %s: %w", prev.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("resuming run %s: %w", prev.ID, err)
	} else if n == 0 {
		if _, err := s.GetRun(ctx, prev.ID); err != nil {
			return err
		}
		return fmt.Errorf("run %s was %w (resumed or finished) since it was read", prev.ID, ErrClaimed)
	}
	return nil
}

const runColumns = `id, workflow, workflow_file, workflow_digest, params, status, started_at, ended_at, ork_version, host, pid, tasks, proc`

func scanRun(sc interface{ Scan(...any) error }) (*Run, error) {
	var (
		r             Run
		params, ended sql.NullString
		tasks         sql.NullString
		started       string
		err           error
	)
	if err := sc.Scan(&r.ID, &r.Workflow, &r.WorkflowFile, &r.WorkflowDigest, &params, &r.Status,
		&started, &ended, &r.OrkVersion, &r.Host, &r.PID, &tasks, &r.Proc); err != nil {
		return nil, err
	}
	if tasks.Valid {
		if err := json.Unmarshal([]byte(tasks.String), &r.Tasks); err != nil {
			return nil, fmt.Errorf("run %s: bad task list in the run database: %w", r.ID, err)
		}
	}
	if r.Params, err = jsonMap[any](params); err != nil {
		return nil, fmt.Errorf("run %s: params: %w", r.ID, err)
	}
	if r.StartedAt, err = parseTime(started); err != nil {
		return nil, fmt.Errorf("run %s: %w", r.ID, err)
	}
	if r.EndedAt, err = parseTimePtr(ended); err != nil {
		return nil, fmt.Errorf("run %s: %w", r.ID, err)
	}
	return &r, nil
}

// GetRun returns a run; ErrNotFound (wrapped) if there is none with this id.
func (s *Store) GetRun(ctx context.Context, id string) (*Run, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id)
	r, err := scanRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading run %s: %w", id, err)
	}
	return r, nil
}

// ListRuns returns the runs that match f, newest (by start) first.
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	var (
		where []string
		args  []any
	)
	if f.Workflow != "" {
		where = append(where, "workflow = ?")
		args = append(args, f.Workflow)
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, f.Status)
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	switch {
	case limit == 0:
		limit = 20
	case limit < 0:
		limit = -1 // SQLite: no limit
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	defer rows.Close()
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("listing runs: %w", err)
		}
		runs = append(runs, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	return runs, nil
}

// SkipTask records that a run skipped a task, replacing an earlier skip of
// it.
func (s *Store) SkipTask(ctx context.Context, k Skip) error {
	if k.RunID == "" || k.Task == "" {
		return errors.New("recording a skipped task: needs a run id and a task")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO skips (run_id, task, after_attempt, reason) VALUES (?, ?, ?, ?)
		ON CONFLICT (run_id, task) DO UPDATE SET after_attempt = excluded.after_attempt, reason = excluded.reason`,
		k.RunID, k.Task, k.AfterAttempt, k.Reason)
	if err != nil {
		return fmt.Errorf("recording that run %s skipped task %s: %w", k.RunID, k.Task, err)
	}
	return nil
}

// Skips returns the tasks a run skipped, by task name.
func (s *Store) Skips(ctx context.Context, runID string) (map[string]Skip, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT task, after_attempt, reason FROM skips WHERE run_id = ?`, runID)
	if err != nil {
		return nil, fmt.Errorf("reading the skipped tasks of run %s: %w", runID, err)
	}
	defer rows.Close()
	out := map[string]Skip{}
	for rows.Next() {
		k := Skip{RunID: runID}
		if err := rows.Scan(&k.Task, &k.AfterAttempt, &k.Reason); err != nil {
			return nil, fmt.Errorf("reading the skipped tasks of run %s: %w", runID, err)
		}
		out[k.Task] = k
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the skipped tasks of run %s: %w", runID, err)
	}
	return out, nil
}

func attemptName(a Attempt) string {
	return fmt.Sprintf("attempt %d of task %s of run %s", a.Attempt, a.Task, a.RunID)
}

func ownerName(owner string) string {
	if owner == "" {
		return "by an older ork"
	}
	return owner
}

func outputValue(o json.RawMessage) (any, error) {
	if len(o) == 0 {
		return nil, nil
	}
	if !json.Valid(o) {
		return nil, errors.New("the output is not valid JSON")
	}
	return string(o), nil
}

// StartAttempt records that an attempt started; its status is "running",
// whatever a.Status says. It fails with ErrExists if the attempt is there.
func (s *Store) StartAttempt(ctx context.Context, a Attempt) error {
	if a.RunID == "" || a.Task == "" || a.Attempt < 1 {
		return fmt.Errorf("recording %s: needs a run id, a task and an attempt number from 1", attemptName(a))
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO attempts
		(run_id, task, attempt, status, reason, started_at, engine, owner)
		VALUES (?, ?, ?, 'running', '', ?, ?, ?)
		ON CONFLICT (run_id, task, attempt) DO NOTHING`,
		a.RunID, a.Task, a.Attempt, fmtTime(a.StartedAt), a.Engine, a.Owner)
	if err != nil {
		return fmt.Errorf("recording %s: %w", attemptName(a), err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("recording %s: %w", attemptName(a), err)
	} else if n == 0 {
		return fmt.Errorf("recording %s: the attempt %w", attemptName(a), ErrExists)
	}
	return nil
}

// FinishAttempt records the outcome of an attempt and its metrics in one
// transaction, on disk when it returns. The attempt row is updated, or
// inserted if StartAttempt did not record it; the start time of a recorded
// attempt is kept. An attempt recorded with another Owner is left alone and
// FinishAttempt fails with ErrNotOwner: one ork process never overwrites
// what another recorded. Each metric belongs to the attempt a: its RunID, Task and
// Attempt may be left zero, and must otherwise be a's.
func (s *Store) FinishAttempt(ctx context.Context, a Attempt, metrics []Metric) error {
	if a.RunID == "" || a.Task == "" || a.Attempt < 1 {
		return fmt.Errorf("recording %s: needs a run id, a task and an attempt number from 1", attemptName(a))
	}
	if a.Status == "" {
		return fmt.Errorf("recording %s: no status", attemptName(a))
	}
	output, err := outputValue(a.Output)
	if err != nil {
		return fmt.Errorf("recording %s: %w", attemptName(a), err)
	}
	type point struct {
		name, time string
		value      any
		labels     any
	}
	points := make([]point, 0, len(metrics))
	for _, m := range metrics {
		if (m.RunID != "" && m.RunID != a.RunID) || (m.Task != "" && m.Task != a.Task) || (m.Attempt != 0 && m.Attempt != a.Attempt) {
			return fmt.Errorf("recording %s: metric %q is of attempt %d of task %s of run %s", attemptName(a), m.Name, m.Attempt, m.Task, m.RunID)
		}
		labels, err := jsonValue(m.Labels)
		if err != nil {
			return fmt.Errorf("recording %s: metric %q: %w", attemptName(a), m.Name, err)
		}
		points = append(points, point{name: m.Name, time: fmtTime(m.Time), value: floatValue(m.Value), labels: labels})
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO attempts
			(run_id, task, attempt, status, reason, error, output, started_at, ended_at, duration_ms, engine, owner)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, task, attempt) DO UPDATE SET
				status = excluded.status, reason = excluded.reason, error = excluded.error,
				output = excluded.output, ended_at = excluded.ended_at, duration_ms = excluded.duration_ms,
				engine = CASE WHEN excluded.engine = '' THEN attempts.engine ELSE excluded.engine END
			WHERE attempts.owner = excluded.owner`,
			a.RunID, a.Task, a.Attempt, a.Status, a.Reason, a.Error, output,
			fmtTime(a.StartedAt), fmtTimePtr(a.EndedAt), a.DurationMS, a.Engine, a.Owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var owner string
			if err := tx.QueryRowContext(ctx, `SELECT owner FROM attempts WHERE run_id = ? AND task = ? AND attempt = ?`,
				a.RunID, a.Task, a.Attempt).Scan(&owner); err != nil {
				return err
			}
			return fmt.Errorf("the attempt is already %w (%s); it is left as it was", ErrNotOwner, ownerName(owner))
		}
		if len(points) == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO metrics
			(run_id, task, attempt, name, value, labels, time) VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, p := range points {
			if _, err := stmt.ExecContext(ctx, a.RunID, a.Task, a.Attempt, p.name, p.value, p.labels, p.time); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording %s: %w", attemptName(a), err)
	}
	return nil
}

// Attempts returns the attempts of a run: the tasks in the order they first
// started, each task's attempts in order.
func (s *Store) Attempts(ctx context.Context, runID string) ([]Attempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT
		run_id, task, attempt, status, reason, error, output, started_at, ended_at, duration_ms, engine, owner
		FROM attempts WHERE run_id = ?
		ORDER BY min(started_at) OVER (PARTITION BY task), task, attempt`, runID)
	if err != nil {
		return nil, fmt.Errorf("reading the attempts of run %s: %w", runID, err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var (
			a       Attempt
			errMsg  sql.NullString
			output  sql.NullString
			started string
			ended   sql.NullString
		)
		if err := rows.Scan(&a.RunID, &a.Task, &a.Attempt, &a.Status, &a.Reason, &errMsg, &output,
			&started, &ended, &a.DurationMS, &a.Engine, &a.Owner); err != nil {
			return nil, fmt.Errorf("reading the attempts of run %s: %w", runID, err)
		}
		if errMsg.Valid {
			a.Error = &errMsg.String
		}
		if output.Valid {
			a.Output = json.RawMessage(output.String)
		}
		if a.StartedAt, err = parseTime(started); err != nil {
			return nil, fmt.Errorf("reading %s: %w", attemptName(a), err)
		}
		if a.EndedAt, err = parseTimePtr(ended); err != nil {
			return nil, fmt.Errorf("reading %s: %w", attemptName(a), err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the attempts of run %s: %w", runID, err)
	}
	return out, nil
}

// AppendLogs stores log lines in one transaction. It numbers them: each
// line's Seq continues its run's sequence, in the order given, and is set in
// lines as well. Concurrent writers of one run get distinct numbers.
func (s *Store) AppendLogs(ctx context.Context, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	fields := make([]any, len(lines))
	for i, l := range lines {
		if l.RunID == "" {
			return errors.New("storing log lines: a line has no run id")
		}
		f, err := jsonValue(l.Fields)
		if err != nil {
			return fmt.Errorf("storing log lines of run %s: fields: %w", l.RunID, err)
		}
		fields[i] = f
	}
	seqs := make([]int64, len(lines))
	err := s.write(ctx, func(tx *sql.Tx) error {
		next := map[string]int64{}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO logs
			(run_id, seq, task, attempt, time, level, source, message, fields)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, l := range lines {
			seq, ok := next[l.RunID]
			if !ok {
				if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM logs WHERE run_id = ?`, l.RunID).Scan(&seq); err != nil {
					return err
				}
			}
			seq++
			next[l.RunID] = seq
			seqs[i] = seq
			if _, err := stmt.ExecContext(ctx, l.RunID, seq, l.Task, l.Attempt, fmtTime(l.Time),
				l.Level, l.Source, l.Message, fields[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing log lines of run %s: %w", lines[0].RunID, err)
	}
	for i := range lines {
		lines[i].Seq = seqs[i]
	}
	return nil
}

// Logs returns up to limit log lines of a run whose Seq is above afterSeq,
// in order; task "" means every task, limit <= 0 no limit.
func (s *Store) Logs(ctx context.Context, runID, task string, afterSeq int64, limit int) ([]LogLine, error) {
	q := `SELECT run_id, seq, task, attempt, time, level, source, message, fields
		FROM logs WHERE run_id = ? AND seq > ?`
	args := []any{runID, afterSeq}
	if task != "" {
		q += ` AND task = ?`
		args = append(args, task)
	}
	if limit <= 0 {
		limit = -1
	}
	q += ` ORDER BY seq LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the logs of run %s: %w", runID, err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var (
			l      LogLine
			t      string
			fields sql.NullString
		)
		if err := rows.Scan(&l.RunID, &l.Seq, &l.Task, &l.Attempt, &t, &l.Level, &l.Source, &l.Message, &fields); err != nil {
			return nil, fmt.Errorf("reading the logs of run %s: %w", runID, err)
		}
		if l.Time, err = parseTime(t); err != nil {
			return nil, fmt.Errorf("reading the logs of run %s: %w", runID, err)
		}
		if l.Fields, err = jsonMap[any](fields); err != nil {
			return nil, fmt.Errorf("reading the logs of run %s: line %d: %w", runID, l.Seq, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the logs of run %s: %w", runID, err)
	}
	return out, nil
}

// Metrics returns the metric points of a run in the order they were
// recorded.
func (s *Store) Metrics(ctx context.Context, runID string) ([]Metric, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT run_id, task, attempt, name, value, labels, time
		FROM metrics WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("reading the metrics of run %s: %w", runID, err)
	}
	defer rows.Close()
	var out []Metric
	for rows.Next() {
		var (
			m      Metric
			value  sql.NullFloat64
			labels sql.NullString
			t      string
		)
		if err := rows.Scan(&m.RunID, &m.Task, &m.Attempt, &m.Name, &value, &labels, &t); err != nil {
			return nil, fmt.Errorf("reading the metrics of run %s: %w", runID, err)
		}
		m.Value = floatOf(value)
		if m.Labels, err = jsonMap[string](labels); err != nil {
			return nil, fmt.Errorf("reading the metrics of run %s: %w", runID, err)
		}
		if m.Time, err = parseTime(t); err != nil {
			return nil, fmt.Errorf("reading the metrics of run %s: %w", runID, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the metrics of run %s: %w", runID, err)
	}
	return out, nil
}
