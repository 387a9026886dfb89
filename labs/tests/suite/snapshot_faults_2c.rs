//! Stage 2c beyond the original: snapshots and raft-log GC under the faults the original's
//! harness cannot produce. Snapshot chunks lost, duplicated, reordered, corrupted and
//! truncated; a follower cut off across several compactions; a store crashed between two
//! steps of a snapshot application or of a raft-log GC; a raft engine that must stay bounded
//! under a long workload; snapshot files damaged in flight and on the sender's disk. Every
//! test runs in virtual time on the simulator, replays from its `LABS_SEED`, and is watched by
//! the apply oracle, which checks that every installed snapshot holds exactly the region's
//! data at its index.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use engine::Cf;
use harness::cluster::inspect::{snap_dir_in, snapshot_files_in};
use harness::cluster::tasks::TaskCrash;
use harness::cluster::{Cluster, ClusterConfig, World};
use harness::seeds::run_seeded;
use harness::sim::net::Filter;
use proto::raft_serverpb::PeerState;
use raftstore::snap::SnapFileKind;
use raftstore::task::TaskKind;

/// A 3-store cluster whose leader compacts its log every `gc_limit` entries and that sends
/// snapshots in 1 KiB chunks, so a region of a few dozen KiB takes dozens of chunks.
fn snapshot_cluster(name: &str, seed: u64, gc_limit: u64) -> Cluster {
    let mut cfg = ClusterConfig::new(3);
    cfg.store.raft_log_gc_count_limit = gc_limit;
    cfg.store.snap_chunk_size = 1024;
    Cluster::new(name, seed, cfg)
}

fn leader_store(c: &mut Cluster) -> u64 {
    match c.leader_of_region(1) {
        Some(p) => p.store_id,
        None => c.fail("region 1 has no leader"),
    }
}

/// A store that does not lead region 1.
fn a_follower(c: &mut Cluster) -> u64 {
    let leader = leader_store(c);
    match c.store_ids().into_iter().find(|&s| s != leader) {
        Some(s) => s,
        None => c.fail("region 1 has no follower"),
    }
}

/// A value of about 200 bytes that names its key.
fn value_of(key: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(200);
    while v.len() < 200 {
        v.extend_from_slice(key);
        v.push(b'.');
    }
    v
}

/// Whether store `store`'s kv engine holds `key` with [`value_of`] it.
fn holds(c: &Cluster, store: u64, key: &[u8]) -> bool {
    c.engines(store)
        .kv
        .get_cf(Cf::Default, key)
        .ok()
        .flatten()
        .is_some_and(|v| *v == value_of(key)[..])
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

/// What a lagging store missed: the last key written while it lagged, and keys it held that
/// were deleted meanwhile (applying the snapshot must remove them).
struct Missed {
    last: Vec<u8>,
    deleted: Vec<Vec<u8>>,
}

/// The user keys (`default`) store `store`'s kv engine holds.
fn keys_held(c: &Cluster, store: u64) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let scanned = c.engines(store).kv.snapshot().and_then(|s| {
        s.scan_cf(Cf::Default, b"", None, |k, _| {
            keys.push(k.to_vec());
            true
        })
    });
    if let Err(e) = scanned {
        c.fail(&format!("store {store}: scanning its data: {e}"));
    }
    keys
}

/// While `lagging` is down or cut off: deletes a few keys it holds, then writes at least
/// `min_keys` keys `{prefix}NNNN` (values of about 200 bytes) and goes on until the other
/// stores compacted their logs past what `lagging` holds.
fn write_past_compaction(c: &mut Cluster, lagging: u64, prefix: &str, min_keys: usize) -> Missed {
    let deleted: Vec<Vec<u8>> = keys_held(c, lagging)
        .into_iter()
        .step_by(7)
        .take(5)
        .collect();
    for key in &deleted {
        c.must_delete(key);
    }
    for i in 0.. {
        let key = format!("{prefix}{i:04}").into_bytes();
        c.must_put(&key, &value_of(&key));
        if i + 1 >= min_keys && compacted_past(c, lagging) {
            return Missed { last: key, deleted };
        }
        if i > 2000 {
            break;
        }
    }
    c.fail(&format!(
        "2000 writes did not compact the log past store {lagging}'s"
    ))
}

