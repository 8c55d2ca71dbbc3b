-- name: list_audit_entries
-- A page of a workspace's audit log since a time, newest first. The other filters are optional;
-- `operation` also matches its sub-operations (`variables` finds `variables.create`), `resource`
-- what lies under it.
SELECT id, workspace_id, timestamp, username, operation, action_kind, resource, parameters, email
FROM audit
WHERE workspace_id = :workspace_id
  AND (CAST(:username AS text) IS NULL OR username = CAST(:username AS text))
  AND (CAST(:operation AS text) IS NULL OR operation = CAST(:operation AS text)
       OR substr(operation, 1, length(CAST(:operation AS text)) + 1)
          = CAST(:operation AS text) || '.')
  AND (CAST(:resource AS text) IS NULL OR resource = CAST(:resource AS text)
       OR substr(resource, 1, length(CAST(:resource AS text)) + 1)
          = CAST(:resource AS text) || '/')
  AND (CAST(:action_kind AS text) IS NULL OR CAST(action_kind AS text) = CAST(:action_kind AS text))
  AND timestamp >= :since
ORDER BY id DESC
LIMIT :limit OFFSET :offset;
