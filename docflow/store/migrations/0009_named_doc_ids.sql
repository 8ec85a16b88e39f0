-- Document ids name the file (`<tenant>-<slug of the file name>-<sha256 prefix>`, docflow.bucket.make_doc_id)
-- so that a person finds a document in the Dagster UI by its name. Identity stays the content: one row per
-- tenant and bytes, whatever name they arrive under. Registration inserts with ON CONFLICT DO NOTHING and
-- reads back the id stored for the bytes (store/db.py, register_document).
CREATE UNIQUE INDEX IF NOT EXISTS documents_tenant_sha256 ON docflow.documents (tenant, sha256);

-- `docflow rekey` renames documents registered under the old ids (`<tenant>-<32 hex>`): one UPDATE of the
-- document carries its classification, parse, extraction and chunks with it. Every foreign key on
-- documents gains ON UPDATE CASCADE, with its other clauses as they are.
DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT c.conname, c.conrelid::regclass AS tbl, pg_get_constraintdef(c.oid) AS def
        FROM pg_constraint c
        WHERE c.contype = 'f' AND c.confrelid = 'docflow.documents'::regclass AND c.confupdtype <> 'c'
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I %s ON UPDATE CASCADE',
                       fk.tbl, fk.conname, fk.conname, fk.def);
    END LOOP;
END $$;

-- The renames done: old id -> new id, and whether Dagster has followed (new partition added, done
-- documents' assets recorded as materialized under it, old partition deleted). Lets a re-run finish a
-- rename that was interrupted between Postgres and Dagster, and tells where an old id went.
CREATE TABLE IF NOT EXISTS docflow.doc_id_renames (
    old_id      text PRIMARY KEY,
    new_id      text NOT NULL,
    renamed_at  timestamptz NOT NULL DEFAULT now(),
    dagster_at  timestamptz
);
CREATE INDEX IF NOT EXISTS doc_id_renames_pending ON docflow.doc_id_renames (renamed_at) WHERE dagster_at IS NULL;
