//! Stage 2C, raft side: snapshots in the raft core (7 tests, `raft_test.go` and
//! `rawnode_test.go` of the original). The cluster side needs the simulator and comes later.
//!
//! Beyond the original (9 tests, after them below): the leader tracks the snapshot it sent,
//! as etcd and raft-rs do, pausing the peer until it acknowledges the snapshot or the
//! application reports on it (`report_snapshot`, `report_unreachable`).

use crate::raft_common::*;
use raft::{Raft, SnapshotStatus};

/// A node restarted over a storage holding a snapshot starts applying after it.
#[test]
fn raw_node_restart_from_snapshot_2c() {
    let snap = new_snapshot(2, 1, &[1, 2]);
    let entries = vec![new_entry(3, 1, b"foo")];
    let hs = hard_state(1, 3);
    let storage = MemStorage::new();
    storage.wl().apply_snapshot(snap).expect("apply snapshot");
    storage.wl().append(&entries).expect("append");
    // Set last so that applying the snapshot cannot overwrite it.
    storage.wl().set_hard_state(hs);

    let c = new_test_config(1, 10, 1);
    let mut node = RawNode::new(&c, storage).expect("RawNode::new");
    let rd = node.ready();
    let want = Ready {
        committed_entries: entries,
        ..Ready::default()
    };
    assert_eq!(rd, want);
    node.advance(rd);
    assert!(!node.has_ready(), "nothing left after the first advance");
}

/// A message carrying a snapshot (from node 2, at the node's own term 0).
fn snapshot_message(to: u64, snap: Snapshot) -> Message {
    let mut m = new_message(2, to, MsgSnapshot, 0);
    m.set_snapshot(snap);
    m
}

/// Installing a snapshot resets the log to it and the membership to its conf state; the log
/// answers the term of the snapshot index before storage knows about it.
#[test]
fn restore_snapshot_2c() {
    let mut r = new_test_raft(1, vec![1, 2], 10, 1, MemStorage::new());
    r.handle_snapshot(&snapshot_message(1, new_snapshot(11, 11, &[1, 2, 3])));
    assert_eq!(r.raft_log.last_index(), 11);
    assert_eq!(r.raft_log.term(11), Ok(11));
    let members: Vec<u64> = r.prs.keys().copied().collect();
    assert_eq!(members, vec![1, 2, 3]);
}

/// A snapshot at or below the commit index is ignored.
#[test]
fn restore_ignore_snapshot_2c() {
    let storage = storage_with(&ents_of_terms(&[1, 1, 1]));
    let mut r = new_test_raft(1, vec![1, 2], 10, 1, storage);
    r.raft_log.committed = 3;
    r.handle_snapshot(&snapshot_message(1, new_snapshot(1, 1, &[1, 2])));
    assert_eq!(r.raft_log.committed, 3, "committed");
    assert_eq!(
        index_terms(&r.raft_log.all_entries()),
        vec![(1, 1), (2, 1), (3, 1)],
        "the log must be untouched"
    );
}

/// A leader whose follower needs entries before its first available index sends a snapshot.
///
/// The original checks only the message type (its storage snapshot is the empty one). Here
/// the storage is given the installed snapshot, as an application would when it processes the
/// ready, and the test checks that the one message is a `MsgSnapshot` to node 2 at the
/// leader's term, carrying a snapshot at index ≥ 11 (anything less cannot bring node 2 to the
/// leader's first index 12) whose conf state includes 1 and 2.
#[test]
fn provide_snap_2c() {
    let storage = MemStorage::new();
    let mut r = new_test_raft(1, vec![1], 10, 1, storage.clone());
    let snap = new_snapshot(11, 11, &[1, 2]);
    r.handle_snapshot(&snapshot_message(1, snap.clone()));
    storage
        .wl()
        .apply_snapshot(snap)
        .expect("apply snapshot to storage");
    r.become_candidate();
    r.become_leader();
    r.read_messages();
    r.prs.get_mut(&2).expect("progress of node 2").next_idx = 10;

    let _ = r.step(propose(2, 1, b"somedata"));
    let msgs = r.read_messages();
    assert_eq!(msgs.len(), 1, "exactly one message, got {msgs:?}");
    let m = &msgs[0];
    assert_eq!(m.msg_type, MsgSnapshot, "{m:?}");
    assert_eq!((m.from, m.to, m.term), (1, 2, r.term), "{m:?}");
    let meta = m.get_snapshot().get_metadata();
    assert!(
        meta.index >= 11,
        "snapshot index {} < 11: {m:?}",
        meta.index
    );
    let voters = &meta.get_conf_state().voters;
    assert!(
        voters.contains(&1) && voters.contains(&2),
        "conf state {voters:?}"
    );
}

