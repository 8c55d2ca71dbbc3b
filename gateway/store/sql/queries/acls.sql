-- name: set_variable_extra_perms
-- Replace the grants of a variable.
UPDATE variable SET extra_perms = :extra_perms
WHERE workspace_id = :workspace_id AND path = :path;

-- name: set_resource_extra_perms
-- Replace the grants of a resource.
UPDATE resource SET extra_perms = :extra_perms
WHERE workspace_id = :workspace_id AND path = :path;

-- name: set_script_extra_perms
-- Replace the grants of every version of a script path (a new version copies the newest's).
UPDATE script SET extra_perms = :extra_perms
WHERE workspace_id = :workspace_id AND path = :path;
