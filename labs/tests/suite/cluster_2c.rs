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
use harness::cluster::{Cluster, ClusterConfig, World};
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

/// The truncated states of region 1's running peers whose index is an entry some store
/// applied through the log: (store, truncated index, truncated term, the entry's term as
/// applied, the peer's current term).
fn truncated_terms(w: &World) -> Vec<(u64, u64, u64, u64, u64)> {
    let mut out = Vec::new();
    for (&store, node) in &w.stores {
        let Some(peer) = node.store.as_ref().and_then(|s| s.peer(1)) else {
            continue;
        };
        let ps = peer.storage();
        let (index, term) = (ps.truncated_index(), ps.truncated_term());
        if let Some(applied) = w.apply_oracle.applied_term(1, index) {
            out.push((store, index, term, applied, peer.term()));
        }
    }
    out
}

/// The store whose peer leads region 1, as the stores see it (the scheduler's view lags),
/// with the peer's term; the newest term if a deposed leader does not know yet.
fn store_leader(w: &World) -> Option<(u64, u64)> {
    w.stores
        .iter()
        .filter_map(|(&s, n)| Some((s, n.store.as_ref()?.peer(1)?)))
        .filter(|(_, p)| p.is_leader())
        .max_by_key(|(_, p)| p.term())
        .map(|(s, p)| (s, p.term()))
}

/// Beyond the original: the truncated state names the last compacted entry by its index and
/// *its* term. Three clients write while the leader is deposed six times (cut off until the
/// others elect a new one) with a GC limit of 3, so a new leader's first compactions land on
/// entries of an older term. After every simulator event, each peer's truncated term must
/// be the term of that entry as the stores applied it.
///
/// Catches a `CompactLog` that records the peer's current term instead of the compacted
/// entry's: raft then answers `term(truncated index)` wrongly, log matching at the start of
/// the log fails (a follower that needs the entry after it is sent a snapshot instead, or
/// rejects a correct append), and a restarted peer starts from a term its log never had.
/// Within one term the two are equal, which is all the original's tests exercise.
#[test]
fn truncated_state_keeps_the_compacted_entrys_term_2c() {
    const NAME: &str = "truncated_state_keeps_the_compacted_entrys_term_2c";
    run_seeded(NAME, |seed| {
        let mut c = cluster_with_gc_limit(NAME, seed, 3);
        c.run_for(Duration::from_secs(1));
        c.install_workload(3);
        c.start_clients();
        // Compactions onto an entry of a term older than the compacting peer's.
        let mut older_term_compactions = 0u64;
        let mut wrong: Option<(u64, u64, u64, u64, u64)> = None;
        let mut watch = |c: &mut Cluster, d: Duration| {
            c.sim().run_until_true(d, |w| {
                for t in truncated_terms(w) {
                    let (_, _, term, applied, current) = t;
                    if term != applied {
                        wrong = Some(t);
                        return true;
                    }
                    if applied < current {
                        older_term_compactions += 1;
                    }
                }
                false
            });
            c.check_client_failures();
            if let Some((store, index, term, applied, current)) = wrong {
                c.fail(&format!(
                    "store {store}: region 1's truncated state is (index {index}, term {term}), but entry {index} has term {applied} (the peer's current term is {current}): CompactLog must record the term of the entry it compacts to"
                ));
            }
        };
        for _ in 0..6 {
            watch(&mut c, Duration::from_millis(300));
            c.sim()
                .run_until_true(Duration::from_secs(5), |w| store_leader(w).is_some());
            let Some((leader, term)) = store_leader(c.world()) else {
                c.fail("region 1 has no leader")
            };
            c.add_filter(Filter::Isolate(leader));
            let elected = c.sim().run_until_true(Duration::from_secs(5), |w| {
                w.stores.iter().any(|(&s, n)| {
                    s != leader
                        && n.store
                            .as_ref()
                            .and_then(|st| st.peer(1))
                            .is_some_and(|p| p.is_leader() && p.term() > term)
                })
            });
            if !elected {
                c.fail("the two connected stores elected no leader within 5 s");
            }
            c.clear_filters();
            watch(&mut c, Duration::from_millis(500));
        }
        c.stop_and_check_clients();
        assert!(
            older_term_compactions > 0,
            "the scenario never compacted onto an entry of an older term than the compacting peer's, so it checked nothing"
        );
    });
}
