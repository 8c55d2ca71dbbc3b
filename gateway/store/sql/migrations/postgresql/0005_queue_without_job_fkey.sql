-- A queue row is no longer tied to its job row by a foreign key, as in Windmill's schema: both
-- are always written by one statement or transaction, and the check (a row lock taken on the job
-- through a trigger, for every queued job) was a fifth of the server's work in enqueueing one.
-- The statements that remove a job remove its queue row themselves.
ALTER TABLE v2_job_queue DROP CONSTRAINT IF EXISTS v2_job_queue_id_fkey;
