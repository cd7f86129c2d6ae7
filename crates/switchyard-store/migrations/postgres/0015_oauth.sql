-- OAuth connect flows (owned by switchyard-connectors' `store` module; nothing else writes
-- these tables).
-- Same tables as the SQLite migration, in PostgreSQL types.
-- No foreign key to tenants, as for jobs and webhooks: purging a tenant must not wait on them.

-- Whether a connection's credential still works. Separate from `status` (the operator's
-- active/disabled switch): a refused refresh token needs the end user, not the operator.
ALTER TABLE connections ADD COLUMN credential_status TEXT NOT NULL DEFAULT 'valid'
    CHECK (credential_status IN ('valid', 'reauthorization_required'));

-- A tenant's OAuth client registration at a provider: one per tenant and provider.
CREATE TABLE oauth_clients (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    provider     TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    -- JSON {"name", "version", "fingerprint"}: the vault secret holding the client secret or
    -- private key, never the material itself. NULL for public clients (PKCE only).
    secret       TEXT,
    -- JSON array of the scopes requested.
    scopes       TEXT NOT NULL,
    -- Overrides the platform's callback URL registered at the provider.
    redirect_uri TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, provider)
);

-- One end user's attempt to connect (or, with `connection_id`, repair) an account. Only the
-- SHA-256 of the session token is stored: the token itself is the capability.
CREATE TABLE connect_sessions (
    tenant_id         TEXT NOT NULL,
    id                TEXT NOT NULL,
    token_hash        TEXT NOT NULL UNIQUE,
    -- JSON describing the end user, as the tenant's backend gave it.
    end_user          TEXT NOT NULL,
    -- JSON array of the provider ids the end user may connect.
    allowed_providers TEXT NOT NULL,
    redirect_url      TEXT,
    connection_id     TEXT,
    status            TEXT NOT NULL
        CHECK (status IN ('pending', 'completed', 'failed', 'expired')),
    -- JSON outcome (the connection made, or the error), once finished.
    result            TEXT,
    expires_at        TIMESTAMPTZ NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- The `state` of one authorization redirect, single use. Only its SHA-256 is stored; the PKCE
-- verifier is sealed by the vault (base64).
CREATE TABLE oauth_states (
    state_hash      TEXT NOT NULL PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    provider        TEXT NOT NULL,
    sealed_verifier TEXT,
    redirect_uri    TEXT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    used_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth_states_session ON oauth_states (tenant_id, session_id);
-- The purge deletes by expiry.
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);
