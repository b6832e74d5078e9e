-- Version 2: the step protocol's columns (claims with fencing tokens, the
-- crash counter, the time by which a program is next expected to move) and
-- the index the recovery sweeper reads. program-executor-js ignores them.
ALTER TABLE {table} ADD COLUMN lease_owner VARCHAR(255) NULL;
ALTER TABLE {table} ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
ALTER TABLE {table} ADD COLUMN lease_until TIMESTAMP NULL;
ALTER TABLE {table} ADD COLUMN step_crash_count INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS {overdue_index} ON {table} (lease_until) WHERE finished_at IS NULL AND errored_at IS NULL;
