-- fleetdash local cache, schema 1.
-- Times are ms since the Unix epoch (INTEGER). Kafka coordinates are kept on samples for
-- provenance and so duplicates can be proven absent.

CREATE TABLE vehicles (
    id          TEXT PRIMARY KEY,
    plate       TEXT,
    model       TEXT,
    driver      TEXT,
    grp         TEXT,
    info_json   TEXT,
    first_seen  INTEGER,
    last_ts     INTEGER,
    last_lat    REAL,
    last_lng    REAL,
    last_speed  REAL,
    last_heading REAL,
    last_source TEXT,
    status_json TEXT
);

CREATE TABLE positions (
    vehicle     TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    lat         REAL NOT NULL,
    lng         REAL NOT NULL,
    speed       REAL,
    heading     REAL,
    source      TEXT NOT NULL,
    kpartition  INTEGER,
    koffset     INTEGER
);
CREATE INDEX positions_vehicle_ts ON positions (vehicle, ts);

CREATE TABLE status_samples (
    vehicle     TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    engine_on   INTEGER,
    doors_open  INTEGER,
    headlights_on INTEGER,
    speed       REAL,
    fuel        REAL,
    battery     REAL,
    fields_json TEXT NOT NULL,
    kpartition  INTEGER,
    koffset     INTEGER
);
CREATE INDEX status_vehicle_ts ON status_samples (vehicle, ts);

-- Next offset to consume per partition: written in the same transaction as the batch it
-- covers, which is what makes the cache exactly-once.
CREATE TABLE offsets (
    topic       TEXT NOT NULL,
    kpartition  INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, kpartition)
) WITHOUT ROWID;

CREATE TABLE topic_counters (
    topic       TEXT PRIMARY KEY,
    messages    INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    kpartition  INTEGER NOT NULL,
    koffset     INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    msg_key     BLOB,
    raw         BLOB,
    raw_len     INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX quarantine_reason ON quarantine (reason);

CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    vehicle     TEXT NOT NULL,
    rule        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    message     TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    state       TEXT NOT NULL,
    origin      TEXT NOT NULL,
    acked_by    TEXT,
    acked_ms    INTEGER,
    ack_note    TEXT,
    resolved_ms INTEGER
);
CREATE INDEX alerts_state ON alerts (state, ts);

-- Every acknowledgement read from Kafka or made here (latest per alert), kept even when the
-- alert is not known yet, so an ack that overtakes its alert is still applied.
CREATE TABLE acks (
    alert_id    TEXT PRIMARY KEY,
    operator    TEXT NOT NULL,
    note        TEXT NOT NULL,
    ts          INTEGER NOT NULL
) WITHOUT ROWID;

-- Acknowledgements made on this desktop and not yet confirmed published to Kafka.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    alert_id    TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