/// A snapshot message comes from the current leader.
#[test]
fn restore_from_snap_msg_2c() {
    let mut r = new_test_raft(2, vec![1, 2], 10, 1, MemStorage::new());
    let mut m = new_message(1, 2, MsgSnapshot, 2);
    m.set_snapshot(new_snapshot(11, 11, &[1, 2]));
    let _ = r.step(m);
    assert_eq!(r.lead, 1, "lead");
    assert_eq!(r.term, 2, "term");
    assert_eq!(r.raft_log.last_index(), 11, "last index");
    assert_eq!(r.raft_log.committed, 11, "committed");
}

/// The snapshot's conf state replaces the membership: 1 removed, 4 added.
#[test]
fn restore_from_snap_with_overlapping_peers_msg_2c() {
    let mut r = new_test_raft(2, vec![1, 2, 3], 10, 1, MemStorage::new());
    let mut m = new_message(1, 2, MsgSnapshot, 2);
    m.set_snapshot(new_snapshot(11, 11, &[2, 3, 4]));
    let _ = r.step(m);
    assert_eq!(r.lead, 1, "lead");
    let members: Vec<u64> = r.prs.keys().copied().collect();
    assert_eq!(members, vec![2, 3, 4]);
}

/// The original's scenario: node 1 leads, node 3 is cut off while 101 entries are committed,
/// then node 1 applies them, snapshots its state at the applied index and compacts its
/// storage to it. Returns the applied index.
fn leave_node_3_behind_a_compaction(net: &mut Network) -> u64 {
    net.send(vec![hup(1)]);
    net.isolate(3);
    for _ in 0..=100 {
        net.send(vec![propose(1, 1, &[])]);
    }
    let s1 = net.storage_of(1);
    let lead = net.peer_mut(1);
    next_ents(lead, &s1);
    let applied = lead.raft_log.applied;
    let members: Vec<u64> = lead.prs.keys().copied().collect();
    let mut core = s1.wl();
    core.create_snapshot(applied, Some(conf_state(&members)), Vec::new())
        .expect("create snapshot");
    core.compact(applied).expect("compact");
    applied
}

/// A follower that fell behind a compacted log catches up through a snapshot.
///
/// Beyond the original's committed check, node 3's log must also end where the leader's does.
#[test]
fn slow_node_restore_2c() {
    let mut net = Network::new(slots("NNN"));
    leave_node_3_behind_a_compaction(&mut net);
    net.recover();
    net.send(vec![beat(1)]);
    net.send(vec![propose(1, 1, &[])]);
    net.send(vec![propose(1, 1, &[])]);

    let lead = net.peer(1);
    let follower = net.peer(3);
    assert_eq!(
        follower.raft_log.committed, lead.raft_log.committed,
        "committed"
    );
    assert_eq!(
        follower.raft_log.last_index(),
        lead.raft_log.last_index(),
        "last index"
    );
}

/// Beyond the original: the same scenario, with the leader's log dropping the compacted
/// entries from memory as an application's `advance` does (`RaftLog::maybe_compact`). In the
/// original's scenario a log that still holds the entries in memory can catch the slow node
/// up by appends; here it cannot, so the slow node must be restored from a snapshot: the
/// leader sends exactly one, the node installs it, and ends with the leader's log.
#[test]
fn slow_node_restore_by_snapshot_2c() {
    let mut net = Network::new(slots("NNN"));
    let applied = {
        let applied = leave_node_3_behind_a_compaction(&mut net);
        let lead = net.peer_mut(1);
        lead.raft_log.maybe_compact();
        assert_eq!(
            lead.raft_log.first_index(),
            applied + 1,
            "compacted in memory"
        );
        applied
    };
    net.recover();
    let snapshots = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = std::rc::Rc::clone(&snapshots);
    net.set_hook(move |m| {
        if m.msg_type == MsgSnapshot {
            assert_eq!(m.get_snapshot().get_metadata().index, applied);
            seen.set(seen.get() + 1);
        }
        true
    });
    net.send(vec![beat(1)]);
    net.send(vec![propose(1, 1, &[])]);
    net.send(vec![propose(1, 1, &[])]);
    assert_eq!(snapshots.get(), 1, "exactly one snapshot went to node 3");
    let lead = net.peer(1);
    let follower = net.peer(3);
    assert_eq!(follower.raft_log.committed, lead.raft_log.committed);
    assert_eq!(follower.raft_log.last_index(), lead.raft_log.last_index());
    assert_eq!(
        follower.raft_log.first_index(),
        applied + 1,
        "restored from it"
    );
}

