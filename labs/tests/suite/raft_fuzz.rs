//! Beyond the original: no message may make `Raft::step` panic.
//!
//! Hundreds of thousands of messages (300,000 for 2AB, 400,000 for 3A), random or mutated
//! from real traffic, are stepped into nodes in every state: follower, candidate and leader,
//! and (from 3A on, where snapshots and leader transfer are implemented) nodes restarted over
//! a compacted log, leaders with followers behind the compacted prefix, and followers holding a pending snapshot. `step` may return
//! an error; it must not panic. A panic is reported with the message, the node's state, and
//! the seed that replays the run (`LABS_SEED`). Between messages the node is ticked now and
//! then (also inside the panic guard) and its outbox drained.

// Each stage feature uses a part of this module.
#![cfg_attr(not(all(feature = "2ab", feature = "3a")), allow(dead_code))]

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::raft_common::*;

/// Message types a 2A raft handles (local ones included) plus ones it must ignore.
const TYPES_2A: &[MessageType] = &[
    MsgHup,
    MsgBeat,
    MsgPropose,
    MsgAppend,
    MsgAppendResponse,
    MsgRequestVote,
    MsgRequestVoteResponse,
    MsgHeartbeat,
    MsgHeartbeatResponse,
    MsgUnreachable,
    MsgSnapStatus,
    MsgCheckQuorum,
    MsgReadIndex,
    MsgReadIndexResp,
    MsgRequestPreVote,
    MsgRequestPreVoteResponse,
];

/// Every message type, snapshots and leader transfer included.
const TYPES_ALL: &[MessageType] = &[
    MsgHup,
    MsgBeat,
    MsgPropose,
    MsgAppend,
    MsgAppendResponse,
    MsgRequestVote,
    MsgRequestVoteResponse,
    MsgSnapshot,
    MsgHeartbeat,
    MsgHeartbeatResponse,
    MsgUnreachable,
    MsgSnapStatus,
    MsgCheckQuorum,
    MsgTransferLeader,
    MsgTimeoutNow,
    MsgReadIndex,
    MsgReadIndexResp,
    MsgRequestPreVote,
    MsgRequestPreVoteResponse,
];

/// The states the target node is put in, one per round in turn.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Follower,
    Candidate,
    Leader,
    CompactedFollower,
    CompactedLeader,
    PendingSnapshot,
}

const SHAPES_2A: &[Shape] = &[Shape::Follower, Shape::Candidate, Shape::Leader];
const SHAPES_ALL: &[Shape] = &[
    Shape::Follower,
    Shape::Candidate,
    Shape::Leader,
    Shape::CompactedFollower,
    Shape::CompactedLeader,
    Shape::PendingSnapshot,
];

/// Builds node 1 of {1, 2, 3} in `shape`.
fn build(shape: Shape) -> TestRaft {
    let peers = vec![1, 2, 3];
    match shape {
        Shape::Follower | Shape::Candidate | Shape::Leader => {
            let storage = MemStorage::new_with_conf_state(peers.clone());
            storage
                .wl()
                .append(&ents_of_terms(&[1, 1, 2, 2, 3]))
                .expect("append");
            let hs = hard_state(3, 2);
            storage.wl().set_hard_state(hs);
            let mut r = new_test_raft(1, peers, 10, 1, storage);
            match shape {
                Shape::Follower => r.become_follower(3, 2),
                Shape::Candidate => r.become_candidate(),
                _ => {
                    r.become_candidate();
                    r.become_leader();
                }
            }
            r
        }
        Shape::CompactedFollower | Shape::CompactedLeader => {
            let storage = MemStorage::new_with_conf_state(peers.clone());
            let terms: Vec<u64> = (1..=20).map(|i| 1 + i / 6).collect();
            let hs = hard_state(4, 20);
            {
                let mut core = storage.wl();
                core.append(&ents_of_terms(&terms)).expect("append");
                core.set_hard_state(hs);
                core.create_snapshot(15, Some(conf_state(&peers)), Vec::new())
                    .expect("snapshot");
                core.compact(15).expect("compact");
            }
            let mut c = new_test_config(1, 10, 1);
            c.applied = 15;
            let mut r = new_test_raft_with_config(&c, storage);
            if let Shape::CompactedLeader = shape {
                r.become_candidate();
                r.become_leader();
                if let Some(pr) = r.prs.get_mut(&2) {
                    pr.next_idx = 3;
                }
            }
            r
        }
        Shape::PendingSnapshot => {
            let mut r = new_test_raft(1, peers, 10, 1, MemStorage::new());
            let mut m = new_message(2, 1, MsgSnapshot, 2);
            m.set_snapshot(new_snapshot(11, 2, &[1, 2, 3]));
            r.step(m).expect("snapshot message");
            r.read_messages();
            r
        }
    }
}

