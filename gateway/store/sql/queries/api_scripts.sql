-- name: api_list_scripts
-- A page of the latest live version of every script path a user may see, by path.
SELECT s.workspace_id, s.hash, s.path, s.parent_hashes, s.summary, s.description, s.content,
       s.created_by, s.created_at, s.archived, s.schema, s.deleted, s.language, s.kind, s.tag,
       s.dedicated_worker, s.timeout, s.has_preprocessor, s.priority, s.extra_perms
FROM script s
WHERE s.workspace_id = :workspace_id AND NOT s.archived AND NOT s.deleted
  AND s.created_at = (
      SELECT max(s2.created_at) FROM script s2
      WHERE s2.workspace_id = s.workspace_id AND s2.path = s.path
        AND NOT s2.archived AND NOT s2.deleted
  )
  AND (CAST(:path_start AS text) IS NULL
       OR substr(s.path, 1, length(CAST(:path_start AS text))) = CAST(:path_start AS text))
  AND (CAST(:path_exact AS text) IS NULL OR s.path = CAST(:path_exact AS text))
  AND (CAST(:is_admin AS boolean) OR substr(s.path, 1, 2) <> 'u/'
       OR substr(s.path, 1, length(CAST(:user_prefix AS text))) = CAST(:user_prefix AS text)
       OR (s.extra_perms -> rtrim(CAST(:user_prefix AS text), '/')) IS NOT NULL
       OR (s.extra_perms -> 'g/all') IS NOT NULL)
ORDER BY s.path
LIMIT :limit OFFSET :offset;
