//! Stage 3b beyond the original: admin commands half-written. A split or a conf change is
//! not idempotent, and applying one writes several keys (the region states of both halves
//! of a split, the new region's raft and apply state, a removed peer's tombstone and the
//! deletion of its data); a store that crashes between two of those writes must restart into
//! a consistent state and finish the job from its log. These tests crash the applying store
//! at every write, in turn, of the event that applies the command
//! (`harness::cluster::event_crash`, counting from its first region-state write of the
//! region), and check what it ends with: the right regions with the right ranges on every
//! store holding them, none overlapping, the same data on every replica, and every
//! acknowledged write readable.

use std::time::Duration;

use harness::cluster::{Cluster, ClusterConfig, CrashTrigger, EventCrash};
use harness::seeds::run_seeded;
use proto::metapb;
use proto::raft_serverpb::PeerState;

const MAX_CRASH_POINTS: u32 = 24;
const RESTART_AFTER: Duration = Duration::from_millis(200);
const SETTLE: Duration = Duration::from_secs(30);

/// Which store of a region to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Leader,
    Follower,
    /// The store whose peer the conf change removes.
    Removed,
}

fn leader_store(c: &mut Cluster, region_id: u64) -> u64 {
    match c.leader_of_region(region_id) {
        Some(p) => p.store_id,
        None => c.fail(&format!("region {region_id} has no leader")),
    }
}

/// What two stores (or a store and the scheduler) must agree on about a region.
#[derive(Debug, PartialEq, Eq)]
struct RegionView {
    id: u64,
    start: Vec<u8>,
    end: Vec<u8>,
    /// `(conf_ver, version)`.
    epoch: (u64, u64),
    /// Peer ids, sorted.
    peers: Vec<u64>,
}

impl RegionView {
    fn of(r: &metapb::Region) -> RegionView {
        let mut peers: Vec<u64> = r.get_peers().iter().map(|p| p.id).collect();
        peers.sort_unstable();
        RegionView {
            id: r.id,
            start: r.get_start_key().to_vec(),
            end: r.get_end_key().to_vec(),
            epoch: (r.get_region_epoch().conf_ver, r.get_region_epoch().version),
            peers,
        }
    }
}

/// The `Normal` regions store `store_id`'s kv engine holds, in key order.
fn normal_regions(c: &Cluster, store_id: u64) -> Vec<RegionView> {
    let mut out: Vec<RegionView> = c
        .region_states_of(store_id)
        .into_iter()
        .filter(|(_, s)| s.get_state() == PeerState::Normal)
        .map(|(_, s)| RegionView::of(s.get_region()))
        .collect();
    out.sort_by(|a, b| a.start.cmp(&b.start));
    out
}

/// Whether the cluster is at rest and agrees with the scheduler: every store runs; every
/// region the scheduler knows is held, `Normal`, with the scheduler's range, epoch and peers,
/// by exactly the stores of its peers, each having applied it as far as the others; and no
/// store holds a `Normal` region the scheduler does not list.
fn settled(c: &mut Cluster) -> bool {
    let ids = c.store_ids();
    if !ids.iter().all(|&s| c.is_running(s)) {
        return false;
    }
    let regions: Vec<metapb::Region> = c.world().scheduler.regions();
    for &s in &ids {
        let mut want: Vec<RegionView> = regions
            .iter()
            .filter(|r| r.get_peers().iter().any(|p| p.store_id == s))
            .map(RegionView::of)
            .collect();
        want.sort_by(|a, b| a.start.cmp(&b.start));
        if normal_regions(c, s) != want {
            return false;
        }
    }
    regions.iter().all(|r| {
        let applied: Vec<Option<u64>> = r
            .get_peers()
            .iter()
            .map(|p| c.apply_state_of(p.store_id, r.id).map(|a| a.applied_index))
            .collect();
        applied.windows(2).all(|w| w[0] == w[1])
    })
}

