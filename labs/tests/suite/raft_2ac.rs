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