/// Real traffic of a 3-node group: elections, replication, a partition, and (with
/// `all_types`) a leader transfer.
fn real_traffic(all_types: bool) -> Vec<Message> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut net = Network::new(slots("NNN"));
    let sink = seen.clone();
    net.set_hook(move |m| {
        sink.borrow_mut().push(m.clone());
        true
    });
    net.send(vec![hup(1)]);
    for i in 0..5u8 {
        net.send(vec![propose(1, 1, &[i; 3])]);
    }
    net.isolate(3);
    net.send(vec![propose(1, 1, b"cut")]);
    net.recover();
    net.send(vec![beat(1)]);
    net.send(vec![hup(2)]);
    net.send(vec![propose(2, 2, b"two")]);
    if all_types {
        net.send(vec![new_message(3, 2, MsgTransferLeader, 0)]);
        net.send(vec![propose(3, 3, b"three")]);
    }
    let msgs = seen.borrow().clone();
    msgs
}

/// A value near `around`, or an extreme one.
fn pick(rng: &mut StdRng, around: u64) -> u64 {
    match rng.gen_range(0..12) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.gen(),
        3 => around.saturating_sub(1),
        4 | 5 => around,
        6 => around.saturating_add(1),
        _ => rng.gen_range(0..=around.saturating_add(5)),
    }
}

/// A term: near the node's term, or a large one (never beyond `u32::MAX`, so a node can still
/// count its terms up without overflowing).
fn pick_term(rng: &mut StdRng, term: u64) -> u64 {
    match rng.gen_range(0..10) {
        0 => 0,
        1 => rng.gen_range(0..u32::MAX as u64),
        2 => term.saturating_sub(1),
        3 => term + 2,
        4..=6 => term,
        _ => term + 1,
    }
}

fn random_entries(rng: &mut StdRng, start: u64, term: u64) -> Vec<Entry> {
    let n = rng.gen_range(0..5);
    let contiguous = rng.gen_bool(0.8);
    (0..n)
        .map(|k| {
            let index = if contiguous {
                start.saturating_add(k)
            } else {
                pick(rng, start)
            };
            let mut e = new_entry(index, pick_term(rng, term), &[rng.gen::<u8>(); 2]);
            if rng.gen_bool(0.1) {
                e.entry_type = EntryType::EntryConfChange;
            }
            e
        })
        .collect()
}

fn random_snapshot(rng: &mut StdRng, last: u64, term: u64) -> Snapshot {
    let voters: Vec<u64> = (1..=5).filter(|_| rng.gen_bool(0.5)).collect();
    new_snapshot(pick(rng, last + 3), pick_term(rng, term), &voters)
}

/// A sender: a member, or (from 3A on, where membership changes and late messages from
/// removed nodes are real) sometimes id 0 or a non-member.
fn pick_from(rng: &mut StdRng, strangers: bool) -> u64 {
    if strangers && rng.gen_bool(0.2) {
        rng.gen_range(0..=6)
    } else {
        rng.gen_range(1..=3)
    }
}

