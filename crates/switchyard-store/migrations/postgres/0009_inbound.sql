-- Inbound webhook gateway (owned by switchyard-inbound).

-- A URL a provider pushes to. Secrets live in the vault: the row names them and keeps their
-- fingerprints, nothing more.
CREATE TABLE webhook_sources (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    scheme               TEXT NOT NULL,
    options              JSONB NOT NULL,
    allow_unverified     BOOLEAN NOT NULL,
    connection_id        TEXT,
    -- The vault secret name; NULL for schemes without a secret.
    secret_name          TEXT,
    secret_version       BIGINT,
    secret_fingerprint   TEXT,
    -- During a rotation the previous secret version is accepted until this time.
    previous_secret_version BIGINT,
    previous_secret_until   TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_sources_by_tenant ON webhook_sources (tenant_id, id);

-- One accepted delivery. The raw request (body, headers, URL, receive time) is encrypted
-- with the tenant's data key in the blob store: `blob_key` names the segment, `blob_offset`
-- and `blob_length` the slice.
CREATE TABLE inbound_events (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source_id     TEXT NOT NULL,
    dedup_key     TEXT NOT NULL,
    event_type    TEXT,
    status        TEXT NOT NULL CHECK (status IN ('received', 'processed', 'failed')),
    blob_key      TEXT NOT NULL,
    blob_offset   BIGINT NOT NULL,
    blob_length   BIGINT NOT NULL,
    body_bytes    BIGINT NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL,
    processed_at  TIMESTAMPTZ,
    subject       TEXT,
    error         TEXT
);
CREATE INDEX inbound_events_by_tenant ON inbound_events (tenant_id, id);
CREATE INDEX inbound_events_by_source ON inbound_events (tenant_id, source_id, id);
CREATE INDEX inbound_events_by_received ON inbound_events (received_at);

-- The atomic dedup claim: one live row per (source, provider delivery id). A row past
-- `expires_at` no longer counts and is replaced by the next delivery with that id.
CREATE TABLE inbound_dedup (
    source_id   TEXT NOT NULL,
    dedup_key   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_id, dedup_key)
);
CREATE INDEX inbound_dedup_by_expiry ON inbound_dedup (expires_at);
