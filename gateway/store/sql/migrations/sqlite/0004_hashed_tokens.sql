-- Tokens are stored as the SHA-256 of their text (hex) with their first ten characters in clear,
-- to show and revoke them. Rows without a prefix still hold clear text: hash them
-- (gw_sha256 is registered by the store on every connection).
ALTER TABLE token ADD COLUMN token_prefix TEXT;
UPDATE token SET token_prefix = substr(token, 1, 10), token = gw_sha256(token)
WHERE token_prefix IS NULL;
CREATE INDEX IF NOT EXISTS token_email_prefix ON token (email, token_prefix);
CREATE INDEX IF NOT EXISTS token_job ON token (job) WHERE job IS NOT NULL;