// ---------------------------------------------------------------------------------------
// Beyond the original: a leader tracks the snapshot it sent (as etcd and raft-rs do). While a
// snapshot to a peer is in flight (`Progress::pending_snapshot`), the leader sends that peer
// heartbeats only; the peer's acknowledgement or the application's report
// (`report_snapshot`) ends the state.
// ---------------------------------------------------------------------------------------

/// The index of the snapshot in [`compacted_storage`].
const SNAP_INDEX: u64 = 5;

/// Storage of a group {1, 2, 3}: entries 1..=5 of term 1, committed, snapshotted at 5 and
/// compacted up to it.
fn compacted_storage() -> MemStorage {
    let s = MemStorage::new_with_conf_state(vec![1, 2, 3]);
    {
        let mut core = s.wl();
        core.append(&ents_of_terms(&[1; SNAP_INDEX as usize]))
            .expect("append");
        core.set_hard_state(hard_state(1, SNAP_INDEX));
        core.create_snapshot(SNAP_INDEX, None, Vec::new())
            .expect("create snapshot");
        core.compact(SNAP_INDEX).expect("compact");
    }
    s
}

/// The config of node 1 of {1, 2, 3}.
fn node_1_config() -> Config {
    let mut c = new_test_config(1, 10, 1);
    c.peers = vec![1, 2, 3];
    c
}

/// `MsgAppendResponse` from `from` to node 1 acknowledging `index`.
fn append_ack(from: u64, term: u64, index: u64) -> Message {
    let mut m = new_message(from, 1, MsgAppendResponse, term);
    m.index = index;
    m
}

/// `MsgAppendResponse` from `from` rejecting an append whose previous index was `index`; the
/// follower's log ends at `hint`, of term 1.
fn append_reject(from: u64, term: u64, index: u64, hint: u64) -> Message {
    let mut m = append_ack(from, term, index);
    m.reject = true;
    m.reject_hint = hint;
    m.log_term = 1;
    m
}

/// `MsgHeartbeatResponse` from `from` to node 1.
fn heartbeat_ack(from: u64, term: u64) -> Message {
    new_message(from, 1, MsgHeartbeatResponse, term)
}

/// Makes node 1 (over [`compacted_storage`] or a wrapper of it) leader of term 2 with its
/// no-op at 6, acknowledged by node 3 (so 6 is committed); then node 2 rejects the no-op's
/// append: its log ends at 2, and the entries after 2 are compacted, so the leader needs a
/// snapshot for it. Returns the outbox after that rejection.
fn elect_with_node_2_behind<S: raft::Storage>(r: &mut Raft<S>) -> Vec<Message> {
    r.become_candidate();
    r.become_leader();
    assert_eq!(
        (r.term, r.raft_log.last_index()),
        (2, 6),
        "leader's term and log"
    );
    r.read_messages();
    r.step(append_ack(3, 2, 6)).expect("node 3's ack");
    assert_eq!(r.raft_log.committed, 6, "node 3's ack commits the no-op");
    r.read_messages();
    r.step(append_reject(2, 2, 5, 2))
        .expect("node 2's rejection");
    r.read_messages()
}

/// [`elect_with_node_2_behind`] over [`compacted_storage`], checking that the rejection
/// produced exactly one `MsgSnapshot` to node 2.
fn leader_sent_snapshot_to_2() -> TestRaft {
    let mut r = new_test_raft_with_config(&node_1_config(), compacted_storage());
    let msgs = elect_with_node_2_behind(&mut r);
    assert_snapshot_sent(&r, &msgs);
    r
}

/// As [`leader_sent_snapshot_to_2`], through a `RawNode`.
fn raw_leader_sent_snapshot_to_2() -> RawNode<MemStorage> {
    let mut node = RawNode::new(&node_1_config(), compacted_storage()).expect("RawNode::new");
    let msgs = elect_with_node_2_behind(&mut node.raft);
    assert_snapshot_sent(&node.raft, &msgs);
    node
}