/// How many snapshot streams started, and how many snapshots the apply oracle checked.
fn snapshot_counts(c: &Cluster) -> (u64, u64) {
    (
        c.world().stats.snapshot_streams,
        c.world().apply_oracle.verified_snapshots(),
    )
}

/// Whether `store` finished installing a snapshot since `before` ([`snapshot_counts`]) that
/// brought what it `missed`: its region is `Normal` again, the apply oracle checked one more
/// install, it holds the last key written and none of the keys deleted.
fn installed(c: &Cluster, store: u64, missed: &Missed, before: (u64, u64)) -> bool {
    holds(c, store, &missed.last)
        && c.world().apply_oracle.verified_snapshots() > before.1
        && c.region_state_of(store, 1)
            .is_some_and(|s| s.get_state() == PeerState::Normal)
        && missed
            .deleted
            .iter()
            .all(|k| matches!(c.engines(store).kv.get_cf(Cf::Default, k), Ok(None)))
}

/// Asserts that a snapshot was streamed and installed (and checked by the apply oracle) since
/// `before` ([`snapshot_counts`]).
fn assert_installed_since(c: &Cluster, before: (u64, u64), what: &str) {
    let now = snapshot_counts(c);
    if now.0 <= before.0 || now.1 <= before.1 {
        c.fail(&format!(
            "{what}: expected a snapshot streamed and installed; streams {} → {}, verified snapshot installs {} → {} ({:?})",
            before.0,
            now.0,
            before.1,
            now.1,
            c.world().stats
        ));
    }
}

/// Beyond the original, whose transport copies a snapshot file whole and in order: snapshot
/// files travel in many 1 KiB chunks while the network drops, duplicates, delays (reorders),
/// bit-flips and truncates them, and a store that was down while the others compacted their
/// logs (and deleted keys it holds) must still install a correct snapshot with the faults in
/// force: three rounds at least, more until chunks were both lost and damaged. Each round
/// checks that a snapshot was streamed and installed, that the lagging store holds the new
/// data and none of the deleted keys, and (the apply oracle) that the install equals the
/// region's data at the snapshot's index; at the end the replicas converge.
///
/// Catches a receiver that assumes chunks arrive once and in order, that accepts a file it did
/// not verify, or that a lost chunk wedges for good (a reception must be retried or abandoned),
/// and an application that keeps stale keys.
#[test]
fn snapshot_chunks_lost_duplicated_reordered_and_damaged_still_install_2c() {
    const NAME: &str = "snapshot_chunks_lost_duplicated_reordered_and_damaged_still_install_2c";
    run_seeded(NAME, |seed| {
        let mut c = snapshot_cluster(NAME, seed, 10);
        c.must_put(b"k0", b"v0");
        // At least three rounds, and more (up to eight) until chunks were both lost and damaged.
        for round in 0..8 {
            let stats = &c.world().stats;
            if round >= 3 && stats.snapshot_streams_failed > 0 && stats.chunks_damaged > 0 {
                break;
            }
            let lagging = a_follower(&mut c);
            let before = snapshot_counts(&c);
            c.stop_store(lagging);
            let missed = write_past_compaction(&mut c, lagging, &format!("r{round} "), 40);
            c.add_filter(Filter::DropRate(0.03));
            c.add_filter(Filter::Duplicate {
                rate: 0.2,
                max_gap: Duration::from_millis(10),
            });
            c.add_filter(Filter::Delay {
                min: Duration::ZERO,
                max: Duration::from_millis(10),
            });
            c.add_filter(Filter::Corrupt(0.03));
            c.add_filter(Filter::Truncate(0.05));
            c.start_store(lagging);
            c.wait_until(
                Duration::from_secs(20),
                &format!("store {lagging} to install a snapshot through the faulty network"),
                |c| installed(c, lagging, &missed, before),
            );
            c.clear_filters();
            assert_installed_since(&c, before, &format!("round {round}"));
        }
        let stats = c.world().stats.clone();
        assert!(
            stats.snapshot_streams_failed > 0 && stats.chunks_damaged > 0,
            "in eight rounds, chunks were not both lost and damaged: {stats:?}"
        );
        c.must_replicas_converge();
    });
}

