-- Snoozes (issue 12): a rule's or a vehicle's open alerts leave the feed and notify nobody
-- until `until_ms`. Read from the ack topic like acknowledgements (every desk applies every
-- snooze); the newest snooze of a target wins.
CREATE TABLE snoozes (
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    until_ms    INTEGER NOT NULL,
    operator    TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    PRIMARY KEY (kind, target)
) WITHOUT ROWID;
