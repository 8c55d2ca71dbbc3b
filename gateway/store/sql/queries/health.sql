-- name: ping_database
-- The cheapest round trip to the database.
SELECT 1 AS ok;
