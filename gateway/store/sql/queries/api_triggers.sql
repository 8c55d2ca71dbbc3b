-- name: api_find_http_route
-- Another HTTP trigger answering the same method on the same canonical route, anywhere.
SELECT workspace_id, path FROM http_trigger
WHERE route_path_key = :route_path_key
  AND CAST(http_method AS text) = CAST(:http_method AS text)
  AND NOT (workspace_id = :workspace_id AND path IN (:path, :previous_path))
LIMIT 1;
