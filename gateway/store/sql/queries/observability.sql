-- Trigger health, queue depth and the alert rules' incidents. The queries over every trigger
-- table (`list_trigger_states`, `list_triggers_held_by`) are generated in `trigger_tables.py`.

-- name: trigger_job_activity
-- Per trigger of a workspace: its newest event's job, recent events and recent final failures.
SELECT CAST(j.trigger_kind AS text) AS kind, j.trigger AS path,
       max(j.created_at) AS last_event_at,
       SUM(CASE WHEN j.created_at > gw_now_plus(-:event_window_s) THEN 1 ELSE 0 END)
           AS recent_events,
       SUM(CASE WHEN c.status = 'failure' AND c.completed_at > gw_now_plus(-:failure_window_s)
                THEN 1 ELSE 0 END) AS recent_failures
FROM v2_job j
LEFT JOIN v2_job_completed c ON c.id = j.id
WHERE j.workspace_id = :workspace_id AND j.trigger IS NOT NULL AND j.parent_job IS NULL
GROUP BY j.trigger_kind, j.trigger;

-- name: trigger_quarantine_counts
-- Per trigger of a workspace: its quarantined events waiting for a redrive, and the recent ones.
SELECT CAST(trigger_kind AS text) AS kind, trigger_path AS path, count(*) AS waiting,
       SUM(CASE WHEN created_at > gw_now_plus(-:recent_window_s) THEN 1 ELSE 0 END) AS recent
FROM event_quarantine
WHERE workspace_id = :workspace_id AND redriven_at IS NULL
GROUP BY trigger_kind, trigger_path;

-- name: count_queue_jobs
-- Jobs in the queue: due and waiting for an executor, scheduled for later, and running.
SELECT SUM(CASE WHEN NOT running AND scheduled_for <= now() THEN 1 ELSE 0 END) AS due,
       SUM(CASE WHEN NOT running AND scheduled_for > now() THEN 1 ELSE 0 END) AS scheduled,
       SUM(CASE WHEN running THEN 1 ELSE 0 END) AS running
FROM v2_job_queue;

-- name: lock_alert_rules
-- Serialise the alert rule passes of all instances (SQLite's single writer does it already).
SELECT 1;

-- name: lock_alert_rules (postgresql)
-- Serialise the alert rule passes of all instances until this transaction ends.
SELECT pg_advisory_xact_lock(hashtext('gateway_alert_rules'));

-- name: list_open_rule_alerts
-- The incidents the alert rules opened and nobody closed yet, every workspace.
SELECT id, alert_type, workspace_id, resource, message FROM alerts
WHERE alert_type IN (
        'trigger_in_error', 'trigger_unheld', 'quarantine_growing', 'source_lag', 'job_failures'
    )
  AND NOT acknowledged;

-- name: open_rule_alert
-- Open an incident unless one of the same rule is open for the resource; the id when opened.
INSERT INTO alerts (alert_type, message, workspace_id, resource, acknowledged)
SELECT CAST(:alert_type AS text), CAST(:message AS text), CAST(:workspace_id AS text),
       CAST(:resource AS text), false
WHERE NOT EXISTS (
    SELECT 1 FROM alerts
    WHERE alert_type = CAST(:alert_type AS text) AND workspace_id = CAST(:workspace_id AS text)
      AND resource = CAST(:resource AS text) AND NOT acknowledged
)
RETURNING id;

-- name: close_rule_alert
-- Close an incident whose condition cleared; touches no row when it was closed already.
UPDATE alerts SET acknowledged = true WHERE id = :id AND NOT acknowledged;

-- name: list_job_failure_signals
-- Per script: the unresolved `job_failed` alerts the queue wrote, the newest of them, and
-- whether a later top-level job of the script succeeded.
SELECT g.workspace_id, g.resource, g.failures, g.last_id, a.message, a.created_at AS last_failed_at,
       CASE WHEN EXISTS (
           SELECT 1 FROM v2_job j JOIN v2_job_completed c ON c.id = j.id
           WHERE j.workspace_id = g.workspace_id AND j.runnable_path = g.resource
             AND j.parent_job IS NULL AND c.status = 'success' AND c.completed_at > a.created_at
       ) THEN 1 ELSE 0 END AS recovered
FROM (
    SELECT workspace_id, resource, count(*) AS failures, max(id) AS last_id
    FROM alerts
    WHERE alert_type = 'job_failed' AND NOT acknowledged
      AND workspace_id IS NOT NULL AND resource IS NOT NULL
    GROUP BY workspace_id, resource
) AS g
JOIN alerts a ON a.id = g.last_id;

-- name: resolve_job_failed_alerts
-- Close a script's `job_failed` alerts up to the newest one a recovery covers.
UPDATE alerts SET acknowledged = true
WHERE alert_type = 'job_failed' AND workspace_id = :workspace_id AND resource = :resource
  AND id <= :last_id AND NOT acknowledged;

-- name: list_workspace_alerts
-- A workspace's alerts, newest first: only the open ones unless closed ones are asked for too.
SELECT id, alert_type, message, created_at, acknowledged, acknowledged_workspace, resource
FROM alerts
WHERE workspace_id = :workspace_id AND (CAST(:include_closed AS boolean) OR NOT acknowledged)
ORDER BY id DESC
LIMIT :limit;

-- name: acknowledge_alert
-- A person closes an open alert of a workspace; the id when it was open.
UPDATE alerts SET acknowledged = true, acknowledged_workspace = true
WHERE workspace_id = :workspace_id AND id = :id AND NOT acknowledged
RETURNING id;
