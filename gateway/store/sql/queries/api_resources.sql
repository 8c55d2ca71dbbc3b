-- name: api_list_resources
-- A page of the resources a user may see, by path, with optional type and path prefix filters.
SELECT workspace_id, path, description, resource_type, extra_perms, edited_at, created_by
FROM resource
WHERE workspace_id = :workspace_id
  AND (CAST(:resource_type AS text) IS NULL OR resource_type = CAST(:resource_type AS text))
  AND (CAST(:path_start AS text) IS NULL
       OR substr(path, 1, length(CAST(:path_start AS text))) = CAST(:path_start AS text))
  AND (CAST(:is_admin AS boolean) OR substr(path, 1, 2) <> 'u/'
       OR substr(path, 1, length(CAST(:user_prefix AS text))) = CAST(:user_prefix AS text)
       OR (extra_perms -> rtrim(CAST(:user_prefix AS text), '/')) IS NOT NULL
       OR (extra_perms -> 'g/all') IS NOT NULL)
ORDER BY path
LIMIT :limit OFFSET :offset;

-- name: api_delete_resource
-- Remove a resource.
DELETE FROM resource WHERE workspace_id = :workspace_id AND path = :path;

-- name: api_insert_resource_type
-- A new resource type; returns nothing when the name is taken.
INSERT INTO resource_type (workspace_id, name, schema, description, edited_at, created_by,
                           format_extension)
VALUES (:workspace_id, :name, :schema, :description, now(), :created_by, :format_extension)
ON CONFLICT (workspace_id, name) DO NOTHING
RETURNING name;

-- name: api_get_resource_type
-- One resource type.
SELECT workspace_id, name, schema, description, edited_at, created_by, format_extension
FROM resource_type WHERE workspace_id = :workspace_id AND name = :name;

-- name: api_list_resource_types
-- Every resource type of a workspace, by name.
SELECT workspace_id, name, schema, description, edited_at, created_by, format_extension
FROM resource_type WHERE workspace_id = :workspace_id ORDER BY name;