/// Beyond the original (whose test cuts a follower off for one burst of writes): a follower
/// isolated while the leader compacts its log at least five times (and deletes keys it holds)
/// catches up by snapshot, without the deleted keys, then follows the log again, and afterwards its log is trimmed like everyone's: its raft
/// engine holds no entry at or below its truncated index (its pre-partition entries are
/// gone) and at most twice the GC limit above it.
///
/// Catches a snapshot application that leaves the old log or the old truncated state behind,
/// a follower whose log after a snapshot never gets compacted or garbage-collected, and a
/// GC that forgets entries below the range it was asked to delete.
#[test]
fn partitioned_follower_catches_up_by_snapshot_across_compactions_2c() {
    const NAME: &str = "partitioned_follower_catches_up_by_snapshot_across_compactions_2c";
    const LIMIT: u64 = 10;
    run_seeded(NAME, |seed| {
        let mut c = snapshot_cluster(NAME, seed, LIMIT);
        let pre: Vec<Vec<u8>> = (0..10).map(|i| format!("k{i}").into_bytes()).collect();
        for key in &pre {
            c.must_put(key, &value_of(key));
        }
        for s in c.store_ids() {
            c.must_get_equal(s, &pre[9], &value_of(&pre[9]));
        }
        let follower = a_follower(&mut c);
        let leader = leader_store(&mut c);
        let old_last = c.raft_state_of(follower, 1).map_or(0, |s| s.last_index);
        let before = snapshot_counts(&c);

        c.add_filter(Filter::Isolate(follower));
        // Keys the follower holds and the snapshot must remove.
        let deleted = &pre[..5];
        for key in deleted {
            c.must_delete(key);
        }
        let mut truncations = BTreeSet::new();
        let mut last = Vec::new();
        for i in 0..120 {
            last = format!("p{i:04}").into_bytes();
            c.must_put(&last, &value_of(&last));
            if let Some(a) = c.apply_state_of(leader, 1) {
                truncations.insert(a.get_truncated_state().index);
            }
        }
        let compactions = truncations.iter().filter(|&&t| t > old_last).count();
        if compactions < 5 {
            c.fail(&format!(
                "the leader compacted its log only {compactions} times past the follower's last index {old_last}: {truncations:?}"
            ));
        }
        c.run_for(Duration::from_millis(300));
        c.must_get_none(follower, &last);

        c.clear_filters();
        c.wait_until(
            Duration::from_secs(10),
            &format!("store {follower} to catch up"),
            |c| {
                let missed = Missed {
                    last: last.clone(),
                    deleted: deleted.to_vec(),
                };
                installed(c, follower, &missed, before)
            },
        );
        assert_installed_since(&c, before, "the partitioned follower");
        let truncated = c
            .apply_state_of(follower, 1)
            .map_or(0, |a| a.get_truncated_state().index);
        assert!(
            truncated > old_last,
            "store {follower}: truncated index {truncated}, not past its old log (last {old_last})"
        );

        // The log goes on after the snapshot, and gets compacted on every store.
        for i in 0..4 * LIMIT {
            let key = format!("q{i:04}").into_bytes();
            c.must_put(&key, &value_of(&key));
        }
        let key = format!("q{:04}", 4 * LIMIT - 1).into_bytes();
        c.wait_until(Duration::from_secs(5), "the follower to apply", |c| {
            holds(c, follower, &key)
        });
        c.run_for(Duration::from_secs(1));
        for s in c.store_ids() {
            let t = c
                .apply_state_of(s, 1)
                .map_or(0, |a| a.get_truncated_state().index);
            let log = c.raft_log_indexes(s, 1);
            if let Some(&stale) = log.iter().find(|&&i| i <= t) {
                c.fail(&format!(
                    "store {s}: the raft engine still holds entry {stale}, at or below the truncated index {t} (log {}..={})",
                    log[0],
                    log[log.len() - 1]
                ));
            }
            if log.len() as u64 > 2 * LIMIT {
                c.fail(&format!(
                    "store {s}: {} log entries above the truncated index {t}, more than twice the GC limit",
                    log.len()
                ));
            }
        }
        c.check_log_trimmed(2 * LIMIT);
    });
}

