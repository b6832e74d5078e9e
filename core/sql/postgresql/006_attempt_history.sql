-- Version 6: the attempt history (`program-executor explain`). One row per
-- attempt of a step, written in the transaction that changes the program's
-- row (the step's commit, release, retry or failure), so history and state
-- never disagree; a claim taken over after its worker died is recorded as a
-- `crashed` attempt by the worker (or sweeper) taking it over.
-- A table of its own: program-executor-js never sees it.
CREATE TABLE IF NOT EXISTS {attempts_table} (
  id bigserial PRIMARY KEY,
  run_id varchar(255) NOT NULL,
  step integer NOT NULL,
  job varchar(255) NOT NULL,
  attempt integer NOT NULL,
  worker varchar(255) NOT NULL,
  claim_token bigint NOT NULL,
  started_at timestamptz NOT NULL,
  ended_at timestamptz NOT NULL,
  duration_ms bigint NOT NULL,
  outcome varchar(16) NOT NULL,
  error text NULL,
  exception_type varchar(255) NULL
);
-- One program's history in order (explain, status).
CREATE INDEX IF NOT EXISTS {attempts_run_index} ON {attempts_table} (run_id, id);
-- When the current claim was taken: the start of a `crashed` attempt.
ALTER TABLE {table} ADD COLUMN claimed_at timestamptz NULL;
