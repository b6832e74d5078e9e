-- Version 1: the bookkeeping table exactly as program-executor-js creates it
-- on PostgreSQL, except that the run_id index is unique.
-- Runs only when the table does not exist; an existing table is adopted as version 1.
CREATE TABLE IF NOT EXISTS {table} (
  id serial PRIMARY KEY,
  run_id varchar(255) NOT NULL,
  jobs jsonb NOT NULL,
  step integer,
  finished_at timestamptz NULL,
  errored_at timestamptz NULL,
  error_message varchar(255) NULL,
  step_retry_count integer DEFAULT 0,
  job_data jsonb DEFAULT '{}',
  program_data jsonb DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Unique where we create the table: run ids must never collide (the
-- original's index is not unique; its digit run ids can).
CREATE UNIQUE INDEX IF NOT EXISTS {run_id_index} ON {table} (run_id);
