-- name: lock_flow_job (postgresql)
-- A running flow job with its definition and progress, locked until the transaction ends.
SELECT j.id, j.workspace_id, j.kind, j.raw_flow, j.args, j.runnable_path, j.runnable_id,
       j.trigger, j.trigger_kind, j.created_by, j.permissioned_as, j.permissioned_as_email,
       j.tag, j.priority, j.script_lang, j.timeout, j.preprocessed, j.parent_job, j.root_job,
       q.started_at, s.flow_status
FROM v2_job j
JOIN v2_job_queue q ON q.id = j.id
JOIN v2_job_status s ON s.id = j.id
WHERE j.id = :id
FOR UPDATE OF s;

-- name: lock_flow_job (sqlite)
-- A running flow job with its definition and progress (the single writer needs no row lock).
SELECT j.id, j.workspace_id, j.kind, j.raw_flow, j.args, j.runnable_path, j.runnable_id,
       j.trigger, j.trigger_kind, j.created_by, j.permissioned_as, j.permissioned_as_email,
       j.tag, j.priority, j.script_lang, j.timeout, j.preprocessed, j.parent_job, j.root_job,
       q.started_at, s.flow_status
FROM v2_job j
JOIN v2_job_queue q ON q.id = j.id
JOIN v2_job_status s ON s.id = j.id
WHERE j.id = :id;

-- name: lock_queued_children (postgresql)
-- The queued or running children of a flow that no other transaction is completing now.
SELECT q.id FROM v2_job_queue q JOIN v2_job j ON j.id = q.id
WHERE j.parent_job = :parent_job
FOR UPDATE OF q SKIP LOCKED;

-- name: lock_queued_children (sqlite)
-- The queued or running children of a flow.
SELECT q.id FROM v2_job_queue q JOIN v2_job j ON j.id = q.id
WHERE j.parent_job = :parent_job;

-- name: get_completed_results (postgresql)
-- The results of completed jobs.
SELECT id, result FROM v2_job_completed WHERE id = ANY(CAST(:ids AS uuid[]));

-- name: get_completed_results (sqlite)
-- The results of completed jobs.
SELECT id, result FROM v2_job_completed WHERE id IN (SELECT value FROM json_each(:ids));

-- name: set_flow_input
-- Replace a flow job's arguments with its preprocessor's result.
UPDATE v2_job SET args = :args, preprocessed = true WHERE id = :id;
