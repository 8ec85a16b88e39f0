-- Search filters at a million chunks (store/search.py, issue 21).

-- Every statement of a search says `vector_dims(embedding) = <dim>` (the HNSW index is partial on it). Without
-- statistics the planner takes that for 1 row in 200 and plans a filtered exact search for a handful of rows
-- (nested loops over what are really hundreds of thousands).
CREATE STATISTICS IF NOT EXISTS docflow.chunks_vector_dims ON (vector_dims(embedding)) FROM docflow.chunks;

-- The tenant filter on the chunk itself: `metadata->>'tenant'` (the document's tenant, which save_chunks
-- guarantees) next to the model and doc type, so that a tenant's rows, or a tenant's rows of one type, are
-- found in the chunks' own index instead of by joining every document of the tenant (exact search of a
-- selective filter) or by reading every full-text match of all tenants (lexical ranking of a small tenant).
UPDATE docflow.chunks c SET metadata = c.metadata || jsonb_build_object('tenant', d.tenant)
FROM docflow.documents d
WHERE d.doc_id = c.doc_id AND c.metadata->>'tenant' IS DISTINCT FROM d.tenant;
CREATE INDEX IF NOT EXISTS chunks_model_tenant_doc_type
    ON docflow.chunks (embedding_model, (metadata->>'tenant'), (metadata->>'doc_type'));

-- The document date a chunk carries: the first of DATE_FIELDS (store/search.py, keep in step) holding an ISO
-- date, else NULL (the search then falls back to the day the document was registered). Indexed per tenant, so
-- that a tenant's date range is read from the index rather than computed over all of the tenant's chunks.
CREATE OR REPLACE FUNCTION docflow.chunk_date(metadata jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        CASE WHEN metadata->'fields'->>'invoice_date' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(metadata->'fields'->>'invoice_date', 10) END,
        CASE WHEN metadata->'fields'->>'date' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(metadata->'fields'->>'date', 10) END,
        CASE WHEN metadata->'fields'->>'agreement_date' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(metadata->'fields'->>'agreement_date', 10) END,
        CASE WHEN metadata->'fields'->>'effective_date' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(metadata->'fields'->>'effective_date', 10) END,
        CASE WHEN metadata->'fields'->>'issue_date' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(metadata->'fields'->>'issue_date', 10) END,
        CASE WHEN metadata->'fields'->>'statement_date' ~ '^\d{4}-\d{2}-\d{2}'
             THEN left(metadata->'fields'->>'statement_date', 10) END)
$$;
CREATE INDEX IF NOT EXISTS chunks_model_tenant_date
    ON docflow.chunks (embedding_model, (metadata->>'tenant'), docflow.chunk_date(metadata));
ANALYZE docflow.chunks;
