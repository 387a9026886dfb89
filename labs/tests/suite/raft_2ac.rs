//! Stage 2AC: the `RawNode` / `Ready` interface (2 tests, `rawnode_test.go` of the original).

use crate::raft_common::*;

/// Persists a ready's entries to `storage` and advances the node.
fn persist_and_advance(node: &mut RawNode<MemStorage>, storage: &MemStorage, rd: Ready) {
    if !rd.entries.is_empty() {
        storage
            .wl()
            .append(&rd.entries)
            .expect("append ready entries");
    }
    node.advance(rd);
}

/// A single-node leader commits a proposal at once: the same ready carries it both as an
/// entry to persist and as a committed entry.
#[test]
fn raw_node_start_2ac() {
    let storage = MemStorage::new();
    let mut c = new_test_config(1, 10, 1);
    c.peers = vec![1];
    let mut node = RawNode::new(&c, storage.clone()).expect("RawNode::new");
    let rd = node.ready();
    persist_and_advance(&mut node, &storage, rd);
    node.campaign().expect("campaign");
    let rd = node.ready();
    persist_and_advance(&mut node, &storage, rd);

    node.propose(b"foo".to_vec()).expect("propose");
    let rd = node.ready();
    assert_eq!(rd.entries.len(), 1, "entries to persist: {:?}", rd.entries);
    assert_eq!(
        rd.committed_entries.len(),
        1,
        "committed entries: {:?}",
        rd.committed_entries
    );
    assert_eq!(&rd.entries[0].data[..], b"foo");
    assert_eq!(&rd.committed_entries[0].data[..], b"foo");
    persist_and_advance(&mut node, &storage, rd);
    assert!(!node.has_ready(), "nothing left after the last advance");
}

/// A restarted node reports exactly what is committed but not applied, and nothing else.
#[test]
fn raw_node_restart_2ac() {
    let entries = vec![empty_entry(1, 1), new_entry(2, 1, b"foo")];
    let hs = hard_state(1, 1);
    let storage = MemStorage::new();
    storage.wl().set_hard_state(hs);
    storage.wl().append(&entries).expect("append");

    let c = new_test_config(1, 10, 1);
    let mut node = RawNode::new(&c, storage).expect("RawNode::new");
    let rd = node.ready();
    let want = Ready {
        committed_entries: entries[..1].to_vec(),
        ..Ready::default()
    };
    assert_eq!(rd, want);
    node.advance(rd);
    assert!(!node.has_ready(), "nothing left after the first advance");
}

// ---------------------------------------------------------------------------------------
// Beyond the original: `advance` acknowledges exactly what the ready it is given carried, and
// `has_ready` reports every kind of pending work.
// ---------------------------------------------------------------------------------------

/// A response from `from` to node 1 acknowledging `index`.
fn append_ack(from: u64, term: u64, index: u64) -> Message {
    let mut m = new_message(from, 1, MsgAppendResponse, term);
    m.index = index;
    m
}

/// Processes readies until none is pending (at most 10: the work of one step needs one or
/// two).
fn settle(node: &mut RawNode<MemStorage>, storage: &MemStorage) {
    for _ in 0..10 {
        if !node.has_ready() {
            return;
        }
        let rd = node.ready();
        persist_and_advance(node, storage, rd);
    }
    assert!(
        !node.has_ready(),
        "still work pending after 10 readies: advance does not acknowledge what a ready carried"
    );
}

/// Node 1 of {1, 2, 3} as a `RawNode`, elected leader of term 1 with node 2's vote and its
/// no-op (index 1) committed and applied; nothing pending.
fn raw_leader_of_three(storage: &MemStorage) -> RawNode<MemStorage> {
    let mut c = new_test_config(1, 10, 1);
    c.peers = vec![1, 2, 3];
    let mut node = RawNode::new(&c, storage.clone()).expect("RawNode::new");
    node.campaign().expect("campaign");
    node.step(new_message(2, 1, MsgRequestVoteResponse, 1))
        .expect("node 2's vote");
    assert_eq!(node.raft.state, Leader, "node 1 won with node 2's vote");
    node.step(append_ack(2, 1, 1))
        .expect("node 2's ack of the no-op");
    settle(&mut node, storage);
    assert_eq!(node.raft.raft_log.applied, 1, "the no-op is applied");
    node
}

/// `advance` marks as applied only the committed entries of the ready it acknowledges: an
/// entry committed after that ready was taken comes in the next one.
///
/// Catches an `advance` that sets `applied = committed`: the entry committed between `ready`
/// and `advance` is never handed to the application, so that replica's state machine silently
/// misses a write. (Not in the original: its single-node tests commit nothing in between.)
#[test]
fn advance_applies_only_what_the_ready_carried_2ac() {
    let s = MemStorage::new();
    let mut node = raw_leader_of_three(&s);
    node.propose(b"a".to_vec()).expect("propose a");
    node.propose(b"b".to_vec()).expect("propose b");
    let rd = node.ready();
    persist_and_advance(&mut node, &s, rd);

    node.step(append_ack(2, 1, 2)).expect("node 2 acks a");
    let rd = node.ready();
    assert_eq!(datas(&rd.committed_entries), vec![b"a".to_vec()], "{rd:?}");
    // Node 2 acknowledges b while the application works on the ready.
    node.step(append_ack(2, 1, 3)).expect("node 2 acks b");
    persist_and_advance(&mut node, &s, rd);

    assert!(node.has_ready(), "b is committed and not yet applied");
    let rd = node.ready();
    assert_eq!(
        datas(&rd.committed_entries),
        vec![b"b".to_vec()],
        "b was committed after the previous ready was taken: it must come now, {rd:?}"
    );
}

