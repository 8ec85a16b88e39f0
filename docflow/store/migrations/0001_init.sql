-- docflow's tables. Applied once, in order, under an advisory lock (see store/db.py).
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS docflow;

-- One row per document: unique bytes for a tenant. doc_id is the Dagster partition key.
CREATE TABLE docflow.documents (
    doc_id             text PRIMARY KEY,
    tenant             text NOT NULL,
    bucket             text NOT NULL,
    key                text NOT NULL,                 -- the key the document was first seen under
    keys               text[] NOT NULL DEFAULT '{}',  -- every key holding these bytes
    etag               text NOT NULL DEFAULT '',
    sha256             text NOT NULL,
    size               bigint NOT NULL DEFAULT 0,
    content_type       text NOT NULL DEFAULT '',
    filename           text NOT NULL DEFAULT '',
    pages              integer,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'running', 'done', 'failed')),
    stage              text,          -- the last asset that completed (or failed)
    error              text,          -- why the document failed, for people
    config_fingerprint text,          -- backends + model + schema versions it was processed with
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_tenant_status ON docflow.documents (tenant, status);
CREATE INDEX documents_keys ON docflow.documents USING gin (keys);

CREATE TABLE docflow.classifications (
    doc_id     text PRIMARY KEY REFERENCES docflow.documents ON DELETE CASCADE,
    doc_type   text NOT NULL,
    confidence real NOT NULL,
    reasoning  text NOT NULL,
    scores     jsonb NOT NULL DEFAULT '{}',
    backend    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX classifications_doc_type ON docflow.classifications (doc_type);

CREATE TABLE docflow.parsed_documents (
    doc_id     text PRIMARY KEY REFERENCES docflow.documents ON DELETE CASCADE,
    markdown   text NOT NULL,
    text       text NOT NULL,
    pages      integer,
    blocks     jsonb NOT NULL DEFAULT '[]',
    parser     text NOT NULL,
    warnings   jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE docflow.extractions (
    doc_id            text PRIMARY KEY REFERENCES docflow.documents ON DELETE CASCADE,
    doc_type          text NOT NULL,
    schema_name       text NOT NULL,
    schema_version    text NOT NULL,
    fields            jsonb NOT NULL,
    field_confidence  jsonb NOT NULL DEFAULT '{}',
    validation_errors jsonb NOT NULL DEFAULT '[]',
    backend           text NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX extractions_fields ON docflow.extractions USING gin (fields jsonb_path_ops);

-- Retrieval units. `embedding` has no fixed dimension so that a model change never needs a table rewrite;
-- store/db.py creates one HNSW index per dimension in use (an expression index over embedding::vector(n)),
-- and every query filters on embedding_model so vectors of different models never mix.
CREATE TABLE docflow.chunks (
    doc_id          text NOT NULL REFERENCES docflow.documents ON DELETE CASCADE,
    chunk_index     integer NOT NULL,
    text            text NOT NULL,
    heading_path    text[] NOT NULL DEFAULT '{}',
    page_start      integer,
    page_end        integer,
    n_tokens        integer NOT NULL DEFAULT 0,
    metadata        jsonb NOT NULL DEFAULT '{}',
    embedding_model text NOT NULL,
    embedding       vector NOT NULL,
    tsv             tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    PRIMARY KEY (doc_id, chunk_index)
);
CREATE INDEX chunks_tsv ON docflow.chunks USING gin (tsv);
CREATE INDEX chunks_model ON docflow.chunks (embedding_model);
