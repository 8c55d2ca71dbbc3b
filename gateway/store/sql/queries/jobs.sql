-- name: insert_jobs (postgresql)
-- The immutable part of new jobs, from a JSON array of job records.
INSERT INTO v2_job (
    id, created_at, raw_code, raw_flow, tag, workspace_id, created_by, permissioned_as,
    permissioned_as_email, kind, runnable_id, runnable_path, parent_job, root_job, script_lang,
    flow_step, flow_step_id, trigger, trigger_kind, timeout, priority, preprocessed, args, labels
)
SELECT r.id, now(), r.raw_code, r.raw_flow, r.tag, r.workspace_id, r.created_by,
       r.permissioned_as, r.permissioned_as_email, CAST(r.kind AS job_kind), r.runnable_id,
       r.runnable_path, r.parent_job, r.root_job, CAST(r.script_lang AS script_lang),
       r.flow_step, r.flow_step_id, r.trigger, CAST(r.trigger_kind AS job_trigger_kind),
       r.timeout, r.priority, r.preprocessed, r.args, r.labels
FROM jsonb_to_recordset(CAST(:jobs AS jsonb)) AS r(
    id uuid, raw_code text, raw_flow jsonb, tag text, workspace_id text, created_by text,
    permissioned_as text, permissioned_as_email text, kind text, runnable_id bigint,
    runnable_path text, parent_job uuid, root_job uuid, script_lang text, flow_step integer,
    flow_step_id text, trigger text, trigger_kind text, timeout integer, priority smallint,
    preprocessed boolean, args jsonb, labels text[]
);

-- name: insert_jobs (sqlite)
-- The immutable part of new jobs, from a JSON array of job records.
INSERT INTO v2_job (
    id, created_at, raw_code, raw_flow, tag, workspace_id, created_by, permissioned_as,
    permissioned_as_email, kind, runnable_id, runnable_path, parent_job, root_job, script_lang,
    flow_step, flow_step_id, trigger, trigger_kind, timeout, priority, preprocessed, args, labels
)
SELECT json_extract(value, '$.id'), now(), json_extract(value, '$.raw_code'),
       json_extract(value, '$.raw_flow'), json_extract(value, '$.tag'),
       json_extract(value, '$.workspace_id'), json_extract(value, '$.created_by'),
       json_extract(value, '$.permissioned_as'), json_extract(value, '$.permissioned_as_email'),
       json_extract(value, '$.kind'), json_extract(value, '$.runnable_id'),
       json_extract(value, '$.runnable_path'), json_extract(value, '$.parent_job'),
       json_extract(value, '$.root_job'), json_extract(value, '$.script_lang'),
       json_extract(value, '$.flow_step'), json_extract(value, '$.flow_step_id'),
       json_extract(value, '$.trigger'), json_extract(value, '$.trigger_kind'),
       json_extract(value, '$.timeout'), json_extract(value, '$.priority'),
       json_extract(value, '$.preprocessed'), json_extract(value, '$.args'),
       json_extract(value, '$.labels')
FROM json_each(:jobs);

-- name: insert_queue_rows (postgresql)
-- Put new jobs in the queue, each due `delay_s` seconds from now (running for flow wrappers).
INSERT INTO v2_job_queue (
    id, workspace_id, created_at, scheduled_for, running, started_at, tag, priority
)
SELECT r.id, r.workspace_id, now(), gw_now_plus(r.delay_s), r.running,
       CASE WHEN r.running THEN now() END, r.tag, r.priority
FROM jsonb_to_recordset(CAST(:jobs AS jsonb)) AS r(
    id uuid, workspace_id text, delay_s float8, running boolean, tag text, priority smallint
);

-- name: insert_queue_rows (sqlite)
-- Put new jobs in the queue, each due `delay_s` seconds from now (running for flow wrappers).
INSERT INTO v2_job_queue (
    id, workspace_id, created_at, scheduled_for, running, started_at, tag, priority
)
SELECT json_extract(value, '$.id'), json_extract(value, '$.workspace_id'), now(),
       gw_now_plus(json_extract(value, '$.delay_s')), json_extract(value, '$.running'),
       CASE WHEN json_extract(value, '$.running') THEN now() END, json_extract(value, '$.tag'),
       json_extract(value, '$.priority')