/// `msgs` is exactly one `MsgSnapshot` to node 2 at [`SNAP_INDEX`], and node 2's progress
/// records it as in flight with `next_idx` left where the rejection put it (3).
fn assert_snapshot_sent<S: raft::Storage>(r: &Raft<S>, msgs: &[Message]) {
    assert_eq!(msgs.len(), 1, "exactly one message, got {msgs:?}");
    let m = &msgs[0];
    assert_eq!(
        (m.msg_type, m.to, m.term),
        (MsgSnapshot, 2, r.term),
        "{m:?}"
    );
    assert_eq!(m.get_snapshot().get_metadata().index, SNAP_INDEX, "{m:?}");
    let pr = r.prs[&2];
    assert_eq!(
        (pr.pending_snapshot, pr.next_idx),
        (SNAP_INDEX, 3),
        "node 2's progress after the snapshot went out: {pr:?}"
    );
}

/// The messages to `to` among `msgs`.
fn to_node(msgs: &[Message], to: u64) -> Vec<Message> {
    msgs.iter().filter(|m| m.to == to).cloned().collect()
}

/// While a snapshot to a peer is in flight, the leader sends it heartbeats only: no appends
/// on proposals, commits or heartbeat responses.
///
/// Catches a leader that keeps replicating to (or probing) a peer that is installing a
/// snapshot, and one that stops heartbeating it.
#[test]
fn pending_snapshot_pauses_replication_2c() {
    let mut r = leader_sent_snapshot_to_2();
    let _ = r.step(propose(1, 1, b"a"));
    let msgs = r.read_messages();
    assert!(
        to_node(&msgs, 2).is_empty(),
        "a proposal sent node 2 {msgs:?}"
    );
    assert_eq!(
        to_node(&msgs, 3)
            .iter()
            .map(|m| m.msg_type)
            .collect::<Vec<_>>(),
        vec![MsgAppend],
        "node 3 still gets the proposal: {msgs:?}"
    );
    // Node 3 acknowledges: the commit moves, and node 2 still gets nothing.
    r.step(append_ack(3, 2, 7)).expect("node 3's ack");
    assert_eq!(r.raft_log.committed, 7);
    let msgs = r.read_messages();
    assert!(
        to_node(&msgs, 2).is_empty(),
        "a commit sent node 2 {msgs:?}"
    );
    r.step(heartbeat_ack(2, 2)).expect("heartbeat response");
    let msgs = r.read_messages();
    assert!(
        msgs.is_empty(),
        "a heartbeat response from node 2 sent {msgs:?}"
    );
    // Heartbeats still go out.
    r.step(beat(1)).expect("beat");
    let msgs = to_node(&r.read_messages(), 2);
    assert_eq!(
        msgs.iter().map(|m| m.msg_type).collect::<Vec<_>>(),
        vec![MsgHeartbeat],
        "{msgs:?}"
    );
    assert_eq!(r.prs[&2].pending_snapshot, SNAP_INDEX, "still in flight");
}

/// A snapshot in flight is not sent again, however many heartbeat responses come in.
///
/// Catches a leader that asks storage for (and sends) a new snapshot on every heartbeat
/// response because sending one did not change the peer's progress.
#[test]
fn snapshot_sent_once_per_generation_2c() {
    let mut r = leader_sent_snapshot_to_2();
    let mut snapshots = 0;
    for _ in 0..20 {
        r.step(heartbeat_ack(2, 2)).expect("heartbeat response");
        r.tick();
        snapshots += r
            .read_messages()
            .iter()
            .filter(|m| m.msg_type == MsgSnapshot)
            .count();
    }
    assert_eq!(snapshots, 0, "snapshots sent again while one is in flight");
    assert_eq!(r.prs[&2].pending_snapshot, SNAP_INDEX);
}

/// A rejection from a peer with a snapshot in flight answers an append sent before the
/// snapshot: it is stale and sends nothing.
///
/// Catches a leader that backs off and probes (or sends a second snapshot) on an old
/// rejection while the peer is installing the snapshot.
#[test]
fn rejection_during_snapshot_is_stale_2c() {
    let mut r = leader_sent_snapshot_to_2();
    // Rejections of the no-op's append (again), of an earlier one, and of a probe below
    // the snapshot.
    for (index, hint) in [(5, 2), (6, 2), (2, 1)] {
        r.step(append_reject(2, 2, index, hint))
            .expect("old rejection");
        let msgs = r.read_messages();
        assert!(
            msgs.is_empty(),
            "a stale rejection (index {index}) sent {msgs:?}"
        );
        assert_eq!(r.prs[&2].pending_snapshot, SNAP_INDEX, "{:?}", r.prs[&2]);
    }
}

