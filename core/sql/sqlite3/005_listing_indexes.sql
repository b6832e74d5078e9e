-- Version 5: an index for listing programs newest first by state
-- (`program-executor list`, GET /api/v1/programs), so a page of 50 costs
-- about the same on a large table as on an empty one.
-- The unfinished programs (running, errored, cancelled: a few percent of a
-- table in use) by id; the state filters are written `finished_at IS NULL AND
-- ...` so this partial index serves them. SQLite has no index for the job
-- filter (it reads the job lists until a page is full).
CREATE INDEX IF NOT EXISTS {unfinished_index} ON {table} (id) WHERE finished_at IS NULL;
