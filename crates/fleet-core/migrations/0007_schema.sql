-- The schema registry (SPEC §8): every flattened path seen per topic, with its JSON type,
-- first/last message time, message count and an example value. Written by the engine with
-- the offsets of the messages counted (so counts are exactly-once, like the telemetry).
CREATE TABLE schema_fields (
    topic       TEXT NOT NULL,
    path        TEXT NOT NULL,
    type        TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    example     TEXT NOT NULL,
    PRIMARY KEY (topic, path)
) WITHOUT ROWID;
