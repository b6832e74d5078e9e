-- Version 5: an index for listing programs newest first by state
-- (`program-executor list`, GET /api/v1/programs), so a page of 50 costs
-- about the same on a large table as on an empty one.
-- MySQL has no partial indexes: the programs whose finished_at is NULL
-- (running, errored, cancelled) come first in it, by id. The job filter has
-- no index here (the job lists are read until a page is full).
CREATE INDEX {unfinished_index} ON {table} (finished_at, id);
