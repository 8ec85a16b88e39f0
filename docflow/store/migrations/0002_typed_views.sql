-- Typed views per document type for analysts: one row per document whose extraction has that type, with
-- real column types (numeric amounts, dates, text arrays) cast from docflow.extractions.fields (jsonb).
-- Casts never fail: a value that does not convert is NULL in the typed column (the raw text stays in
-- fields, and validation_errors says why). Views are replaced as a whole by later migrations.

-- numeric or NULL, never an error
CREATE OR REPLACE FUNCTION docflow.try_numeric(value text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF value IS NULL OR value !~ '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$' THEN
        RETURN NULL;
    END IF;
    RETURN value::numeric;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

-- date from an ISO yyyy-mm-dd string (what extractors store) or NULL, never an error
CREATE OR REPLACE FUNCTION docflow.try_date(value text) RETURNS date
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF value IS NULL OR value !~ '^\s*\d{4}-\d{2}-\d{2}\s*$' THEN
        RETURN NULL;
    END IF;
    RETURN value::date;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

-- a jsonb array of strings as text[]; a single string as a one-element array; anything else NULL
CREATE OR REPLACE FUNCTION docflow.try_text_array(value jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(value)
        WHEN 'array' THEN ARRAY(
            SELECT CASE jsonb_typeof(x) WHEN 'string' THEN x #>> '{}' ELSE x::text END
            FROM jsonb_array_elements(value) AS x
        )
        WHEN 'string' THEN ARRAY[value #>> '{}']
        ELSE NULL
    END
$$;

-- what every typed view starts from: the extraction, its document and its classification
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
    e.updated_at AS extracted_at
FROM docflow.extractions e
JOIN docflow.documents d USING (doc_id)
LEFT JOIN docflow.classifications c USING (doc_id);

CREATE OR REPLACE VIEW docflow.invoices AS
SELECT
    doc_id, tenant, filename, key, classification_confidence,
    fields ->> 'invoice_number' AS invoice_number,
    fields ->> 'vendor_name' AS vendor_name,
    docflow.try_date(fields ->> 'invoice_date') AS invoice_date,
    docflow.try_date(fields ->> 'due_date') AS due_date,
    docflow.try_numeric(fields ->> 'total_amount') AS total_amount,
    upper(fields ->> 'currency') AS currency,
    docflow.try_numeric(fields ->> 'tax_amount') AS tax_amount,
    docflow.try_numeric(fields ->> 'tax_rate') AS tax_rate,
    CASE WHEN jsonb_typeof(fields -> 'line_items') = 'array' THEN fields -> 'line_items' END AS line_items,
    CASE WHEN jsonb_typeof(fields -> 'line_items') = 'array'
         THEN jsonb_array_length(fields -> 'line_items') END AS n_line_items,
    validation_errors, extracted_at
FROM docflow.extracted_documents
WHERE doc_type = 'invoice';

CREATE OR REPLACE VIEW docflow.receipts AS
SELECT
    doc_id, tenant, filename, key, classification_confidence,
    fields ->> 'store_name' AS store_name,
    docflow.try_date(fields ->> 'date') AS receipt_date,
    docflow.try_numeric(fields ->> 'total') AS total,
    upper(fields ->> 'currency') AS currency,
    fields ->> 'address' AS address,
    fields ->> 'payment_method' AS payment_method,
    CASE WHEN jsonb_typeof(fields -> 'items') = 'array' THEN fields -> 'items' END AS items,
    validation_errors, extracted_at
FROM docflow.extracted_documents
WHERE doc_type = 'receipt';

-- contract dates may hold a clause instead of a date: the *_text columns keep it
CREATE OR REPLACE VIEW docflow.contracts AS
SELECT
    doc_id, tenant, filename, key, classification_confidence,
    fields ->> 'title' AS title,
    docflow.try_text_array(fields -> 'parties') AS parties,
    docflow.try_date(fields ->> 'agreement_date') AS agreement_date,
    docflow.try_date(fields ->> 'effective_date') AS effective_date,
    docflow.try_date(fields ->> 'expiration_date') AS expiration_date,
    fields ->> 'agreement_date' AS agreement_date_text,
    fields ->> 'effective_date' AS effective_date_text,
    fields ->> 'expiration_date' AS expiration_text,
    fields ->> 'governing_law' AS governing_law,
    validation_errors, extracted_at
FROM docflow.extracted_documents
WHERE doc_type = 'contract';

CREATE OR REPLACE VIEW docflow.resumes AS
SELECT
    doc_id, tenant, filename, key, classification_confidence,
    fields ->> 'name' AS name,
    fields ->> 'email' AS email,
    fields ->> 'phone' AS phone,
    docflow.try_text_array(fields -> 'skills') AS skills,
    CASE WHEN jsonb_typeof(fields -> 'experience') = 'array' THEN fields -> 'experience' END AS experience,
    CASE WHEN jsonb_typeof(fields -> 'education') = 'array' THEN fields -> 'education' END AS education,
    validation_errors, extracted_at
FROM docflow.extracted_documents
WHERE doc_type = 'resume';

CREATE OR REPLACE VIEW docflow.financial_statements AS
SELECT
    doc_id, tenant, filename, key, classification_confidence,
    fields ->> 'institution' AS institution,
    docflow.try_date(fields ->> 'period_end') AS period_end,
    upper(fields ->> 'currency') AS currency,
    fields ->> 'unit' AS unit,
    CASE WHEN jsonb_typeof(fields -> 'revenue') = 'array' THEN fields -> 'revenue' END AS revenue,
    validation_errors, extracted_at
FROM docflow.extracted_documents
WHERE doc_type = 'financial_statement';

-- one row per revenue figure of a financial statement
CREATE OR REPLACE VIEW docflow.revenue_figures AS
SELECT
    f.doc_id, f.tenant, f.filename, f.institution,
    r.ordinality AS figure_index,
    docflow.try_numeric(r.item ->> 'value') AS value,
    r.item ->> 'unit' AS unit,
    upper(coalesce(r.item ->> 'currency', f.currency)) AS currency,
    docflow.try_date(r.item ->> 'period_end') AS period_end,
    r.item ->> 'period_end' AS period_end_text
FROM docflow.financial_statements f
CROSS JOIN LATERAL jsonb_array_elements(coalesce(f.revenue, '[]'::jsonb)) WITH ORDINALITY AS r (item, ordinality)
WHERE jsonb_typeof(r.item) = 'object';
