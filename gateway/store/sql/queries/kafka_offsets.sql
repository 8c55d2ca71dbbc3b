-- Kafka triggers' offsets, as the listener that holds a trigger moves them.

-- name: clear_kafka_reset_offset
-- The trigger's `reset_offset` was applied: clear it, while the given instance holds the row.
UPDATE kafka_trigger SET reset_offset = false
WHERE workspace_id = :workspace_id AND path = :path AND server_id = :server_id AND reset_offset;