/// The steps of snapshot applications after which [`crash_while_applying_a_snapshot_restarts_cleanly_2c`]
/// crashes a store: while clearing the range (1, 2), at the start of the ingest (4) and deep
/// into it.
const APPLY_CRASH_STEPS: [u32; 6] = [1, 2, 4, 7, 11, 16];

/// Beyond the original (whose stores stop only between client runs, cleanly): clients keep
/// writing while a lagging store, in the middle of applying a snapshot, crashes (losing its
/// unsynced writes) after step 1, 2, 4, 7, 11 or 16 of the application, and restarts. Each
/// time it must resume the application from its persisted `Applying` state and end with the
/// region's data at the snapshot's index (the apply oracle checks every install), without
/// the key deleted while it was down; in the end no acknowledged write is lost, the history
/// is linearizable and the replicas converge.
///
/// Catches a snapshot application that is not restartable: region state written `Normal`
/// before the data is durable, a received file deleted before the application ends, a
/// restart that forgets it was applying, or data half-written by the crashed attempt left in
/// place.
#[test]
fn crash_while_applying_a_snapshot_restarts_cleanly_2c() {
    const NAME: &str = "crash_while_applying_a_snapshot_restarts_cleanly_2c";
    run_seeded(NAME, |seed| {
        let mut cfg = ClusterConfig::new(3);
        cfg.store.raft_log_gc_count_limit = 50;
        // Small batches, so an application takes dozens of steps, and quick steps, so it
        // still ends before the log has moved on by another snapshot's worth.
        cfg.store.task_batch_bytes = 512;
        cfg.tasks.step_min = Duration::from_micros(100);
        cfg.tasks.step_max = Duration::from_millis(1);
        cfg.tasks.slow_rate = 0.005;
        let mut c = Cluster::new(NAME, seed, cfg);
        c.run_for(Duration::from_secs(1));
        c.install_workload(3);
        c.start_clients();
        c.run_clients_for(Duration::from_secs(1));
        for (round, after_steps) in APPLY_CRASH_STEPS.into_iter().enumerate() {
            let leader = leader_store(&mut c);
            let followers: Vec<u64> = c.store_ids().into_iter().filter(|&s| s != leader).collect();
            let victim = followers[round % followers.len()];
            let crashes = c.world().stats.task_crashes;
            // A key the victim holds, deleted while it is down: the snapshot must remove it.
            let stale = format!("~stale {round}").into_bytes();
            c.must_put(&stale, b"1");
            c.must_get_equal(victim, &stale, b"1");
            c.world_mut().task_faults.crash.push(TaskCrash {
                store: victim,
                kind: TaskKind::ApplySnapshot,
                after_steps,
                restart_after: Duration::from_millis(300),
            });
            c.stop_store(victim);
            c.must_delete(&stale);
            c.wait_until(
                Duration::from_secs(20),
                &format!("a compaction past stopped store {victim}'s log"),
                |c| compacted_past(c, victim),
            );
            c.start_store(victim);
            c.wait_until(
                Duration::from_secs(20),
                &format!(
                    "store {victim} to crash after step {after_steps} of a snapshot application"
                ),
                |c| c.world().stats.task_crashes > crashes,
            );
            let verified = c.world().apply_oracle.verified_snapshots();
            c.wait_until(
                Duration::from_secs(20),
                &format!("store {victim} to install a snapshot after its restart"),
                |c| c.is_running(victim) && c.world().apply_oracle.verified_snapshots() > verified,
            );
            c.must_get_none(victim, &stale);
        }
        c.stop_and_check_clients();
        c.must_replicas_converge();
        assert_eq!(
            c.world().stats.task_crashes,
            APPLY_CRASH_STEPS.len() as u64,
            "every planned crash happened"
        );
    });
}