FROM json_each(:jobs);

-- name: insert_job_status
-- The progress record of a flow job.
INSERT INTO v2_job_status (id, flow_status) VALUES (:id, :flow_status);

-- name: claim_dedup_keys (postgresql)
-- Remember the jobs events became; returns the keys that were new (the others were seen).
INSERT INTO event_dedup (workspace_id, dedup_key, job_id)
SELECT r.workspace_id, r.dedup_key, r.job_id
FROM jsonb_to_recordset(CAST(:keys AS jsonb)) AS r(workspace_id text, dedup_key text, job_id uuid)
ON CONFLICT (workspace_id, dedup_key) DO NOTHING
RETURNING workspace_id, dedup_key;

-- name: claim_dedup_keys (sqlite)
-- Remember the jobs events became; returns the keys that were new (the others were seen).
INSERT INTO event_dedup (workspace_id, dedup_key, job_id)
SELECT json_extract(value, '$.workspace_id'), json_extract(value, '$.dedup_key'),
       json_extract(value, '$.job_id')
FROM json_each(:keys) WHERE true
ON CONFLICT (workspace_id, dedup_key) DO NOTHING
RETURNING workspace_id, dedup_key;

-- name: get_dedup_jobs (postgresql)
-- The jobs that events seen before became.
SELECT e.workspace_id, e.dedup_key, e.job_id
FROM event_dedup e
JOIN jsonb_to_recordset(CAST(:keys AS jsonb)) AS r(workspace_id text, dedup_key text)
  ON e.workspace_id = r.workspace_id AND e.dedup_key = r.dedup_key;

-- name: get_dedup_jobs (sqlite)
-- The jobs that events seen before became.
SELECT e.workspace_id, e.dedup_key, e.job_id
FROM event_dedup e
JOIN json_each(:keys) r
  ON e.workspace_id = json_extract(r.value, '$.workspace_id')
 AND e.dedup_key = json_extract(r.value, '$.dedup_key');

-- name: get_dedup_job
-- The job an event seen before became.
SELECT job_id FROM event_dedup WHERE workspace_id = :workspace_id AND dedup_key = :dedup_key;

-- name: prune_dedup_keys
-- Forget dedup keys older than the retention window.
DELETE FROM event_dedup WHERE created_at < gw_now_plus(-:retention_s);

-- name: claim_jobs (postgresql)
-- Claim due runnable jobs, highest priority first, skipping rows other workers hold.
UPDATE v2_job_queue q
SET running = true, started_at = now(), worker = :worker
FROM (
    SELECT q2.id FROM v2_job_queue q2 JOIN v2_job j ON j.id = q2.id
    WHERE NOT q2.running AND q2.scheduled_for <= now() AND q2.canceled_by IS NULL
      AND j.kind IN ('script', 'preview')
    ORDER BY q2.priority DESC NULLS LAST, q2.scheduled_for, q2.created_at
    LIMIT :limit
    FOR UPDATE OF q2 SKIP LOCKED
) picked
WHERE q.id = picked.id
RETURNING q.id;

-- name: claim_jobs (sqlite)
-- Claim due runnable jobs, highest priority first (the single writer needs no row locks).
UPDATE v2_job_queue
SET running = 1, started_at = now(), worker = :worker
WHERE id IN (
    SELECT q.id FROM v2_job_queue q JOIN v2_job j ON j.id = q.id
    WHERE NOT q.running AND q.scheduled_for <= now() AND q.canceled_by IS NULL
      AND j.kind IN ('script', 'preview')
    ORDER BY q.priority DESC, q.scheduled_for, q.created_at
    LIMIT :limit
)
RETURNING id;

-- name: insert_runtimes (postgresql)
-- Start the heartbeat records of claimed jobs.
INSERT INTO v2_job_runtime (id, ping) SELECT unnest(CAST(:ids AS uuid[])), now()
ON CONFLICT (id) DO UPDATE SET ping = now();

-- name: insert_runtimes (sqlite)
-- Start the heartbeat records of claimed jobs.
INSERT INTO v2_job_runtime (id, ping) SELECT value, now() FROM json_each(:ids) WHERE true
ON CONFLICT (id) DO UPDATE SET ping = now();

