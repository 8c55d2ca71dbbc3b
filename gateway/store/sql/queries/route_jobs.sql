-- The jobs of HTTP route requests, written by `Store.write` as a transaction of their own.
--
-- `enqueue_pinned_jobs` writes jobs that differ only in their id, creator and args: `:template`
-- is a JSON job record (`gateway.jobs.enqueue.job_record`) holding every other column, `:jobs` a
-- JSON array of `[id, created_by, args]`, `:ids` the JSON array of the same ids (SQLite's queue
-- rows are read by them, without parsing each job's array again). Nothing is
-- written when the template's script version (`runnable_id`) is no longer the latest of its path.
-- It returns how many jobs were written, and wakes the executors on `:channel` when any was.

-- name: enqueue_pinned_jobs (postgresql)
-- One statement: one round trip.
WITH template AS (
    SELECT t.*
    FROM jsonb_to_record(CAST(:template AS jsonb)) AS t(
        tag text, workspace_id text, permissioned_as text, permissioned_as_email text, kind text,
        runnable_id bigint, runnable_path text, script_lang text, trigger text, trigger_kind text,
        timeout integer, priority smallint, preprocessed boolean, labels text[], delay_s float8
    )
    WHERE t.runnable_id IS NOT DISTINCT FROM (
        SELECT s.hash FROM script s
        WHERE s.workspace_id = t.workspace_id AND s.path = t.runnable_path
          AND NOT s.archived AND NOT s.deleted
        ORDER BY s.created_at DESC
        LIMIT 1
    )
), records AS (
    SELECT CAST(j ->> 0 AS uuid) AS id, j ->> 1 AS created_by, j -> 2 AS args
    FROM jsonb_array_elements(CAST(:jobs AS jsonb)) AS j
), jobs AS (
    INSERT INTO v2_job (
        id, created_at, tag, workspace_id, created_by, permissioned_as, permissioned_as_email,
        kind, runnable_id, runnable_path, script_lang, trigger, trigger_kind, timeout, priority,
        preprocessed, args, labels
    )
    SELECT r.id, now(), t.tag, t.workspace_id, r.created_by, t.permissioned_as,
           t.permissioned_as_email, CAST(t.kind AS job_kind), t.runnable_id, t.runnable_path,
           CAST(t.script_lang AS script_lang), t.trigger, CAST(t.trigger_kind AS job_trigger_kind),
           t.timeout, t.priority, t.preprocessed, r.args, t.labels
    FROM template t CROSS JOIN records r
    RETURNING id
), queued AS (
    INSERT INTO v2_job_queue (id, workspace_id, created_at, scheduled_for, running, tag, priority)
    SELECT r.id, t.workspace_id, now(), gw_now_plus(t.delay_s), false, t.tag, t.priority
    FROM template t CROSS JOIN records r
    RETURNING id
), woken AS (
    SELECT pg_notify(:channel, '') FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued
)
SELECT (SELECT count(*) FROM jobs) AS written, (SELECT count(*) FROM woken) AS woken;

-- name: enqueue_pinned_jobs (sqlite)
-- Each job's small array is parsed for its three values, the template's columns once per
-- statement (constant expressions), and the clock (a Python function) is read once per statement
-- too: the queue rows copy the job rows' time. The version check runs once: it is not correlated.
INSERT INTO v2_job (
    id, created_at, tag, workspace_id, created_by, permissioned_as, permissioned_as_email, kind,
    runnable_id, runnable_path, script_lang, trigger, trigger_kind, timeout, priority,
    preprocessed, args, labels
)
SELECT json_extract(j.value, '$[0]'), (SELECT now()), json_extract(:template, '$.tag'),
       json_extract(:template, '$.workspace_id'), json_extract(j.value, '$[1]'),
       json_extract(:template, '$.permissioned_as'),
       json_extract(:template, '$.permissioned_as_email'), json_extract(:template, '$.kind'),
       json_extract(:template, '$.runnable_id'), json_extract(:template, '$.runnable_path'),
       json_extract(:template, '$.script_lang'), json_extract(:template, '$.trigger'),
       json_extract(:template, '$.trigger_kind'), json_extract(:template, '$.timeout'),
       json_extract(:template, '$.priority'), json_extract(:template, '$.preprocessed'),
       json_extract(j.value, '$[2]'), json_extract(:template, '$.labels')
FROM json_each(:jobs) AS j
WHERE json_extract(:template, '$.runnable_id') IS (
    SELECT s.hash FROM script s
    WHERE s.workspace_id = json_extract(:template, '$.workspace_id')
      AND s.path = json_extract(:template, '$.runnable_path')
      AND NOT s.archived AND NOT s.deleted
    ORDER BY s.created_at DESC
    LIMIT 1
);
INSERT INTO v2_job_queue (id, workspace_id, created_at, scheduled_for, running, tag, priority)
SELECT j.id, j.workspace_id, j.created_at,
       CASE WHEN json_extract(:template, '$.delay_s') > 0
            THEN (SELECT gw_now_plus(json_extract(:template, '$.delay_s'))) ELSE j.created_at END,
       false, j.tag, j.priority
FROM json_each(:ids) AS i
JOIN v2_job j ON j.id = i.value;
SELECT written, CASE WHEN written > 0 THEN pg_notify(:channel, '') END AS woken
FROM (SELECT changes() AS written);
