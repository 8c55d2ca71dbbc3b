-- name: get_flow
-- One flow by path (archived or not) with the id of its latest version.
SELECT f.workspace_id, f.path, f.summary, f.description, f.value, f.schema, f.edited_by,
       f.edited_at, f.archived, f.tag, f.timeout, f.dedicated_worker, f.versions,
       f.ws_error_handler_muted, f.visible_to_runner_only, f.extra_perms,
       (SELECT max(v.id) FROM flow_version v
        WHERE v.workspace_id = f.workspace_id AND v.path = f.path) AS version_id
FROM flow f
WHERE f.workspace_id = :workspace_id AND f.path = :path;

-- name: insert_flow
-- A new flow (its versions are recorded by set_flow_value).
INSERT INTO flow (
    workspace_id, path, summary, description, value, schema, edited_by, tag, timeout,
    dedicated_worker
) VALUES (
    :workspace_id, :path, :summary, :description, :value, :schema, :edited_by, :tag, :timeout,
    :dedicated_worker
);

-- name: insert_flow_version
-- One saved version of a flow's value and schema; its id.
INSERT INTO flow_version (workspace_id, path, value, schema, created_by)
VALUES (:workspace_id, :path, :value, :schema, :created_by)
RETURNING id;

-- name: set_flow_value
-- What a save changes on the flow row: the definition, its metadata and the version list.
UPDATE flow
SET summary = :summary, description = :description, value = :value, schema = :schema,
    edited_by = :edited_by, edited_at = now(), tag = :tag, timeout = :timeout,
    dedicated_worker = :dedicated_worker, versions = :versions, archived = false
WHERE workspace_id = :workspace_id AND path = :path;

-- name: api_list_flows
-- A page of the flows a user may see, by path, without their definitions.
SELECT f.workspace_id, f.path, f.summary, f.description, f.schema, f.edited_by, f.edited_at,
       f.archived, f.tag, f.timeout, f.dedicated_worker, f.ws_error_handler_muted,
       f.visible_to_runner_only, f.extra_perms
FROM flow f
WHERE f.workspace_id = :workspace_id
  AND (CAST(:show_archived AS boolean) OR NOT f.archived)
  AND (CAST(:path_start AS text) IS NULL
       OR substr(f.path, 1, length(CAST(:path_start AS text))) = CAST(:path_start AS text))
  AND (CAST(:path_exact AS text) IS NULL OR f.path = CAST(:path_exact AS text))
  AND (CAST(:is_admin AS boolean) OR substr(f.path, 1, 2) <> 'u/'
       OR substr(f.path, 1, length(CAST(:user_prefix AS text))) = CAST(:user_prefix AS text)
       OR (f.extra_perms -> rtrim(CAST(:user_prefix AS text), '/')) IS NOT NULL
       OR (f.extra_perms -> 'g/all') IS NOT NULL)
ORDER BY f.path
LIMIT :limit OFFSET :offset;

-- name: list_flow_versions
-- Every saved version of a flow, newest first.
SELECT id, created_at, created_by
FROM flow_version
WHERE workspace_id = :workspace_id AND path = :path
ORDER BY id DESC;

-- name: get_flow_version
-- One saved version of a flow, with the flow's current metadata.
SELECT v.id AS version_id, v.workspace_id, v.path, v.value, v.schema, v.created_by,
       v.created_at, f.summary, f.description, f.archived, f.tag, f.timeout,
       f.dedicated_worker, f.ws_error_handler_muted, f.visible_to_runner_only, f.extra_perms
FROM flow_version v
JOIN flow f ON f.workspace_id = v.workspace_id AND f.path = v.path
WHERE v.workspace_id = :workspace_id AND v.id = :id;

-- name: get_runnable_flow_version_id
-- The id of the latest version of a flow that is not archived, to run it.
SELECT max(v.id) AS id
FROM flow f
JOIN flow_version v ON v.workspace_id = f.workspace_id AND v.path = f.path
WHERE f.workspace_id = :workspace_id AND f.path = :path AND NOT f.archived;

-- name: set_flow_archived
-- Archive or unarchive a flow.
UPDATE flow SET archived = :archived, edited_by = :edited_by, edited_at = now()
WHERE workspace_id = :workspace_id AND path = :path;

-- name: delete_flow_versions
-- Delete every version of a flow (before the flow itself).
DELETE FROM flow_version WHERE workspace_id = :workspace_id AND path = :path;

-- name: delete_flow
-- Delete a flow.
DELETE FROM flow WHERE workspace_id = :workspace_id AND path = :path;

-- name: get_job_flow_status
-- A flow job's progress: its live status while it runs, the completed one after.
SELECT s.flow_status AS live, c.flow_status AS completed
FROM v2_job j
LEFT JOIN v2_job_status s ON s.id = j.id
LEFT JOIN v2_job_completed c ON c.id = j.id
WHERE j.workspace_id = :workspace_id AND j.id = :id;
