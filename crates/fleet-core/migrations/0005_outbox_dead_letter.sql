-- Acks the broker refused for good (too large, a topic this user may not write, an invalid
-- payload): moved out of the outbox so the acks queued after them still go out (SPEC §6),
-- and kept with the reason for the operator. Bounded: the newest 1000 are kept.
CREATE TABLE outbox_dead (
    id          INTEGER PRIMARY KEY,
    alert_id    TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    failed_ms   INTEGER NOT NULL,
    error       TEXT NOT NULL
);