/// Beyond the original: a lagging store crashes the moment it has taken in a snapshot from
/// raft, once `save_ready_state` has written the snapshot's raft, apply and region states
/// and the data application was handed to a task that has not run a step yet; the crash
/// loses every write that was not synced. Restarted, the store must find a consistent state
/// (region `Applying` at the snapshot's index, or its old state with its old log), install a
/// snapshot with the region's data at its index (the apply oracle checks it) and without the
/// key deleted while it was down; in the end no acknowledged write is lost and the replicas
/// converge.
///
/// Catches a peer storage that writes the snapshot's apply and region states without a sync
/// while the raft state (the log gone, the last index at the snapshot) is synced: the crash
/// keeps the new raft state and rolls the apply state back to before the snapshot, and the
/// store cannot restart. [`crash_while_applying_a_snapshot_restarts_cleanly_2c`] crashes only
/// after the application's first step, which syncs the kv engine and hides the mistake.
#[test]
fn crash_right_after_taking_in_a_snapshot_restarts_cleanly_2c() {
    const NAME: &str = "crash_right_after_taking_in_a_snapshot_restarts_cleanly_2c";
    run_seeded(NAME, |seed| {
        let mut cfg = ClusterConfig::new(3);
        cfg.store.raft_log_gc_count_limit = 50;
        let mut c = Cluster::new(NAME, seed, cfg);
        c.run_for(Duration::from_secs(1));
        c.install_workload(3);
        c.start_clients();
        c.run_clients_for(Duration::from_secs(1));
        let victim = a_follower(&mut c);
        // A key the victim holds, deleted while it is down: the snapshot must remove it.
        c.must_put(b"~stale", b"1");
        c.must_get_equal(victim, b"~stale", b"1");
        c.world_mut().task_faults.crash.push(TaskCrash {
            store: victim,
            kind: TaskKind::ApplySnapshot,
            after_steps: 0,
            restart_after: Duration::from_millis(300),
        });
        c.stop_store(victim);
        c.must_delete(b"~stale");
        c.wait_until(
            Duration::from_secs(20),
            &format!("a compaction past stopped store {victim}'s log"),
            |c| compacted_past(c, victim),
        );
        c.start_store(victim);
        c.wait_until(
            Duration::from_secs(20),
            &format!("store {victim} to crash as it took in a snapshot"),
            |c| c.world().stats.task_crashes > 0,
        );
        let verified = c.world().apply_oracle.verified_snapshots();
        c.wait_until(
            Duration::from_secs(20),
            &format!("store {victim} to install a snapshot after its restart"),
            |c| c.is_running(victim) && c.world().apply_oracle.verified_snapshots() > verified,
        );
        c.must_get_none(victim, b"~stale");
        c.stop_and_check_clients();
        c.must_replicas_converge();
    });
}

