-- name: http_routes_list_served
-- Every HTTP route that answers requests (enabled or suspended), in every workspace.
SELECT path, script_path, is_flow, workspace_id, edited_by, email, permissioned_as, edited_at,
       error_handler_path, error_handler_args, retry, mode, route_path, route_path_key,
       http_method, authentication_method, authentication_resource_path, static_asset_config,
       is_static_website, workspaced_route, wrap_body, raw_string, request_type, allowed_origins
FROM http_trigger
WHERE mode IN ('enabled', 'suspended')
ORDER BY workspace_id, path;

-- name: http_routes_version (sqlite)
-- A fingerprint of the routes that moves when one is created, edited or deleted.
SELECT count(*) AS routes, max(edited_at) AS last_edit,
       sum(CAST(julianday(edited_at) * 86400000 AS INTEGER)) AS edits
FROM http_trigger;

-- name: http_routes_version (postgresql)
-- A fingerprint of the routes that moves when one is created, edited or deleted.
SELECT count(*) AS routes, max(edited_at) AS last_edit,
       sum(CAST(extract(epoch FROM edited_at) * 1000 AS bigint)) AS edits
FROM http_trigger;

-- name: http_routes_token_user
-- A live token (a job's only while its job runs), by the hash of its text, with its owner's user
-- row in the workspace when that user is enabled there.
SELECT t.owner, t.email, t.workspace_id AS token_workspace_id, t.super_admin, t.scopes, t.job,
       u.username, u.is_admin
FROM token t
LEFT JOIN usr u
  ON u.workspace_id = :workspace_id AND u.username = substr(t.owner, 3) AND NOT u.disabled
WHERE t.token = :token_hash AND (t.expiration IS NULL OR t.expiration > now())
  AND (t.job IS NULL OR EXISTS (
      SELECT 1 FROM v2_job_queue q WHERE q.id = t.job AND q.running AND q.canceled_by IS NULL
  ));
