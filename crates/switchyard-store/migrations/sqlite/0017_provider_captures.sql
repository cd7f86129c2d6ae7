-- The index of provider call captures (`limits.capture` of a connector): what each
-- captured attempt was, so a tenant can list a connection's captures without opening
-- them. The capture itself is a sealed blob (`blob_key`, kind `provider-capture`). Owned by
-- the server's `provider_capture` module; purged with the blobs by
-- `retention.provider_captures`, and with the tenant.
CREATE TABLE provider_captures (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    connection_id TEXT,
    provider      TEXT NOT NULL,
    method        TEXT NOT NULL,
    route         TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    status        INTEGER,
    blob_key      TEXT NOT NULL,
    captured_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX provider_captures_by_connection
    ON provider_captures (tenant_id, connection_id, id);
CREATE INDEX provider_captures_by_age ON provider_captures (captured_at);
