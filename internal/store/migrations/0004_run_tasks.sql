-- The workflow's tasks, in its order, as a JSON array of names: a run's
-- record lists every task, those that never ran too. NULL for runs recorded
-- before.
ALTER TABLE runs ADD COLUMN tasks TEXT;

-- Tasks a run skipped (an upstream task failed, or the run was cancelled
-- before they started), with why. after_attempt is the number of attempts
-- the task had when it was skipped: an attempt numbered above it (a resumed
-- run ran the task) supersedes the skip.
CREATE TABLE skips (
	run_id        TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	task          TEXT    NOT NULL,
	after_attempt INTEGER NOT NULL,
	reason        TEXT    NOT NULL,
	PRIMARY KEY (run_id, task)
);
