-- Values that validate but that no document would hold (docflow/schemas/plausibility.py: an identifier
-- read as a total, a date before 1900) stay in extractions.fields with a validation error
-- "<field path>: implausible: <why> (got <value>)". The typed views leave such a value out of its typed
-- column (NULL), so that one of them cannot ruin a sum; the raw value stays in fields and
-- validation_errors says why. The views keep their columns, in the same order.

-- true if `errors` (an extraction's validation_errors) flags the field at `path` as implausible
CREATE OR REPLACE FUNCTION docflow.implausible(errors jsonb, path text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_typeof(errors) = 'array' AND EXISTS (
        SELECT 1 FROM jsonb_array_elements(errors) AS m
        WHERE jsonb_typeof(m) = 'string' AND starts_with(m #>> '{}', path || ': implausible: ')
    )
$$;

-- the field's text, or NULL when validation_errors flags it as implausible
CREATE OR REPLACE FUNCTION docflow.plausible(fields jsonb, errors jsonb, field text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN docflow.implausible(errors, field) THEN NULL ELSE fields ->> field END
$$;

CREATE OR REPLACE VIEW docflow.invoices AS
SELECT
    doc_id, tenant, filename, key, classification_confidence,
    fields ->> 'invoice_number' AS invoice_number,
    fields ->> 'vendor_name' AS vendor_name,
    docflow.try_date(docflow.plausible(fields, validation_errors, 'invoice_date')) AS invoice_date,
    docflow.try_date(docflow.plausible(fields, validation_errors, 'due_date')) AS due_date,
    docflow.try_numeric(docflow.plausible(fields, validation_errors, 'total_amount')) AS total_amount,
    upper(fields ->> 'currency') AS currency,
    docflow.try_numeric(docflow.plausible(fields, validation_errors, 'tax_amount')) AS tax_amount,
    docflow.try_numeric(docflow.plausible(fields, validation_errors, 'tax_rate')) AS tax_rate,
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
    docflow.try_date(docflow.plausible(fields, validation_errors, 'date')) AS receipt_date,
    docflow.try_numeric(docflow.plausible(fields, validation_errors, 'total')) AS total,
    upper(fields ->> 'currency') AS currency,
    fields ->> 'address' AS address,
    fields ->> 'payment_method' AS payment_method,
    CASE WHEN jsonb_typeof(fields -> 'items') = 'array' THEN fields -> 'items' END AS items,
    validation_errors, extracted_at
FROM docflow.extracted_documents
WHERE doc_type = 'receipt';

-- contract dates may hold a clause instead of a date: the *_text columns keep it (and keep the raw text
-- of an implausible date)
CREATE OR REPLACE VIEW docflow.contracts AS
SELECT
    doc_id, tenant, filename, key, classification_confidence,
    fields ->> 'title' AS title,
    docflow.try_text_array(fields -> 'parties') AS parties,
    docflow.try_date(docflow.plausible(fields, validation_errors, 'agreement_date')) AS agreement_date,
    docflow.try_date(docflow.plausible(fields, validation_errors, 'effective_date')) AS effective_date,
    docflow.try_date(docflow.plausible(fields, validation_errors, 'expiration_date')) AS expiration_date,
    fields ->> 'agreement_date' AS agreement_date_text,
    fields ->> 'effective_date' AS effective_date_text,
    fields ->> 'expiration_date' AS expiration_text,
    fields ->> 'governing_law' AS governing_law,
    validation_errors, extracted_at
FROM docflow.extracted_documents
WHERE doc_type = 'contract';

CREATE OR REPLACE VIEW docflow.financial_statements AS
SELECT
    doc_id, tenant, filename, key, classification_confidence,
    fields ->> 'institution' AS institution,
    docflow.try_date(docflow.plausible(fields, validation_errors, 'period_end')) AS period_end,
    upper(fields ->> 'currency') AS currency,
    fields ->> 'unit' AS unit,
    CASE WHEN jsonb_typeof(fields -> 'revenue') = 'array' THEN fields -> 'revenue' END AS revenue,
    validation_errors, extracted_at
FROM docflow.extracted_documents
WHERE doc_type = 'financial_statement';

-- one row per revenue figure of a financial statement; a figure's path in validation_errors counts from 0
CREATE OR REPLACE VIEW docflow.revenue_figures AS
SELECT
    f.doc_id, f.tenant, f.filename, f.institution,
    r.ordinality AS figure_index,
    CASE WHEN NOT docflow.implausible(f.validation_errors, format('revenue.%s.value', r.ordinality - 1))
         THEN docflow.try_numeric(r.item ->> 'value') END AS value,
    r.item ->> 'unit' AS unit,
    upper(coalesce(r.item ->> 'currency', f.currency)) AS currency,
    CASE WHEN NOT docflow.implausible(f.validation_errors, format('revenue.%s.period_end', r.ordinality - 1))
         THEN docflow.try_date(r.item ->> 'period_end') END AS period_end,
    r.item ->> 'period_end' AS period_end_text
FROM docflow.financial_statements f
CROSS JOIN LATERAL jsonb_array_elements(coalesce(f.revenue, '[]'::jsonb)) WITH ORDINALITY AS r (item, ordinality)
WHERE jsonb_typeof(r.item) = 'object';
