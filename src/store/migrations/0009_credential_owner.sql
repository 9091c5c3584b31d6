-- A credential batch belongs to the user who was shown the passwords: it can be downloaded in
-- every format while that user stays on the credentials page, and is deleted when they leave it.
ALTER TABLE credential_batches ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE CASCADE;
CREATE INDEX credential_batches_user ON credential_batches(user_id);
