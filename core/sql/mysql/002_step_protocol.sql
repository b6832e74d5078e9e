-- Version 2: the step protocol's columns (claims with fencing tokens, the
-- crash counter, the time by which a program is next expected to move) and
-- the index the recovery sweeper reads. program-executor-js ignores them.
-- No partial indexes here: running programs are found through the leading
-- finished_at and errored_at (both NULL).
ALTER TABLE {table} ADD COLUMN lease_owner varchar(255) NULL;
ALTER TABLE {table} ADD COLUMN lease_token bigint NOT NULL DEFAULT 0;
ALTER TABLE {table} ADD COLUMN lease_until datetime(3) NULL;
ALTER TABLE {table} ADD COLUMN step_crash_count int NOT NULL DEFAULT 0;
CREATE INDEX {overdue_index} ON {table} (finished_at, errored_at, lease_until);
