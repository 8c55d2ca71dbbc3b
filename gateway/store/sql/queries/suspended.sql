-- name: list_parked_jobs (postgresql)
-- Jobs a suspended trigger parked, optionally only some of them.
SELECT j.id, j.workspace_id, j.kind, j.created_at, j.args, j.raw_flow, j.runnable_path, j.runnable_id
FROM v2_job j JOIN v2_job_queue q ON q.id = j.id
WHERE j.workspace_id = :workspace_id AND j.trigger_kind::text = :trigger_kind
  AND j.trigger = :trigger
  AND j.kind IN ('unassigned_script', 'unassigned_flow', 'unassigned_singlestepflow')
  AND (CAST(:job_ids AS uuid[]) IS NULL OR j.id = ANY(CAST(:job_ids AS uuid[])))
ORDER BY j.created_at;

-- name: list_parked_jobs (sqlite)
-- Jobs a suspended trigger parked, optionally only some of them.
SELECT j.id, j.workspace_id, j.kind, j.created_at, j.args, j.raw_flow, j.runnable_path, j.runnable_id
FROM v2_job j JOIN v2_job_queue q ON q.id = j.id
WHERE j.workspace_id = :workspace_id AND j.trigger_kind = :trigger_kind
  AND j.trigger = :trigger
  AND j.kind IN ('unassigned_script', 'unassigned_flow', 'unassigned_singlestepflow')
  AND (:job_ids IS NULL OR j.id IN (SELECT value FROM json_each(:job_ids)))
ORDER BY j.created_at;

-- name: set_job_kind
-- Give a parked job back its runnable kind.
UPDATE v2_job SET kind = :kind WHERE id = :id;

-- name: release_parked_job
-- Make a parked job due now (a flow wrapper starts running at once).
UPDATE v2_job_queue
SET scheduled_for = now(), running = :running, started_at = CASE WHEN :running THEN now() END
WHERE id = :id;

-- name: delete_job (postgresql)
-- Remove a job that never ran, with its queue row (not tied to it by a foreign key) and the
-- rows that hang on either.
WITH queued AS (DELETE FROM v2_job_queue WHERE id = :id)
DELETE FROM v2_job WHERE id = :id;

-- name: delete_job (sqlite)
-- Remove a job that never ran, with its queue and status rows.
DELETE FROM v2_job WHERE id = :id;

-- name: move_dedup_keys
-- Point the events of a removed job at the job that replaced it.
UPDATE event_dedup SET job_id = :new_job_id WHERE job_id = :old_job_id;
