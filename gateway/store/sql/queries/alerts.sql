-- name: open_trigger_alert
-- Raise an alert for a trigger unless one is open already; returns the id when raised.
INSERT INTO alerts (alert_type, message, workspace_id, resource, acknowledged)
SELECT 'trigger_error', :message, :workspace_id, :resource, false
WHERE NOT EXISTS (
    SELECT 1 FROM alerts
    WHERE alert_type = 'trigger_error' AND workspace_id = :workspace_id
      AND resource = :resource AND NOT acknowledged
)
RETURNING id;

-- name: close_trigger_alerts
-- Mark a trigger's open alerts as resolved.
UPDATE alerts SET acknowledged = true
WHERE alert_type = 'trigger_error' AND workspace_id = :workspace_id
  AND resource = :resource AND NOT acknowledged;
