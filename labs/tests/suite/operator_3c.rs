//! Stage 3C, operators through `SchedulerService`: how the steps the scheduler wants reach a
//! region's leader and how heartbeats move them on. Not in the original's 3C filter. They
//! mostly pin the framework's half of the protocol a raftstore relies on (the operator
//! controller, the replica checker); of the student's code they need
//! `process_region_heartbeat` to accept every heartbeat of a region going through a
//! membership change, and the replica checker reads the regions it cached.

use std::time::Duration;

use proto::eraftpb::ConfChangeType;
use proto::metapb::Peer;
use proto::schedulerpb::{RegionHeartbeatRequest, RegionHeartbeatResponse, StoreStats};
use scheduler::operator::{create_move_peer_operator, OpKind, OpStep, OperatorOutcome};
use scheduler::{ScheduleConfig, SchedulerService};

use crate::scheduler_3c::{heartbeat, new_peer, new_store};

const T0: Duration = Duration::from_secs(10);

fn store_heartbeat(s: &SchedulerService, id: u64, now: Duration) {
    let mut stats = StoreStats::new();
    stats.store_id = id;
    stats.capacity = 1000 << 20;
    stats.available = 900 << 20;
    s.store_heartbeat(&stats, now).expect("store heartbeat");
}

/// Stores 1-4 heartbeating at `T0`; region 10 `[∅, ∅)` epoch (2, 3) with peers 11, 12, 13 on
/// stores 1, 2, 3, led by 11. Ids below 100 are allocated.
fn service(opts: ScheduleConfig) -> SchedulerService {
    let s = SchedulerService::new(1, 100, opts, 0);
    for id in 1..=4 {
        s.put_store(new_store(id)).expect("put store");
        store_heartbeat(&s, id, T0);
    }
    s.region_heartbeat(&region10((2, 3), &[(11, 1), (12, 2), (13, 3)], 11), T0)
        .expect("fixture heartbeat");
    s
}

fn region10(epoch: (u64, u64), peers: &[(u64, u64)], leader: u64) -> RegionHeartbeatRequest {
    heartbeat(10, (b"", b""), epoch, peers, leader, 1)
}

fn with_pending(mut req: RegionHeartbeatRequest, peer: Peer) -> RegionHeartbeatRequest {
    req.set_pending_peers(vec![peer].into());
    req
}

/// The response asks the leader `leader` of region 10 at `epoch` to make conf change
/// `change_type` of `peer`.
fn assert_change_peer(
    resp: &RegionHeartbeatResponse,
    change_type: ConfChangeType,
    peer: &Peer,
    leader: &Peer,
    epoch: (u64, u64),
) {
    assert_eq!(resp.region_id, 10, "{resp:?}");
    assert!(resp.has_change_peer(), "expected a ChangePeer: {resp:?}");
    assert!(!resp.has_transfer_leader(), "{resp:?}");
    assert_eq!(resp.get_change_peer().change_type, change_type, "{resp:?}");
    assert_eq!(resp.get_change_peer().get_peer(), peer, "{resp:?}");
    assert_eq!(
        resp.get_target_peer(),
        leader,
        "addressed to the leader: {resp:?}"
    );
    let e = resp.get_region_epoch();
    assert_eq!((e.conf_ver, e.version), epoch, "{resp:?}");
}

/// An administrator's add-peer operator: its step goes to the leader's store at once
/// (`take_responses`), and again in the response to the next heartbeat; while the new peer is
/// pending nothing is repeated and the operator keeps running; it finishes when a heartbeat
/// shows the peer caught up.
#[test]
fn admin_add_peer_operator_3c() {
    let s = service(ScheduleConfig::default());
    let t = T0 + Duration::from_secs(1);
    let new = new_peer(40, 4);
    let leader = new_peer(11, 1);
    s.add_peer(10, &new, t).expect("add_peer");
    let out = s.take_responses();
    assert_eq!(out.len(), 1, "one step sent at once: {out:?}");
    assert_eq!(out[0].0, 1, "sent to the leader's store");
    assert_change_peer(&out[0].1, ConfChangeType::AddNode, &new, &leader, (2, 3));
    assert!(s.take_responses().is_empty(), "sent once");

    let unchanged = region10((2, 3), &[(11, 1), (12, 2), (13, 3)], 11);
    let resp = s
        .region_heartbeat(&unchanged, t)
        .expect("heartbeat")
        .expect("the step again in the heartbeat response");
    assert_change_peer(&resp, ConfChangeType::AddNode, &new, &leader, (2, 3));

    let added = region10((3, 3), &[(11, 1), (12, 2), (13, 3), (40, 4)], 11);
    let resp = s
        .region_heartbeat(&with_pending(added.clone(), new.clone()), t)
        .expect("heartbeat");
    assert!(resp.is_none(), "the peer is catching up: {resp:?}");
    assert!(
        s.operator(10).is_some(),
        "still running while the peer is pending"
    );

    let resp = s.region_heartbeat(&added, t).expect("heartbeat");
    assert!(resp.is_none(), "{resp:?}");
    assert!(s.operator(10).is_none(), "finished");
    assert_eq!(s.finished_operators(), 1);
    let last = s.operator_history().pop().expect("history");
    assert_eq!(last.outcome, OperatorOutcome::Finished, "{last}");
}

