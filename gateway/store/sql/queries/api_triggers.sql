-- name: api_find_http_route
-- Another HTTP trigger answering the same method on the same canonical route, anywhere.
SELECT workspace_id, path FROM http_trigger
WHERE route_path_key = :route_path_key
  AND CAST(http_method AS text) = CAST(:http_method AS text)
  AND NOT (workspace_id = :workspace_id AND path IN (:path, :previous_path))
LIMIT 1;

-- name: api_find_email_local_part
-- Another email trigger receiving mail at the same address (per workspace when workspaced).
SELECT workspace_id, path FROM email_trigger
WHERE local_part = :local_part AND workspaced_local_part = :workspaced
  AND (NOT :workspaced OR workspace_id = :workspace_id)
  AND NOT (workspace_id = :workspace_id AND path = :path)
LIMIT 1;
