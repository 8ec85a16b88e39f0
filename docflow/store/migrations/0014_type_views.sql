-- Types as data: the typed view of each document type is generated from its JSON Schema file
-- (docflow/store/typed_views.py) by every migrate, after these files. The views expose the extraction's
-- provenance (0012): extracted_documents gains it as its last column (a view may only grow at its end).
CREATE OR REPLACE VIEW docflow.extracted_documents AS
SELECT
    e.doc_id,
    d.tenant,
    d.filename,
    d.key,
    d.status,
    e.doc_type,
    c.confidence AS classification_confidence,
    e.schema_name,
    e.schema_version,
    e.fields,
    e.field_confidence,
    e.validation_errors,
    e.backend AS extract_backend,
    e.updated_at AS extracted_at,
    e.provenance
FROM docflow.extractions e
JOIN docflow.documents d USING (doc_id)
LEFT JOIN docflow.classifications c USING (doc_id);

-- the views migrate generated: which type, from which definition (a hash of its SQL, so an unchanged view
-- is not replaced again), and when
CREATE TABLE IF NOT EXISTS docflow.type_views (
    view_name   text PRIMARY KEY,
    doc_type    text NOT NULL,
    schema_file text,
    sql_sha256  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
