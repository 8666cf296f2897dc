-- 0001: the first schema of the run store.
--
-- Times are UTC text of one fixed width (2006-01-02T15:04:05.000000000Z), so
-- they sort as text and read well in the sqlite3 shell. JSON columns are text;
-- NULL stands for a nil Go value.

CREATE TABLE runs (
	id              TEXT    NOT NULL PRIMARY KEY,
	workflow        TEXT    NOT NULL,
	workflow_file   TEXT    NOT NULL,
	workflow_digest TEXT    NOT NULL,
	params          TEXT,                 -- JSON object
	status          TEXT    NOT NULL,     -- running, succeeded, failed, cancelled
	started_at      TEXT    NOT NULL,
	ended_at        TEXT,
	ork_version     TEXT    NOT NULL,
	host            TEXT    NOT NULL,
	pid             INTEGER NOT NULL
);
CREATE INDEX runs_by_started ON runs (started_at, id);
CREATE INDEX runs_by_workflow ON runs (workflow, started_at, id);
CREATE INDEX runs_by_status ON runs (status, started_at, id);

CREATE TABLE attempts (
	run_id      TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	task        TEXT    NOT NULL,
	attempt     INTEGER NOT NULL,         -- 1-based
	status      TEXT    NOT NULL,         -- running, succeeded, failed, cancelled
	reason      TEXT    NOT NULL DEFAULT '',
	error       TEXT,
	output      TEXT,                     -- JSON
	started_at  TEXT    NOT NULL,
	ended_at    TEXT,
	duration_ms REAL    NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, task, attempt)
);

CREATE TABLE logs (
	run_id  TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	seq     INTEGER NOT NULL,             -- 1, 2, ... per run
	task    TEXT    NOT NULL,
	attempt INTEGER NOT NULL,
	time    TEXT    NOT NULL,
	level   TEXT    NOT NULL,
	source  TEXT    NOT NULL,             -- stdout, stderr, log
	message TEXT    NOT NULL,
	fields  TEXT,                         -- JSON object
	PRIMARY KEY (run_id, seq)
);
CREATE INDEX logs_by_task ON logs (run_id, task, seq);

CREATE TABLE metrics (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id  TEXT    NOT NULL,
	task    TEXT    NOT NULL,
	attempt INTEGER NOT NULL,
	name    TEXT    NOT NULL,
	value   REAL,                         -- NULL stands for NaN
	labels  TEXT,                         -- JSON object of strings
	time    TEXT    NOT NULL,
	FOREIGN KEY (run_id, task, attempt) REFERENCES attempts (run_id, task, attempt) ON DELETE CASCADE
);
CREATE INDEX metrics_by_attempt ON metrics (run_id, task, attempt);