/// An operator is cancelled when a heartbeat shows the region's version moved (a split): its
/// steps were planned for a region that no longer exists.
#[test]
fn operator_cancelled_when_version_moves_3c() {
    let s = service(ScheduleConfig::default());
    s.add_peer(10, &new_peer(40, 4), T0).expect("add_peer");
    s.take_responses();
    let split = heartbeat(10, (b"", b"m"), (2, 4), &[(11, 1), (12, 2), (13, 3)], 11, 1);
    let resp = s.region_heartbeat(&split, T0).expect("heartbeat");
    assert!(resp.is_none(), "no step for a cancelled operator: {resp:?}");
    assert!(s.operator(10).is_none(), "cancelled");
    let last = s.operator_history().pop().expect("history");
    assert!(
        matches!(last.outcome, OperatorOutcome::Cancelled(_)),
        "{last}"
    );
    assert_eq!(s.finished_operators(), 0);
}

/// A move-peer operator taking the leader's replica away walks AddPeer → TransferLeader →
/// RemovePeer, each step sent until a heartbeat shows it done, and finishes when the old peer
/// is gone.
#[test]
fn move_peer_operator_walks_its_steps_3c() {
    let s = service(ScheduleConfig::default());
    let region = s.cluster().get_region(10).expect("region 10");
    let new_id = s.cluster().alloc_id();
    let op = create_move_peer_operator(
        "test-move",
        s.cluster(),
        &region,
        OpKind::ADMIN,
        1,
        4,
        new_id,
    )
    .expect("move operator");
    assert_eq!(
        op.steps(),
        &[
            OpStep::AddPeer {
                to_store: 4,
                peer_id: new_id
            },
            OpStep::TransferLeader {
                from_store: 1,
                to_store: 2
            },
            OpStep::RemovePeer { from_store: 1 },
        ],
        "{op}"
    );
    s.add_operator(op, T0).expect("add_operator");
    let new = new_peer(new_id, 4);
    let (p11, p12) = (new_peer(11, 1), new_peer(12, 2));
    let out = s.take_responses();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_change_peer(&out[0].1, ConfChangeType::AddNode, &new, &p11, (2, 3));

    // The new peer is in, caught up: leadership moves to store 2's peer.
    let four = [(11, 1), (12, 2), (13, 3), (new_id, 4)];
    let resp = s
        .region_heartbeat(&region10((3, 3), &four, 11), T0)
        .expect("heartbeat")
        .expect("transfer leader");
    assert!(
        resp.has_transfer_leader() && !resp.has_change_peer(),
        "{resp:?}"
    );
    assert_eq!(resp.get_transfer_leader().get_peer(), &p12, "{resp:?}");
    // Same again until the leader moves.
    let again = s
        .region_heartbeat(&region10((3, 3), &four, 11), T0)
        .expect("heartbeat")
        .expect("transfer leader again");
    assert_eq!(again, resp);

    // Store 2 leads: the old peer goes, asked of the new leader.
    let resp = s
        .region_heartbeat(&region10((3, 3), &four, 12), T0)
        .expect("heartbeat")
        .expect("remove peer");
    assert_change_peer(&resp, ConfChangeType::RemoveNode, &p11, &p12, (3, 3));

    let three = [(12, 2), (13, 3), (new_id, 4)];
    let resp = s
        .region_heartbeat(&region10((4, 3), &three, 12), T0)
        .expect("heartbeat");
    assert!(resp.is_none(), "{resp:?}");
    assert!(s.operator(10).is_none(), "finished");
    assert_eq!(s.finished_operators(), 1);
    let r = s.cluster().get_region(10).expect("region 10");
    assert_eq!(r.store_ids().into_iter().collect::<Vec<_>>(), vec![2, 3, 4]);
}

