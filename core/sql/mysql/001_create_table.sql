-- Version 1: the bookkeeping table with program-executor-js's columns (as
-- knex creates them on MySQL), except that the run_id index is unique and the
-- timestamps are DATETIME(3) holding UTC.
-- Runs only when the table does not exist; an existing table is adopted as version 1.
-- utf8mb4_bin: run ids compare byte for byte, as on PostgreSQL and SQLite.
CREATE TABLE IF NOT EXISTS {table} (
  id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  run_id varchar(255) NOT NULL,
  jobs json NOT NULL,
  step int NULL,
  finished_at datetime(3) NULL,
  errored_at datetime(3) NULL,
  error_message varchar(255) NULL,
  step_retry_count int NULL DEFAULT 0,
  job_data json NULL DEFAULT ('{}'),
  program_data json NULL DEFAULT ('{}'),
  created_at datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY {run_id_index} (run_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
