//! Stage 2b beyond the original: a store that dies *inside* an event, between two of its
//! engine writes (`harness::cluster::event_crash`). A crash between events never separates
//! the raft-state write of a ready from the apply that follows it, or the apply from the
//! answer; these tests crash a store at each of those points in turn and check that it comes
//! back consistent: it re-applies what the crash rolled back (the apply oracle checks every
//! apply against the log, once and in order), catches up with the others, and no
//! acknowledged write is lost.

use std::time::Duration;

use harness::cluster::{Cluster, ClusterConfig, CrashTrigger, EventCrash, EventCrashMix};
use harness::seeds::run_seeded;

/// More crash points than any event of the store has: a walk that has not missed by then
/// is not terminating.
const MAX_CRASH_POINTS: u32 = 16;
const RESTART_AFTER: Duration = Duration::from_millis(200);

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

/// Which store to crash in an iteration.
#[derive(Debug, Clone, Copy)]
enum Victim {
    Leader,
    Follower,
}

/// Puts `key` with a crash planned on `victim` after `n` writes from the batch `trigger`
/// picks, given the index the put's entry gets. Returns whether the crash happened
/// (`false`: the event had `n` writes or fewer from there).
fn put_with_a_crash(
    c: &mut Cluster,
    victim: Victim,
    n: u32,
    key: &[u8],
    trigger: fn(u64) -> CrashTrigger,
) -> bool {
    c.wait_until(Duration::from_secs(20), "the cluster to settle", settled);
    let leader = leader_store(c);
    let store = match victim {
        Victim::Leader => leader,
        Victim::Follower => match c.store_ids().into_iter().find(|&s| s != leader) {
            Some(s) => s,
            None => c.fail("no follower"),
        },
    };
    // The cluster is idle: the put's entry is the next one of the leader's log.
    let index = match c.raft_state_of(leader, 1) {
        Some(s) => s.last_index + 1,
        None => c.fail("the leader has no raft state"),
    };
    let (crashes, missed) = (
        c.world().stats.event_crashes,
        c.world().stats.event_crashes_missed,
    );
    let trigger = trigger(index);
    c.plan_event_crash(EventCrash {
        store,
        trigger: trigger.clone(),
        after_writes: n,
        restart_after: RESTART_AFTER,
    });
    c.must_put(key, key);
    c.wait_until(
        Duration::from_secs(20),
        &format!("store {store} ({victim:?}) to reach crash point {n} from {trigger:?}"),
        |c| !c.event_crash_pending(),
    );
    let crashed = c.world().stats.event_crashes > crashes;
    assert_ne!(
        crashed,
        c.world().stats.event_crashes_missed > missed,
        "a planned crash either fires or misses"
    );
    crashed
}

/// Crashes a follower, then the leader, at every write in turn of the event `trigger` picks
/// (`n = 0, 1, ...` until that event has no write left), with a put each time. After each
/// victim's walk the cluster must settle with every key on every store, and in the end the
/// replicas hold the same bytes.
fn crash_at_every_write(name: &str, seed: u64, trigger: fn(u64) -> CrashTrigger) {
    let mut c = Cluster::new(name, seed, ClusterConfig::new(3));
    c.must_put(b"warm-up", b"1");
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for victim in [Victim::Follower, Victim::Leader] {
        let mut n = 0;
        loop {
            assert!(
                n < MAX_CRASH_POINTS,
                "{victim:?}: more than {n} crash points"
            );
            let key = format!("{victim:?}-{n}").into_bytes();
            let crashed = put_with_a_crash(&mut c, victim, n, &key, trigger);
            keys.push(key);
            if !crashed {
                break;
            }
            n += 1;
        }
        assert!(n >= 1, "{victim:?}: no crash point at all");
        c.wait_until(Duration::from_secs(20), "the cluster to settle", settled);
        for s in c.store_ids() {
            for key in &keys {
                c.must_get_equal(s, key, key);
            }
        }
    }
    c.must_replicas_converge();
}

