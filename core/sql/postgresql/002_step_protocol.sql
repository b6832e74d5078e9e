-- Version 2: the step protocol's columns (claims with fencing tokens, the
-- crash counter, the time by which a program is next expected to move) and
-- the index the recovery sweeper reads. program-executor-js ignores them.
-- Adding a column with a constant default rewrites nothing (PostgreSQL 11+).
ALTER TABLE {table} ADD COLUMN lease_owner varchar(255) NULL;
ALTER TABLE {table} ADD COLUMN lease_token bigint NOT NULL DEFAULT 0;
ALTER TABLE {table} ADD COLUMN lease_until timestamptz NULL;
ALTER TABLE {table} ADD COLUMN step_crash_count integer NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS {overdue_index} ON {table} (lease_until) WHERE finished_at IS NULL AND errored_at IS NULL;