/// Waits for the cluster to settle, then checks that no store's regions overlap and that
/// every store of a region holds `key` → `key` for each of `keys` in it, and no store
/// outside it does.
fn check_consistent(c: &mut Cluster, keys: &[Vec<u8>]) {
    c.wait_until(SETTLE, "the cluster to settle", settled);
    for s in c.store_ids() {
        c.check_regions_disjoint(s);
    }
    for key in keys {
        let region = c.get_region(key);
        for s in c.store_ids() {
            if region.get_peers().iter().any(|p| p.store_id == s) {
                c.must_get_equal(s, key, key);
            } else {
                c.must_get_none(s, key);
            }
        }
    }
}

/// Plans a crash of `store` after `n` writes of the event that first writes region
/// `region_id`'s state, runs `act` (which must make that happen), and waits for the crash to
/// fire or miss. Returns whether it fired.
fn with_a_crash(
    c: &mut Cluster,
    store: u64,
    region_id: u64,
    n: u32,
    what: &str,
    act: impl FnOnce(&mut Cluster),
) -> bool {
    let (crashes, missed) = (
        c.world().stats.event_crashes,
        c.world().stats.event_crashes_missed,
    );
    c.plan_event_crash(EventCrash {
        store,
        trigger: CrashTrigger::RegionStateWrite {
            region_id: Some(region_id),
        },
        after_writes: n,
        restart_after: RESTART_AFTER,
    });
    act(c);
    c.wait_until(
        SETTLE,
        &format!("store {store} to reach crash point {n} of {what}"),
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

/// Splits the rightmost region again and again, with a crash planned at write `n = 0, 1,
/// ...` of the event where the victim (a follower, then the leader) applies the split, until
/// that event has no write left. After each split both halves must be on every store with
/// the right ranges and epochs, none overlapping, keys written before and after the split
/// (into both halves) readable on every replica; in the end the replicas converge.
#[test]
fn crash_at_every_write_of_applying_a_split_3b() {
    const NAME: &str = "crash_at_every_write_of_applying_a_split_3b";
    run_seeded(NAME, |seed| {
        let mut c = Cluster::new(NAME, seed, ClusterConfig::new(3));
        c.must_put(b"warm-up", b"warm-up");
        let mut keys = vec![b"warm-up".to_vec()];
        let mut i = 0u32;
        for victim in [Victim::Follower, Victim::Leader] {
            let mut n = 0;
            loop {
                assert!(
                    n < MAX_CRASH_POINTS,
                    "{victim:?}: more than {n} crash points"
                );
                check_consistent(&mut c, &keys);
                let split = format!("k{i:03}5").into_bytes();
                let (left, right) = (format!("k{i:03}1"), format!("k{i:03}9"));
                for key in [&left, &right] {
                    c.must_put(key.as_bytes(), key.as_bytes());
                    keys.push(key.clone().into_bytes());
                }
                let region = c.get_region(&split);
                let leader = leader_store(&mut c, region.id);
                let store = match victim {
                    Victim::Leader => leader,
                    _ => match c.store_ids().into_iter().find(|&s| s != leader) {
                        Some(s) => s,
                        None => c.fail("no follower"),
                    },
                };
                let crashed = with_a_crash(&mut c, store, region.id, n, "a split", |c| {
                    c.split_region(&region, &split)
                });
                check_consistent(&mut c, &keys);
                let (l, r) = (
                    c.get_region(left.as_bytes()),
                    c.get_region(right.as_bytes()),
                );
                if l.id == r.id
                    || l.get_start_key() != region.get_start_key()
                    || l.get_end_key() != &split[..]
                    || r.get_start_key() != &split[..]
                    || r.get_end_key() != region.get_end_key()
                {
                    c.fail(&format!(
                        "after the split of {region:?} at {split:?}: left {l:?}, right {r:?}"
                    ));
                }
                // Both halves take writes.
                for key in [format!("k{i:03}2"), format!("k{i:03}8")] {
                    c.must_put(key.as_bytes(), key.as_bytes());
                    keys.push(key.into_bytes());
                }
                i += 1;
                if !crashed {
                    break;
                }
                n += 1;
            }
            assert!(n >= 1, "{victim:?}: applying a split had no crash point");
        }
        check_consistent(&mut c, &keys);
        c.must_replicas_converge();
    });
}

/// Region 1 on four stores loses its peer on store 4 and gets a new one back, again and
/// again, with a crash planned at write `n = 0, 1, ...` of the event where the victim applies
/// the conf change, until that event has no write left: for a removal, the removed store
/// (which destroys its peer), the leader and a follower; for an addition, the leader and a
/// follower. After each change the members must agree with the scheduler on the region's
/// peers and epoch, store 4 must hold the region's data exactly while it is a member, and
/// every acknowledged write must be readable on every member.
#[test]
fn crash_at_every_write_of_applying_a_conf_change_3b() {
    const NAME: &str = "crash_at_every_write_of_applying_a_conf_change_3b";
    const MOVING: u64 = 4;
    run_seeded(NAME, |seed| {
        let mut c = Cluster::new(NAME, seed, ClusterConfig::new(4));
        c.must_put(b"warm-up", b"warm-up");
        let mut keys = vec![b"warm-up".to_vec()];
        let cases = [
            (false, Victim::Removed),
            (true, Victim::Leader),
            (false, Victim::Leader),
            (true, Victim::Follower),
            (false, Victim::Follower),
        ];
        for (add, victim) in cases {
            let mut n = 0;
            loop {
                assert!(
                    n < MAX_CRASH_POINTS,
                    "{victim:?}: more than {n} crash points"
                );
                check_consistent(&mut c, &keys);
                let Some((region, _)) = c.world().scheduler.get_region_by_id(1) else {
                    c.fail("the scheduler knows no region 1")
                };
                let is_member = region.get_peers().iter().any(|p| p.store_id == MOVING);
                if is_member == add {
                    // Bring the region to the state the case starts from, without a crash.
                    toggle(&mut c, &region, MOVING);
                    continue;
                }
                let leader = leader_store(&mut c, 1);
                if leader == MOVING {
                    let Some(other) = region.get_peers().iter().find(|p| p.store_id != MOVING)
                    else {
                        c.fail("region 1 has no other peer")
                    };
                    let other = other.clone();
                    c.must_transfer_leader(1, &other);
                    continue;
                }
                let store = match victim {
                    Victim::Leader => leader,
                    Victim::Removed => MOVING,
                    Victim::Follower => match c
                        .store_ids()
                        .into_iter()
                        .find(|&s| s != leader && s != MOVING)
                    {
                        Some(s) => s,
                        None => c.fail("no follower"),
                    },
                };
                let what = if add {
                    "adding a peer"
                } else {
                    "removing a peer"
                };
                let crashed =
                    with_a_crash(&mut c, store, 1, n, what, |c| toggle(c, &region, MOVING));
                let key = format!("{what} {victim:?} {n}").into_bytes();
                c.must_put(&key, &key);
                keys.push(key);
                check_consistent(&mut c, &keys);
                if !crashed {
                    break;
                }
                n += 1;
            }
            assert!(n >= 1, "{victim:?}: the conf change had no crash point");
        }
        c.must_replicas_converge();
    });
}

/// Removes store `store`'s peer from `region` if it has one, else adds a new peer there, and
/// waits until the scheduler sees it done.
fn toggle(c: &mut Cluster, region: &metapb::Region, store: u64) {
    match region.get_peers().iter().find(|p| p.store_id == store) {
        Some(p) => c.must_remove_peer(region.id, p),
        None => {
            let peer = c.alloc_peer(store);
            c.must_add_peer(region.id, &peer);
        }
    }
}