/// A store crashes at every write, in turn, of the event where it persists a new log entry
/// (the append that carries a put): before the entries and raft state are durable, and
/// after. A store that acknowledges entries (or, as leader, sends them) before they are
/// durable leaves the leader believing the restarted follower holds entries it lost: the
/// leader ignores its rejections and the follower never catches up.
#[test]
fn crash_at_every_write_of_appending_an_entry_2b() {
    const NAME: &str = "crash_at_every_write_of_appending_an_entry_2b";
    run_seeded(NAME, |seed| {
        crash_at_every_write(NAME, seed, |index| CrashTrigger::LogAppend {
            region_id: 1,
            index,
        });
    });
}

/// A store crashes at every write, in turn, of the event where it learns that a put is
/// committed and applies it: before it persists the commit index, between that and the
/// apply, after the apply, and so on until the event has no write left. The leader also
/// answers the client in that event: an answer is sent only if the store lived past it.
#[test]
fn crash_at_every_write_of_applying_a_put_2b() {
    const NAME: &str = "crash_at_every_write_of_applying_a_put_2b";
    run_seeded(NAME, |seed| {
        crash_at_every_write(NAME, seed, |index| CrashTrigger::CommitReaches {
            region_id: 1,
            index,
        });
    });
}

fn mix_cluster(name: &str, seed: u64) -> Cluster {
    let mut cfg = ClusterConfig::new(5);
    cfg.event_crash_mix = Some(EventCrashMix {
        rate: 0.04,
        max_writes: 8,
        restart_after: Duration::from_millis(300),
    });
    Cluster::new(name, seed, cfg)
}

/// Clients on a 5-store cluster whose stores die inside random events (one event in 25 has
/// a crash armed, at one of its first eight writes; most events write less) and restart.
/// No acknowledged write may be lost, the history must be linearizable, the replicas
/// converge, and the apply oracle checks every apply throughout. Clients run for `secs`
/// seconds of virtual time. Returns the run's trace hash, event count and number of crashes.
fn clients_under_random_event_crashes(name: &str, seed: u64, secs: u64) -> (u64, u64, u64) {
    let mut c = mix_cluster(name, seed);
    c.run_for(Duration::from_secs(1));
    c.install_workload(4);
    c.start_clients();
    c.run_clients_for(Duration::from_secs(secs));
    c.stop_and_check_clients();
    // Bring every crashed store back before comparing the replicas.
    c.world_mut().event_crashes.mix = None;
    c.wait_until(Duration::from_secs(5), "every store to run", |c| {
        c.store_ids().into_iter().all(|s| c.is_running(s))
    });
    c.must_replicas_converge();
    let crashes = c.world().stats.event_crashes;
    (c.sim().trace_hash(), c.sim().events_executed(), crashes)
}

/// Crashes inside random events, with clients: see [`clients_under_random_event_crashes`].
#[test]
fn random_crashes_inside_events_lose_no_acked_write_2b() {
    const NAME: &str = "random_crashes_inside_events_lose_no_acked_write_2b";
    run_seeded(NAME, |seed| {
        let (_, _, crashes) = clients_under_random_event_crashes(NAME, seed, 8);
        assert!(crashes >= 5, "only {crashes} crashes inside events");
    });
}

/// The random crash mix draws from the run's seed: the same seed replays the same run, crash
/// for crash.
#[test]
fn random_crashes_inside_events_replay_the_same_run_2b() {
    const NAME: &str = "random_crashes_inside_events_replay_the_same_run_2b";
    run_seeded(NAME, |seed| {
        let first = clients_under_random_event_crashes(NAME, seed, 3);
        assert!(first.2 > 0, "no crash inside an event happened");
        assert_eq!(
            first,
            clients_under_random_event_crashes(NAME, seed, 3),
            "two runs with seed {seed} diverged"
        );
    });
}
