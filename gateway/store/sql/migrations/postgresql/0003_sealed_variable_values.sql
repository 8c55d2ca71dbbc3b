-- Secret values are stored sealed (base64 of nonce, ciphertext and tag): a value of the
-- 15000 characters the API accepts needs more room than varchar(15000).
ALTER TABLE variable ALTER COLUMN value TYPE text;
