-- name: insert_workspace
-- Create a workspace unless it exists; returns the id when created.
INSERT INTO workspace (id, name, owner) VALUES (:id, :name, :owner)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: get_workspace
-- One workspace.
SELECT id, name, owner, deleted FROM workspace WHERE id = :id;

-- name: list_workspaces
-- Every live workspace.
SELECT id, name, owner FROM workspace WHERE NOT deleted ORDER BY id;

-- name: upsert_user
-- Add a user to a workspace, or update its email and role.
INSERT INTO usr (workspace_id, username, email, is_admin, role)
VALUES (:workspace_id, :username, :email, :is_admin, :role)
ON CONFLICT (workspace_id, username) DO UPDATE
SET email = excluded.email, is_admin = excluded.is_admin, role = excluded.role;

-- name: get_user
-- One user of a workspace.
SELECT workspace_id, username, email, is_admin, operator, disabled, role, created_at
FROM usr WHERE workspace_id = :workspace_id AND username = :username;

-- name: get_resource
-- One resource.
SELECT workspace_id, path, value, description, resource_type, extra_perms, edited_at, created_by
FROM resource WHERE workspace_id = :workspace_id AND path = :path;

-- name: upsert_resource
-- Create or replace a resource.
INSERT INTO resource (workspace_id, path, value, description, resource_type, edited_at, created_by)
VALUES (:workspace_id, :path, :value, :description, :resource_type, now(), :created_by)
ON CONFLICT (workspace_id, path) DO UPDATE
SET value = excluded.value, description = excluded.description,
    resource_type = excluded.resource_type, edited_at = now();

-- name: get_variable
-- One variable.
SELECT workspace_id, path, value, is_secret, description, extra_perms
FROM variable WHERE workspace_id = :workspace_id AND path = :path;

-- name: upsert_variable
-- Create or replace a variable.
INSERT INTO variable (workspace_id, path, value, is_secret, description)
VALUES (:workspace_id, :path, :value, :is_secret, :description)
ON CONFLICT (workspace_id, path) DO UPDATE
SET value = excluded.value, is_secret = excluded.is_secret, description = excluded.description;
