-- The HTTP service (docflow/api): API keys, idempotency keys, per-tenant quotas and webhooks, and row-level
-- security so that the API's database role can only ever see the rows of the tenant set in the transaction
-- (`SELECT set_config('docflow.tenant', <tenant>, true)`). The pipeline keeps connecting as the owner role,
-- which row-level security does not apply to.

-- Upload options the sensor and the passthrough sensor read. `run_by_sensor`: the API registered the document
-- ahead of writing its object, and the S3 sensor requests its run (with `priority` as `dagster/priority`)
-- when it lists the object; documents registered by `docflow run` are run by the CLI itself.
ALTER TABLE docflow.documents ADD COLUMN IF NOT EXISTS priority integer NOT NULL DEFAULT 0;
ALTER TABLE docflow.documents ADD COLUMN IF NOT EXISTS passthrough boolean NOT NULL DEFAULT false;
ALTER TABLE docflow.documents ADD COLUMN IF NOT EXISTS run_by_sensor boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS documents_passthrough ON docflow.documents (status) WHERE passthrough;

-- API keys: only the sha256 of the key is stored; each key belongs to one tenant.
CREATE TABLE IF NOT EXISTS docflow.api_keys (
    key_hash   text PRIMARY KEY,
    tenant     text NOT NULL,
    name       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON docflow.api_keys (tenant);

-- Per-tenant settings: quota overrides (NULL = the defaults from settings) and the passthrough webhook.
CREATE TABLE IF NOT EXISTS docflow.tenants (
    tenant         text PRIMARY KEY,
    docs_per_day   integer,
    bytes_per_day  bigint,
    webhook_url    text,
    webhook_secret text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Usage per tenant and UTC day; the row is locked (SELECT ... FOR UPDATE) while a new document is counted.
CREATE TABLE IF NOT EXISTS docflow.quota_usage (
    tenant    text NOT NULL,
    day       date NOT NULL,
    documents integer NOT NULL DEFAULT 0,
    bytes     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day)
);

-- Idempotency-Key: the first request with a key inserts the row (the primary key decides between two that
-- arrive at once), the others wait for its stored response.
CREATE TABLE IF NOT EXISTS docflow.idempotency (
    tenant      text NOT NULL,
    key         text NOT NULL,
    endpoint    text NOT NULL,
    state       text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    status_code integer,
    response    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, key)
);

-- The tenant of a key, for the API role, which cannot read api_keys itself.
CREATE OR REPLACE FUNCTION docflow.api_key_tenant(hash text) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, docflow AS
$$ SELECT tenant FROM docflow.api_keys WHERE key_hash = hash AND revoked_at IS NULL $$;
REVOKE ALL ON FUNCTION docflow.api_key_tenant(text) FROM PUBLIC;

-- Row-level security: the policies apply to every role that is neither the owner nor BYPASSRLS.
ALTER TABLE docflow.documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE docflow.classifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE docflow.parsed_documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE docflow.extractions ENABLE ROW LEVEL SECURITY;
ALTER TABLE docflow.chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE docflow.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE docflow.quota_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE docflow.idempotency ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON docflow.documents
    USING (tenant = current_setting('docflow.tenant', true))
    WITH CHECK (tenant = current_setting('docflow.tenant', true));
CREATE POLICY tenant_isolation ON docflow.tenants
    USING (tenant = current_setting('docflow.tenant', true))
    WITH CHECK (tenant = current_setting('docflow.tenant', true));
CREATE POLICY tenant_isolation ON docflow.quota_usage
    USING (tenant = current_setting('docflow.tenant', true))
    WITH CHECK (tenant = current_setting('docflow.tenant', true));
CREATE POLICY tenant_isolation ON docflow.idempotency
    USING (tenant = current_setting('docflow.tenant', true))
    WITH CHECK (tenant = current_setting('docflow.tenant', true));
-- Tables keyed by doc_id: visible when their document is the tenant's.
CREATE POLICY tenant_isolation ON docflow.classifications USING (EXISTS (
    SELECT 1 FROM docflow.documents d
    WHERE d.doc_id = classifications.doc_id AND d.tenant = current_setting('docflow.tenant', true)));
CREATE POLICY tenant_isolation ON docflow.parsed_documents USING (EXISTS (
    SELECT 1 FROM docflow.documents d
    WHERE d.doc_id = parsed_documents.doc_id AND d.tenant = current_setting('docflow.tenant', true)));
CREATE POLICY tenant_isolation ON docflow.extractions USING (EXISTS (
    SELECT 1 FROM docflow.documents d
    WHERE d.doc_id = extractions.doc_id AND d.tenant = current_setting('docflow.tenant', true)));
CREATE POLICY tenant_isolation ON docflow.chunks USING (EXISTS (
    SELECT 1 FROM docflow.documents d
    WHERE d.doc_id = chunks.doc_id AND d.tenant = current_setting('docflow.tenant', true)));

-- The API's role: may log in, no superuser, no BYPASSRLS. Production sets its password (ALTER ROLE) and
-- DOCFLOW_API_DATABASE_URL; a database user without CREATEROLE creates it beforehand.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'docflow_api') THEN
        CREATE ROLE docflow_api LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role docflow_api (no CREATEROLE): create it and re-run the grants';
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'docflow_api') THEN
        GRANT USAGE ON SCHEMA docflow TO docflow_api;
        GRANT SELECT, INSERT, UPDATE, DELETE ON docflow.documents TO docflow_api;
        GRANT SELECT ON docflow.classifications, docflow.parsed_documents, docflow.extractions,
            docflow.chunks TO docflow_api;
        GRANT SELECT, INSERT, UPDATE ON docflow.tenants TO docflow_api;
        GRANT SELECT, INSERT, UPDATE, DELETE ON docflow.quota_usage, docflow.idempotency TO docflow_api;
        GRANT EXECUTE ON FUNCTION docflow.api_key_tenant(text) TO docflow_api;
    END IF;
END $$;
