-- name: api_get_token
-- A live token (not expired; a job's only while its job runs uncancelled), by the hash of its text.
SELECT token, workspace_id, owner, email, super_admin, scopes, job, last_used_at
FROM token
WHERE token = :token_hash AND (expiration IS NULL OR expiration > now())
  AND (job IS NULL OR EXISTS (
      SELECT 1 FROM v2_job_queue q WHERE q.id = token.job AND q.running AND q.canceled_by IS NULL
  ));

-- name: api_touch_token
-- Record a use of a token, at most once a minute.
UPDATE token SET last_used_at = now()
WHERE token = :token_hash AND last_used_at < gw_now_plus(-60);

-- name: api_insert_token
-- A new API token: the hash of its text and its clear prefix.
INSERT INTO token (token, token_prefix, label, expiration, workspace_id, owner, email, super_admin,
                   scopes)
VALUES (:token_hash, :token_prefix, :label, :expiration, :workspace_id, :owner, :email,
        :super_admin, :scopes);

-- name: api_list_tokens
-- The tokens of one email, newest first, shown by their clear prefix only.
SELECT token_prefix, label, expiration, workspace_id, email, scopes,
       created_at, last_used_at
FROM token
WHERE email = :email AND (job IS NULL OR NOT CAST(:exclude_ephemeral AS boolean))
ORDER BY created_at DESC
LIMIT :limit OFFSET :offset;

-- name: api_delete_tokens_by_prefix
-- Revoke the tokens of one email with this prefix (or this whole token, given its hash).
DELETE FROM token
WHERE email = :email AND (token_prefix = :prefix OR token = :token_hash);

-- name: api_list_workspaces_of_email
-- The live workspaces where an email is an enabled user.
SELECT w.id, w.name, w.owner
FROM workspace w JOIN usr u ON u.workspace_id = w.id
WHERE u.email = :email AND NOT w.deleted AND NOT u.disabled
ORDER BY w.id;

-- name: api_insert_audit
-- One entry of the audit log.
INSERT INTO audit (workspace_id, username, operation, action_kind, resource, parameters, email)
VALUES (:workspace_id, :username, :operation, :action_kind, :resource, :parameters, :email);

-- name: api_lock_object
-- Serialise writes to one object between instances (the single SQLite writer needs nothing).
SELECT 1 AS locked;

-- name: api_lock_object (postgresql)
-- Serialise writes to one object between instances until this transaction ends.
SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtext(CAST(:key AS text)))) AS held;
