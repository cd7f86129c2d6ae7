-- Credential vault (owned by switchyard-vault; nothing else writes these tables).
-- Same tables as the SQLite migration, in PostgreSQL types.
-- No foreign key to tenants: crypto-shredding tombstones must outlive the tenant row.

-- Tenant data keys and fingerprint keys, only ever stored wrapped by a key-encryption key.
CREATE TABLE vault_tenant_keys (
    tenant_id        TEXT NOT NULL,
    purpose          TEXT NOT NULL CHECK (purpose IN ('dek', 'fingerprint')),
    version          BIGINT NOT NULL CHECK (version > 0),
    state            TEXT NOT NULL CHECK (state IN ('active', 'decrypt_only', 'retired', 'destroyed')),
    -- Which KEK wrapped the key (`file:…`, `env:…`, `aws-kms:<arn>`); NULL once erased.
    kek_id           TEXT,
    wrapped_key      BYTEA,
    created_at       TIMESTAMPTZ NOT NULL,
    state_changed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, purpose, version),
    CHECK ((wrapped_key IS NULL) = (state IN ('retired', 'destroyed'))),
    CHECK ((kek_id IS NULL) = (wrapped_key IS NULL))
);
-- One key encrypts new data per tenant and purpose.
CREATE UNIQUE INDEX vault_tenant_keys_one_active
    ON vault_tenant_keys (tenant_id, purpose) WHERE state = 'active';
-- KEK rotation and the start-up KEK check look keys up by wrapping KEK.
CREATE INDEX vault_tenant_keys_by_kek
    ON vault_tenant_keys (kek_id) WHERE wrapped_key IS NOT NULL;

-- Secret versions, AES-256-GCM under a tenant data key; the AAD binds tenant, name and version.
CREATE TABLE vault_secrets (
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL CHECK (version > 0),
    state       TEXT NOT NULL CHECK (state IN ('current', 'previous', 'destroyed')),
    dek_version BIGINT NOT NULL,
    -- [format][nonce][ciphertext+tag]; NULL once the version is destroyed (the row stays so
    -- version numbers are never reused).
    ciphertext  BYTEA,
    -- Keyed HMAC-SHA256 of the plaintext, 16 hex characters.
    fingerprint TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, name, version),
    CHECK ((ciphertext IS NULL) = (state = 'destroyed'))
);
CREATE UNIQUE INDEX vault_secrets_one_current
    ON vault_secrets (tenant_id, name) WHERE state = 'current';
-- The re-encryption pass and data-key retirement find live rows by data key.
CREATE INDEX vault_secrets_by_dek
    ON vault_secrets (tenant_id, dek_version) WHERE ciphertext IS NOT NULL;
