-- Version 6: the attempt history (`program-executor explain`). One row per
-- attempt of a step, written in the transaction that changes the program's
-- row (the step's commit, release, retry or failure), so history and state
-- never disagree; a claim taken over after its worker died is recorded as a
-- `crashed` attempt by the worker (or sweeper) taking it over.
-- A table of its own: program-executor-js never sees it. Its indexes are
-- declared with it (MySQL has no CREATE INDEX IF NOT EXISTS): one program's
-- history in order (explain, status). Pruning by age (history.retention)
-- walks the primary key: ids grow with ended_at. error is MEDIUMTEXT: up to 64 KiB and the marker
-- of a longer message cut there.
CREATE TABLE IF NOT EXISTS {attempts_table} (
  id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  run_id varchar(255) NOT NULL,
  step int NOT NULL,
  job varchar(255) NOT NULL,
  attempt int NOT NULL,
  worker varchar(255) NOT NULL,
  claim_token bigint NOT NULL,
  started_at datetime(3) NOT NULL,
  ended_at datetime(3) NOT NULL,
  duration_ms bigint NOT NULL,
  outcome varchar(16) NOT NULL,
  error mediumtext NULL,
  exception_type varchar(255) NULL,
  KEY {attempts_run_index} (run_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- When the current claim was taken: the start of a `crashed` attempt.
ALTER TABLE {table} ADD COLUMN claimed_at datetime(3) NULL;
