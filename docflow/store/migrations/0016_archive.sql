-- Partition retention: a document processed more than DOCFLOW_PARTITION_RETENTION_DAYS ago leaves Dagster's
-- dynamic partitions (its rows, chunks and runs stay here). archived_at NULL: the document has its partition.
ALTER TABLE docflow.documents ADD COLUMN IF NOT EXISTS archived_at timestamptz;

-- What retention asks each tick: the oldest processed documents not archived yet. Only those rows are in the
-- index (archived ones, the bulk of a large table, and pending or running ones are not), so the scan reads
-- the expired rows in updated_at order and stops at the tick's limit.
CREATE INDEX IF NOT EXISTS documents_archivable ON docflow.documents (updated_at)
    WHERE archived_at IS NULL AND status IN ('done', 'failed');

-- `docflow status` counts the archived documents, per tenant or all
CREATE INDEX IF NOT EXISTS documents_archived ON docflow.documents (tenant) WHERE archived_at IS NOT NULL;

-- A document that is processed again (pending or running) has its partition back: whatever path re-runs it,
-- it is no longer archived, and an archived document is always done or failed.
CREATE OR REPLACE FUNCTION docflow.unarchive_on_rerun() RETURNS trigger AS $$
BEGIN
    NEW.archived_at := NULL;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER documents_unarchive_on_rerun
    BEFORE UPDATE OF status ON docflow.documents
    FOR EACH ROW WHEN (NEW.status IN ('pending', 'running') AND NEW.archived_at IS NOT NULL)
    EXECUTE FUNCTION docflow.unarchive_on_rerun();
