-- The fair claim (switchyard-jobs, `queue::claim`) walks this index instead of ranking the
-- whole runnable backlog: a loose index scan finds the distinct (kind, tenant) groups with
-- runnable jobs, then each group's first jobs come in claim order (priority, then run_at).
-- Platform jobs (no tenant) are the group '' so one expression covers both. `jobs_runnable`
-- stays: it answers "when is the next job due".
CREATE INDEX jobs_claim ON jobs (kind, COALESCE(tenant_id, ''), priority DESC, run_at, id)
    WHERE status IN ('queued', 'failed');
