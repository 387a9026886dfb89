//! Stage 2c, cluster side: raft-log GC and snapshots on a simulated 5-store cluster.
//!
//! As in stage 2b, every test runs in virtual time on the deterministic simulator, prints
//! `LABS_SEED=<n>` when it fails (replay with `LABS_SEED=<n> cargo test -p labs --features 2c
//! <name>`), and is watched by the apply oracle (which here also checks that a store's data
//! after a snapshot equals what the region held at the snapshot's index) and the mock
//! scheduler. Snapshot files travel in chunks that the simulated network loses, duplicates,
//! delays and reorders like any message.

use std::time::Duration;

use engine::Cf;
use harness::cluster::generic::{generic_test, GenericParams};
use harness::cluster::{Cluster, ClusterConfig};
use harness::seeds::run_seeded;
use harness::sim::net::Filter;

fn cluster_with_gc_limit(name: &str, seed: u64, limit: u64) -> Cluster {
    let mut cfg = ClusterConfig::new(3);
    cfg.store.raft_log_gc_count_limit = limit;
    Cluster::new(name, seed, cfg)
}

/// The original's TestOneSnapshot2C: a store cut off while the others write and compact their
/// logs catches up by snapshot, which must carry every column family and remove the keys
/// deleted meanwhile; the snapshot's state survives a restart, and every store's log stays
/// trimmed. Beyond the original, the apply oracle checks that the data the snapshot installs
/// is exactly the region's data at the snapshot's index.
#[test]
fn one_snapshot_2c() {
    run_seeded("one_snapshot_2c", |seed| {
        let mut c = cluster_with_gc_limit("one_snapshot_2c", seed, 10);
        c.must_put_cf("lock", b"k1", b"v1");
        c.must_put_cf("lock", b"k2", b"v2");
        c.must_get_cf_equal(1, Cf::Lock, b"k1", b"v1");
        c.must_get_cf_equal(1, Cf::Lock, b"k2", b"v2");
        for store in c.store_ids() {
            let state = c.world().stores[&store]
                .store
                .as_ref()
                .and_then(|s| s.apply_state(1).ok().flatten())
                .unwrap_or_else(|| c.fail(&format!("store {store} has no apply state")));
            let t = state.get_truncated_state();
            assert_eq!((t.index, t.term), (5, 5), "store {store}: no GC yet");
        }

        c.add_filter(Filter::partition(&[1], &[2, 3]));
        for i in 100..115 {
            let (k, v) = (format!("k{i}"), format!("v{i}"));
            c.must_put_cf("lock", k.as_bytes(), v.as_bytes());
        }
        c.must_delete_cf("lock", b"k2");
        c.run_for(Duration::from_millis(500));
        c.must_get_cf_none(1, Cf::Lock, b"k100");
        c.clear_filters();

        // Store 1 can only catch up by snapshot: the others compacted what it misses.
        c.must_get_cf_equal(1, Cf::Lock, b"k1", b"v1");
        c.must_get_cf_equal(1, Cf::Lock, b"k100", b"v100");
        c.must_get_cf_none(1, Cf::Lock, b"k2");
        assert!(
            c.world().stats.snapshot_streams > 0,
            "store 1 caught up without a snapshot: {:?}",
            c.world().stats
        );

        c.stop_store(1);
        c.start_store(1);
        c.must_get_cf_equal(1, Cf::Lock, b"k1", b"v1");
        c.check_log_trimmed(2 * 10);
    });
}

/// One client; every store crashes and restarts between iterations; the log is compacted
/// every 100 entries.
#[test]
fn snapshot_recover_2c() {
    run_seeded("snapshot_recover_2c", |seed| {
        generic_test(
            "snapshot_recover_2c",
            seed,
            GenericParams {
                clients: 1,
                crash: true,
                max_raft_log: Some(100),
                ..Default::default()
            },
        )
    });
}

/// Twenty clients; crashes between iterations; compaction every 100 entries.
#[test]
fn snapshot_recover_many_clients_2c() {
    run_seeded("snapshot_recover_many_clients_2c", |seed| {
        generic_test(
            "snapshot_recover_many_clients_2c",
            seed,
            GenericParams {
                clients: 20,
                crash: true,
                max_raft_log: Some(100),
                ..Default::default()
            },
        )
    });
}

/// Five clients while the network drops about 10% of messages (and of snapshot chunks);
/// compaction every 100 entries.
#[test]
fn snapshot_unreliable_2c() {
    run_seeded("snapshot_unreliable_2c", |seed| {
        generic_test(
            "snapshot_unreliable_2c",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                max_raft_log: Some(100),
                ..Default::default()
            },
        )
    });
}

/// Five clients, message loss, crashes between iterations, compaction every 100 entries.
#[test]
fn snapshot_unreliable_recover_2c() {
    run_seeded("snapshot_unreliable_recover_2c", |seed| {
        generic_test(
            "snapshot_unreliable_recover_2c",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                crash: true,
                max_raft_log: Some(100),
                ..Default::default()
            },
        )
    });
}

/// Five clients, message loss, partitions, crashes, compaction every 100 entries.
#[test]
fn snapshot_unreliable_recover_concurrent_partition_2c() {
    run_seeded(
        "snapshot_unreliable_recover_concurrent_partition_2c",
        |seed| {
            generic_test(
                "snapshot_unreliable_recover_concurrent_partition_2c",
                seed,
                GenericParams {
                    clients: 5,
                    unreliable: true,
                    crash: true,
                    partitions: true,
                    max_raft_log: Some(100),
                    ..Default::default()
                },
            )
        },
    );
}

// -------------------------------------------------------------------------------------------
// Beyond the original: snapshots under faults the original's synchronous, in-order transport
// cannot produce, crashes inside background tasks, and the raft log's size over a long run.