/// `report_snapshot(id, Failure)` ends the snapshot state without moving `next_idx`; the next
/// trigger sends a new snapshot.
///
/// Catches a leader that ignores a failure report (the peer would stay paused for good) or
/// that treats it as a success (probing past a snapshot the peer never got).
#[test]
fn snapshot_failure_resends_2c() {
    let mut node = raw_leader_sent_snapshot_to_2();
    node.report_snapshot(2, SnapshotStatus::Failure);
    let pr = node.raft.prs[&2];
    assert_eq!((pr.pending_snapshot, pr.next_idx), (0, 3), "{pr:?}");
    // The next heartbeat response asks storage again and sends one snapshot.
    node.raft
        .step(heartbeat_ack(2, 2))
        .expect("heartbeat response");
    let msgs = node.raft.read_messages();
    assert_snapshot_sent(&node.raft, &msgs);
}

/// `report_snapshot(id, Finish)` ends the snapshot state and probes right after the snapshot
/// (`next_idx = max(matched + 1, snapshot index + 1)`), sending nothing until a trigger.
///
/// Catches a leader that leaves the peer paused after a successful transfer, or that probes
/// from the old `next_idx` (below the compacted prefix) and sends a second snapshot.
#[test]
fn snapshot_finish_probes_after_it_2c() {
    let mut node = raw_leader_sent_snapshot_to_2();
    node.report_snapshot(2, SnapshotStatus::Finish);
    let pr = node.raft.prs[&2];
    assert_eq!(
        (pr.pending_snapshot, pr.next_idx),
        (0, SNAP_INDEX + 1),
        "{pr:?}"
    );
    let msgs = node.raft.read_messages();
    assert!(msgs.is_empty(), "the report itself sent {msgs:?}");
    // A second report (late or repeated) changes nothing.
    node.report_snapshot(2, SnapshotStatus::Failure);
    assert_eq!(node.raft.prs[&2], pr);
    // The next heartbeat response probes right after the snapshot.
    node.raft
        .step(heartbeat_ack(2, 2))
        .expect("heartbeat response");
    let msgs = node.raft.read_messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert_eq!(
        (m.msg_type, m.to, m.index, m.log_term),
        (MsgAppend, 2, SNAP_INDEX, 1),
        "{m:?}"
    );
    assert_eq!(index_terms(&m.entries), vec![(6, 2)], "{m:?}");
}

/// An append response acknowledging an index at or past the snapshot (the peer installed it)
/// ends the snapshot state, and replication resumes at once; an acknowledgement below it
/// does not.
///
/// Catches a leader that waits for a report that may never come once the follower has
/// answered, or that resumes on an acknowledgement the snapshot does not cover.
#[test]
fn snapshot_acknowledged_clears_pending_2c() {
    let mut r = leader_sent_snapshot_to_2();
    // An old acknowledgement below the snapshot: still paused.
    r.step(append_ack(2, 2, 2)).expect("old ack");
    assert_eq!(r.prs[&2].pending_snapshot, SNAP_INDEX);
    assert!(r.read_messages().is_empty());
    // Node 2 installed the snapshot.
    r.step(append_ack(2, 2, SNAP_INDEX))
        .expect("ack of the snapshot");
    let pr = r.prs[&2];
    assert_eq!(pr.pending_snapshot, 0, "{pr:?}");
    assert_eq!(pr.matched, SNAP_INDEX, "{pr:?}");
    let msgs = r.read_messages();
    assert_eq!(
        msgs.len(),
        1,
        "what node 2 lacks goes out at once: {msgs:?}"
    );
    let m = &msgs[0];
    assert_eq!(
        (m.msg_type, m.to, m.index, m.commit),
        (MsgAppend, 2, SNAP_INDEX, 6),
        "{m:?}"
    );
    assert_eq!(index_terms(&m.entries), vec![(6, 2)], "{m:?}");
    // Proposals reach node 2 again.
    let _ = r.step(propose(1, 1, b"b"));
    let msgs = to_node(&r.read_messages(), 2);
    assert_eq!(
        msgs.iter().map(|m| m.msg_type).collect::<Vec<_>>(),
        vec![MsgAppend],
        "{msgs:?}"
    );
}

/// A `MemStorage` whose `snapshot()` answers "temporarily unavailable" a set number of times
/// before serving the snapshot (as raftstore's storage does while it generates one), and
/// counts the calls.
struct SlowSnapshots {
    inner: MemStorage,
    unavailable: std::cell::Cell<u32>,
    calls: std::rc::Rc<std::cell::Cell<u32>>,
}

