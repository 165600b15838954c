//! Free loopback ports for services started by tests.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Lowest port handed out: above the registered services tests may run next
/// to (Redis 6379, Kafka 9092, …).
const LOWEST: u16 = 15_000;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that nothing listens on right now.
///
/// Why not just bind port 0: the kernel picks such ports from the *ephemeral*
/// range, the same range it uses for the source port of every outgoing
/// connection. A broker that is stopped and restarted on "its" port (fault
/// tests) could find it taken by some client's connection in between. So the
/// port is drawn at random *below* the ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`), where the kernel never assigns
/// ports on its own, and checked by binding it. Random rather than sequential
/// because nextest runs every test in its own process: processes do not share
/// the in-process record of ports already handed out, and randomness keeps
/// collisions between them rare (a collision makes the service fail to bind,
/// and `Broker` then retries on another port).
pub fn free_port() -> u16 {
    let (low, high) = candidate_range();
    let span = u64::from(high - low);
    let mut guard = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = guard.get_or_insert_with(HashSet::new);
    for attempt in 0u64..10_000 {
        let port = low + (random(attempt) % span) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    // Extremely unlikely; fall back to what the kernel offers.
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0 to find a port");
    listener.local_addr().expect("local address").port()
}

/// `[LOWEST, start of the ephemeral range)`, or a safe default when the range
/// cannot be read or leaves too little room.
fn candidate_range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > LOWEST + 1_000 {
        (LOWEST, ephemeral_low)
    } else {
        (LOWEST, 32_768)
    }
}

/// A random number without a dependency: `RandomState` is seeded from the OS
/// once per thread and then incremented, mixed here with the pid, the clock
/// and the attempt so that parallel processes draw different sequences.
fn random(attempt: u64) -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(attempt);
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// A short random hex token for unique names (Redis key prefixes, cluster ids).
pub(crate) fn token() -> String {
    format!(
        "{:012x}",
        random(u64::from(std::process::id())) & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        for p in ports {
            assert!(p >= LOWEST);
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).expect("port is free");
        }
    }
}
