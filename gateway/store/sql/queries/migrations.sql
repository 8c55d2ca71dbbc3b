-- name: lock_migrations
-- Serialise migrations between instances (a no-op on the single-process SQLite store).
SELECT 1;

-- name: lock_migrations (postgresql)
-- Serialise migrations between instances until this transaction ends.
SELECT pg_advisory_xact_lock(72657101);

-- name: create_migration_table
-- The table remembering which migrations ran.
CREATE TABLE IF NOT EXISTS gateway_migration (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT (now())
);

-- name: list_migrations
-- Versions already applied.
SELECT version FROM gateway_migration ORDER BY version;

-- name: record_migration
-- Remember that a migration ran.
INSERT INTO gateway_migration (version, name) VALUES (:version, :name);