impl raft::Storage for SlowSnapshots {
    fn initial_state(&self) -> raft::Result<raft::RaftState> {
        self.inner.initial_state()
    }
    fn entries(&self, low: u64, high: u64) -> raft::Result<Vec<Entry>> {
        self.inner.entries(low, high)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.inner.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.inner.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.inner.last_index()
    }
    fn snapshot(&self) -> raft::Result<Snapshot> {
        self.calls.set(self.calls.get() + 1);
        let left = self.unavailable.get();
        if left > 0 {
            self.unavailable.set(left - 1);
            return Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        self.inner.snapshot()
    }
}

/// A storage that answers "temporarily unavailable" means "try later": the leader sends
/// nothing and records nothing, asks again on each trigger, and sends exactly one snapshot
/// once storage has it.
///
/// Catches a leader that panics or gives up on the error, that marks the peer as having a
/// snapshot in flight although none was sent (it would never ask again), or that keeps
/// asking storage once the snapshot went out.
#[test]
fn snapshot_temporarily_unavailable_sends_nothing_2c() {
    const UNAVAILABLE: u32 = 3;
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let storage = SlowSnapshots {
        inner: compacted_storage(),
        unavailable: std::cell::Cell::new(UNAVAILABLE),
        calls: std::rc::Rc::clone(&calls),
    };
    let mut r = Raft::new(&node_1_config(), storage).expect("Raft::new");
    let msgs = elect_with_node_2_behind(&mut r);
    assert!(msgs.is_empty(), "nothing to send yet: {msgs:?}");
    let unavailable_progress = (0, 3);
    let pr = r.prs[&2];
    assert_eq!(
        (pr.pending_snapshot, pr.next_idx),
        unavailable_progress,
        "{pr:?}"
    );
    // Each heartbeat response asks again; the last of them gets the snapshot.
    let mut sent = Vec::new();
    for _ in 0..UNAVAILABLE {
        r.step(heartbeat_ack(2, 2)).expect("heartbeat response");
        sent.extend(r.read_messages());
    }
    assert_eq!(
        calls.get(),
        UNAVAILABLE + 1,
        "storage asked once per trigger"
    );
    assert_snapshot_sent(&r, &sent);
    // Nothing more while it is in flight, and storage is not asked again.
    for _ in 0..5 {
        r.step(heartbeat_ack(2, 2)).expect("heartbeat response");
    }
    assert!(r.read_messages().is_empty());
    assert_eq!(
        calls.get(),
        UNAVAILABLE + 1,
        "storage asked while a snapshot is in flight"
    );
}

/// `report_unreachable(id)` makes the leader resend what may have been lost: `next_idx` falls
/// back to `matched + 1` (unless a snapshot to the peer is in flight); followers and unknown
/// ids ignore it.
///
/// Catches a leader that keeps its optimistic `next_idx` after the transport lost appends
/// (the follower then rejects until the leader backs off one rejection at a time), or that
/// cancels a snapshot in flight on an unreachable report.
#[test]
fn report_unreachable_reprobes_2c() {
    let mut node = raw_leader_sent_snapshot_to_2();
    // Two proposals go to node 3 optimistically; they are lost.
    let _ = node.propose(b"a".to_vec());
    let _ = node.propose(b"b".to_vec());
    node.raft.read_messages();
    let pr3 = node.raft.prs[&3];
    assert_eq!((pr3.matched, pr3.next_idx), (6, 9), "{pr3:?}");
    node.report_unreachable(3);
    assert_eq!(node.raft.prs[&3].next_idx, 7, "back to matched + 1");
    assert!(
        node.raft.read_messages().is_empty(),
        "the report sends nothing"
    );
    // The next trigger resends both entries.
    node.raft
        .step(heartbeat_ack(3, 2))
        .expect("heartbeat response");
    let msgs = node.raft.read_messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(
        (msgs[0].msg_type, msgs[0].index),
        (MsgAppend, 6),
        "{msgs:?}"
    );
    assert_eq!(index_terms(&msgs[0].entries), vec![(7, 2), (8, 2)]);
    // A snapshot in flight to node 2 is not cancelled; unknown ids are ignored.
    let pr2 = node.raft.prs[&2];
    node.report_unreachable(2);
    node.report_unreachable(9);
    assert_eq!(node.raft.prs[&2], pr2);
    assert!(!node.raft.prs.contains_key(&9));
    // A follower ignores it.
    let mut f = RawNode::new(&node_1_config(), compacted_storage()).expect("RawNode::new");
    let before = f.raft.prs.clone();
    f.report_unreachable(2);
    f.report_snapshot(2, SnapshotStatus::Failure);
    assert_eq!(f.raft.prs, before);
}

/// A new term rebuilds every progress: a snapshot in flight under the old leadership is
/// forgotten, and the new leader replicates to that peer again.
///
/// Catches a `become_leader` that resets `matched` and `next_idx` by hand but keeps the old
/// snapshot state, leaving the peer paused for good.
#[test]
fn new_leader_forgets_snapshot_in_flight_2c() {
    let mut r = leader_sent_snapshot_to_2();
    // Node 3 starts term 3; node 1 steps down, then wins term 4.
    r.step(new_message(3, 1, MsgHeartbeat, 3))
        .expect("higher term");
    assert_eq!(r.state, Follower);
    r.become_candidate();
    r.become_leader();
    r.read_messages();
    assert_eq!(r.prs[&2].pending_snapshot, 0, "{:?}", r.prs[&2]);
    assert!(r.send_append(2), "the new leader replicates to node 2");
}

// ---------------------------------------------------------------------------------------
// Beyond the original: what installing a snapshot and compacting the log must leave behind.
// ---------------------------------------------------------------------------------------

/// Persists what a ready carries, as an application does: the snapshot, then the entries
/// (the hard state is not needed by these tests).
fn persist_ready(storage: &MemStorage, rd: &Ready) {
    if let Some(snap) = &rd.snapshot {
        storage
            .wl()
            .apply_snapshot(snap.clone())
            .expect("apply the ready's snapshot");
    }
    if !rd.entries.is_empty() {
        storage
            .wl()
            .append(&rd.entries)
            .expect("append the ready's entries");
    }
}

/// Node 2 of {1, 2} as a `RawNode` over `storage`, with no pending work.
fn raw_node_2(storage: &MemStorage) -> RawNode<MemStorage> {
    let mut c = new_test_config(2, 10, 1);
    c.peers = vec![1, 2];
    let node = RawNode::new(&c, storage.clone()).expect("RawNode::new");
    assert!(!node.has_ready(), "a restarted node has nothing pending");
    node
}

/// A snapshot a follower installs is handed to the application in the next ready, with the
/// reply that acknowledges it; once the ready is processed, nothing is pending.
///
/// Catches a node that resets its log to the snapshot but does not keep the snapshot pending
/// for the application: the state machine never receives the snapshot's data, while the
/// leader is told the follower has everything up to its index. (The cluster tests notice the
/// missing data late and indirectly; this test names the cause.)
#[test]
fn installed_snapshot_is_handed_out_in_ready_2c() {
    let s = MemStorage::new();
    let mut node = raw_node_2(&s);
    let snap = new_snapshot(11, 11, &[1, 2]);
    let mut m = new_message(1, 2, MsgSnapshot, 11);
    m.set_snapshot(snap.clone());
    node.step(m).expect("snapshot from leader 1");
    assert!(node.has_ready(), "the installed snapshot is pending");
    let rd = node.ready();
    assert_eq!(
        rd.snapshot.as_ref(),
        Some(&snap),
        "the ready must carry the snapshot to apply: {rd:?}"
    );
    assert!(
        rd.messages
            .iter()
            .any(|m| m.msg_type == MsgAppendResponse && m.to == 1 && !m.reject && m.index == 11),
        "the ready must acknowledge index 11 to the leader: {:?}",
        rd.messages
    );
    persist_ready(&s, &rd);
    node.advance(rd);
    assert!(
        !node.has_ready(),
        "nothing left once the snapshot is applied"
    );
    assert!(node.raft.raft_log.pending_snapshot.is_none());
}

/// A snapshot older than the commit index is ignored, even when the node no longer holds the
/// snapshot's last entry (it installed a newer snapshot, or compacted past it): the log, the
/// commit index and the pending snapshot stay as they are.
///
/// Catches a node without the stale-snapshot check: it cannot find the old snapshot's last
/// entry in its log, so it installs the snapshot and rolls its commit index and log back (a
/// snapshot the leader sent twice, or one delayed in the network). The original's
/// `TestRestoreIgnoreSnapshot2C` only uses a snapshot whose last entry the node still holds,
/// which any implementation ignores.
#[test]
fn snapshot_older_than_commit_is_ignored_2c() {
    let mut r = new_test_raft(2, vec![1, 2], 10, 1, MemStorage::new());
    let mut m = new_message(1, 2, MsgSnapshot, 2);
    m.set_snapshot(new_snapshot(11, 2, &[1, 2]));
    r.step(m).expect("snapshot at 11");
    assert_eq!(
        (r.raft_log.first_index(), r.raft_log.committed),
        (12, 11),
        "installed at 11"
    );
    r.read_messages();

    let mut m = new_message(1, 2, MsgSnapshot, 2);
    m.set_snapshot(new_snapshot(5, 2, &[1, 2]));
    r.step(m).expect("the older snapshot at 5");
    assert_eq!(
        (
            r.raft_log.first_index(),
            r.raft_log.last_index(),
            r.raft_log.committed
        ),
        (12, 11, 11),
        "a snapshot at 5 reached a node committed at 11: it must change nothing"
    );
    assert_eq!(
        r.raft_log
            .pending_snapshot
            .as_ref()
            .map(|s| s.get_metadata().index),
        Some(11),
        "the snapshot at 11 is still the one to hand out"
    );
    for m in r.read_messages() {
        assert!(
            m.msg_type == MsgAppendResponse && !m.reject && m.index >= 11,
            "any reply must acknowledge what the node has (11), got {m:?}"
        );
    }
}

/// The log drops from memory exactly the entries storage compacted: after storage compacts
/// to 4, the log's first index is 5 and the term of entry 4 is still known (it is the
/// previous entry of an append of 5).
///
/// Catches an off-by-one in `maybe_compact` that drops entry 5 too: the leader then believes
/// entry 5 is gone and sends a snapshot to a follower that only needed entries from 5 on.
/// (Not in the original, whose tests never compact the log in memory.)
#[test]
fn log_compacts_exactly_what_storage_compacted_2c() {
    let s = storage_with(&ents_of_terms(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
    s.wl().set_hard_state(hard_state(1, 10));
    let mut c = new_test_config(1, 10, 1);
    c.peers = vec![1, 2, 3];
    c.applied = 10;
    let mut r = new_test_raft_with_config(&c, s.clone());
    s.wl().compact(4).expect("compact storage to 4");
    r.raft_log.maybe_compact();
    assert_eq!(
        r.raft_log.first_index(),
        5,
        "storage compacted entries 1..=4: entry 5 must stay"
    );
    assert_eq!(
        r.raft_log.term(4),
        Ok(1),
        "the term of the compacted entry 4"
    );
    assert_eq!(
        r.raft_log.all_entries().first().map(|e| e.index),
        Some(5),
        "the first entry the log holds"
    );

    // A leader can still bring a follower that lacks entry 5 up to date by appends.
    r.become_candidate();
    r.become_leader();
    r.read_messages();
    r.prs.get_mut(&2).expect("progress of node 2").next_idx = 5;
    assert!(r.send_append(2), "something goes to node 2");
    let msgs = r.read_messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(
        (msgs[0].msg_type, msgs[0].index, msgs[0].log_term),
        (MsgAppend, 4, 1),
        "entries from 5 are in the log: an append after (4, 1), not a snapshot: {msgs:?}"
    );
}

/// A snapshot whose last entry the follower already holds (same index and term) only moves
/// the commit index: the entries after it stay, and no snapshot is handed out.
///
/// Catches a follower that resets its log to every snapshot newer than its commit index: a
/// snapshot delayed in the network while appends brought the follower to 15 would drop
/// entries 12..=15, which the leader counts as replicated there (it may already have
/// committed them with this follower's acknowledgement). The original has no test with a
/// snapshot inside the follower's log above its commit index.
#[test]
fn snapshot_within_log_keeps_later_entries_2c() {
    let s = MemStorage::new_with_conf_state(vec![1, 2]);
    s.wl().append(&ents_of_terms(&[1; 15])).expect("append");
    s.wl().set_hard_state(hard_state(1, 5));
    let mut c = new_test_config(2, 10, 1);
    c.peers = vec![1, 2];
    let mut r = new_test_raft_with_config(&c, s);
    r.become_follower(1, 1);

    let mut m = new_message(1, 2, MsgSnapshot, 1);
    m.set_snapshot(new_snapshot(11, 1, &[1, 2]));
    r.step(m).expect("snapshot at (11, 1)");
    assert_eq!(
        (r.raft_log.last_index(), r.raft_log.committed),
        (15, 11),
        "node 2 holds (11, 1) and entries up to 15: the snapshot commits 11 and drops nothing"
    );
    assert_eq!(r.raft_log.all_entries().len(), 15, "every entry stays");
    assert!(
        r.raft_log.pending_snapshot.is_none(),
        "nothing to install: the log already has the snapshot's entries"
    );
    let msgs = r.read_messages();
    assert!(
        msgs.len() == 1
            && msgs[0].msg_type == MsgAppendResponse
            && !msgs[0].reject
            && msgs[0].index >= 11,
        "the reply acknowledges at least the snapshot's index: {msgs:?}"
    );
}