/// `advance` marks as stable only the entries of the ready it acknowledges: an entry appended
/// after that ready was taken comes in the next one, to be persisted.
///
/// Catches an `advance` that sets `stabled = last index`: the entry proposed between `ready`
/// and `advance` is never handed out for persistence, so a restart loses an entry the node
/// may already have acknowledged (or, on a single node, committed). (Not in the original.)
#[test]
fn advance_stabilizes_only_what_the_ready_carried_2ac() {
    let s = MemStorage::new();
    let mut c = new_test_config(1, 10, 1);
    c.peers = vec![1];
    let mut node = RawNode::new(&c, s.clone()).expect("RawNode::new");
    node.campaign().expect("campaign");
    settle(&mut node, &s);
    node.propose(b"a".to_vec()).expect("propose a");
    let rd = node.ready();
    assert_eq!(datas(&rd.entries), vec![b"a".to_vec()], "{rd:?}");
    // A proposal arrives while the application persists the ready.
    node.propose(b"b".to_vec()).expect("propose b");
    persist_and_advance(&mut node, &s, rd);

    assert!(node.has_ready(), "b is not persisted yet");
    let rd = node.ready();
    assert_eq!(
        datas(&rd.entries),
        vec![b"b".to_vec()],
        "b was appended after the previous ready was taken: it must be handed out to persist, \
         {rd:?}"
    );
    persist_and_advance(&mut node, &s, rd);
    let last = {
        use raft::Storage;
        s.last_index().expect("last index")
    };
    assert_eq!(last, 3, "storage holds the no-op, a and b");
}

/// A ready reports the hard state whenever vote or commit changed, even at the same term.
///
/// Catches a `ready` that compares only the term with the last reported hard state: a vote
/// granted in the current term is never persisted (after a restart the node could vote again
/// in that term), nor a commit index learned from the leader. (Not in the original.)
#[test]
fn ready_reports_vote_and_commit_changes_2ac() {
    let s = MemStorage::new();
    s.wl().set_hard_state(hard_state(1, 0));
    s.wl().set_conf_state(conf_state(&[1, 2, 3]));
    let c = new_test_config(1, 10, 1);
    let mut node = RawNode::new(&c, s.clone()).expect("RawNode::new");
    assert!(!node.has_ready(), "nothing changed since the restart");

    node.step(new_message(2, 1, MsgRequestVote, 1))
        .expect("vote request of the same term");
    let rd = node.ready();
    assert_eq!(
        rd.hard_state.as_ref().map(|hs| (hs.term, hs.vote)),
        Some((1, 2)),
        "the vote for node 2 in term 1 must be handed out to persist: {rd:?}"
    );
    persist_and_advance(&mut node, &s, rd);

    let mut m = new_message_with_entries(2, 1, MsgAppend, 1, vec![empty_entry(1, 1)]);
    m.commit = 1;
    node.step(m).expect("append of the same term");
    let rd = node.ready();
    assert_eq!(
        rd.hard_state
            .as_ref()
            .map(|hs| (hs.term, hs.vote, hs.commit)),
        Some((1, 2, 1)),
        "the new commit index must be handed out to persist: {rd:?}"
    );
}

/// A message alone is pending work: a heartbeat that changes no state still needs its reply
/// sent, so `has_ready` is true and the ready carries exactly that reply.
///
/// Catches a `has_ready` that looks at states and entries only: the follower never answers
/// such a heartbeat, and its leader never learns that it is alive or lagging. (Not in the
/// original.)
#[test]
fn has_ready_for_messages_alone_2ac() {
    let s = MemStorage::new();
    let mut c = new_test_config(1, 10, 1);
    c.peers = vec![1, 2, 3];
    let mut node = RawNode::new(&c, s.clone()).expect("RawNode::new");
    node.step(new_message(2, 1, MsgHeartbeat, 1))
        .expect("first heartbeat");
    let rd = node.ready();
    persist_and_advance(&mut node, &s, rd);
    assert!(!node.has_ready(), "nothing pending after the advance");

    node.step(new_message(2, 1, MsgHeartbeat, 1))
        .expect("second heartbeat");
    assert!(
        node.has_ready(),
        "the reply to the second heartbeat is pending: has_ready must say so"
    );
    let rd = node.ready();
    let want = Ready {
        messages: vec![new_message(1, 2, MsgHeartbeatResponse, 1)],
        ..Ready::default()
    };
    assert_eq!(rd, want, "only the heartbeat's reply is pending");
}

/// A restarted node whose log holds committed entries it has not applied has work pending,
/// though nothing else changed: `has_ready` must say so, or an application that waits for
/// `has_ready` before calling `ready` never re-applies those entries after a crash. The
/// original's restart test calls `ready` without asking. Found by `cargo mutants`: requiring
/// committed entries *and* a pending snapshot passed every raft suite.
#[test]
fn has_ready_for_committed_entries_alone_2ac() {
    let entries = vec![empty_entry(1, 1), new_entry(2, 1, b"foo")];
    let storage = MemStorage::new();
    storage.wl().set_hard_state(hard_state(1, 2));
    storage.wl().append(&entries).expect("append");
    let c = new_test_config(1, 10, 1);
    let node = RawNode::new(&c, storage).expect("RawNode::new");
    assert!(
        node.has_ready(),
        "entries 1 and 2 are committed but not applied: has_ready must be true"
    );
}
