//! Stage 2C, raft side: snapshots in the raft core (7 tests, `raft_test.go` and
//! `rawnode_test.go` of the original). The cluster side needs the simulator and comes later.

use crate::raft_common::*;

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

/// A follower that fell behind a compacted log catches up through a snapshot.
///
/// Beyond the original's committed check, node 3's log must also end where the leader's does.
#[test]
fn slow_node_restore_2c() {
    let mut net = Network::new(slots("NNN"));
    net.send(vec![hup(1)]);
    net.isolate(3);
    for _ in 0..=100 {
        net.send(vec![propose(1, 1, &[])]);
    }
    let s1 = net.storage_of(1);
    {
        let lead = net.peer_mut(1);
        next_ents(lead, &s1);
        let applied = lead.raft_log.applied;
        let members: Vec<u64> = lead.prs.keys().copied().collect();
        let mut core = s1.wl();
        core.create_snapshot(applied, Some(conf_state(&members)), Vec::new())
            .expect("create snapshot");
        core.compact(applied).expect("compact");
    }
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
