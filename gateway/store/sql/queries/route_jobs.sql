-- The jobs of HTTP route requests, written by `Store.write` as a transaction of their own.

-- name: enqueue_pinned_jobs (postgresql)
-- New plain jobs (JSON job records) with their queue rows, and a wake-up on :channel; none at all
-- when one of the script versions in `pins` is no longer the latest of its path. One statement:
-- one round trip. Returns how many jobs were written.
WITH pins_hold AS (
    SELECT NOT EXISTS (
        SELECT 1
        FROM jsonb_to_recordset(CAST(:pins AS jsonb)) AS p(workspace_id text, path text, hash bigint)
        WHERE p.hash IS DISTINCT FROM (
            SELECT s.hash FROM script s
            WHERE s.workspace_id = p.workspace_id AND s.path = p.path
              AND NOT s.archived AND NOT s.deleted
            ORDER BY s.created_at DESC
            LIMIT 1
        )
    ) AS hold
), records AS (
    SELECT r.*
    FROM jsonb_to_recordset(CAST(:jobs AS jsonb)) AS r(
        id uuid, raw_code text, tag text, workspace_id text, created_by text,
        permissioned_as text, permissioned_as_email text, kind text, runnable_id bigint,
        runnable_path text, script_lang text, trigger text, trigger_kind text, timeout integer,
        priority smallint, preprocessed boolean, args jsonb, labels text[], delay_s float8
    )
    WHERE (SELECT hold FROM pins_hold)
), jobs AS (
    INSERT INTO v2_job (
        id, created_at, raw_code, tag, workspace_id, created_by, permissioned_as,
        permissioned_as_email, kind, runnable_id, runnable_path, script_lang, trigger,
        trigger_kind, timeout, priority, preprocessed, args, labels
    )
    SELECT id, now(), raw_code, tag, workspace_id, created_by, permissioned_as,
           permissioned_as_email, CAST(kind AS job_kind), runnable_id, runnable_path,
           CAST(script_lang AS script_lang), trigger, CAST(trigger_kind AS job_trigger_kind),
           timeout, priority, preprocessed, args, labels
    FROM records
    RETURNING id
), queued AS (
    INSERT INTO v2_job_queue (id, workspace_id, created_at, scheduled_for, running, tag, priority)
    SELECT id, workspace_id, now(), gw_now_plus(delay_s), false, tag, priority
    FROM records
    RETURNING id
), woken AS (
    SELECT pg_notify(:channel, '') FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued
)
SELECT (SELECT count(*) FROM jobs) AS written, (SELECT count(*) FROM woken) AS woken;

-- name: enqueue_pinned_jobs (sqlite)
-- New plain jobs (JSON job records) with their queue rows, and a wake-up on :channel; none at all
-- when one of the script versions in `pins` is no longer the latest of its path. Returns how many
-- jobs were written. The clock (a Python function) is read once per statement, not per row: each
-- call takes the interpreter's lock from the event loop's thread.
INSERT INTO v2_job (
    id, created_at, raw_code, tag, workspace_id, created_by, permissioned_as,
    permissioned_as_email, kind, runnable_id, runnable_path, script_lang, trigger, trigger_kind,
    timeout, priority, preprocessed, args, labels
)
SELECT json_extract(value, '$.id'), (SELECT now()), json_extract(value, '$.raw_code'),
       json_extract(value, '$.tag'), json_extract(value, '$.workspace_id'),
       json_extract(value, '$.created_by'), json_extract(value, '$.permissioned_as'),
       json_extract(value, '$.permissioned_as_email'), json_extract(value, '$.kind'),
       json_extract(value, '$.runnable_id'), json_extract(value, '$.runnable_path'),
       json_extract(value, '$.script_lang'), json_extract(value, '$.trigger'),
       json_extract(value, '$.trigger_kind'), json_extract(value, '$.timeout'),
       json_extract(value, '$.priority'), json_extract(value, '$.preprocessed'),
       json_extract(value, '$.args'), json_extract(value, '$.labels')
FROM json_each(:jobs)
WHERE NOT EXISTS (
    SELECT 1
    FROM json_each(:pins) AS p
    WHERE json_extract(p.value, '$.hash') IS NOT (
        SELECT s.hash FROM script s
        WHERE s.workspace_id = json_extract(p.value, '$.workspace_id')
          AND s.path = json_extract(p.value, '$.path')
          AND NOT s.archived AND NOT s.deleted
        ORDER BY s.created_at DESC
        LIMIT 1
    )
);
INSERT INTO v2_job_queue (id, workspace_id, created_at, scheduled_for, running, tag, priority)
SELECT json_extract(r.value, '$.id'), json_extract(r.value, '$.workspace_id'), (SELECT now()),
       CASE WHEN json_extract(r.value, '$.delay_s') > 0
            THEN gw_now_plus(json_extract(r.value, '$.delay_s')) ELSE (SELECT now()) END,
       false, json_extract(r.value, '$.tag'), json_extract(r.value, '$.priority')
FROM json_each(:jobs) AS r
WHERE EXISTS (SELECT 1 FROM v2_job j WHERE j.id = json_extract(r.value, '$.id'));
SELECT written, CASE WHEN written > 0 THEN pg_notify(:channel, '') END AS woken
FROM (SELECT changes() AS written);