-- name: get_claimed_jobs (postgresql)
-- Everything the executor needs to run claimed jobs.
SELECT j.id, j.workspace_id, j.kind, j.runnable_id, j.runnable_path, j.script_lang, j.raw_code,
       j.args, j.tag, j.timeout, j.preprocessed, j.parent_job, j.root_job, j.flow_step_id,
       j.trigger, j.trigger_kind, j.created_by, j.permissioned_as, j.permissioned_as_email,
       q.started_at, q.scheduled_for
FROM v2_job j JOIN v2_job_queue q ON q.id = j.id
WHERE j.id = ANY(CAST(:ids AS uuid[]));

-- name: get_claimed_jobs (sqlite)
-- Everything the executor needs to run claimed jobs.
SELECT j.id, j.workspace_id, j.kind, j.runnable_id, j.runnable_path, j.script_lang, j.raw_code,
       j.args, j.tag, j.timeout, j.preprocessed, j.parent_job, j.root_job, j.flow_step_id,
       j.trigger, j.trigger_kind, j.created_by, j.permissioned_as, j.permissioned_as_email,
       q.started_at, q.scheduled_for
FROM v2_job j JOIN v2_job_queue q ON q.id = j.id
WHERE j.id IN (SELECT value FROM json_each(:ids));

-- name: ping_running_jobs (postgresql)
-- Heartbeat of the jobs this worker runs; returns the ones somebody asked to cancel.
WITH pinged AS (
    UPDATE v2_job_runtime SET ping = now() WHERE id = ANY(:ids) RETURNING id
)
SELECT q.id, q.canceled_by, q.canceled_reason
FROM v2_job_queue q JOIN pinged p ON p.id = q.id
WHERE q.canceled_by IS NOT NULL;

-- name: ping_running_jobs (sqlite)
-- Heartbeat of the jobs this worker runs; returns the ones somebody asked to cancel.
UPDATE v2_job_runtime SET ping = now()
WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING id, (SELECT canceled_by FROM v2_job_queue q WHERE q.id = v2_job_runtime.id)
    AS canceled_by,
    (SELECT canceled_reason FROM v2_job_queue q WHERE q.id = v2_job_runtime.id)
    AS canceled_reason;

-- name: requeue_zombie_jobs (postgresql)
-- Put back in the queue the jobs whose worker stopped pinging.
UPDATE v2_job_queue q SET running = false, started_at = NULL, worker = NULL
FROM v2_job_runtime r
WHERE r.id = q.id AND q.running AND r.ping < gw_now_plus(-:timeout_s)
RETURNING q.id;

-- name: requeue_zombie_jobs (sqlite)
-- Put back in the queue the jobs whose worker stopped pinging.
UPDATE v2_job_queue SET running = 0, started_at = NULL, worker = NULL
WHERE running AND id IN (
    SELECT id FROM v2_job_runtime WHERE ping < gw_now_plus(-:timeout_s)
)
RETURNING id;

-- name: delete_runtime
-- Drop the heartbeat record of a job that is no longer running.
DELETE FROM v2_job_runtime WHERE id = :id;

-- name: count_zombie_requeue
-- Count one more re-queue of a job whose worker died; returns the new count.
INSERT INTO zombie_job_counter (job_id, counter) VALUES (:job_id, 1)
ON CONFLICT (job_id) DO UPDATE SET counter = zombie_job_counter.counter + 1
RETURNING counter;

-- name: requeue_job
-- Give a claimed job back to the queue (graceful shutdown without finishing it).
UPDATE v2_job_queue SET running = false, started_at = NULL, worker = NULL
WHERE id = :id AND running;

-- name: take_queue_row
-- Remove a job from the queue as it completes; nothing returned means it completed already.
DELETE FROM v2_job_queue WHERE id = :id
RETURNING id, workspace_id, started_at, canceled_by, canceled_reason,
    (SELECT j.parent_job FROM v2_job j WHERE j.id = v2_job_queue.id) AS parent_job,
    (SELECT j.flow_step_id FROM v2_job j WHERE j.id = v2_job_queue.id) AS flow_step_id;

