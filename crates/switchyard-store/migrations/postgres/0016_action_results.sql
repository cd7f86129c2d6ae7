-- What an asynchronous connector action (`"async": true`) came to, shown with its run
-- (`GET /v1/runs/{id}`). Owned by the server's `connectors::action_job` module.
-- Same table as the SQLite migration, in PostgreSQL types.
-- A result lives and goes with its run: the runs' retention purges the run, and
-- ON DELETE CASCADE takes its result (and a purged tenant's runs take theirs).

-- `result`: `{output, unified, mapping_error}` once the action ran, or `{error: {code,
-- reason, detail}}` after a failed attempt (replaced when a retry succeeds).
CREATE TABLE action_results (
    run_id     TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL,
    result     JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
