-- Trusting the cache (SPEC §7), schema 4.

-- Offsets belong to one topic of one cluster: with each partition's next offset the cache
-- keeps the cluster it was read from and a fingerprint of the last message consumed
-- (offset next_offset - 1: its timestamp, key and payload hashed). On restart the message
-- at that offset is read again and compared; a re-created topic, another cluster or a
-- truncated partition is then found out instead of being skipped silently.
ALTER TABLE offsets ADD COLUMN last_fp INTEGER;
ALTER TABLE offsets ADD COLUMN cluster_id TEXT;

-- Data fleetdash could not read: offsets skipped because retention expired, or because the
-- partition is not the one the offsets came from. Recorded, counted and shown, never silent.
CREATE TABLE gaps (
    id          INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    kpartition  INTEGER NOT NULL,
    from_offset INTEGER NOT NULL,
    to_offset   INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    detected_ms INTEGER NOT NULL
);
CREATE INDEX gaps_detected ON gaps (detected_ms);

-- A message is stored at most once: (topic, partition, offset) is unique for history rows
-- read from Kafka (Redis rows carry no offset, and NULLs never collide).
ALTER TABLE positions ADD COLUMN ktopic TEXT;
CREATE UNIQUE INDEX positions_kafka_origin ON positions (ktopic, kpartition, koffset)
    WHERE koffset IS NOT NULL;
ALTER TABLE status_samples ADD COLUMN ktopic TEXT;
CREATE UNIQUE INDEX status_kafka_origin ON status_samples (ktopic, kpartition, koffset)
    WHERE koffset IS NOT NULL;

-- Retention prunes by time in chunks (SPEC §7 bounded): these keep it an index range scan
-- instead of a scan of the whole table inside the single writer.
CREATE INDEX positions_ts ON positions (ts);
CREATE INDEX status_ts ON status_samples (ts);
CREATE INDEX quarantine_received ON quarantine (received_ms);
