//! Stage 3b: admin commands in the raftstore (TransferLeader, ChangePeer, Split) and region
//! epochs, on a simulated 5-store cluster.
//!
//! As in stages 2b and 2c, every test runs in virtual time on the deterministic simulator,
//! prints `LABS_SEED=<n>` when it fails (replay with `LABS_SEED=<n> cargo test -p labs
//! --features 3b <name>`), and is watched from outside the stores by the apply oracle and by
//! the mock scheduler. The scheduler's rules are the original's, made exact: every region
//! heartbeat whose `conf_ver` rose must describe exactly one conf change (`conf_ver` +1, one
//! peer added or removed), and a peer set may not change without a `conf_ver` bump; anything
//! else fails the run with its seed (the original panics the whole test process).
//!
//! Membership changes go through the scheduler as in the original: a test schedules an
//! operator, the scheduler attaches its step to every heartbeat response of the region's
//! leader until it sees the change done, so stores receive each command many times.

use std::time::Duration;

use engine::{keys, Cf};
use harness::cluster::admin::{new_admin_request, new_peer};
use harness::cluster::client::{new_get_cf_cmd, new_put_cf_cmd, new_request};
use harness::cluster::generic::{generic_test, GenericParams};
use harness::cluster::{Cluster, ClusterConfig};
use harness::seeds::run_seeded;
use harness::sim::net::Filter;
use proto::eraftpb::{ConfChange, ConfChangeType, Entry, EntryType, Message, MessageType};
use proto::metapb;
use proto::raft_cmdpb::{AdminCmdType, AdminRequest, RaftCmdRequest, Request};
use proto::raft_serverpb::{PeerState, RaftMessage};
use protobuf::Message as _;
use raftstore::CmdResponse;

fn cluster(name: &str, seed: u64) -> Cluster {
    Cluster::new(name, seed, ClusterConfig::new(5))
}

/// Fails the test unless store `store_id` holds no live peer of `region_id`: no running peer,
/// and no `Normal` (or `Applying`) region state in its kv engine.
fn assert_no_peer(c: &Cluster, store_id: u64, region_id: u64, why: &str) {
    if let Some(p) = c.peer_on(store_id, region_id) {
        c.fail(&format!(
            "store {store_id} still runs peer {} of region {region_id}: {why}",
            p.meta.id
        ));
    }
    if let Some(state) = c.region_state_of(store_id, region_id) {
        if state.get_state() != PeerState::Tombstone {
            c.fail(&format!(
                "store {store_id} holds region {region_id} in state {:?}: {why}",
                state.get_state()
            ));
        }
    }
}

/// Sends `req` to the peer its header names and follows `NotLeader` hints (and the
/// scheduler's leader) a few times; the first other answer is returned. Unlike
/// `call_command_on_leader`, an `EpochNotMatch` answer is returned, not retried.
fn call_following_not_leader(c: &mut Cluster, mut req: RaftCmdRequest) -> CmdResponse {
    let region_id = req.get_header().region_id;
    for _ in 0..10 {
        let resp = c.call_command(req.clone(), Duration::from_secs(1));
        let Some(resp) = resp else {
            c.run_for(Duration::from_millis(100));
            continue;
        };
        let err = resp.resp.get_header().get_error();
        if !err.has_not_leader() {
            return resp;
        }
        let next = if err.get_not_leader().has_leader() {
            err.get_not_leader().get_leader().clone()
        } else {
            c.run_for(Duration::from_millis(100));
            match c.leader_of_region(region_id) {
                Some(l) => l,
                None => c.fail(&format!("no leader of region {region_id}")),
            }
        };
        req.mut_header().set_peer(next);
    }
    c.fail(&format!(
        "no answer other than NotLeader from region {region_id}'s leader in 10 attempts"
    ))
}

fn leader_or_fail(c: &mut Cluster, region_id: u64) -> metapb::Peer {
    match c.leader_of_region(region_id) {
        Some(l) => l,
        None => c.fail(&format!(
            "the scheduler knows no leader of region {region_id}"
        )),
    }
}

// -------------------------------------------------------------------------------------------
// The original's tests.

/// The original's TestTransferLeader3B: leadership of region 1 moves to (1,1), (2,2), (3,3),
/// (4,4), (5,5) in turn, each within 5 s of virtual time; every `TransferLeader` command must
/// be answered at once with a `TransferLeader` admin response. Beyond the original, the
/// target store's own peer must consider itself leader once the scheduler reports it.
#[test]
fn transfer_leader_3b() {
    run_seeded("transfer_leader_3b", |seed| {
        let mut c = cluster("transfer_leader_3b", seed);
        let region = c.get_region(b"");
        for id in 1..=5 {
            c.must_transfer_leader(region.id, &new_peer(id, id));
            if !c.peer_on(id, region.id).is_some_and(|p| p.is_leader()) {
                c.fail(&format!(
                    "the scheduler reports (store {id}, peer {id}) as leader, but that peer is not"
                ));
            }
        }
    });
}

