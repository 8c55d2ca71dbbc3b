-- Capture mode: per-runnable capture configs (with a client liveness ping and a server lease) and
-- the sample payloads recorded for them. `path` is the runnable's path, `is_flow` says which kind.
-- Every time comparison uses the database clock.

-- ---- configs, as the UI writes them ----

-- name: upsert_capture_config
-- Write a runnable's capture config for one trigger kind; a listener holding it restarts.
INSERT INTO capture_config (workspace_id, path, is_flow, trigger_kind, trigger_config, owner, email)
VALUES (:workspace_id, :path, :is_flow, :trigger_kind, :trigger_config, :owner, :email)
ON CONFLICT (workspace_id, path, is_flow, trigger_kind) DO UPDATE
SET trigger_config = excluded.trigger_config, owner = excluded.owner, email = excluded.email,
    server_id = NULL, error = NULL;

-- name: get_capture_config
-- One capture config.
SELECT workspace_id, path, is_flow, trigger_kind, trigger_config, owner, email, server_id,
       last_client_ping, last_server_ping, error
FROM capture_config
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
  AND trigger_kind = :trigger_kind;

-- name: list_capture_configs
-- A runnable's capture configs, one per trigger kind.
SELECT workspace_id, path, is_flow, trigger_kind, trigger_config, owner, email, server_id,
       last_client_ping, last_server_ping, error
FROM capture_config
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
ORDER BY CAST(trigger_kind AS text);

-- name: record_capture_client_ping
-- The UI is still watching this capture: keep its listener running.
UPDATE capture_config SET last_client_ping = now()
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
  AND trigger_kind = :trigger_kind;

-- name: move_capture_configs
-- Follow a renamed runnable; the lease is cleared so that a listener starts on the new path.
UPDATE capture_config SET path = :new_path, server_id = NULL, last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow;

-- ---- the capture listeners' lease (the trigger lease protocol, plus a fresh client ping) ----

-- name: list_claimable_capture_configs
-- Configs of one kind that a client watches and whose lease is free or older than the window.
SELECT workspace_id, path, is_flow FROM capture_config
WHERE trigger_kind = :trigger_kind AND trigger_config IS NOT NULL
  AND last_client_ping > gw_now_plus(-:client_liveness_s)
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s));

-- name: claim_capture_lease
-- Take a watched, free or stale capture config; returns no row when another instance won it.
UPDATE capture_config SET server_id = :server_id, last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
  AND trigger_kind = :trigger_kind AND trigger_config IS NOT NULL
  AND last_client_ping > gw_now_plus(-:client_liveness_s)
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s))
RETURNING path;

-- name: renew_capture_lease
-- Renew a held capture lease and record the status; touches nothing once lost or unwatched.
UPDATE capture_config SET last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
  AND trigger_kind = :trigger_kind AND server_id = :server_id
  AND last_client_ping > gw_now_plus(-:client_liveness_s);

-- name: reset_capture_lease_for_restart
-- Make an edited (unowned) capture config claimable at once.
UPDATE capture_config SET last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
  AND trigger_kind = :trigger_kind AND server_id IS NULL;

-- name: release_capture_lease
-- Give a capture lease back on shutdown, if it is still ours.
UPDATE capture_config SET server_id = NULL, last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
  AND trigger_kind = :trigger_kind AND server_id = :server_id;

-- name: fence_capture_lease
-- Whether the capture lease is still held (the single SQLite writer needs no row lock).
SELECT server_id FROM capture_config
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
  AND trigger_kind = :trigger_kind AND server_id = :server_id;

-- name: fence_capture_lease (postgresql)
-- Whether the capture lease is still held; the share lock holds off a takeover until commit.
SELECT server_id FROM capture_config
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
  AND trigger_kind = :trigger_kind AND server_id = :server_id
FOR SHARE;

-- ---- captured payloads ----

-- name: insert_capture
-- Record one captured event in both arg shapes.
INSERT INTO capture (
    workspace_id, path, is_flow, trigger_kind, main_args, preprocessor_args, created_by
) VALUES (
    :workspace_id, :path, :is_flow, :trigger_kind, :main_args, :preprocessor_args, :created_by
)
RETURNING id;

-- name: list_captures (sqlite)
-- A page of a runnable's captures, newest first; payloads of :max_bytes or more come back NULL
-- and flagged. They are read through self-joins, not CASE, so that the JSONB columns keep their
-- declared type and decode.
SELECT c.id, c.workspace_id, c.path, c.is_flow, c.trigger_kind, c.created_by, c.created_at,
       small_main.main_args, small_pre.preprocessor_args,
       small_main.id IS NULL AS main_args_too_big,
       small_pre.id IS NULL AS preprocessor_args_too_big
FROM capture c
LEFT JOIN capture small_main
  ON small_main.id = c.id AND length(CAST(c.main_args AS BLOB)) < :max_bytes
LEFT JOIN capture small_pre
  ON small_pre.id = c.id AND coalesce(length(CAST(c.preprocessor_args AS BLOB)), 0) < :max_bytes
WHERE c.workspace_id = :workspace_id AND c.path = :path AND c.is_flow = :is_flow
  AND (:trigger_kind IS NULL OR c.trigger_kind = :trigger_kind)
ORDER BY c.created_at DESC, c.id DESC
LIMIT :limit OFFSET :offset;

-- name: list_captures (postgresql)
-- A page of a runnable's captures, newest first; payloads of :max_bytes or more come back NULL
-- and flagged.
SELECT id, workspace_id, path, is_flow, trigger_kind, created_by, created_at,
       CASE WHEN octet_length(main_args::text) < :max_bytes THEN main_args END AS main_args,
       CASE WHEN coalesce(octet_length(preprocessor_args::text), 0) < :max_bytes
            THEN preprocessor_args END AS preprocessor_args,
       octet_length(main_args::text) >= :max_bytes AS main_args_too_big,
       coalesce(octet_length(preprocessor_args::text), 0) >= :max_bytes
           AS preprocessor_args_too_big
FROM capture
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow
  AND (CAST(:trigger_kind AS text) IS NULL
       OR CAST(trigger_kind AS text) = CAST(:trigger_kind AS text))
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: get_capture
-- One capture, its payloads whole.
SELECT id, workspace_id, path, is_flow, trigger_kind, created_by, created_at, main_args,
       preprocessor_args
FROM capture
WHERE workspace_id = :workspace_id AND id = :id;

-- name: delete_capture
-- Forget one capture.
DELETE FROM capture WHERE workspace_id = :workspace_id AND id = :id;

-- name: move_captures
-- Follow a renamed runnable.
UPDATE capture SET path = :new_path
WHERE workspace_id = :workspace_id AND path = :path AND is_flow = :is_flow;
