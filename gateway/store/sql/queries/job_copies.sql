-- Bulk writes of new jobs: rows in the column order written here, streamed with COPY on
-- PostgreSQL and one prepared INSERT run for every row (executemany) on SQLite.

-- name: transaction_now
-- The clock new rows are stamped with: on PostgreSQL the transaction's now(), fixed for it.
SELECT now() AS now;

-- name: copy_jobs (postgresql)
-- Stream new jobs into v2_job.
COPY v2_job (
    id, created_at, raw_code, raw_flow, tag, workspace_id, created_by, permissioned_as,
    permissioned_as_email, kind, runnable_id, runnable_path, parent_job, root_job, script_lang,
    flow_step, flow_step_id, trigger, trigger_kind, timeout, priority, preprocessed, args, labels
) FROM STDIN;

-- name: copy_jobs (sqlite)
-- Insert new jobs into v2_job, one row per parameter tuple.
INSERT INTO v2_job (
    id, created_at, raw_code, raw_flow, tag, workspace_id, created_by, permissioned_as,
    permissioned_as_email, kind, runnable_id, runnable_path, parent_job, root_job, script_lang,
    flow_step, flow_step_id, trigger, trigger_kind, timeout, priority, preprocessed, args, labels
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: copy_queue_rows (postgresql)
-- Stream new jobs' queue rows into v2_job_queue.
COPY v2_job_queue (
    id, workspace_id, created_at, scheduled_for, running, started_at, tag, priority
) FROM STDIN;

-- name: copy_queue_rows (sqlite)
-- Insert new jobs' queue rows into v2_job_queue, one row per parameter tuple.
INSERT INTO v2_job_queue (
    id, workspace_id, created_at, scheduled_for, running, started_at, tag, priority
) VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: copy_dedup_keys (postgresql)
-- Stream the dedup keys of new jobs into event_dedup (all new, or the copy fails).
COPY event_dedup (workspace_id, dedup_key, job_id) FROM STDIN;

-- name: copy_dedup_keys (sqlite)
-- Insert the dedup keys of new jobs into event_dedup, one row per parameter tuple.
INSERT INTO event_dedup (workspace_id, dedup_key, job_id) VALUES (?, ?, ?);
