-- name: get_latest_script
-- The newest non-archived, non-deleted version of a script path.
SELECT workspace_id, hash, path, parent_hashes, summary, description, content, created_by,
       created_at, archived, schema, deleted, language, kind, tag, dedicated_worker, timeout,
       has_preprocessor, priority, extra_perms
FROM script
WHERE workspace_id = :workspace_id AND path = :path AND NOT archived AND NOT deleted
ORDER BY created_at DESC
LIMIT 1;

-- name: get_script_by_hash
-- One version of a script.
SELECT workspace_id, hash, path, parent_hashes, summary, description, content, created_by,
       created_at, archived, schema, deleted, language, kind, tag, dedicated_worker, timeout,
       has_preprocessor, priority, extra_perms
FROM script
WHERE workspace_id = :workspace_id AND hash = :hash;

-- name: insert_script
-- A new version of a script; it keeps the grants (extra_perms) of the path's newest version.
INSERT INTO script (
    workspace_id, hash, path, parent_hashes, summary, description, content, created_by, schema,
    language, kind, tag, dedicated_worker, timeout, has_preprocessor, priority, extra_perms
) VALUES (
    :workspace_id, :hash, :path, :parent_hashes, :summary, :description, :content, :created_by,
    :schema, :language, :kind, :tag, :dedicated_worker, :timeout, :has_preprocessor, :priority,
    COALESCE((
        SELECT s.extra_perms FROM script s
        WHERE s.workspace_id = CAST(:workspace_id AS varchar) AND s.path = CAST(:path AS varchar)
        ORDER BY s.created_at DESC LIMIT 1
    ), '{}')
);

-- name: archive_script_versions
-- Archive every version of a script path (the path disappears from listings and runs).
UPDATE script SET archived = true
WHERE workspace_id = :workspace_id AND path = :path AND NOT archived;

-- name: delete_script_versions
-- Mark every version of a script path deleted.
UPDATE script SET deleted = true, archived = true
WHERE workspace_id = :workspace_id AND path = :path AND NOT deleted;

-- name: list_latest_scripts
-- The newest version of every live script path of a workspace.
SELECT s.workspace_id, s.hash, s.path, s.summary, s.description, s.created_by, s.created_at,
       s.language, s.kind, s.tag, s.dedicated_worker, s.timeout, s.has_preprocessor, s.archived,
       s.schema
FROM script s
WHERE s.workspace_id = :workspace_id AND NOT s.archived AND NOT s.deleted
  AND s.created_at = (
      SELECT max(s2.created_at) FROM script s2
      WHERE s2.workspace_id = s.workspace_id AND s2.path = s.path
        AND NOT s2.archived AND NOT s2.deleted
  )
  AND (:path_start IS NULL OR s.path LIKE :path_start || '%')
ORDER BY s.path
LIMIT :limit OFFSET :offset;
