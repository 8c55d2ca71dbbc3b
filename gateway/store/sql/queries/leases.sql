-- The lease protocol on every leased trigger table (Windmill's, plus a fence for job inserts).
-- The same queries for each table, named after its kind; table names are written here, never
-- formatted into SQL at run time. Every time comparison uses the database clock.

-- ---- websocket_trigger ----

-- name: list_stale_websocket_triggers
-- Consumable websocket triggers whose lease is free or older than the staleness window.
SELECT workspace_id, path FROM websocket_trigger
WHERE mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s));

-- name: claim_websocket_trigger
-- Take a free or stale websocket trigger; returns no row when another instance won it.
UPDATE websocket_trigger SET server_id = :server_id, last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s))
RETURNING path;

-- name: ping_websocket_trigger
-- Renew a held websocket lease and record the listener's status; touches nothing once lost.
UPDATE websocket_trigger SET last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: reset_websocket_trigger_for_restart
-- Make an edited (unowned) websocket trigger claimable at once.
UPDATE websocket_trigger SET last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id IS NULL;

-- name: release_websocket_trigger
-- Give a websocket lease back on shutdown, if it is still ours.
UPDATE websocket_trigger SET server_id = NULL, last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id;

-- name: fence_websocket_trigger
-- Whether the websocket lease is still held (the single SQLite writer needs no row lock).
SELECT server_id FROM websocket_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: fence_websocket_trigger (postgresql)
-- Whether the websocket lease is still held; the share lock holds off a takeover until commit.
SELECT server_id FROM websocket_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended')
FOR SHARE;

-- ---- kafka_trigger ----

-- name: list_stale_kafka_triggers
-- Consumable kafka triggers whose lease is free or older than the staleness window.
SELECT workspace_id, path FROM kafka_trigger
WHERE mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s));

-- name: claim_kafka_trigger
-- Take a free or stale kafka trigger; returns no row when another instance won it.
UPDATE kafka_trigger SET server_id = :server_id, last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s))
RETURNING path;

-- name: ping_kafka_trigger
-- Renew a held kafka lease and record the listener's status; touches nothing once lost.
UPDATE kafka_trigger SET last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: reset_kafka_trigger_for_restart
-- Make an edited (unowned) kafka trigger claimable at once.
UPDATE kafka_trigger SET last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id IS NULL;

-- name: release_kafka_trigger
-- Give a kafka lease back on shutdown, if it is still ours.
UPDATE kafka_trigger SET server_id = NULL, last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id;

-- name: fence_kafka_trigger
-- Whether the kafka lease is still held (the single SQLite writer needs no row lock).
SELECT server_id FROM kafka_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: fence_kafka_trigger (postgresql)
-- Whether the kafka lease is still held; the share lock holds off a takeover until commit.
SELECT server_id FROM kafka_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended')
FOR SHARE;

-- ---- nats_trigger ----

-- name: list_stale_nats_triggers
-- Consumable nats triggers whose lease is free or older than the staleness window.
SELECT workspace_id, path FROM nats_trigger
WHERE mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s));

-- name: claim_nats_trigger
-- Take a free or stale nats trigger; returns no row when another instance won it.
UPDATE nats_trigger SET server_id = :server_id, last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s))
RETURNING path;

-- name: ping_nats_trigger
-- Renew a held nats lease and record the listener's status; touches nothing once lost.
UPDATE nats_trigger SET last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: reset_nats_trigger_for_restart
-- Make an edited (unowned) nats trigger claimable at once.
UPDATE nats_trigger SET last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id IS NULL;

-- name: release_nats_trigger
-- Give a nats lease back on shutdown, if it is still ours.
UPDATE nats_trigger SET server_id = NULL, last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id;

-- name: fence_nats_trigger
-- Whether the nats lease is still held (the single SQLite writer needs no row lock).
SELECT server_id FROM nats_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: fence_nats_trigger (postgresql)
-- Whether the nats lease is still held; the share lock holds off a takeover until commit.
SELECT server_id FROM nats_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended')
FOR SHARE;

-- ---- sqs_trigger ----

-- name: list_stale_sqs_triggers
-- Consumable sqs triggers whose lease is free or older than the staleness window.
SELECT workspace_id, path FROM sqs_trigger
WHERE mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s));

-- name: claim_sqs_trigger
-- Take a free or stale sqs trigger; returns no row when another instance won it.
UPDATE sqs_trigger SET server_id = :server_id, last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s))
RETURNING path;

-- name: ping_sqs_trigger
-- Renew a held sqs lease and record the listener's status; touches nothing once lost.
UPDATE sqs_trigger SET last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: reset_sqs_trigger_for_restart
-- Make an edited (unowned) sqs trigger claimable at once.
UPDATE sqs_trigger SET last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id IS NULL;

