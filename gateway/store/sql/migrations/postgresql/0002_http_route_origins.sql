-- Per-route CORS: the origins an HTTP route answers to (NULL: the instance default).
ALTER TABLE http_trigger ADD COLUMN allowed_origins text[];
