-- Events that could not become jobs: kept with their raw bytes and the reason, until redriven.

-- name: find_waiting_quarantined_event
-- The quarantined copy of a source message that is still waiting for a redrive, if any.
SELECT id FROM event_quarantine
WHERE workspace_id = :workspace_id AND trigger_kind = :trigger_kind
  AND trigger_path = :trigger_path AND dedup_key = :dedup_key AND redriven_at IS NULL
LIMIT 1;

-- name: insert_quarantined_event
-- Keep an event that could not become a job.
INSERT INTO event_quarantine (
    workspace_id, trigger_kind, trigger_path, dedup_key, raw, info, error
) VALUES (
    :workspace_id, :trigger_kind, :trigger_path, :dedup_key, :raw, :info, :error
)
RETURNING id;

-- name: list_quarantined_events
-- A workspace's quarantined events, newest first, optionally of one trigger kind and path.
SELECT id, workspace_id, trigger_kind, trigger_path, dedup_key, raw, info, error, created_at,
       redriven_at, redriven_job_id
FROM event_quarantine
WHERE workspace_id = :workspace_id
  AND (CAST(:trigger_kind AS text) IS NULL
       OR CAST(trigger_kind AS text) = CAST(:trigger_kind AS text))
  AND (CAST(:trigger_path AS text) IS NULL OR trigger_path = CAST(:trigger_path AS text))
ORDER BY id DESC
LIMIT :limit OFFSET :offset;

-- name: get_quarantined_event
-- One quarantined event.
SELECT id, workspace_id, trigger_kind, trigger_path, dedup_key, raw, info, error, created_at,
       redriven_at, redriven_job_id
FROM event_quarantine
WHERE workspace_id = :workspace_id AND id = :id;

-- name: lock_quarantined_event
-- One quarantined event, about to be redriven (the single SQLite writer needs no row lock).
SELECT id, workspace_id, trigger_kind, trigger_path, dedup_key, raw, info, error, created_at,
       redriven_at, redriven_job_id
FROM event_quarantine
WHERE workspace_id = :workspace_id AND id = :id;

-- name: lock_quarantined_event (postgresql)
-- One quarantined event, locked so that two redrives of it cannot both make a job.
SELECT id, workspace_id, trigger_kind, trigger_path, dedup_key, raw, info, error, created_at,
       redriven_at, redriven_job_id
FROM event_quarantine
WHERE workspace_id = :workspace_id AND id = :id
FOR UPDATE;

-- name: mark_quarantined_event_redriven
-- Record the job a quarantined event became when it was redriven.
UPDATE event_quarantine SET redriven_at = now(), redriven_job_id = :job_id
WHERE workspace_id = :workspace_id AND id = :id;

-- name: set_quarantined_event_error
-- Record why the last redrive of a quarantined event failed.
UPDATE event_quarantine SET error = :error
WHERE workspace_id = :workspace_id AND id = :id;
