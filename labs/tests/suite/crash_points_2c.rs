//! Stage 2c beyond the original: a store that dies inside an event, between two of its
//! engine writes (`harness::cluster::event_crash`), while snapshots and raft-log GC are at
//! work. Taking in a snapshot writes both engines (the snapshot's apply and region state to
//! kv, the raft state to raft) in one event; a crash between them must leave a state the
//! store restarts from. The apply oracle checks every snapshot the store installs against
//! the region's data at its index.

use std::time::Duration;

use harness::cluster::{Cluster, ClusterConfig, CrashTrigger, EventCrash, EventCrashMix};
use harness::seeds::run_seeded;

const MAX_CRASH_POINTS: u32 = 16;

fn leader_store(c: &mut Cluster) -> u64 {
    match c.leader_of_region(1) {
        Some(p) => p.store_id,
        None => c.fail("region 1 has no leader"),
    }
}

/// Whether every store runs and has applied region 1 as far as the others.
fn settled(c: &mut Cluster) -> bool {
    let ids = c.store_ids();
    if !ids.iter().all(|&s| c.is_running(s)) {
        return false;
    }
    let applied: Vec<Option<u64>> = ids
        .iter()
        .map(|&s| c.apply_state_of(s, 1).map(|a| a.applied_index))
        .collect();
    applied.windows(2).all(|w| w[0] == w[1])
}

/// Every store but `lagging` truncated region 1's log past the last entry `lagging` holds: it
/// can only catch up by snapshot.
fn compacted_past(c: &Cluster, lagging: u64) -> bool {
    let lag_last = c.raft_state_of(lagging, 1).map_or(0, |s| s.last_index);
    c.store_ids()
        .into_iter()
        .filter(|&s| s != lagging)
        .all(|s| {
            c.apply_state_of(s, 1)
                .is_some_and(|a| a.get_truncated_state().index > lag_last)
        })
}

/// A follower stopped while the others compact their log past it comes back and takes in a
/// snapshot; it crashes at every write, in turn, of the event that takes it in (from the
/// batch that writes the snapshot's region state: before it, between the kv and the raft
/// batch, after both, ...) until that event has no write left. Each time it must restart,
/// install a snapshot (checked by the apply oracle) and hold every key, including those
/// written while it was down; the key deleted while it was down must be gone.
#[test]
fn crash_at_every_write_of_taking_in_a_snapshot_2c() {
    const NAME: &str = "crash_at_every_write_of_taking_in_a_snapshot_2c";
    run_seeded(NAME, |seed| {
        let mut cfg = ClusterConfig::new(3);
        cfg.store.raft_log_gc_count_limit = 20;
        let mut c = Cluster::new(NAME, seed, cfg);
        c.must_put(b"warm-up", b"1");
        let mut n = 0;
        loop {
            assert!(n < MAX_CRASH_POINTS, "more than {n} crash points");
            c.wait_until(Duration::from_secs(20), "the cluster to settle", settled);
            let leader = leader_store(&mut c);
            let Some(victim) = c.store_ids().into_iter().find(|&s| s != leader) else {
                c.fail("no follower")
            };
            let stale = format!("stale-{n}").into_bytes();
            c.must_put(&stale, b"1");
            c.must_get_equal(victim, &stale, b"1");
            c.stop_store(victim);
            c.must_delete(&stale);
            let mut written = Vec::new();
            while !compacted_past(&c, victim) {
                assert!(written.len() < 500, "no compaction past store {victim}");
                let key = format!("{n}-{}", written.len()).into_bytes();
                c.must_put(&key, &key);
                written.push(key);
            }
            let (crashes, missed) = (
                c.world().stats.event_crashes,
                c.world().stats.event_crashes_missed,
            );
            let snapshots = c.world().apply_oracle.verified_snapshots();
            c.plan_event_crash(EventCrash {
                store: victim,
                trigger: CrashTrigger::RegionStateWrite { region_id: Some(1) },
                after_writes: n,
                restart_after: Duration::from_millis(200),
            });
            c.start_store(victim);
            c.wait_until(
                Duration::from_secs(20),
                &format!("store {victim} to reach crash point {n} of taking in a snapshot"),
                |c| !c.event_crash_pending(),
            );
            let crashed = c.world().stats.event_crashes > crashes;
            assert_ne!(crashed, c.world().stats.event_crashes_missed > missed);
            c.wait_until(
                Duration::from_secs(20),
                &format!("store {victim} to install a snapshot"),
                |c| c.is_running(victim) && c.world().apply_oracle.verified_snapshots() > snapshots,
            );
            for key in &written {
                c.must_get_equal(victim, key, key);
            }
            c.must_get_none(victim, &stale);
            if !crashed {
                break;
            }
            n += 1;
        }
        assert!(n >= 2, "taking in a snapshot had only {n} writes");
        c.must_replicas_converge();
    });
}

/// Clients on a 5-store cluster that compacts its log every 30 entries, whose stores die
/// inside random events (one in 25 armed, at one of its first eight writes) and restart, so
/// lagging stores catch up by snapshots that crashes interrupt anywhere. No acknowledged
/// write may be lost, the replicas converge, the logs stay trimmed.
#[test]
fn random_crashes_inside_events_with_snapshots_2c() {
    const NAME: &str = "random_crashes_inside_events_with_snapshots_2c";
    run_seeded(NAME, |seed| {
        let mut cfg = ClusterConfig::new(5);
        cfg.store.raft_log_gc_count_limit = 30;
        cfg.event_crash_mix = Some(EventCrashMix {
            rate: 0.04,
            max_writes: 8,
            restart_after: Duration::from_millis(300),
        });
        let mut c = Cluster::new(NAME, seed, cfg);
        c.run_for(Duration::from_secs(1));
        c.install_workload(4);
        c.start_clients();
        c.run_clients_for(Duration::from_secs(8));
        c.stop_and_check_clients();
        c.world_mut().event_crashes.mix = None;
        c.wait_until(Duration::from_secs(5), "every store to run", |c| {
            c.store_ids().into_iter().all(|s| c.is_running(s))
        });
        c.must_replicas_converge();
        c.run_for(Duration::from_secs(1));
        c.check_log_trimmed(2 * 30);
        let crashes = c.world().stats.event_crashes;
        assert!(crashes >= 5, "only {crashes} crashes inside events");
    });
}
