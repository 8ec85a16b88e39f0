-- Names matched the way people type them and OCR reads them (store/search.py): a document's name-like values
-- (name fields of its extraction, its filename, the first line of its text) as a set of character trigrams,
-- stored on the document's first chunk and GIN-indexed. pg_trgm would do this, but the embedded Postgres
-- (pgserver) does not ship it; arrays of text and their GIN operators are core Postgres.

-- A name reduced to what survives OCR and typing: lower case, the digits OCR reads for letters as those letters
-- (0 o, 1 l i | alike, 5 s), legal forms and filler words dropped, then everything but letters and digits removed
-- so that words run together or split apart compare equal ("SAN YU C0." = "sanyu co" = "san yu").
CREATE OR REPLACE FUNCTION docflow.name_key(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT regexp_replace(
        regexp_replace(
            translate(lower(coalesce(value, '')), '01l|5_', 'oiiis '),
            '\m(inc|iic|itd|iimited|corp|corporation|co|company|sdn|bhd|sdnbhd|gmbh|ag|pic|ip|iip|sa|nv|bv|'
            'pte|pty|the|and|of|for)\M',
            ' ', 'g'),
        '[^[:alnum:]]+', '', 'g')
$$;

-- The distinct trigrams of a name's key, padded as pg_trgm pads a word (two blanks before, one after).
CREATE OR REPLACE FUNCTION docflow.name_trigrams(value text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(p, i, 3)), '{}')
    FROM (SELECT '  ' || docflow.name_key(value) || ' ' AS p) x, generate_series(1, length(p) - 2) i
    WHERE length(p) > 3
$$;

-- A document's name-like values: top-level extracted fields named like a name (vendor_name, store_name, name,
-- parties, institution...; strings or lists of strings), the filename without its extension, the first line
-- of its text.
CREATE OR REPLACE FUNCTION docflow.doc_names(metadata jsonb, text text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(v) FILTER (WHERE v IS NOT NULL AND length(v) BETWEEN 2 AND 120)
    FROM (
        SELECT CASE WHEN jsonb_typeof(f.val) = 'string' THEN f.val #>> '{}' END AS v
        FROM jsonb_each(CASE WHEN jsonb_typeof(metadata->'fields') = 'object' THEN metadata->'fields' END)
             AS f(key, val)
        WHERE f.key ~* '(^|_)(names?|part(y|ies)|vendor|store|merchant|company|issuer|institution|supplier|seller)$'
        UNION ALL
        SELECT e.v
        FROM jsonb_each(CASE WHEN jsonb_typeof(metadata->'fields') = 'object' THEN metadata->'fields' END)
             AS f(key, val),
             jsonb_array_elements_text(CASE WHEN jsonb_typeof(f.val) = 'array' THEN f.val END) AS e(v)
        WHERE f.key ~* '(^|_)(names?|part(y|ies)|vendor|store|merchant|company|issuer|institution|supplier|seller)$'
        UNION ALL
        SELECT regexp_replace(metadata->>'filename', '\.[A-Za-z0-9]{1,5}$', '')
        UNION ALL
        SELECT left(split_part(btrim(text, E' \t\r\n#*|'), E'\n', 1), 120)
    ) names
$$;

-- The union of the trigrams of a document's names.
CREATE OR REPLACE FUNCTION docflow.doc_name_trigrams(metadata jsonb, text text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT t), '{}')
    FROM unnest(docflow.doc_names(metadata, text)) AS n(v), unnest(docflow.name_trigrams(n.v)) AS t
$$;

-- Only a document's first chunk carries them (the metadata is the same on every chunk).
ALTER TABLE docflow.chunks ADD COLUMN IF NOT EXISTS name_trgm text[]
    GENERATED ALWAYS AS (CASE WHEN chunk_index = 0 THEN docflow.doc_name_trigrams(metadata, text) END) STORED;
CREATE INDEX IF NOT EXISTS chunks_name_trgm ON docflow.chunks USING gin (name_trgm) WHERE chunk_index = 0;
ANALYZE docflow.chunks;
