-- Probe jobs (`diagnostics.probe`): each execution is recorded here, keyed by job id, so an
-- operator (`switchyard jobs probe`) or a test can check that workers run jobs, how fast, and
-- that every job took effect once (executions > 1 only after a lost lease).
CREATE TABLE job_probes (
    job_id            TEXT PRIMARY KEY,
    batch             TEXT NOT NULL,
    executions        INTEGER NOT NULL,
    worker            TEXT NOT NULL,
    enqueued_at       TEXT NOT NULL,
    first_finished_at TEXT NOT NULL,
    last_finished_at  TEXT NOT NULL
);
CREATE INDEX job_probes_by_batch ON job_probes (batch);
CREATE INDEX job_probes_by_finish ON job_probes (last_finished_at);
