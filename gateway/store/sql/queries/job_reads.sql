-- name: list_jobs (postgresql)
-- Jobs of a workspace, newest first, with Windmill's list filters (NULL = no filter).
SELECT j.id, j.workspace_id, j.created_at, j.created_by, j.permissioned_as,
       j.permissioned_as_email, j.kind, j.runnable_id, j.runnable_path, j.parent_job, j.root_job,
       j.script_lang, j.flow_step_id, j.trigger, j.trigger_kind, j.tag, j.priority, j.args,
       j.labels, j.raw_flow, j.preprocessed,
       q.running, q.scheduled_for, q.started_at AS queue_started_at,
       q.canceled_by AS queue_canceled_by, q.canceled_reason AS queue_canceled_reason,
       q.worker AS queue_worker,
       c.status, c.result, c.duration_ms, c.started_at AS completed_started_at, c.completed_at,
       c.memory_peak, c.worker, c.retries, c.canceled_by, c.canceled_reason,
       c.flow_status, s.flow_status AS queue_flow_status
FROM v2_job j
LEFT JOIN v2_job_queue q ON q.id = j.id
LEFT JOIN v2_job_completed c ON c.id = j.id
LEFT JOIN v2_job_status s ON s.id = j.id
WHERE j.workspace_id = :workspace_id
  AND (CAST(:trigger_kind AS text) IS NULL OR j.trigger_kind::text = CAST(:trigger_kind AS text))
  AND (CAST(:trigger AS text) IS NULL OR j.trigger = CAST(:trigger AS text))
  AND (CAST(:script_path_exact AS text) IS NULL
       OR j.runnable_path = CAST(:script_path_exact AS text))
  AND (CAST(:script_path_start AS text) IS NULL
       OR j.runnable_path LIKE CAST(:script_path_start AS text) || '%')
  AND (CAST(:job_kinds AS text[]) IS NULL OR j.kind::text = ANY(CAST(:job_kinds AS text[])))
  AND (CAST(:state AS text) IS NULL
       OR (CAST(:state AS text) = 'completed' AND c.id IS NOT NULL)
       OR (CAST(:state AS text) = 'queued' AND q.id IS NOT NULL AND NOT q.running)
       OR (CAST(:state AS text) = 'running' AND q.running)
       OR (CAST(:state AS text) = 'in_queue' AND q.id IS NOT NULL))
  AND (CAST(:success AS boolean) IS NULL
       OR (c.id IS NOT NULL AND (c.status = 'success') = CAST(:success AS boolean)))
  AND (CAST(:parent_job AS uuid) IS NULL OR j.parent_job = CAST(:parent_job AS uuid))
  AND (CAST(:include_steps AS boolean) OR j.parent_job IS NULL)
ORDER BY j.created_at DESC, j.id
LIMIT :limit OFFSET :offset;

-- name: list_jobs (sqlite)
-- Jobs of a workspace, newest first, with Windmill's list filters (NULL = no filter).
SELECT j.id, j.workspace_id, j.created_at, j.created_by, j.permissioned_as,
       j.permissioned_as_email, j.kind, j.runnable_id, j.runnable_path, j.parent_job, j.root_job,
       j.script_lang, j.flow_step_id, j.trigger, j.trigger_kind, j.tag, j.priority, j.args,
       j.labels, j.raw_flow, j.preprocessed,
       q.running, q.scheduled_for, q.started_at AS queue_started_at,
       q.canceled_by AS queue_canceled_by, q.canceled_reason AS queue_canceled_reason,
       q.worker AS queue_worker,
       c.status, c.result, c.duration_ms, c.started_at AS completed_started_at, c.completed_at,
       c.memory_peak, c.worker, c.retries, c.canceled_by, c.canceled_reason,
       c.flow_status, s.flow_status AS queue_flow_status
FROM v2_job j
LEFT JOIN v2_job_queue q ON q.id = j.id
LEFT JOIN v2_job_completed c ON c.id = j.id
LEFT JOIN v2_job_status s ON s.id = j.id
WHERE j.workspace_id = :workspace_id
  AND (:trigger_kind IS NULL OR j.trigger_kind = :trigger_kind)
  AND (:trigger IS NULL OR j.trigger = :trigger)
  AND (:script_path_exact IS NULL OR j.runnable_path = :script_path_exact)
  AND (:script_path_start IS NULL OR j.runnable_path LIKE :script_path_start || '%')
  AND (:job_kinds IS NULL OR j.kind IN (SELECT value FROM json_each(:job_kinds)))
  AND (:state IS NULL
       OR (:state = 'completed' AND c.id IS NOT NULL)
       OR (:state = 'queued' AND q.id IS NOT NULL AND NOT q.running)
       OR (:state = 'running' AND q.running)
       OR (:state = 'in_queue' AND q.id IS NOT NULL))
  AND (:success IS NULL OR (c.id IS NOT NULL AND (c.status = 'success') = :success))
  AND (:parent_job IS NULL OR j.parent_job = :parent_job)
  AND (:include_steps OR j.parent_job IS NULL)
ORDER BY j.created_at DESC, j.id
LIMIT :limit OFFSET :offset;

-- name: get_job
-- One job of a workspace, queued or completed, in the shape of `list_jobs`.
SELECT j.id, j.workspace_id, j.created_at, j.created_by, j.permissioned_as,
       j.permissioned_as_email, j.kind, j.runnable_id, j.runnable_path, j.parent_job, j.root_job,
       j.script_lang, j.flow_step_id, j.trigger, j.trigger_kind, j.tag, j.priority, j.args,
       j.labels, j.raw_flow, j.preprocessed,
       q.running, q.scheduled_for, q.started_at AS queue_started_at,
       q.canceled_by AS queue_canceled_by, q.canceled_reason AS queue_canceled_reason,
       q.worker AS queue_worker,
       c.status, c.result, c.duration_ms, c.started_at AS completed_started_at, c.completed_at,
       c.memory_peak, c.worker, c.retries, c.canceled_by, c.canceled_reason,
       c.flow_status, s.flow_status AS queue_flow_status
FROM v2_job j
LEFT JOIN v2_job_queue q ON q.id = j.id
LEFT JOIN v2_job_completed c ON c.id = j.id
LEFT JOIN v2_job_status s ON s.id = j.id
WHERE j.workspace_id = :workspace_id AND j.id = :id;

-- name: get_job_logs
-- The logs of a job.
SELECT logs FROM job_logs WHERE job_id = :id AND workspace_id = :workspace_id;

-- name: get_completed_result
-- The outcome of a completed job.
SELECT status, result FROM v2_job_completed WHERE id = :id AND workspace_id = :workspace_id;
