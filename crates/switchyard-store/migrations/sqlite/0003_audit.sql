-- Audit log (owned by switchyard-audit; nothing else writes these tables).
-- Timestamps are RFC 3339 text in UTC with exactly six fraction digits (the audit crate binds
-- them itself), so text comparison is time order.
-- No foreign key to tenants: the audit trail outlives the tenant it describes.

-- One row per entry. `chain_id` is the tenant id, or 'platform' for platform events.
-- The hash columns are lowercase hex SHA-256; the encoding is documented in the crate.
CREATE TABLE audit_events (
    chain_id     TEXT NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq > 0),
    id           TEXT NOT NULL UNIQUE,
    occurred_at  TEXT NOT NULL,
    actor_kind   TEXT NOT NULL CHECK (actor_kind IN ('api_key', 'platform_admin', 'internal')),
    actor_id     TEXT,
    actor_run_id TEXT,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    reason       TEXT,
    request_id   TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq)
);
-- The filters of GET /v1/audit-events, within a chain.
CREATE INDEX audit_events_by_action ON audit_events (chain_id, action, seq);
CREATE INDEX audit_events_by_target ON audit_events (chain_id, target, seq);
CREATE INDEX audit_events_by_time ON audit_events (chain_id, occurred_at);

-- The last entry of each chain. Writers lock it (here: BEGIN IMMEDIATE) so chains stay linear.
CREATE TABLE audit_chain_heads (
    chain_id  TEXT PRIMARY KEY,
    last_seq  INTEGER NOT NULL CHECK (last_seq >= 0),
    last_hash TEXT NOT NULL
);

-- Append-only, as a guard against accidents and bugs. Not against someone who can drop the
-- triggers: the hash chain makes such edits evident.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
