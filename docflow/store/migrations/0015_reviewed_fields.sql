-- Which values a person reviewed, for analysts: one row per reviewed field path with its document, type,
-- the reviewed value, what the extractor had said and whether the review changed it. The typed views
-- already show the reviewed values (reviews are applied to extractions.fields); join this view on doc_id
-- to tell them apart.
CREATE OR REPLACE VIEW docflow.reviewed_fields AS
SELECT
    r.doc_id,
    d.tenant,
    d.filename,
    e.doc_type,
    r.field,
    r.action,
    r.value,
    r.extracted_value,
    r.value IS DISTINCT FROM r.extracted_value AS changed,
    r.reviewer,
    r.reviewed_at
FROM docflow.field_reviews r
JOIN docflow.documents d USING (doc_id)
LEFT JOIN docflow.extractions e USING (doc_id);

-- Applying a review also clears the reviewed path's validation messages (a flagged value would otherwise
-- stay NULL in the typed views), sets its confidence and drops the place on the page of a value it
-- changed: the API role updates those columns too.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'docflow_api') THEN
        GRANT UPDATE (fields, validation_errors, field_confidence, provenance) ON docflow.extractions TO docflow_api;
    END IF;
END $$;