/// The original's TestBasicConfChange3B: shrink region 1 to one peer, grow and shrink it
/// again, re-adding a peer id on a store that hosted it before ((2,2)) and moving id 4 to
/// store 2 ((2,4)), the case where a leader's peer-id → store cache must follow conf
/// changes. A removed peer's data must be deleted from its store, and a re-added peer must
/// receive the region's data. Beyond the original: the peer of a removed store is destroyed
/// (no running peer, tombstone region state), and after the eleven conf changes the region's
/// `conf_ver` is exactly 12 and its `version` still 1 (one step per applied change).
#[test]
fn basic_conf_change_3b() {
    run_seeded("basic_conf_change_3b", |seed| {
        let mut c = cluster("basic_conf_change_3b", seed);
        let r = c.get_region(b"").id;
        c.must_transfer_leader(r, &new_peer(1, 1));
        for id in 2..=5 {
            c.must_remove_peer(r, &new_peer(id, id));
        }
        // Region 1 is {(1,1)}.
        c.must_put(b"k1", b"v1");
        c.must_get_none(2, b"k1");

        c.must_add_peer(r, &new_peer(2, 2));
        c.must_put(b"k2", b"v2");
        c.must_get(b"k2", b"v2");
        c.must_get_equal(2, b"k1", b"v1");
        c.must_get_equal(2, b"k2", b"v2");
        let epoch = c.get_region(b"k1").get_region_epoch().clone();
        if epoch.conf_ver <= 1 {
            c.fail(&format!("conf_ver did not grow: {epoch:?}"));
        }
        c.must_get_none(5, b"k1");

        c.must_add_peer(r, &new_peer(3, 3));
        c.must_remove_peer(r, &new_peer(2, 2));
        c.must_put(b"k3", b"v3");
        c.must_get(b"k3", b"v3");
        c.must_get_equal(3, b"k1", b"v1");
        c.must_get_equal(3, b"k2", b"v2");
        c.must_get_equal(3, b"k3", b"v3");
        // A removed peer's data is deleted from its store.
        c.must_get_none(2, b"k1");
        c.must_get_none(2, b"k2");

        c.must_add_peer(r, &new_peer(2, 2));
        c.must_get_equal(2, b"k1", b"v1");
        c.must_get_equal(2, b"k2", b"v2");
        c.must_get_equal(2, b"k3", b"v3");

        // Peer id 4 now lives on store 2.
        c.must_remove_peer(r, &new_peer(2, 2));
        c.must_add_peer(r, &new_peer(2, 4));
        c.must_remove_peer(r, &new_peer(3, 3));
        c.must_put(b"k4", b"v4");
        c.must_get_equal(2, b"k1", b"v1");
        c.must_get_equal(2, b"k4", b"v4");
        c.must_get_none(3, b"k1");
        c.must_get_none(3, b"k4");

        c.wait_until(
            Duration::from_secs(6),
            "store 3 destroys its removed peer",
            |c| c.peer_on(3, r).is_none(),
        );
        assert_no_peer(&c, 3, r, "(3,3) was removed");
        let Some((region, _)) = c.get_region_by_id(r) else {
            c.fail(&format!("the scheduler lost region {r}"));
        };
        let e = region.get_region_epoch();
        if (e.conf_ver, e.version) != (12, 1) {
            c.fail(&format!(
                "after 11 conf changes region {r} should have conf_ver 12 and version 1, it has conf_ver {} and version {}",
                e.conf_ver, e.version
            ));
        }
    });
}

/// The original's TestConfChangeRemoveLeader3B: remove the leader itself, once from a
/// five-peer region and once from a **two-peer** region, where a leader that destroys itself
/// before the other peer learns that the removal committed leaves a region that can never
/// elect a leader again (`pitfalls.md`, "How do I remove the leader"). Beyond the original,
/// after the second removal the scheduler must report the surviving peer (5,5) as leader.
#[test]
fn conf_change_remove_leader_3b() {
    run_seeded("conf_change_remove_leader_3b", |seed| {
        let mut c = cluster("conf_change_remove_leader_3b", seed);
        let r = c.get_region(b"").id;
        c.must_transfer_leader(r, &new_peer(1, 1));
        c.must_remove_peer(r, &new_peer(1, 1));
        c.must_put(b"k0", b"v0");
        c.must_get_none(1, b"k0");

        c.must_add_peer(r, &new_peer(1, 1));
        c.must_transfer_leader(r, &new_peer(1, 1));
        c.must_put(b"k1", b"v1");
        c.must_get_equal(1, b"k0", b"v0");
        c.must_get_equal(1, b"k1", b"v1");

        for id in 2..=4 {
            c.must_remove_peer(r, &new_peer(id, id));
        }
        // Region 1 is {(1,1) leader, (5,5)}: remove the leader of a two-peer region.
        c.must_remove_peer(r, &new_peer(1, 1));
        c.must_put(b"k2", b"v2");
        c.must_get_none(1, b"k2");
        let leader = leader_or_fail(&mut c, r);
        if (leader.store_id, leader.id) != (5, 5) {
            c.fail(&format!(
                "only (5,5) is left in region {r}, but the scheduler's leader is {leader:?}"
            ));
        }

        c.must_add_peer(r, &new_peer(1, 1));
        c.must_put(b"k3", b"v3");
        c.must_get_none(3, b"k3");
        c.must_get_equal(1, b"k3", b"v3");
    });
}

