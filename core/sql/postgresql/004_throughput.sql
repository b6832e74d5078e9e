-- Version 4: the steps each daemon executed per minute, for the web API's
-- stepsPerMinute (GET /api/v1/stats). One row per daemon (owner: host:pid,
-- the prefix of its claims' lease_owner) per minute (its start); each daemon
-- adds its count every few seconds and deletes rows older than 48 hours.
-- A table of its own: program-executor-js never sees it.
CREATE TABLE IF NOT EXISTS {throughput_table} (
  minute timestamptz NOT NULL,
  owner varchar(255) NOT NULL,
  steps bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (minute, owner)
);