-- name: release_sqs_trigger
-- Give a sqs lease back on shutdown, if it is still ours.
UPDATE sqs_trigger SET server_id = NULL, last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id;

-- name: fence_sqs_trigger
-- Whether the sqs lease is still held (the single SQLite writer needs no row lock).
SELECT server_id FROM sqs_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: fence_sqs_trigger (postgresql)
-- Whether the sqs lease is still held; the share lock holds off a takeover until commit.
SELECT server_id FROM sqs_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended')
FOR SHARE;

-- ---- gcp_trigger ----

-- name: list_stale_gcp_triggers
-- Consumable gcp triggers whose lease is free or older than the staleness window.
SELECT workspace_id, path FROM gcp_trigger
WHERE mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s));

-- name: claim_gcp_trigger
-- Take a free or stale gcp trigger; returns no row when another instance won it.
UPDATE gcp_trigger SET server_id = :server_id, last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s))
RETURNING path;

-- name: ping_gcp_trigger
-- Renew a held gcp lease and record the listener's status; touches nothing once lost.
UPDATE gcp_trigger SET last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: reset_gcp_trigger_for_restart
-- Make an edited (unowned) gcp trigger claimable at once.
UPDATE gcp_trigger SET last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id IS NULL;

-- name: release_gcp_trigger
-- Give a gcp lease back on shutdown, if it is still ours.
UPDATE gcp_trigger SET server_id = NULL, last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id;

-- name: fence_gcp_trigger
-- Whether the gcp lease is still held (the single SQLite writer needs no row lock).
SELECT server_id FROM gcp_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: fence_gcp_trigger (postgresql)
-- Whether the gcp lease is still held; the share lock holds off a takeover until commit.
SELECT server_id FROM gcp_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended')
FOR SHARE;

-- ---- mqtt_trigger ----

-- name: list_stale_mqtt_triggers
-- Consumable mqtt triggers whose lease is free or older than the staleness window.
SELECT workspace_id, path FROM mqtt_trigger
WHERE mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s));

-- name: claim_mqtt_trigger
-- Take a free or stale mqtt trigger; returns no row when another instance won it.
UPDATE mqtt_trigger SET server_id = :server_id, last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s))
RETURNING path;

-- name: ping_mqtt_trigger
-- Renew a held mqtt lease and record the listener's status; touches nothing once lost.
UPDATE mqtt_trigger SET last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: reset_mqtt_trigger_for_restart
-- Make an edited (unowned) mqtt trigger claimable at once.
UPDATE mqtt_trigger SET last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id IS NULL;

-- name: release_mqtt_trigger
-- Give a mqtt lease back on shutdown, if it is still ours.
UPDATE mqtt_trigger SET server_id = NULL, last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id;

-- name: fence_mqtt_trigger
-- Whether the mqtt lease is still held (the single SQLite writer needs no row lock).
SELECT server_id FROM mqtt_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: fence_mqtt_trigger (postgresql)
-- Whether the mqtt lease is still held; the share lock holds off a takeover until commit.
SELECT server_id FROM mqtt_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended')
FOR SHARE;

-- ---- postgres_trigger ----

-- name: list_stale_postgres_triggers
-- Consumable postgres triggers whose lease is free or older than the staleness window.
SELECT workspace_id, path FROM postgres_trigger
WHERE mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s));

-- name: claim_postgres_trigger
-- Take a free or stale postgres trigger; returns no row when another instance won it.
UPDATE postgres_trigger SET server_id = :server_id, last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND mode IN ('enabled', 'suspended')
  AND (last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s))
RETURNING path;

-- name: ping_postgres_trigger
-- Renew a held postgres lease and record the listener's status; touches nothing once lost.
UPDATE postgres_trigger SET last_server_ping = now(), error = :status
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: reset_postgres_trigger_for_restart
-- Make an edited (unowned) postgres trigger claimable at once.
UPDATE postgres_trigger SET last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id IS NULL;

-- name: release_postgres_trigger
-- Give a postgres lease back on shutdown, if it is still ours.
UPDATE postgres_trigger SET server_id = NULL, last_server_ping = NULL
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id;

-- name: fence_postgres_trigger
-- Whether the postgres lease is still held (the single SQLite writer needs no row lock).
SELECT server_id FROM postgres_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended');

-- name: fence_postgres_trigger (postgresql)
-- Whether the postgres lease is still held; the share lock holds off a takeover until commit.
SELECT server_id FROM postgres_trigger
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id
  AND mode IN ('enabled', 'suspended')
FOR SHARE;
