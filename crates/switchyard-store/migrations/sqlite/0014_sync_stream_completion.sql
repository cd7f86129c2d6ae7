-- When a sync of the stream last read it to the end. A stream that has never completed a
-- sync has only part of its records (or none): a unified `related` field that looks records
-- up in it is null until then, instead of guessing from what is there. A reset keeps it: the
-- records stay, and are as complete as the last read left them.
ALTER TABLE sync_streams ADD COLUMN completed_at TEXT;