/// `tick` lets the replica checker replace the peer of a store that has been down longer than
/// the max store down time (10 s in the simulation options): a move operator from the down
/// store to the only store without a replica, its first step sent to the leader. Nothing
/// happens while the store is merely late.
#[test]
fn replica_checker_replaces_down_peer_3c() {
    let opts = ScheduleConfig {
        enable_balance_region: false,
        ..ScheduleConfig::simulation()
    };
    let s = service(opts);
    s.tick(T0 + Duration::from_secs(1));
    assert!(
        s.operators().is_empty(),
        "nothing to do: {:?}",
        s.operators()
    );

    // Store 3 falls silent after T0.
    for at in [5, 15, 25] {
        let now = T0 + Duration::from_secs(at);
        for id in [1, 2, 4] {
            store_heartbeat(&s, id, now);
        }
        s.region_heartbeat(&region10((2, 3), &[(11, 1), (12, 2), (13, 3)], 11), now)
            .expect("heartbeat");
        s.tick(now);
        if at < 10 {
            assert!(s.operators().is_empty(), "store 3 is only {at} s late");
        }
    }
    let op = s.operator(10).expect("the replica checker's operator");
    assert!(op.kind().contains(OpKind::REPLICA | OpKind::REGION), "{op}");
    let new_id = match op.steps() {
        [OpStep::AddPeer {
            to_store: 4,
            peer_id,
        }, OpStep::RemovePeer { from_store: 3 }] => *peer_id,
        _ => panic!("expected [add peer on 4, remove peer on 3], got {op}"),
    };
    let out = s.take_responses();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_change_peer(
        &out[0].1,
        ConfChangeType::AddNode,
        &new_peer(new_id, 4),
        &new_peer(11, 1),
        (2, 3),
    );
}

/// The balance schedule (the original's `minInterval` / `nextInterval`): while balance finds
/// nothing its interval grows from `min_schedule_interval` by `schedule_interval_factor`,
/// capped at `max_schedule_interval`; the first move after a fourth store joins comes at the
/// next run of that grown schedule, and the run after a move is one minimum interval later
/// and finds the next move. The original leaves the schedule untested. Of the student's code
/// this needs `process_region_heartbeat` to cache the regions and `schedule` to find a move
/// onto the new store.
#[test]
fn balance_runs_sooner_after_a_move_and_backs_off_while_idle_3c() {
    const MS: Duration = Duration::from_millis(1);
    let opts = ScheduleConfig {
        enable_replica_checker: false,
        max_schedule_interval: 200 * MS,
        ..ScheduleConfig::default()
    };
    // Stores 1-3 heartbeating at 0; twelve one-key regions with peers on all three.
    let s = SchedulerService::new(1, 1000, opts.clone(), 5);
    for id in 1..=3 {
        s.put_store(new_store(id)).expect("put store");
        store_heartbeat(&s, id, Duration::ZERO);
    }
    for id in 1..=12u64 {
        let key = [id as u8];
        let end = [id as u8 + 1];
        let peers: Vec<(u64, u64)> = (1..=3).map(|k| (100 + id * 10 + k, k)).collect();
        let req = heartbeat(id, (&key, &end), (1, 1), &peers, peers[0].0, 0);
        s.region_heartbeat(&req, Duration::ZERO)
            .expect("fixture heartbeat");
    }
    // The runs the schedule makes while idle, ticked every millisecond: at 0, then at the
    // first tick one (grown) interval after the previous run.
    let ceil_ms = |d: Duration| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64);
    let mut runs = vec![Duration::ZERO];
    let mut interval = opts.min_schedule_interval;
    while runs[runs.len() - 1] < Duration::from_secs(2) {
        interval = interval
            .mul_f64(opts.schedule_interval_factor)
            .min(opts.max_schedule_interval);
        runs.push(ceil_ms(runs[runs.len() - 1] + interval));
    }
    let joins = Duration::from_millis(1500);
    let expected = runs.iter().copied().find(|&t| t >= joins);
    let mut first = None;
    let mut t = Duration::ZERO;
    while t <= Duration::from_secs(2) && first.is_none() {
        if t == joins {
            s.put_store(new_store(4)).expect("put store 4");
            store_heartbeat(&s, 4, t);
        }
        s.tick(t);
        if !s.operators().is_empty() {
            first = Some(t);
        }
        t += MS;
    }
    assert_eq!(
        first, expected,
        "the first move onto store 4 (joined at {joins:?}) comes at the next run of the \
         idle schedule {runs:?}"
    );
    let ops = s.operators();
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert!(ops[0].kind().contains(OpKind::BALANCE), "{ops:?}");
    let next = first.unwrap_or_default() + opts.min_schedule_interval;
    s.tick(next - MS);
    assert_eq!(s.operators().len(), 1, "no run before one minimum interval");
    s.tick(next);
    assert_eq!(
        s.operators().len(),
        2,
        "after a move the next run is one minimum interval later: {:?}",
        s.operators()
    );
}
