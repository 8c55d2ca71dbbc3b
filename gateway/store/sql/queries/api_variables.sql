-- name: api_list_variables
-- A page of the variables a user may see, by path; secret values are never selected.
SELECT workspace_id, path, CASE WHEN is_secret THEN NULL ELSE value END AS value, is_secret,
       description, extra_perms, account, is_oauth, expires_at
FROM variable
WHERE workspace_id = :workspace_id
  AND (CAST(:path_start AS text) IS NULL
       OR substr(path, 1, length(CAST(:path_start AS text))) = CAST(:path_start AS text))
  AND (CAST(:is_admin AS boolean) OR substr(path, 1, 2) <> 'u/'
       OR substr(path, 1, length(CAST(:user_prefix AS text))) = CAST(:user_prefix AS text)
       OR (extra_perms -> rtrim(CAST(:user_prefix AS text), '/')) IS NOT NULL
       OR (extra_perms -> 'g/all') IS NOT NULL)
ORDER BY path
LIMIT :limit OFFSET :offset;

-- name: api_delete_variable
-- Remove a variable.
DELETE FROM variable WHERE workspace_id = :workspace_id AND path = :path;
