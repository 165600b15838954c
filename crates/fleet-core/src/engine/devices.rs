//! Devices in the engine (SPEC §8): a car carries several IoT devices, and their telemetry is
//! keyed by device id. Samples from a device-keyed topic are renamed to the device's vehicle;
//! a device with no mapping yet stays visible as a vehicle of its own id (nothing is dropped),
//! and when its mapping arrives everything stored under the device id moves to the vehicle.

use crate::decode::{Decoded, DeviceMapping};
use crate::store::{DeviceChange, DeviceRow, WriteBatch};
use std::collections::{HashMap, HashSet};

/// The device → vehicle map and the devices still waiting for theirs.
#[derive(Debug, Default)]
pub(super) struct Devices {
    map: HashMap<String, String>,
    /// Devices whose telemetry is stored under their own id, awaiting a mapping.
    unmapped: HashSet<String>,
}

impl Devices {
    /// The cache's device table (mapped and unmapped).
    pub(super) fn seed(rows: Vec<DeviceRow>) -> Self {
        let mut d = Devices::default();
        for (device, vehicle) in rows {
            match vehicle {
                Some(v) => {
                    d.map.insert(device, v);
                }
                None => {
                    d.unmapped.insert(device);
                }
            }
        }
        d
    }

    /// Renames a device-keyed sample to its vehicle. An unmapped device keeps its id and is
    /// recorded once as seen, so its rows can move when the mapping comes.
    pub(super) fn attribute(&mut self, d: &mut Decoded, wb: &mut WriteBatch) {
        let id = match d {
            Decoded::Position(p) => &mut p.vehicle,
            Decoded::Status(s) => &mut s.vehicle,
            _ => return,
        };
        match self.map.get(id.as_str()) {
            Some(v) => id.clone_from(v),
            None => {
                if !self.unmapped.contains(id.as_str()) {
                    self.unmapped.insert(id.clone());
                    wb.devices.push((id.clone(), DeviceChange::SeenUnmapped));
                }
            }
        }
    }

    /// Applies one row of a device topic. Returns (device, vehicle) when what the device
    /// reported while unmapped must now move to its vehicle.
    pub(super) fn apply(
        &mut self,
        m: DeviceMapping,
        wb: &mut WriteBatch,
    ) -> Option<(String, String)> {
        match m.vehicle {
            Some(v) => {
                if self.map.get(&m.device) == Some(&v) {
                    return None; // a DMS reload of a known row
                }
                self.map.insert(m.device.clone(), v.clone());
                wb.devices
                    .push((m.device.clone(), DeviceChange::Map(v.clone())));
                self.unmapped.remove(&m.device).then_some((m.device, v))
            }
            None => {
                self.map.remove(&m.device);
                wb.devices.push((m.device, DeviceChange::Unmap));
                None
            }
        }
    }

    /// An evicted vehicle that was an unmapped device: memory follows the live fleet (SPEC
    /// §7); its cache rows stay under the device id.
    pub(super) fn forget(&mut self, id: &str) {
        self.unmapped.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_model::{PositionSample, Source};

    fn fix(id: &str) -> Decoded {
        Decoded::Position(PositionSample {
            vehicle: id.into(),
            ts_ms: 1,
            lat: 1.0,
            lng: 2.0,
            speed: None,
            heading: None,
            source: Source::Kafka,
        })
    }

    fn vehicle(d: &Decoded) -> &str {
        match d {
            Decoded::Position(p) => &p.vehicle,
            _ => unreachable!(),
        }
    }

    #[test]
    fn telemetry_before_its_mapping_moves_when_the_mapping_arrives() {
        let mut d = Devices::default();
        let mut wb = WriteBatch::default();
        let mut m = fix("dev-1");
        d.attribute(&mut m, &mut wb);
        d.attribute(&mut fix("dev-1"), &mut wb);
        assert_eq!(vehicle(&m), "dev-1", "unmapped: its own id");
        assert_eq!(
            wb.devices,
            vec![("dev-1".into(), DeviceChange::SeenUnmapped)]
        );
        let moved = d.apply(
            DeviceMapping {
                device: "dev-1".into(),
                vehicle: Some("car-1".into()),
            },
            &mut wb,
        );
        assert_eq!(moved, Some(("dev-1".into(), "car-1".into())));
        let mut m = fix("dev-1");
        d.attribute(&mut m, &mut wb);
        assert_eq!(vehicle(&m), "car-1");
        // The same mapping again (a DMS reload) moves nothing and writes nothing.
        let n = wb.devices.len();
        assert_eq!(
            d.apply(
                DeviceMapping {
                    device: "dev-1".into(),
                    vehicle: Some("car-1".into()),
                },
                &mut wb
            ),
            None
        );
        assert_eq!(wb.devices.len(), n);
    }

    #[test]
    fn a_deleted_mapping_leaves_the_device_on_its_own() {
        let mut d = Devices::seed(vec![("dev-2".into(), Some("car-2".into()))]);
        let mut wb = WriteBatch::default();
        d.apply(
            DeviceMapping {
                device: "dev-2".into(),
                vehicle: None,
            },
            &mut wb,
        );
        let mut m = fix("dev-2");
        d.attribute(&mut m, &mut wb);
        assert_eq!(vehicle(&m), "dev-2");
    }
}
