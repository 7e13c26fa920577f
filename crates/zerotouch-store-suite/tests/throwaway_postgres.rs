//! The throwaway PostgreSQL starts, answers, keeps commits across a SIGKILL and a restart,
//! and is gone when dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use zerotouch_store_suite::postgres::{ClusterOptions, ThrowawayPostgres};

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn throwaway_cluster_keeps_commits_across_a_kill_and_stops_when_dropped() {
    let pg = ThrowawayPostgres::start(ClusterOptions::default());
    let url = pg.create_database("kept");
    assert!(url.ends_with("/kept"), "{url}");
    pg.psql("kept", "CREATE TABLE t (v int); INSERT INTO t VALUES (7)")
        .unwrap();
    let first = pg.pid().unwrap();
    pg.kill();
    assert!(!alive(first));
    assert!(
        pg.psql("kept", "SELECT 1").is_err(),
        "answered after SIGKILL"
    );
    pg.restart();
    let second = pg.pid().unwrap();
    assert_ne!(second, first);
    assert_eq!(pg.psql("kept", "SELECT v FROM t").unwrap(), "7");
    drop(pg);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(second) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(second), "the server outlived its ThrowawayPostgres");
}
