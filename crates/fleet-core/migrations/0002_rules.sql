-- Rule state that must survive a restart (condition timers, geofence sides), per vehicle,
-- written in the same transaction as the offsets of the messages that changed it.
CREATE TABLE rule_state (
    vehicle     TEXT PRIMARY KEY,
    state_json  TEXT NOT NULL
) WITHOUT ROWID;