fn random_message(
    rng: &mut StdRng,
    r: &TestRaft,
    types: &[MessageType],
    strangers: bool,
) -> Message {
    let t = types[rng.gen_range(0..types.len())];
    let last = r.raft_log.last_index();
    let from = pick_from(rng, strangers);
    let to = if !strangers || rng.gen_bool(0.9) {
        r.id
    } else {
        rng.gen_range(0..=6)
    };
    let mut m = new_message(from, to, t, pick_term(rng, r.term));
    m.index = pick(rng, last);
    m.log_term = pick_term(rng, r.term);
    m.commit = pick(rng, r.raft_log.committed);
    m.reject = rng.gen_bool(0.3);
    m.reject_hint = pick(rng, last);
    if matches!(t, MsgAppend | MsgPropose) || rng.gen_bool(0.05) {
        let start = m.index.saturating_add(1);
        m.entries = random_entries(rng, start, r.term).into();
    }
    if t == MsgSnapshot || rng.gen_bool(0.02) {
        m.set_snapshot(random_snapshot(rng, last, r.term));
    }
    m
}

fn mutate(
    rng: &mut StdRng,
    mut m: Message,
    r: &TestRaft,
    types: &[MessageType],
    strangers: bool,
) -> Message {
    m.to = r.id;
    for _ in 0..rng.gen_range(1..=3) {
        match rng.gen_range(0..8) {
            0 => m.term = pick_term(rng, r.term),
            1 => m.index = pick(rng, m.index),
            2 => m.log_term = pick_term(rng, m.log_term),
            3 => m.commit = pick(rng, m.commit),
            4 => m.reject = !m.reject,
            5 => m.from = pick_from(rng, strangers),
            6 => m.msg_type = types[rng.gen_range(0..types.len())],
            _ => {
                let start = m.index.saturating_add(1);
                m.entries = random_entries(rng, start, m.term).into();
            }
        }
    }
    if m.msg_type == MsgSnapshot && !types.contains(&MsgSnapshot) {
        m.msg_type = MsgAppend;
    }
    m
}

/// Steps `total` messages into nodes of `shapes`, rebuilding the node every 1000 messages.
fn step_never_panics(types: &[MessageType], shapes: &[Shape], total: usize) {
    let seed = labs_seed();
    let _report = SeedReport::new(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let strangers = types.contains(&MsgTransferLeader);
    let pool: Vec<Message> = real_traffic(strangers)
        .into_iter()
        .filter(|m| types.contains(&m.msg_type))
        .collect();
    assert!(
        !pool.is_empty(),
        "the real traffic must yield messages to mutate"
    );

    let mut stepped = 0;
    let mut round = 0;
    while stepped < total {
        let shape = shapes[round % shapes.len()];
        round += 1;
        let mut r = build(shape);
        r.read_messages();
        for k in 0..1000 {
            let m = if rng.gen_bool(0.5) {
                random_message(&mut rng, &r, types, strangers)
            } else {
                let base = pool[rng.gen_range(0..pool.len())].clone();
                mutate(&mut rng, base, &r, types, strangers)
            };
            let state = (
                r.state,
                r.term,
                r.raft_log.last_index(),
                r.raft_log.committed,
            );
            let shown = m.clone();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let _ = r.step(m);
            }));
            if outcome.is_err() {
                panic!(
                    "Raft::step panicked (round {round}, {shape:?} node, message #{k}; \
                     node (state, term, last index, committed) before: {state:?}) on {shown:?} \
                     — replay with LABS_SEED={seed}"
                );
            }
            stepped += 1;
            if rng.gen_bool(0.1) {
                let outcome = catch_unwind(AssertUnwindSafe(|| r.tick()));
                if outcome.is_err() {
                    panic!(
                        "Raft::tick panicked (round {round}, {shape:?} node, after message \
                         #{k}: {shown:?}) — replay with LABS_SEED={seed}"
                    );
                }
            }
            r.read_messages();
        }
    }
    assert!(stepped >= total);
}

/// No message makes a 2A node (follower, candidate, leader) panic.
#[cfg(feature = "2ab")]
#[test]
fn step_never_panics_2ab() {
    step_never_panics(TYPES_2A, SHAPES_2A, 300_000);
}

/// No message, snapshots and leader transfer included, makes a node panic, also over a
/// compacted log or with a pending snapshot.
#[cfg(feature = "3a")]
#[test]
fn step_never_panics_3a() {
    step_never_panics(TYPES_ALL, SHAPES_ALL, 400_000);
}
