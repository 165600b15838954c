-- Devices (SPEC §8): which vehicle each device id belongs to, from `kind = "device"` topics.
-- A device whose telemetry arrived before its mapping has vehicle NULL: it shows as an
-- unmapped vehicle under its own id until the mapping arrives and its rows move over.
CREATE TABLE devices (
    device      TEXT PRIMARY KEY,
    vehicle     TEXT,
    updated_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX devices_by_vehicle ON devices (vehicle);
