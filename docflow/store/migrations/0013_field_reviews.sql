-- Review: a person confirms or corrects an extracted value. One row per document and field path; it wins over
-- any later re-extraction (applied again whenever the document's extraction is saved) until removed.
CREATE TABLE IF NOT EXISTS docflow.field_reviews (
    doc_id          text NOT NULL REFERENCES docflow.documents (doc_id) ON DELETE CASCADE ON UPDATE CASCADE,
    field           text NOT NULL,            -- a path as in extractions.provenance
    action          text NOT NULL CHECK (action IN ('confirm', 'correct')),
    value           jsonb,                    -- the reviewed value (for 'confirm': the value confirmed)
    extracted_value jsonb,                    -- what the extractor had said when the review was made
    reviewer        text NOT NULL,
    reviewed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (doc_id, field)
);

ALTER TABLE docflow.field_reviews ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON docflow.field_reviews;
CREATE POLICY tenant_isolation ON docflow.field_reviews USING (EXISTS (
    SELECT 1 FROM docflow.documents d
    WHERE d.doc_id = field_reviews.doc_id AND d.tenant = current_setting('docflow.tenant', true)));

-- The API records reviews (PATCH /v1/documents/{id}/fields) and applies them to the stored extraction.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'docflow_api') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON docflow.field_reviews TO docflow_api;
        GRANT UPDATE (fields) ON docflow.extractions TO docflow_api;
    END IF;
END $$;
