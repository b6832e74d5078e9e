-- Version 6: the attempt history (`program-executor explain`). One row per
-- attempt of a step, written in the transaction that changes the program's
-- row (the step's commit, release, retry or failure), so history and state
-- never disagree; a claim taken over after its worker died is recorded as a
-- `crashed` attempt by the worker (or sweeper) taking it over. Times are UTC
-- ISO 8601 text, as the programs table's.
-- A table of its own: program-executor-js never sees it.
-- The id is the rowid without AUTOINCREMENT: a new row still takes the
-- highest id plus one (pruning deletes the oldest, never the newest), so a
-- program's attempts keep their order, and no insert writes sqlite_sequence.
CREATE TABLE IF NOT EXISTS {attempts_table} (
  id INTEGER PRIMARY KEY,
  run_id VARCHAR(255) NOT NULL,
  step INTEGER NOT NULL,
  job VARCHAR(255) NOT NULL,
  attempt INTEGER NOT NULL,
  worker VARCHAR(255) NOT NULL,
  claim_token INTEGER NOT NULL,
  started_at TIMESTAMP NOT NULL,
  ended_at TIMESTAMP NOT NULL,
  duration_ms INTEGER NOT NULL,
  outcome VARCHAR(16) NOT NULL,
  error TEXT NULL,
  exception_type VARCHAR(255) NULL
);
-- One program's history in order (explain, status).
CREATE INDEX IF NOT EXISTS {attempts_run_index} ON {attempts_table} (run_id, id);
-- When the current claim was taken: the start of a `crashed` attempt.
ALTER TABLE {table} ADD COLUMN claimed_at TIMESTAMP NULL;
