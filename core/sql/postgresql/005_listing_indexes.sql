-- Version 5: indexes for listing programs newest first by state or by job
-- (`program-executor list`, GET /api/v1/programs), so a page of 50 costs
-- about the same on a table of millions as on an empty one.
-- The unfinished programs (running, errored, cancelled: a few percent of a
-- table in use) by id; the state filters are written `finished_at IS NULL AND
-- ...` so this partial index serves them. Each step of a running program adds
-- an entry, as the overdue index's does already.
CREATE INDEX IF NOT EXISTS {unfinished_index} ON {table} (id) WHERE finished_at IS NULL;
-- The job names in `jobs`, for `jobs @> '["name"]'`. Through CAST so that a
-- json or text column adopted from another deployment is served alike.
-- On a large table in use, create both beforehand without blocking writes
-- (CREATE INDEX CONCURRENTLY, same names; see docs/databases.md).
CREATE INDEX IF NOT EXISTS {jobs_index} ON {table} USING gin ((CAST(jobs AS jsonb)) jsonb_path_ops);
