-- Usage metering (docflow/metering.py): what the pipeline's steps did, per tenant, UTC day, step and backend.
-- Each step adds its lines when it ends (one upsert, store/usage.py), failed or not: counts are what was
-- done, so a retried attempt's remote calls and a re-processed document count again. `cost_usd` is an
-- estimate from data/prices.yaml at the time of writing. The quota's counter stays docflow.quota_usage.
CREATE TABLE IF NOT EXISTS docflow.usage (
    tenant        text NOT NULL,
    day           date NOT NULL,
    step          text NOT NULL,  -- raw_file, classification, parsed_markdown, extracted_fields, embeddings
    backend       text NOT NULL,  -- local, openai, llamacloud, bucket
    model         text NOT NULL DEFAULT '',  -- the remote model, or what ran locally (e.g. rapidocr)
    documents     integer NOT NULL DEFAULT 0,
    pages         integer NOT NULL DEFAULT 0,
    bytes         bigint NOT NULL DEFAULT 0,
    ocr_pages     integer NOT NULL DEFAULT 0,
    remote_calls  integer NOT NULL DEFAULT 0,
    input_tokens  bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    pages_billed  integer NOT NULL DEFAULT 0,
    credits       numeric(16, 4) NOT NULL DEFAULT 0,
    cost_usd      numeric(16, 6) NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, day, step, backend, model)
);
-- The daily asset and `docflow usage` without --tenant read one day (or range) for every tenant.
CREATE INDEX IF NOT EXISTS usage_day ON docflow.usage (day);

ALTER TABLE docflow.usage ENABLE ROW LEVEL SECURITY;
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_policies WHERE schemaname = 'docflow' AND tablename = 'usage'
            AND policyname = 'tenant_isolation'
    ) THEN
        CREATE POLICY tenant_isolation ON docflow.usage
            USING (tenant = current_setting('docflow.tenant', true));
    END IF;
END $$;

-- The API reads its tenant's usage (GET /v1/usage); only the pipeline (the owner role) writes it.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'docflow_api') THEN
        GRANT SELECT ON docflow.usage TO docflow_api;
    END IF;
END $$;
