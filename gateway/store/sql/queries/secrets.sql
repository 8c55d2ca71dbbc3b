-- name: get_workspace_key
-- The wrapped key of a workspace.
SELECT workspace_id, key FROM workspace_key WHERE workspace_id = :workspace_id AND kind = 'cloud';

-- name: insert_workspace_key
-- Store the first wrapped key of a workspace unless another writer stored one first.
INSERT INTO workspace_key (workspace_id, kind, key) VALUES (:workspace_id, 'cloud', :key)
ON CONFLICT (workspace_id, kind) DO NOTHING;

-- name: replace_workspace_key
-- Replace the wrapped key of a workspace (rotation).
UPDATE workspace_key SET key = :key WHERE workspace_id = :workspace_id AND kind = 'cloud';

-- name: list_workspace_keys
-- Every wrapped workspace key.
SELECT workspace_id, key FROM workspace_key WHERE kind = 'cloud' ORDER BY workspace_id;

-- name: list_workspaces_with_secrets
-- Every workspace holding a key or a secret variable.
SELECT workspace_id FROM workspace_key WHERE kind = 'cloud'
UNION
SELECT workspace_id FROM variable WHERE is_secret
ORDER BY workspace_id;

-- name: list_secret_variables
-- The stored values of a workspace's secret variables.
SELECT path, value FROM variable WHERE workspace_id = :workspace_id AND is_secret ORDER BY path;

-- name: set_variable_value
-- Replace the stored value of a variable.
UPDATE variable SET value = :value WHERE workspace_id = :workspace_id AND path = :path;
