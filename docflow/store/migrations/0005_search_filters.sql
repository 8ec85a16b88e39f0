-- Search filters (store/search.py) over chunk metadata: indexes on the expressions they compare, which give
-- the planner statistics for them too. Without those it estimates a filtered search at one row and picks
-- nested loops over sequential scans (seconds at 100k chunks) for the exact search of a selective filter.

-- The document amount a chunk carries: the first of AMOUNT_FIELDS (store/search.py, keep in step) present in
-- metadata.fields, as numeric when it is a plain number, else NULL. One expression, so that it is inlined.
CREATE OR REPLACE FUNCTION docflow.chunk_amount(metadata jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN coalesce(metadata->'fields'->>'total_amount', metadata->'fields'->>'total',
                              metadata->'fields'->>'amount') ~ '^-?[0-9]+(\.[0-9]+)?$'
                THEN coalesce(metadata->'fields'->>'total_amount', metadata->'fields'->>'total',
                              metadata->'fields'->>'amount')::numeric END
$$;

CREATE INDEX IF NOT EXISTS chunks_model_doc_type ON docflow.chunks (embedding_model, (metadata->>'doc_type'));
CREATE INDEX IF NOT EXISTS chunks_model_amount
    ON docflow.chunks (embedding_model, docflow.chunk_amount(metadata));
ANALYZE docflow.chunks;
