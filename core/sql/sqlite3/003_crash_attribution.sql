-- Version 3: what a program's state and its crash counter cannot be inferred from.
-- step_isolated_crash_count: crashes of the current step while it ran alone in
-- an isolated worker process (only these stop a program as a crash loop;
-- step_crash_count counts every death of a process that held the step,
-- including deaths some other job caused).
-- cancelled_at: set by `program-executor cancel`, so a job failing with the
-- message "cancelled" is not taken for a cancel. Rows cancelled before this
-- version are recognised once, here, by the message the cancel wrote.
ALTER TABLE {table} ADD COLUMN step_isolated_crash_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {table} ADD COLUMN cancelled_at TIMESTAMP NULL;
UPDATE {table} SET cancelled_at = errored_at WHERE cancelled_at IS NULL AND errored_at IS NOT NULL AND error_message = 'cancelled';
