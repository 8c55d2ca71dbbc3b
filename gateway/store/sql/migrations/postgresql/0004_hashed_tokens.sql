-- Tokens are stored as the SHA-256 of their text (hex) with their first ten characters in clear,
-- to show and revoke them. Rows without a prefix still hold clear text: hash them.
ALTER TABLE token ADD COLUMN IF NOT EXISTS token_prefix varchar(10);
UPDATE token
SET token_prefix = substr(token, 1, 10), token = encode(sha256(convert_to(token, 'UTF8')), 'hex')
WHERE token_prefix IS NULL;
CREATE INDEX IF NOT EXISTS token_email_prefix ON token (email, token_prefix);
CREATE INDEX IF NOT EXISTS token_job ON token (job) WHERE job IS NOT NULL;
