-- Completion webhooks for every document (docflow/webhooks.py): a tenant's endpoints, and a transactional
-- outbox of deliveries. The trigger below writes one delivery per endpoint in the same transaction that
-- marks a document done or failed, so an event is never lost when the process that ran the document stops
-- right after; `webhook_sensor` posts what is due, whoever wrote it.

CREATE TABLE IF NOT EXISTS docflow.webhook_endpoints (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant     text NOT NULL,
    url        text NOT NULL,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled   boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_tenant ON docflow.webhook_endpoints (tenant) WHERE NOT disabled;

-- One row per event and endpoint. `event_id` is shared by the endpoints of one event (receivers dedupe on
-- it); no foreign key to documents: a delivery outlives a document deleted meanwhile (passthrough, bucket
-- deletes). Deleting an endpoint deletes its deliveries.
CREATE TABLE IF NOT EXISTS docflow.webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL,
    endpoint_id     uuid NOT NULL REFERENCES docflow.webhook_endpoints ON DELETE CASCADE,
    tenant          text NOT NULL,
    doc_id          text NOT NULL,
    event           text NOT NULL CHECK (event IN ('document.done', 'document.failed')),
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    last_status     integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (event_id, endpoint_id)
);
-- what the sensor claims: only pending rows are indexed, so delivered history costs the claim nothing
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON docflow.webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON docflow.webhook_deliveries (endpoint_id, state);
CREATE INDEX IF NOT EXISTS webhook_deliveries_tenant ON docflow.webhook_deliveries (tenant, state);
CREATE INDEX IF NOT EXISTS webhook_deliveries_doc ON docflow.webhook_deliveries (doc_id);
-- what pruning deletes: finished deliveries, oldest first
CREATE INDEX IF NOT EXISTS webhook_deliveries_finished ON docflow.webhook_deliveries (created_at)
    WHERE state <> 'pending';

-- The outbox writer. SECURITY DEFINER: the API role may update documents too, and must not need (nor get)
-- the right to write deliveries. Passthrough documents are left out: their results go to the tenant's
-- passthrough webhook, and nothing about them may be kept after that.
CREATE OR REPLACE FUNCTION docflow.enqueue_document_webhooks() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, docflow AS
$$
DECLARE
    ev text := CASE WHEN NEW.status = 'done' THEN 'document.done' ELSE 'document.failed' END;
    eid uuid := gen_random_uuid();
BEGIN
    IF NEW.passthrough THEN
        RETURN NULL;
    END IF;
    INSERT INTO docflow.webhook_deliveries (event_id, endpoint_id, tenant, doc_id, event, payload)
    SELECT eid, e.id, NEW.tenant, NEW.doc_id, ev, jsonb_build_object(
               'event_id', eid,
               'event', ev,
               'doc_id', NEW.doc_id,
               'tenant', NEW.tenant,
               'filename', NEW.filename,
               'size', NEW.size,
               'content_type', NEW.content_type,
               'pages', NEW.pages,
               'status', NEW.status,
               'doc_type', (SELECT c.doc_type FROM docflow.classifications c WHERE c.doc_id = NEW.doc_id),
               'error', NEW.error,
               'created_at', NEW.created_at,
               'finished_at', NEW.updated_at,
               'occurred_at', now())
    FROM docflow.webhook_endpoints e
    WHERE e.tenant = NEW.tenant AND NOT e.disabled;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION docflow.enqueue_document_webhooks() FROM PUBLIC;

-- Every transition into done or failed is an event: a document processed again later (re-run, retry of a
-- failed one, new configuration) emits a new event with a new event id.
CREATE OR REPLACE TRIGGER documents_webhooks_update
    AFTER UPDATE OF status ON docflow.documents
    FOR EACH ROW
    WHEN (NEW.status IN ('done', 'failed') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION docflow.enqueue_document_webhooks();
CREATE OR REPLACE TRIGGER documents_webhooks_insert
    AFTER INSERT ON docflow.documents
    FOR EACH ROW
    WHEN (NEW.status IN ('done', 'failed'))
    EXECUTE FUNCTION docflow.enqueue_document_webhooks();

ALTER TABLE docflow.webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE docflow.webhook_deliveries ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON docflow.webhook_endpoints;
CREATE POLICY tenant_isolation ON docflow.webhook_endpoints
    USING (tenant = current_setting('docflow.tenant', true))
    WITH CHECK (tenant = current_setting('docflow.tenant', true));
DROP POLICY IF EXISTS tenant_isolation ON docflow.webhook_deliveries;
CREATE POLICY tenant_isolation ON docflow.webhook_deliveries
    USING (tenant = current_setting('docflow.tenant', true))
    WITH CHECK (tenant = current_setting('docflow.tenant', true));

-- The API registers, lists and deletes its tenant's endpoints and reads their deliveries' counts; it never
-- writes deliveries (the trigger and the sensor do, as the owner).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'docflow_api') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON docflow.webhook_endpoints TO docflow_api;
        GRANT SELECT ON docflow.webhook_deliveries TO docflow_api;
    END IF;
END $$;
