-- Looking back (issue 11), schema 6.

-- A vehicle's alerts over a time range (`fleetctl history`, the timeline's marks, the chart):
-- without this the history of one vehicle scanned every alert of the fleet.
CREATE INDEX alerts_vehicle_ts ON alerts (vehicle, ts);

-- The whole-fleet replay frame at time T needs no new index: it walks the vehicles table and
-- takes each one's last position <= T with one seek in positions_vehicle_ts (schema 1); see
-- Store::fleet_at. An index on positions (ts) alone (schema 4) would make that a scan of
-- every sample in the look-back window instead.