/// Beyond the original: clients keep writing with a GC limit of 20 (a compaction every few
/// dozen milliseconds) while each store in turn, the leader included, crashes in the middle
/// of a raft-log GC (after its first, second or third step) and restarts. No acknowledged
/// write may be lost, the history must be linearizable, the replicas converge and every log
/// is trimmed.
///
/// Catches a GC that deletes log entries before the apply state that compacted them is
/// durable: the crash rolls the apply state back to entries that are gone, and the store
/// cannot replay its log (it fails to start, or applies from a hole).
#[test]
fn crash_during_raft_log_gc_loses_no_acknowledged_write_2c() {
    const NAME: &str = "crash_during_raft_log_gc_loses_no_acknowledged_write_2c";
    const AFTER_STEPS: [u32; 6] = [1, 2, 3, 1, 2, 3];
    run_seeded(NAME, |seed| {
        let mut cfg = ClusterConfig::new(3);
        cfg.store.raft_log_gc_count_limit = 20;
        // About five log keys a batch, so a GC takes a few steps; quick steps, so a store
        // that restarts far behind installs its (many-step) snapshot in good time.
        cfg.store.task_batch_bytes = 100;
        cfg.tasks.step_min = Duration::from_micros(50);
        cfg.tasks.step_max = Duration::from_micros(300);
        cfg.tasks.slow_rate = 0.0;
        let mut c = Cluster::new(NAME, seed, cfg);
        c.run_for(Duration::from_secs(1));
        c.install_workload(3);
        c.start_clients();
        // Several GCs ran on every store before the first crash.
        c.run_clients_for(Duration::from_secs(2));
        for (i, after_steps) in AFTER_STEPS.into_iter().enumerate() {
            let victim = 1 + i as u64 % 3;
            let crashes = c.world().stats.task_crashes;
            c.world_mut().task_faults.crash.push(TaskCrash {
                store: victim,
                kind: TaskKind::RaftLogGc,
                after_steps,
                restart_after: Duration::from_millis(200),
            });
            c.wait_until(
                Duration::from_secs(20),
                &format!("store {victim} to crash after step {after_steps} of a raft-log GC"),
                |c| c.world().stats.task_crashes > crashes,
            );
            c.wait_until(
                Duration::from_secs(5),
                &format!("store {victim} to restart"),
                |c| c.is_running(victim),
            );
            c.run_clients_for(Duration::from_millis(700));
        }
        c.stop_and_check_clients();
        c.must_replicas_converge();
        c.run_for(Duration::from_secs(1));
        c.check_log_trimmed(2 * 20);
    });
}

/// Beyond the original, which checks the log's length only through the apply state: over
/// 20 s of virtual time of three clients (about a thousand entries a second) with a GC limit
/// of 50, what each store's raft engine actually holds, counted key by key every 250 ms,
/// stays bounded: at most 3 × 50 entries above the truncated index, and at most 6 × 50 log
/// keys in all (the limit, the entries of one GC tick, and those that pile up while one GC
/// step is slow, 200 ms); and once the clients stop, no key at or below the truncated index
/// is left. Meanwhile the log grows to many thousand entries.
///
/// Catches a store that moves its truncated state but never deletes the entries, deletes only
/// part of them (an off-by-one at either end of the range leaks a key per compaction), or
/// never compacts at all: its disk grows without bound, although every apply state may look
/// trimmed.
#[test]
fn raft_engine_stays_bounded_under_a_long_workload_2c() {
    const NAME: &str = "raft_engine_stays_bounded_under_a_long_workload_2c";
    const LIMIT: u64 = 50;
    const ABOVE_BOUND: u64 = 3 * LIMIT;
    const KEYS_BOUND: u64 = 6 * LIMIT;
    run_seeded(NAME, |seed| {
        let mut cfg = ClusterConfig::new(3);
        cfg.store.raft_log_gc_count_limit = LIMIT;
        let mut c = Cluster::new(NAME, seed, cfg);
        c.run_for(Duration::from_secs(1));
        c.install_workload(3);
        c.start_clients();
        let start = c.sim().now();
        while c.sim().now().since(start) < Duration::from_secs(20) {
            c.run_clients_for(Duration::from_millis(250));
            for s in c.store_ids() {
                let keys = c.raft_log_key_count(s);
                let last = c.raft_state_of(s, 1).map_or(0, |r| r.last_index);
                let truncated = c
                    .apply_state_of(s, 1)
                    .map_or(0, |a| a.get_truncated_state().index);
                let above = last.saturating_sub(truncated);
                if keys > KEYS_BOUND || above > ABOVE_BOUND {
                    c.fail(&format!(
                        "store {s}: its raft engine holds {keys} log keys (bound {KEYS_BOUND}), {above} entries above the truncated index {truncated} (bound {ABOVE_BOUND}), with a GC limit of {LIMIT}"
                    ));
                }
            }
        }
        c.stop_clients();
        c.wait_clients(Duration::from_secs(120));
        c.run_for(Duration::from_secs(1));
        for s in c.store_ids() {
            let truncated = c
                .apply_state_of(s, 1)
                .map_or(0, |a| a.get_truncated_state().index);
            let garbage = c
                .raft_log_indexes(s, 1)
                .into_iter()
                .filter(|&i| i <= truncated)
                .count();
            if garbage > 0 {
                c.fail(&format!(
                    "store {s}: {garbage} log entries at or below the truncated index {truncated} were never deleted"
                ));
            }
        }
        let applied = c.apply_state_of(1, 1).map_or(0, |a| a.applied_index);
        assert!(
            applied > 10 * KEYS_BOUND,
            "the workload wrote only {applied} entries: too few for the bound to mean anything"
        );
        c.check_client_appends();
    });
}