/// One client; conf changes while it runs; every store crashes and restarts between
/// iterations.
#[test]
fn conf_change_recover_3b() {
    run_seeded("conf_change_recover_3b", |seed| {
        generic_test(
            "conf_change_recover_3b",
            seed,
            GenericParams {
                clients: 1,
                crash: true,
                conf_change: true,
                ..Default::default()
            },
        )
    });
}

/// Twenty clients; conf changes; crashes between iterations.
#[test]
fn conf_change_recover_many_clients_3b() {
    run_seeded("conf_change_recover_many_clients_3b", |seed| {
        generic_test(
            "conf_change_recover_many_clients_3b",
            seed,
            GenericParams {
                clients: 20,
                crash: true,
                conf_change: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients; conf changes while the network drops about 10% of messages.
#[test]
fn conf_change_unreliable_3b() {
    run_seeded("conf_change_unreliable_3b", |seed| {
        generic_test(
            "conf_change_unreliable_3b",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                conf_change: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients; conf changes; message loss; crashes between iterations.
#[test]
fn conf_change_unreliable_recover_3b() {
    run_seeded("conf_change_unreliable_recover_3b", |seed| {
        generic_test(
            "conf_change_unreliable_recover_3b",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                crash: true,
                conf_change: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients; conf changes; message loss; crashes; the log is compacted every 100 entries,
/// so new and lagging peers catch up by snapshot.
#[test]
fn conf_change_snapshot_unreliable_recover_3b() {
    run_seeded("conf_change_snapshot_unreliable_recover_3b", |seed| {
        generic_test(
            "conf_change_snapshot_unreliable_recover_3b",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                crash: true,
                max_raft_log: Some(100),
                conf_change: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients; conf changes; message loss; partitions; crashes; compaction every 100
/// entries.
#[test]
fn conf_change_snapshot_unreliable_recover_concurrent_partition_3b() {
    run_seeded(
        "conf_change_snapshot_unreliable_recover_concurrent_partition_3b",
        |seed| {
            generic_test(
                "conf_change_snapshot_unreliable_recover_concurrent_partition_3b",
                seed,
                GenericParams {
                    clients: 5,
                    unreliable: true,
                    crash: true,
                    partitions: true,
                    max_raft_log: Some(100),
                    conf_change: true,
                    ..Default::default()
                },
            )
        },
    );
}

/// The original's TestOneSplit3B: with regions of at most 800 bytes (split at 500), 100 puts
/// made while store 5 is cut off split region 1 in two. The halves must tile the old range
/// (left = [old start, split key), right = [split key, old end)); a `Get` of a key of the right
/// half sent to the left half must be refused with `KeyNotInRegion` (naming the key and the
/// left region), not served; and store 5 must catch up (apply the split and the puts) once
/// the partition heals. Differences: the original reads the regions 200 ms after the last put,
/// on the real clock; here, after those 200 ms, the test waits up to 2 s more of virtual time
/// for the scheduler to show the split. Beyond the original: both halves' `version` is the old
/// one + 1.
#[test]
fn one_split_3b() {
    run_seeded("one_split_3b", |seed| {
        let mut cfg = ClusterConfig::new(5);
        cfg.store.region_max_size = 800;
        cfg.store.region_split_size = 500;
        let mut c = Cluster::new("one_split_3b", seed, cfg);
        c.must_put(b"k1", b"v1");
        c.must_put(b"k2", b"v2");
        let region = c.get_region(b"k1");
        let region2 = c.get_region(b"k2");
        if region.id != region2.id {
            c.fail("k1 and k2 start in different regions");
        }

        c.add_filter(Filter::partition(&[1, 2, 3, 4], &[5]));
        for i in 100..200 {
            c.must_put(format!("k{i}").as_bytes(), format!("v{i}").as_bytes());
        }
        c.run_for(Duration::from_millis(200));
        c.clear_filters();
        c.wait_until(
            Duration::from_secs(2),
            "the scheduler to show the split",
            |c| {
                c.world()
                    .scheduler
                    .get_region(b"k1")
                    .is_some_and(|(r, _)| !r.get_end_key().is_empty())
            },
        );

        let left = c.get_region(b"k1");
        let right = c.get_region(b"k2");
        if left.id == right.id {
            c.fail("region 1 did not split: k1 and k2 are still in one region");
        }
        if left.get_start_key() != region.get_start_key()
            || left.get_end_key() != right.get_start_key()
            || right.get_end_key() != region.get_end_key()
        {
            c.fail(&format!(
                "the halves do not tile the old range: left {left:?}, right {right:?}, old {region:?}"
            ));
        }
        let old_version = region.get_region_epoch().version;
        for half in [&left, &right] {
            if half.get_region_epoch().version != old_version + 1 {
                c.fail(&format!(
                    "region {} should have version {} after one split: {:?}",
                    half.id,
                    old_version + 1,
                    half.get_region_epoch()
                ));
            }
        }

        let get = new_request(
            left.id,
            left.get_region_epoch().clone(),
            vec![new_get_cf_cmd("default", b"k2")],
        );
        let Some(resp) = c.call_command_on_leader(get, Duration::from_secs(1)) else {
            c.fail("a Get of k2 sent to the left half got no answer within 1 s");
        };
        let err = resp.resp.get_header().get_error();
        if !err.has_key_not_in_region() {
            c.fail(&format!(
                "a Get of k2 sent to the left half (which ends at {:?}) must be refused with KeyNotInRegion; got {:?}",
                String::from_utf8_lossy(left.get_end_key()),
                resp.resp
            ));
        }
        let knr = err.get_key_not_in_region();
        if knr.get_key() != b"k2" || knr.region_id != left.id {
            c.fail(&format!(
                "KeyNotInRegion should name key k2 and region {}: {knr:?}",
                left.id
            ));
        }

        c.must_get_equal(5, b"k100", b"v100");
    });
}

/// One client; small regions split while it runs; crashes between iterations.
#[test]
fn split_recover_3b() {
    run_seeded("split_recover_3b", |seed| {
        generic_test(
            "split_recover_3b",
            seed,
            GenericParams {
                clients: 1,
                crash: true,
                split: true,
                ..Default::default()
            },
        )
    });
}

/// Twenty clients; splits; crashes between iterations.
#[test]
fn split_recover_many_clients_3b() {
    run_seeded("split_recover_many_clients_3b", |seed| {
        generic_test(
            "split_recover_many_clients_3b",
            seed,
            GenericParams {
                clients: 20,
                crash: true,
                split: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients; splits while the network drops about 10% of messages.
#[test]
fn split_unreliable_3b() {
    run_seeded("split_unreliable_3b", |seed| {
        generic_test(
            "split_unreliable_3b",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                split: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients; splits; message loss; crashes between iterations.
#[test]
fn split_unreliable_recover_3b() {
    run_seeded("split_unreliable_recover_3b", |seed| {
        generic_test(
            "split_unreliable_recover_3b",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                crash: true,
                split: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients; splits and conf changes; message loss; crashes; compaction every 100
/// entries.
#[test]
fn split_conf_change_snapshot_unreliable_recover_3b() {
    run_seeded("split_conf_change_snapshot_unreliable_recover_3b", |seed| {
        generic_test(
            "split_conf_change_snapshot_unreliable_recover_3b",
            seed,
            GenericParams {
                clients: 5,
                unreliable: true,
                crash: true,
                max_raft_log: Some(100),
                conf_change: true,
                split: true,
                ..Default::default()
            },
        )
    });
}

/// Five clients; splits and conf changes; message loss; partitions; crashes; compaction
/// every 100 entries: every fault of the generic test at once.
#[test]
fn split_conf_change_snapshot_unreliable_recover_concurrent_partition_3b() {
    run_seeded(
        "split_conf_change_snapshot_unreliable_recover_concurrent_partition_3b",
        |seed| {
            generic_test(
                "split_conf_change_snapshot_unreliable_recover_concurrent_partition_3b",
                seed,
                GenericParams {
                    clients: 5,
                    unreliable: true,
                    crash: true,
                    partitions: true,
                    max_raft_log: Some(100),
                    conf_change: true,
                    split: true,
                    ..GenericParams::default()
                },
            )
        },
    );
}

// -------------------------------------------------------------------------------------------
// Beyond the original.

/// Whether store `store_id`'s raft log of `region_id` holds (among its last few entries) a
/// conf change removing peer `peer_id`.
fn holds_removal(c: &Cluster, store_id: u64, region_id: u64, peer_id: u64) -> bool {
    let indexes = c.raft_log_indexes(store_id, region_id);
    indexes.iter().rev().take(4).any(|&index| {
        let key = keys::raft_log_key(region_id, index);
        let Ok(Some(entry)) = c.engines(store_id).raft.get_msg_cf::<Entry>(Cf::Raft, &key) else {
            return false;
        };
        entry.get_entry_type() == EntryType::EntryConfChange
            && ConfChange::parse_from_bytes(entry.get_data()).is_ok_and(|cc| {
                cc.get_change_type() == ConfChangeType::RemoveNode && cc.node_id == peer_id
            })
    })
}

/// Beyond the original: the leader of a two-peer region removed, three times over. The
/// survivor must take over each time, and the removed store's peer must be destroyed and its
/// data deleted. A leader that applies its own removal and destroys itself before its
/// follower learns the removal committed leaves the follower unable to win an election (it
/// still counts two voters, and the removed store's tombstone does not answer it). The
/// original checks this once, on a reliable network, where raft's own commit broadcast
/// usually saves such a store; here:
/// 1. once on a reliable network;
/// 2. once with the link between the two stores cut at the worst moment: right after the
///    survivor has appended the removal entry (and acknowledged it), for one second. A store
///    that lets the leader remove itself loses the only message telling the survivor the
///    entry committed; a store that hands leadership over first (or otherwise makes sure the
///    survivor learns the commit) just waits for the link to heal;
/// 3. once while the network drops 10% of messages.
#[test]
fn remove_leader_of_two_peer_region_3b() {
    run_seeded("remove_leader_of_two_peer_region_3b", |seed| {
        let mut c = cluster("remove_leader_of_two_peer_region_3b", seed);
        let r = c.get_region(b"").id;
        c.must_transfer_leader(r, &new_peer(1, 1));
        for id in 3..=5 {
            c.must_remove_peer(r, &new_peer(id, id));
        }
        c.must_put(b"k0", b"v0");
        c.must_get_equal(2, b"k0", b"v0");

        // Region r is {(1,1) leader, (2,2)}: remove the leader, then bring a peer back on
        // store 1 under a fresh id, make it leader, and remove it again.
        let mut leader = new_peer(1, 1);
        for round in 0..3 {
            match round {
                1 => {
                    c.world_mut().scheduler.remove_peer(r, leader.clone());
                    let deadline = c.sim().now().after(Duration::from_secs(5));
                    while !holds_removal(&c, 2, r, leader.id) {
                        if c.sim().now() >= deadline || !c.sim().step() {
                            c.fail("store 2 never appended the removal of the leader");
                        }
                    }
                    c.add_filter(Filter::Cut(1, 2));
                    c.run_for(Duration::from_secs(1));
                    c.clear_filters();
                    c.must_none_peer(r, &leader);
                }
                2 => {
                    c.add_filter(Filter::DropRate(0.1));
                    c.must_remove_peer(r, &leader);
                }
                _ => c.must_remove_peer(r, &leader),
            }
            let key = format!("k{}", round + 1);
            c.must_put(key.as_bytes(), b"v");
            c.clear_filters();
            let now = leader_or_fail(&mut c, r);
            if (now.store_id, now.id) != (2, 2) {
                c.fail(&format!(
                    "round {round}: only (2,2) is left in region {r}, but the scheduler's leader is {now:?}"
                ));
            }
            c.must_get_none(1, b"k0");
            c.must_get_none(1, key.as_bytes());
            c.wait_until(
                Duration::from_secs(6),
                "store 1 destroys its removed peer",
                |c| c.peer_on(1, r).is_none(),
            );
            assert_no_peer(&c, 1, r, "the removed leader must destroy itself");

            leader = c.alloc_peer(1);
            c.must_add_peer(r, &leader);
            c.must_get_equal(1, key.as_bytes(), b"v");
            c.must_transfer_leader(r, &leader);
        }
    });
}

/// Beyond the original: a peer removed while it was cut off (a "ghost" that never applied
/// its own removal) must be destroyed once it can talk again — it asks for votes with its
/// stale epoch, and a member answers that it is gone (case b of the original's
/// `checkMessage` notes) — and must stay gone: its region state is a tombstone (or absent),
/// its data is deleted, and neither the cluster's traffic afterwards (writes, leader
/// transfers) nor late messages of the old configuration addressed to it (a heartbeat with
/// commit 0 and a vote request, the messages that may create a peer) bring it back.
#[test]
fn removed_peer_is_not_recreated_3b() {
    run_seeded("removed_peer_is_not_recreated_3b", |seed| {
        let mut c = cluster("removed_peer_is_not_recreated_3b", seed);
        let region = c.get_region(b"");
        let r = region.id;
        c.must_put(b"k0", b"v0");
        c.must_get_equal(5, b"k0", b"v0");
        c.must_transfer_leader(r, &new_peer(1, 1));

        c.add_filter(Filter::Isolate(5));
        c.must_remove_peer(r, &new_peer(5, 5));
        c.must_put(b"k1", b"v1");
        if c.peer_on(5, r).is_none() {
            c.fail("store 5 dropped its peer while isolated: it cannot know it was removed");
        }
        c.clear_filters();

        c.wait_until(
            Duration::from_secs(10),
            "store 5 to destroy the peer removed while it was isolated",
            |c| c.peer_on(5, r).is_none(),
        );
        assert_no_peer(&c, 5, r, "(5,5) was removed from the region");
        c.must_get_none(5, b"k0");
        c.must_get_none(5, b"k1");

        // Traffic after the destruction: writes and leadership moving around.
        for (i, leader) in [2, 3, 1].into_iter().enumerate() {
            c.must_transfer_leader(r, &new_peer(leader, leader));
            c.must_put(format!("k{}", i + 2).as_bytes(), b"v");
            assert_no_peer(&c, 5, r, "a removed peer came back");
        }

        // Late messages of the old configuration, addressed to the removed peer.
        let term = c.peer_on(1, r).map_or(0, |p| p.term());
        for msg_type in [MessageType::MsgHeartbeat, MessageType::MsgRequestVote] {
            let mut raft = Message::new();
            raft.set_msg_type(msg_type);
            raft.from = 1;
            raft.to = 5;
            raft.term = term;
            raft.commit = 0;
            let mut msg = RaftMessage::new();
            msg.region_id = r;
            msg.set_from_peer(new_peer(1, 1));
            msg.set_to_peer(new_peer(5, 5));
            msg.set_region_epoch(region.get_region_epoch().clone());
            msg.start_key = region.get_start_key().to_vec();
            msg.end_key = region.get_end_key().to_vec();
            msg.set_message(raft);
            c.inject_raft_message(msg);
        }
        for _ in 0..50 {
            c.run_for(Duration::from_millis(20));
            assert_no_peer(
                &c,
                5,
                r,
                "a late message of the old configuration recreated the removed peer",
            );
        }
        c.must_get_none(5, b"k1");
    });
}

/// Beyond the original: splits and conf changes while the stores are repartitioned every
/// ~0.6 s (no message loss, no crashes, no compaction): the two admin commands race with each
/// other and with leader changes, with nothing else to hide the races. The original only has
/// this mix together with every other fault.
#[test]
fn split_conf_change_partitions_3b() {
    run_seeded("split_conf_change_partitions_3b", |seed| {
        generic_test(
            "split_conf_change_partitions_3b",
            seed,
            GenericParams {
                clients: 5,
                partitions: true,
                conf_change: true,
                split: true,
                ..Default::default()
            },
        )
    });
}

/// Beyond the original: a leader reports its region to the scheduler as soon as it applies a
/// conf change, not only on its heartbeat tick. With the tick at 30 s, the removal of a peer
/// must show in the scheduler within the 5 s `must_none_peer` waits; the removal step itself
/// reaches the leader in the answer to the heartbeat its election sends (the test moves
/// leadership to start one). Catches a leader that leaves the news to its next tick: every
/// operator then advances one step per tick, and the scheduler schedules from a stale view.
#[test]
fn leader_reports_a_conf_change_at_once_3b() {
    const NAME: &str = "leader_reports_a_conf_change_at_once_3b";
    run_seeded(NAME, |seed| {
        let mut cfg = ClusterConfig::new(5);
        cfg.store.scheduler_heartbeat_interval = Duration::from_secs(30);
        let mut c = Cluster::new(NAME, seed, cfg);
        c.must_put(b"k", b"v");
        let region = c.get_region(b"k");
        let leader = leader_or_fail(&mut c, region.id);
        let others: Vec<metapb::Peer> = region
            .get_peers()
            .iter()
            .filter(|p| p.store_id != leader.store_id)
            .cloned()
            .collect();
        let [target, victim, ..] = others.as_slice() else {
            c.fail(&format!("region {} has fewer than three peers", region.id))
        };
        c.world_mut()
            .scheduler
            .remove_peer(region.id, victim.clone());
        c.must_transfer_leader(region.id, target);
        c.must_none_peer(region.id, victim);
        c.must_get(b"k", b"v");
    });
}

/// Beyond the original, whose splits all happen at conf_ver 1: the new region of a split
/// keeps the old region's conf_ver (here 3, after a removal and an addition), has a peer on
/// each store of the old region in the old peers' order, and none of the old peer ids (the
/// scheduler allocated new ones). Catches a new region whose epoch starts afresh, which would
/// let heartbeats and messages from before the conf changes pass for newer.
#[test]
fn split_new_region_keeps_conf_ver_and_gets_fresh_peers_3b() {
    const NAME: &str = "split_new_region_keeps_conf_ver_and_gets_fresh_peers_3b";
    run_seeded(NAME, |seed| {
        let mut c = cluster(NAME, seed);
        c.must_put(b"k1", b"v1");
        c.must_put(b"k3", b"v3");
        let region = c.get_region(b"k1");
        let Some(removed) = region.get_peers().iter().find(|p| p.store_id == 5).cloned() else {
            c.fail(&format!("region {} has no peer on store 5", region.id))
        };
        c.must_remove_peer(region.id, &removed);
        let added = c.alloc_peer(5);
        c.must_add_peer(region.id, &added);
        let Some((before, _)) = c.get_region_by_id(region.id) else {
            c.fail(&format!("the scheduler lost region {}", region.id))
        };
        let conf_ver = before.get_region_epoch().conf_ver;
        if conf_ver != region.get_region_epoch().conf_ver + 2 {
            c.fail(&format!(
                "a removal and an addition took conf_ver from {} to {conf_ver}",
                region.get_region_epoch().conf_ver
            ));
        }
        c.split_region(&before, b"k2");
        let left = c.get_region(b"k1");
        let right = c.get_region(b"k3");
        let stores =
            |r: &metapb::Region| r.get_peers().iter().map(|p| p.store_id).collect::<Vec<_>>();
        let ids = |r: &metapb::Region| r.get_peers().iter().map(|p| p.id).collect::<Vec<_>>();
        if right.get_region_epoch().conf_ver != conf_ver
            || left.get_region_epoch().conf_ver != conf_ver
        {
            c.fail(&format!(
                "after a split at conf_ver {conf_ver}, the halves have conf_ver {} (left) and {} \
                 (new region {}): a split changes only the version",
                left.get_region_epoch().conf_ver,
                right.get_region_epoch().conf_ver,
                right.id
            ));
        }
        if stores(&right) != stores(&before) {
            c.fail(&format!(
                "the new region's peers are on stores {:?}; the split region's were on {:?}, in \
                 that order",
                stores(&right),
                stores(&before)
            ));
        }
        if ids(&right).iter().any(|id| ids(&before).contains(id)) {
            c.fail(&format!(
                "the new region reuses peer ids of the split region: {:?} vs {:?}",
                ids(&right),
                ids(&before)
            ));
        }
        c.must_get(b"k1", b"v1");
        c.must_get(b"k3", b"v3");
    });
}

/// Beyond the original, which never checks it: a write proposed before a split and applied
/// after it must not be applied when the split moved its key away. The leader gets a `Split`
/// at k2 and, right behind it, a put of k3 with the epoch both were proposed under, so the
/// put passes the checks at proposal and sits in the log after the split. By the time it is
/// applied, k3 belongs to the new region, which may already serve newer writes of k3 through
/// its own log: a store that checks the epoch and the key only at proposal writes the stale
/// value into the other region's range. The put must come back refused (`EpochNotMatch`, as
/// the reference answers, or `KeyNotInRegion`) and k3 keep its value.
#[test]
fn write_proposed_before_a_split_is_refused_when_applied_after_it_3b() {
    run_seeded(
        "write_proposed_before_a_split_is_refused_when_applied_after_it_3b",
        |seed| {
            let mut c = cluster(
                "write_proposed_before_a_split_is_refused_when_applied_after_it_3b",
                seed,
            );
            c.must_put(b"k1", b"v1");
            c.must_put(b"k3", b"v3");
            let region = c.get_region(b"k1");
            let leader = leader_or_fail(&mut c, region.id);
            let mut split = AdminRequest::new();
            split.set_cmd_type(AdminCmdType::Split);
            split.mut_split().split_key = b"k2".to_vec();
            split.mut_split().new_region_id = c.alloc_peer(leader.store_id).id;
            for _ in region.get_peers() {
                let id = c.alloc_peer(leader.store_id).id;
                split.mut_split().new_peer_ids.push(id);
            }
            let epoch = region.get_region_epoch().clone();
            let mut split = new_admin_request(region.id, epoch.clone(), split);
            split.mut_header().set_peer(leader.clone());
            let mut put = new_request(
                region.id,
                epoch,
                vec![new_put_cf_cmd("default", b"k3", b"stale")],
            );
            put.mut_header().set_peer(leader);
            // Both reach the leader at the same virtual instant, the split first.
            let split_answer = c.send_command(split);
            let put_answer = c.send_command(put);
            for _ in 0..50 {
                if split_answer.is_answered() && put_answer.is_answered() {
                    break;
                }
                c.run_for(Duration::from_millis(100));
            }
            let (Some(split_resp), Some(put_resp)) = (split_answer.take(), put_answer.take())
            else {
                c.fail(
                    "the split and the put sent right behind it were not both answered within 5 s",
                )
            };
            if split_resp.resp.get_header().has_error() {
                c.fail(&format!(
                    "the split at k2 was refused, so the test proves nothing: {:?}",
                    split_resp.resp.get_header().get_error()
                ));
            }
            let err = put_resp.resp.get_header().get_error();
            if !err.has_epoch_not_match() && !err.has_key_not_in_region() {
                c.fail(&format!(
                    "a put of k3 proposed before the split at k2 and applied after it must be \
                     refused (EpochNotMatch or KeyNotInRegion): k3 now belongs to the new region; \
                     got {:?}",
                    put_resp.resp
                ));
            }
            c.must_get(b"k3", b"v3");
            c.must_get(b"k1", b"v1");
        },
    );
}

/// Beyond the original: after a split, a command carrying the region's epoch from before the
/// split is refused with `EpochNotMatch`, and the error names the regions that now cover the
/// old range — both halves — so a client can refresh without asking the scheduler (the
/// original's `findSiblingRegion`). A stale-epoch write must not be applied.
#[test]
fn stale_epoch_after_split_names_both_regions_3b() {
    run_seeded("stale_epoch_after_split_names_both_regions_3b", |seed| {
        let mut c = cluster("stale_epoch_after_split_names_both_regions_3b", seed);
        c.must_put(b"k1", b"v1");
        c.must_put(b"k3", b"v3");
        let before = c.get_region(b"k1");
        c.split_region(&before, b"k2");
        let left = c.get_region(b"k1");
        let right = c.get_region(b"k3");
        if left.id == right.id || left.get_end_key() != b"k2" || right.get_start_key() != b"k2" {
            c.fail(&format!(
                "the split at k2 gave left {left:?}, right {right:?}"
            ));
        }

        let reqs: [(&str, Request); 2] = [
            ("a Get of k1", new_get_cf_cmd("default", b"k1")),
            ("a Put of k1", new_put_cf_cmd("default", b"k1", b"stale")),
        ];
        for (what, cmd) in reqs {
            let mut req = new_request(before.id, before.get_region_epoch().clone(), vec![cmd]);
            let leader = leader_or_fail(&mut c, before.id);
            req.mut_header().set_peer(leader);
            let resp = call_following_not_leader(&mut c, req);
            let err = resp.resp.get_header().get_error();
            if !err.has_epoch_not_match() {
                c.fail(&format!(
                    "{what} with the epoch from before the split must be refused with EpochNotMatch; got {:?}",
                    resp.resp
                ));
            }
            let ids: Vec<u64> = err
                .get_epoch_not_match()
                .get_current_regions()
                .iter()
                .map(|r| r.id)
                .collect();
            if !ids.contains(&left.id) || !ids.contains(&right.id) {
                c.fail(&format!(
                    "EpochNotMatch for {what} should name both halves, regions {} and {}; it names {ids:?}",
                    left.id, right.id
                ));
            }
        }
        c.must_get(b"k1", b"v1");
    });
}

/// Beyond the original: a split's new region reaches a store before that store has applied
/// the split. Store 5 hears nothing of region 1 (and only of region 1) while the region
/// splits at k5 and the right half elects a leader and takes writes; that leader keeps
/// contacting store 5 (heartbeats, appends, perhaps snapshots) for two seconds before store
/// 5 can apply the split. Whatever the store does with those messages — refuse them while
/// its copy of the parent still covers the range (as the original does), or keep an
/// uninitialised peer and not overwrite it when the split applies (`pitfalls.md` item 15) — it
/// must never hold overlapping regions, and once region 1 reaches it again it must end with
/// both halves, with the right ranges, in `Normal` state, and with the writes made meanwhile.
#[test]
fn split_reaches_a_store_before_it_applies_the_split_3b() {
    run_seeded(
        "split_reaches_a_store_before_it_applies_the_split_3b",
        |seed| {
            let mut c = cluster("split_reaches_a_store_before_it_applies_the_split_3b", seed);
            for i in 1..=9 {
                c.must_put(format!("k{i}").as_bytes(), format!("v{i}").as_bytes());
            }
            c.must_get_equal(5, b"k9", b"v9");
            let region = c.get_region(b"k1");
            // Region 1's leader must not be the store about to be cut off from it.
            c.must_transfer_leader(region.id, &new_peer(1, 1));

            c.add_filter(Filter::CutRegion {
                region: region.id,
                store: 5,
            });
            c.split_region(&region, b"k5");
            let left = c.get_region(b"k1");
            let right = c.get_region(b"k5");
            if left.id == right.id {
                c.fail("the split at k5 did not happen");
            }
            let parent_on_5 = c.peer_on(5, region.id).map(|p| p.region().clone());
            if parent_on_5
                .as_ref()
                .is_none_or(|r| !r.get_end_key().is_empty())
            {
                c.fail(&format!(
                    "store 5 should not have applied the split while cut off from region {}: its copy is {parent_on_5:?}",
                    region.id
                ));
            }
            // The right half works without store 5's copy of the parent.
            c.must_put(b"k7", b"v7 after the split");
            c.must_put(b"k55", b"v55");
            c.must_put(b"k2", b"v2 after the split");
            for _ in 0..20 {
                c.run_for(Duration::from_millis(100));
                c.check_regions_disjoint(5);
            }

            c.clear_filters();
            c.wait_until(
                Duration::from_secs(10),
                "store 5 to hold both halves of the split",
                |c| {
                    let on_5 = c.regions_on(5);
                    [&left, &right].iter().all(|half| {
                        on_5.iter().any(|r| {
                            r.id == half.id
                                && r.get_start_key() == half.get_start_key()
                                && r.get_end_key() == half.get_end_key()
                        })
                    })
                },
            );
            c.must_get_equal(5, b"k7", b"v7 after the split");
            c.must_get_equal(5, b"k55", b"v55");
            c.must_get_equal(5, b"k2", b"v2 after the split");
            for half in [&left, &right] {
                let state = c.region_state_of(5, half.id);
                let ok = state.as_ref().is_some_and(|s| {
                    s.get_state() == PeerState::Normal
                        && s.get_region().get_start_key() == half.get_start_key()
                        && s.get_region().get_end_key() == half.get_end_key()
                });
                if !ok {
                    c.fail(&format!(
                        "store 5's region state of region {} should be Normal over [{:?}, {:?}): {state:?}",
                        half.id,
                        String::from_utf8_lossy(half.get_start_key()),
                        String::from_utf8_lossy(half.get_end_key())
                    ));
                }
            }
            c.check_regions_disjoint(5);
            c.must_replicas_converge();
        },
    );
}
