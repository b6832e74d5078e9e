-- Version 1: the bookkeeping table, with program-executor-js's columns.
-- Runs only when the table does not exist; an existing table is adopted as version 1.
-- Timestamps are UTC ISO 8601 text ("2024-05-01T12:00:00.000Z").
CREATE TABLE IF NOT EXISTS {table} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id VARCHAR(255) NOT NULL,
  jobs TEXT NOT NULL,
  step INTEGER NOT NULL DEFAULT 0,
  finished_at TIMESTAMP NULL,
  errored_at TIMESTAMP NULL,
  error_message VARCHAR(255) NULL,
  step_retry_count INTEGER NOT NULL DEFAULT 0,
  job_data TEXT NOT NULL DEFAULT '{}',
  program_data TEXT NOT NULL DEFAULT '{}',
  created_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- Unique where we create the table: run ids must never collide (the
-- original's index is not unique; its digit run ids can).
CREATE UNIQUE INDEX IF NOT EXISTS {run_id_index} ON {table} (run_id);