/// Generated snapshot files on every store but `except`.
fn generated_files(w: &World, except: u64) -> Vec<PathBuf> {
    w.stores
        .keys()
        .filter(|&&s| s != except)
        .filter_map(|&s| snap_dir_in(w, s))
        .flat_map(|dir| snapshot_files_in(&dir, SnapFileKind::Generated))
        .map(|(_, path)| path)
        .collect()
}

/// Runs the simulator event by event until a store other than `lagging` holds a generated
/// snapshot file not in `known`; returns its path.
fn wait_for_new_generated_file(
    c: &mut Cluster,
    lagging: u64,
    known: &BTreeSet<PathBuf>,
) -> PathBuf {
    let mut found = None;
    let appeared = c.sim().run_until_true(Duration::from_secs(10), |w| {
        found = generated_files(w, lagging)
            .into_iter()
            .find(|p| !known.contains(p));
        found.is_some()
    });
    match found {
        Some(path) if appeared => path,
        _ => c.fail("no new snapshot was generated for the lagging store"),
    }
}

/// Beyond the original, whose snapshot files are never damaged: a snapshot damaged in flight
/// (every chunk bit-flipped, then every chunk truncated) or on the sender's disk (bytes
/// overwritten after the file was generated and before the stream read it; the file cut
/// short while the stream was reading it chunk by chunk) is refused, never handed to raft,
/// and the lagging store recovers with a fresh snapshot once the damage stops.
///
/// Catches a receiver that steps a snapshot into raft before the whole file is there and
/// verified against the checksums its message announced, and a sender that keeps resending
/// a broken file instead of generating a new one.
#[test]
fn corrupt_or_truncated_snapshot_is_refused_and_replaced_2c() {
    const NAME: &str = "corrupt_or_truncated_snapshot_is_refused_and_replaced_2c";
    run_seeded(NAME, |seed| {
        let mut c = snapshot_cluster(NAME, seed, 10);
        c.must_put(b"k0", b"v0");

        // In flight: every chunk damaged for a while, then a clean network.
        for (round, damage) in [Filter::Corrupt(1.0), Filter::Truncate(1.0)]
            .into_iter()
            .enumerate()
        {
            let lagging = a_follower(&mut c);
            let before = snapshot_counts(&c);
            let damaged = c.world().stats.chunks_damaged;
            c.stop_store(lagging);
            let missed = write_past_compaction(&mut c, lagging, &format!("f{round} "), 40);
            c.add_filter(damage.clone());
            c.start_store(lagging);
            c.run_for(Duration::from_millis(1500));
            let state = c.region_state_of(lagging, 1).map(|s| s.get_state());
            if holds(&c, lagging, &missed.last) || state != Some(PeerState::Normal) {
                c.fail(&format!(
                    "{damage:?}: store {lagging} took in a damaged snapshot (region state {state:?})"
                ));
            }
            let stats = c.world().stats.clone();
            if stats.snapshot_streams < before.0 + 2 || stats.chunks_damaged == damaged {
                c.fail(&format!(
                    "{damage:?}: expected damaged snapshots sent and sent again: {stats:?}"
                ));
            }
            c.clear_filters();
            c.wait_until(
                Duration::from_secs(10),
                &format!("store {lagging} to install a fresh snapshot after {damage:?}"),
                |c| installed(c, lagging, &missed, before),
            );
            assert_installed_since(&c, before, &format!("after {damage:?}"));
        }

        // On the sender's disk: bytes overwritten before the stream reads them.
        let lagging = a_follower(&mut c);
        let before = snapshot_counts(&c);
        c.stop_store(lagging);
        let missed = write_past_compaction(&mut c, lagging, "d0 ", 40);
        let known: BTreeSet<PathBuf> = generated_files(c.world(), lagging).into_iter().collect();
        c.start_store(lagging);
        let path = wait_for_new_generated_file(&mut c, lagging, &known);
        let mut bytes = std::fs::read(&path).unwrap_or_else(|e| c.fail(&format!("{path:?}: {e}")));
        let len = bytes.len();
        if len < 4096 {
            c.fail(&format!("{path:?} holds only {len} bytes"));
        }
        for at in [len / 5, len / 2, len - 10] {
            bytes[at] ^= 0x5a;
        }
        // In place: the stream reads the file it opens, lazily.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
            .unwrap_or_else(|e| c.fail(&format!("overwriting {path:?}: {e}")));
        c.wait_until(
            Duration::from_secs(10),
            &format!("store {lagging} to install a fresh snapshot after a corrupt file"),
            |c| installed(c, lagging, &missed, before),
        );
        assert_installed_since(&c, before, "after a corrupt file");
        if c.world().stats.snapshot_streams < before.0 + 2 {
            c.fail(&format!(
                "the corrupt file was installed: no fresh snapshot was sent ({:?})",
                c.world().stats
            ));
        }

        // On the sender's disk: the file cut short while the stream reads it.
        let lagging = a_follower(&mut c);
        let before = snapshot_counts(&c);
        let failed = c.world().stats.snapshot_streams_failed;
        c.stop_store(lagging);
        let missed = write_past_compaction(&mut c, lagging, "d1 ", 40);
        let known: BTreeSet<PathBuf> = generated_files(c.world(), lagging).into_iter().collect();
        c.start_store(lagging);
        let path = wait_for_new_generated_file(&mut c, lagging, &known);
        let streams = c.world().stats.snapshot_streams;
        if !c.sim().run_until_true(Duration::from_secs(10), |w| {
            w.stats.snapshot_streams > streams
        }) {
            c.fail("the new snapshot was never sent");
        }
        // The stream has sent its first chunk; the others are read from the file later.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(1500))
            .unwrap_or_else(|e| c.fail(&format!("truncating {path:?}: {e}")));
        c.wait_until(
            Duration::from_secs(10),
            &format!("store {lagging} to install a fresh snapshot after a truncated file"),
            |c| installed(c, lagging, &missed, before),
        );
        assert_installed_since(&c, before, "after a truncated file");
        if c.world().stats.snapshot_streams_failed == failed {
            c.fail(&format!(
                "the stream of the truncated file did not fail ({:?})",
                c.world().stats
            ));
        }
        c.must_replicas_converge();
    });
}
