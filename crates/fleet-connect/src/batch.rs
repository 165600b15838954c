//! One batch of the loader: each vehicle's latest fix per geo set, and per partition the
//! offset to commit once Redis has them.
//!
//! Coalescing is safe because a geo set holds one position per member: of several fixes of
//! a vehicle in one batch only the last can survive in Redis anyway. A vehicle's fixes share
//! a partition (they are keyed by its id), so "last" is the partition's order. The members
//! go out as multi-member `GEOADD key lng lat id lng lat id …` commands of at most
//! [`MEMBERS_PER_COMMAND`] members, all in one pipeline: Redis parses one command per
//! thousand members instead of one per message, and the batch costs one round trip.

use crate::route::{Fix, Routes};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;

/// Members per `GEOADD` command (keeps each command's reply latency short on a shared Redis).
pub const MEMBERS_PER_COMMAND: usize = 1000;

/// Fixes and offsets gathered since the last write.
#[derive(Default)]
pub struct Batch {
    /// (route, vehicle id) → (lng, lat) of the latest fix.
    latest: HashMap<(usize, String), (f64, f64)>,
    /// (route, partition) → next offset to read (last message's offset + 1).
    next: HashMap<(usize, i32), i64>,
    /// Messages read into this batch, loaded or rejected.
    messages: usize,
}

impl Batch {
    /// Records message `offset` of `partition` on route `route`, with its fix if it had one.
    pub fn add(&mut self, route: usize, partition: i32, offset: i64, fix: Option<Fix>) {
        self.messages += 1;
        let next = self.next.entry((route, partition)).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
        if let Some(f) = fix {
            self.latest.insert((route, f.id), (f.lng, f.lat));
        }
    }

    /// Messages read into the batch.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Distinct members the batch writes.
    pub fn members(&self) -> usize {
        self.latest.len()
    }

    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// The batch's `GEOADD` commands.
    pub fn commands(&self, routes: &Routes) -> Vec<redis::Cmd> {
        let mut by_route: HashMap<usize, Vec<(&str, f64, f64)>> = HashMap::new();
        for ((route, id), (lng, lat)) in &self.latest {
            by_route
                .entry(*route)
                .or_default()
                .push((id.as_str(), *lng, *lat));
        }
        let mut cmds = Vec::new();
        for (route, members) in by_route {
            for chunk in members.chunks(MEMBERS_PER_COMMAND) {
                let mut cmd = redis::cmd("GEOADD");
                cmd.arg(routes.geo_key(route));
                for (id, lng, lat) in chunk {
                    cmd.arg(*lng).arg(*lat).arg(*id);
                }
                cmds.push(cmd);
            }
        }
        cmds
    }

    /// The offsets to commit once the commands are acknowledged: (topic, partition, next).
    pub fn offsets<'r>(&self, routes: &'r Routes) -> Vec<(&'r str, i32, i64)> {
        let mut v: Vec<_> = self
            .next
            .iter()
            .map(|((route, p), next)| (routes.topic(*route), *p, *next))
            .collect();
        v.sort_unstable();
        v
    }

    /// [`Batch::offsets`] as librdkafka wants them.
    pub fn offsets_tpl(&self, routes: &Routes) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (topic, p, next) in self.offsets(routes) {
            // Only fails for a negative partition, which librdkafka never hands us.
            let _ = tpl.add_partition_offset(topic, p, Offset::Offset(next));
        }
        tpl
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.latest.clear();
        self.next.clear();
        self.messages = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_core::config::{ConnectConfig, RouteConfig};

    fn routes() -> Routes {
        let route = |t: &str, k: &str| RouteConfig {
            topic: t.into(),
            geo_key: k.into(),
            fields: Default::default(),
        };
        Routes::new(
            &ConnectConfig {
                group_id: "g".into(),
                instance_id: None,
                start: Default::default(),
                routes: vec![
                    route("cars.gps.json", "cars#gps"),
                    route("bikes", "bikes#gps"),
                ],
                batch_max_messages: 10,
                batch_max_ms: 10,
            },
            0,
        )
    }

    fn fix(id: &str, lat: f64, lng: f64) -> Option<Fix> {
        Some(Fix {
            id: id.into(),
            lat,
            lng,
        })
    }

    /// Reads a command's arguments back as text (what Redis would receive).
    fn args(cmd: &redis::Cmd) -> Vec<String> {
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => "<cursor>".into(),
            })
            .collect()
    }

    #[test]
    fn a_vehicles_last_fix_of_the_batch_is_the_one_written() {
        let r = routes();
        let mut b = Batch::default();
        b.add(0, 0, 10, fix("car-1", 1.0, 2.0));
        b.add(0, 0, 11, fix("car-1", 3.0, 4.0));
        b.add(0, 0, 12, None); // rejected: still committed past
        assert_eq!((b.messages(), b.members()), (3, 1));
        let cmds = b.commands(&r);
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            args(&cmds[0]),
            ["GEOADD", "cars#gps", "4.0", "3.0", "car-1"]
        );
        assert_eq!(b.offsets(&r), [("cars.gps.json", 0, 13)]);
    }

    #[test]
    fn routes_write_to_their_own_sets_in_commands_of_bounded_size() {
        let r = routes();
        let mut b = Batch::default();
        for i in 0..2500 {
            b.add(0, i % 3, i64::from(i), fix(&format!("car-{i}"), 1.0, 1.0));
        }
        b.add(1, 0, 7, fix("bike-1", 1.0, 1.0));
        let cmds = b.commands(&r);
        let per_key = |k: &str| -> Vec<usize> {
            cmds.iter()
                .map(args)
                .filter(|a| a[1] == k)
                .map(|a| (a.len() - 2) / 3)
                .collect()
        };
        let mut cars = per_key("cars#gps");
        cars.sort_unstable();
        assert_eq!(cars, [500, 1000, 1000]);
        assert_eq!(per_key("bikes#gps"), [1]);
        assert_eq!(
            b.offsets(&r),
            [
                ("bikes", 0, 8),
                ("cars.gps.json", 0, 2500),
                ("cars.gps.json", 1, 2498),
                ("cars.gps.json", 2, 2499)
            ]
        );
        b.clear();
        assert!(b.is_empty() && b.commands(&r).is_empty() && b.offsets(&r).is_empty());
    }
}
