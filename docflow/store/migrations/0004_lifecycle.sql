-- Document lifecycle: when new bytes arrive under a key, the old document loses that key; once it has no key
-- left it is superseded by the new document and removed (by the reconciliation sensor) when that one is done.
ALTER TABLE docflow.documents ADD COLUMN IF NOT EXISTS superseded_by text;
CREATE INDEX IF NOT EXISTS documents_fingerprint ON docflow.documents (status, config_fingerprint);
