//! Redis Cluster: a real three-node cluster (redis-server --cluster-enabled) on free loopback
//! ports; the config lists several URLs and fleetdash reads the geo set through the cluster.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct Cluster {
    /// The nodes' working dirs; removed when the cluster is dropped.
    _dir: tempfile::TempDir,
    ports: Vec<u16>,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            return None;
        }
        // A node whose port (or bus port) another test took between choosing and binding
        // never answers: start again on other ports.
        for attempt in 1..=3 {
            match Self::try_start() {
                Ok(c) => return Some(c),
                Err(e) if attempt < 3 => eprintln!("cluster start {attempt}: {e}; retrying"),
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!()
    }

    fn try_start() -> Result<Cluster, String> {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| fleet_testkit::free_port()).collect();
        for p in &ports {
            let node = dir.path().join(p.to_string());
            std::fs::create_dir_all(&node).unwrap();
            // The cluster bus port is chosen too: its default (port + 10000) falls in the
            // ephemeral range, where a busy machine's outgoing connections may hold it.
            let bus = fleet_testkit::free_port();
            let ok = Command::new("redis-server")
                .args([
                    "--port",
                    &p.to_string(),
                    "--cluster-port",
                    &bus.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "yes",
                ])
                .args(["--cluster-config-file", "nodes.conf", "--dir"])
                .arg(&node)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        // Dropped on failure: shuts down whatever did start.
        let c = Cluster { _dir: dir, ports };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c.ports.iter().all(|p| cli(*p, &["ping"]).contains("PONG")) {
            if Instant::now() > deadline {
                return Err(format!("cluster nodes on {:?} did not start", c.ports));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let nodes: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        while !cli(c.ports[0], &["cluster", "info"]).contains("cluster_state:ok") {
            assert!(
                Instant::now() < deadline + Duration::from_secs(20),
                "cluster did not become ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(c)
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-c", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &self.ports {
            let _ = Command::new("redis-cli")
                .args(["-p", &p.to_string(), "shutdown", "nosave"])
                .output();
        }
    }
}

#[test]
fn geo_sets_are_read_through_a_redis_cluster() {
    let Some(cluster) = Cluster::start() else {
        eprintln!("skipping: redis-server is not installed");
        return;
    };
    // Two geo sets that hash to different slots (and so, likely, different nodes).
    let keys = ["cars#gps", "vans#gps"];
    for (k, key) in keys.iter().enumerate() {
        let mut args = vec!["geoadd".to_string(), key.to_string()];
        for i in 0..40 {
            args.extend([
                format!("{}", 127.0 + f64::from(i) * 1e-3),
                "37.5".to_string(),
                format!("v{k}-{i}"),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(cli(cluster.ports[0], &args).trim(), "40");
    }
    let urls: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("\"redis://127.0.0.1:{p}\""))
        .collect();
    let env = Env::new(&format!(
        "[redis]\nurl = [{}]\ngeo_keys = [\"cars#gps\", \"vans#gps\"]\npoll_ms = 200\n\n[store]\npath = \"{{store}}\"\n{KEEP_ALL}",
        urls.join(", ")
    ));
    env.ingest_until_idle(1.0);
    let s = env.stats();
    assert_eq!(s["vehicles"], 80, "{s}\n{}", env.log());
}
