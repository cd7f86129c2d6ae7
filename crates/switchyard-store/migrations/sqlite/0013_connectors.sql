-- Connections, sync checkpoints and records (owned by switchyard-connectors' `store` module;
-- nothing else writes these tables).
-- Times are DbTime text (fixed-width UTC RFC 3339, microseconds), so text order is time order.
-- JSON columns are text on both engines so one SQL text serves both.
-- No foreign key to tenants, as for jobs and webhooks: purging a tenant must not wait on them.

-- A tenant's account at a provider, reached through a connector. Holds only non-secret
-- settings; `credential` is a JSON reference to a vault secret (name, version, fingerprint),
-- never secret material. `version` is bumped on every update, for optimistic concurrency.
CREATE TABLE connections (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    -- The connector's id (`github`, `okta`…).
    provider    TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- JSON object of the connector's settings.
    config      TEXT NOT NULL,
    base_url    TEXT,
    -- JSON {"name", "version", "fingerprint"}; NULL for providers that need no credential.
    credential  TEXT,
    status      TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- One row per (connection, stream): its sync checkpoint and its change counter. Every write
-- to a stream's records first locks this row, so writers of one stream queue behind each other
-- and `record_changes.seq` is assigned in commit order. A reset clears the checkpoint but keeps
-- `last_seq`: consumers' change cursors must stay valid. The foreign key makes a write for a
-- connection being deleted wait for, then fail after, the deletion (no orphan records).
CREATE TABLE sync_streams (
    tenant_id      TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    stream         TEXT NOT NULL,
    -- JSON value the connector resumes from; NULL: never synced or reset.
    checkpoint     TEXT,
    checkpoint_run TEXT,
    checkpoint_at  TEXT,
    last_seq       INTEGER NOT NULL,
    -- The run holding the stream's sync lease, and until when: one sync of a stream at a
    -- time, across processes; an expired lease (its worker died) may be taken over.
    lease_holder   TEXT,
    lease_until    TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, stream),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id)
        ON DELETE CASCADE
);

-- The current state of every record synced. `data` is canonical JSON (keys sorted at every
-- level) and `content_hash` its SHA-256 in hex: an unchanged record is recognised without
-- comparing documents. Deleted records stay (deleted = TRUE) so that a record that comes back
-- is announced as added again. No foreign key: a check per row costs on million-row syncs, and
-- the connection's deletion removes these rows itself.
CREATE TABLE records (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    stream        TEXT NOT NULL,
    primary_key   TEXT NOT NULL,
    data          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    deleted       BOOLEAN NOT NULL,
    -- The last sync run that returned this record: full-refresh deletion detection marks
    -- deleted every live record a finished run did not see.
    last_seen_run TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, stream, primary_key)
);

-- Every change of a stream's records, in commit order: `seq` counts 1, 2, 3… per stream
-- (from sync_streams.last_seq), the cursor of the change stream consumers read.
CREATE TABLE record_changes (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    stream        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('added', 'updated', 'deleted')),
    primary_key   TEXT NOT NULL,
    -- The record as of this change; for a deletion, its last known data.
    data          TEXT NOT NULL,
    -- NULL for changes outside a sync run (webhook upserts).
    run_id        TEXT,
    at            TEXT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, stream, seq)
);