-- name: insert_completed
-- The final record of a job.
INSERT INTO v2_job_completed (
    id, workspace_id, duration_ms, result, canceled_by, canceled_reason, flow_status, started_at,
    memory_peak, status, completed_at, worker, retries
) VALUES (
    :id, :workspace_id, :duration_ms, :result, :canceled_by, :canceled_reason, :flow_status,
    :started_at, :memory_peak, :status, now(), :worker, :retries
);

-- name: get_job_status
-- The flow status of a running flow job.
SELECT flow_status FROM v2_job_status WHERE id = :id;

-- name: set_job_status
-- Replace the flow status of a running flow job.
UPDATE v2_job_status SET flow_status = :flow_status WHERE id = :id;

-- name: get_flow_job
-- A flow wrapper job with its definition and start time.
SELECT j.id, j.workspace_id, j.kind, j.raw_flow, j.args, j.runnable_path, j.runnable_id,
       j.trigger, j.trigger_kind, j.created_by, j.permissioned_as, j.permissioned_as_email,
       j.tag, j.priority, j.script_lang, j.timeout, j.preprocessed, j.parent_job,
       q.started_at, s.flow_status
FROM v2_job j
JOIN v2_job_queue q ON q.id = j.id
JOIN v2_job_status s ON s.id = j.id
WHERE j.id = :id;

-- name: request_cancel
-- Ask for a queued or running job to be canceled; returns whether it was running.
UPDATE v2_job_queue SET canceled_by = :canceled_by, canceled_reason = :reason
WHERE id = :id AND workspace_id = :workspace_id
RETURNING id, running;

-- name: list_child_jobs_in_queue
-- The queued or running children of a flow job.
SELECT q.id, q.running FROM v2_job_queue q JOIN v2_job j ON j.id = q.id
WHERE j.parent_job = :parent_job;

-- name: append_job_logs
-- Append a chunk of output to a job's logs.
INSERT INTO job_logs (job_id, workspace_id, logs) VALUES (:job_id, :workspace_id, :logs)
ON CONFLICT (job_id) DO UPDATE SET logs = job_logs.logs || excluded.logs;

-- name: insert_alert
-- Record an alert an operator should see.
INSERT INTO alerts (alert_type, message, workspace_id, resource, acknowledged)
VALUES (:alert_type, :message, :workspace_id, :resource, false);

-- name: insert_job_tokens (postgresql)
-- Tokens scoped to jobs, for the wmill client inside them (a JSON array of hashed token records).
INSERT INTO token (token, token_prefix, label, expiration, workspace_id, owner, email, job)
SELECT t.token, t.token_prefix, 'ephemeral-script', gw_now_plus(t.ttl_s), t.workspace_id, t.owner,
       t.email, t.job
FROM jsonb_to_recordset(CAST(:tokens AS jsonb)) AS t(
    token text, token_prefix text, ttl_s float8, workspace_id text, owner text, email text, job uuid
);

-- name: insert_job_tokens (sqlite)
-- Tokens scoped to jobs, for the wmill client inside them (a JSON array of hashed token records).
INSERT INTO token (token, token_prefix, label, expiration, workspace_id, owner, email, job)
SELECT json_extract(value, '$.token'), json_extract(value, '$.token_prefix'), 'ephemeral-script',
       gw_now_plus(json_extract(value, '$.ttl_s')), json_extract(value, '$.workspace_id'),
       json_extract(value, '$.owner'), json_extract(value, '$.email'), json_extract(value, '$.job')
FROM json_each(:tokens);

-- name: delete_job_tokens (postgresql)
-- Revoke the tokens of finished jobs.
DELETE FROM token WHERE job = ANY(CAST(:jobs AS uuid[]));

-- name: delete_job_tokens (sqlite)
-- Revoke the tokens of finished jobs.
DELETE FROM token WHERE job IN (SELECT value FROM json_each(:jobs));


-- name: get_runtime
-- The heartbeat record of a job being executed.
SELECT id, ping FROM v2_job_runtime WHERE id = :id;

-- name: list_alerts_of_workspace
-- The alerts of a workspace, newest first.
SELECT id, alert_type, message, created_at, acknowledged, workspace_id, resource
FROM alerts WHERE workspace_id = :workspace_id ORDER BY created_at DESC, id DESC;

-- name: get_zombie_count
-- How often a job was re-queued after its worker died.
SELECT counter FROM zombie_job_counter WHERE job_id = :job_id;
