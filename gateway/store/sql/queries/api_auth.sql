-- name: api_get_token
-- A live token (not expired) with its owner, workspace, scopes and last use.
SELECT token, workspace_id, owner, email, super_admin, scopes, job, last_used_at
FROM token
WHERE token = :token AND (expiration IS NULL OR expiration > now());

-- name: api_touch_token
-- Record a use of a token, at most once a minute.
UPDATE token SET last_used_at = now()
WHERE token = :token AND last_used_at < gw_now_plus(-60);

-- name: api_insert_token
-- A new API token.
INSERT INTO token (token, label, expiration, workspace_id, owner, email, super_admin, scopes)
VALUES (:token, :label, :expiration, :workspace_id, :owner, :email, :super_admin, :scopes);

-- name: api_list_tokens
-- The tokens of one email, newest first, shown by their first ten characters only.
SELECT substr(token, 1, 10) AS token_prefix, label, expiration, workspace_id, email, scopes,
       created_at, last_used_at
FROM token
WHERE email = :email AND (job IS NULL OR NOT CAST(:exclude_ephemeral AS boolean))
ORDER BY created_at DESC
LIMIT :limit OFFSET :offset;

-- name: api_delete_tokens_by_prefix
-- Revoke the tokens of one email that start with a prefix.
DELETE FROM token
WHERE email = :email AND substr(token, 1, length(CAST(:prefix AS text))) = CAST(:prefix AS text);

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

-- name: api_list_audit
-- A page of the audit log of a workspace, newest first, optionally of one operation.
SELECT id, workspace_id, timestamp, username, operation, action_kind, resource, parameters, email
FROM audit
WHERE workspace_id = :workspace_id
  AND (CAST(:operation AS text) IS NULL OR operation = CAST(:operation AS text))
ORDER BY id DESC
LIMIT :limit OFFSET :offset;

-- name: api_lock_object
-- Serialise writes to one object between instances (the single SQLite writer needs nothing).
SELECT 1 AS locked;

-- name: api_lock_object (postgresql)
-- Serialise writes to one object between instances until this transaction ends.
SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtext(CAST(:key AS text)))) AS held;
