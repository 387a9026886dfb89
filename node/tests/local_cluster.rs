//! The threaded runtime end to end: three stores on real threads and disks in one process.
//! These run on the real clock (that is what they test), each bounded by the client's
//! timeout; the graded suites run the same store code on the simulator.
//!
//! They run the reference solution of every stage up to 3c.

// lab:needs 2aa..3c
use node::{ClusterOptions, LocalCluster};

fn key(i: usize) -> Vec<u8> {
    format!("k{i:04}").into_bytes()
}

fn value(i: usize, round: usize) -> Vec<u8> {
    format!("v{i}-{round}").into_bytes()
}

/// Writes survive the leader's stop: the other two elect a leader and go on; the stopped
/// store starts again from its directory and catches up. Then one of the others stops, so
/// every key read back needs the restarted store's vote and log.
#[test]
fn writes_survive_the_leaders_stop_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::bootstrap(dir.path(), ClusterOptions::new(3)).unwrap();
    let client = cluster.client();
    for i in 0..50 {
        client.put(&key(i), &value(i, 0)).unwrap();
    }
    let leader = cluster.leader_of(1).expect("a leader reported itself");
    cluster.stop(leader);
    for i in 0..50 {
        client.put(&key(i), &value(i, 1)).unwrap();
    }
    assert_ne!(cluster.leader_of(1), Some(leader), "a new leader took over");
    cluster.start(leader).unwrap();
    for i in 50..60 {
        client.put(&key(i), &value(i, 1)).unwrap();
    }
    // Stop the other two in turn so that the restarted store must serve with the other.
    let others: Vec<u64> = (1..=3).filter(|&s| s != leader).collect();
    cluster.stop(others[0]);
    for i in 0..60 {
        assert_eq!(client.get(&key(i)).unwrap(), value(i, 1), "key {i}");
    }
}

/// Many clients at once: every acknowledged write is read back.
#[test]
fn concurrent_clients_lose_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::bootstrap(dir.path(), ClusterOptions::new(3)).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let client = cluster.client();
            std::thread::spawn(move || {
                for i in 0..40 {
                    client.put(&key(t * 1000 + i), &value(i, t)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let client = cluster.client();
    for t in 0..8 {
        for i in 0..40 {
            assert_eq!(client.get(&key(t * 1000 + i)).unwrap(), value(i, t));
        }
    }
}
// lab:end-needs
