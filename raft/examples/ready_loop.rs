//! How an application drives raft: three nodes in one process, a message list for a network,
//! and the `Ready` loop each node runs. The course guide's 2a chapter shows `process_ready`
//! from this file; the raftstore of stage 2b runs the same loop on disk.
//!
//! Once your stage 2a passes, `cargo run -p raft --example ready_loop` elects a leader,
//! replicates a proposal and prints what each node applied.

use raft::eraftpb::{EntryType, Message};
use raft::{Config, MemStorage, RawNode, StateRole};

/// One node of the example: raft, its storage (shared with raft: `MemStorage` is a handle),
/// and the commands it applied, in log order.
struct Node {
    raft: RawNode<MemStorage>,
    storage: MemStorage,
    applied: Vec<Vec<u8>>,
}

// ANCHOR: process_ready
/// Does what the node's `Ready` asks, in the order that keeps raft's promises: persist, then
/// send, then apply, then tell raft it is done. Loops, since advancing may leave more to do.
fn process_ready(node: &mut Node, outbox: &mut Vec<Message>) {
    while node.raft.has_ready() {
        let rd = node.raft.ready();
        // 1. Persist: a snapshot, new log entries and the hard state (term, vote, commit).
        //    Messages below may promise them (an append answer, a granted vote), so they
        //    must be durable first.
        if let Some(snapshot) = &rd.snapshot {
            node.storage
                .wl()
                .apply_snapshot(snapshot.clone())
                .expect("a snapshot raft handed out applies");
        }
        node.storage
            .wl()
            .append(&rd.entries)
            .expect("entries raft handed out follow the stored log");
        if let Some(hard_state) = &rd.hard_state {
            node.storage.wl().set_hard_state(hard_state.clone());
        }
        // 2. Send: each message goes to the node its `to` names.
        outbox.extend(rd.messages.iter().cloned());
        // 3. Apply the committed entries, in order. A new leader's empty entry and conf
        //    changes are not commands.
        for entry in &rd.committed_entries {
            if entry.entry_type == EntryType::EntryNormal && !entry.data.is_empty() {
                node.applied.push(entry.data.to_vec());
            }
        }
        // 4. Hand the `Ready` back: raft now counts all of it as done.
        node.raft.advance(rd);
    }
}
// ANCHOR_END: process_ready

/// Runs every node's `Ready` and delivers the messages, until no node has anything to do.
fn settle(nodes: &mut [Node]) {
    loop {
        let mut outbox = Vec::new();
        for node in nodes.iter_mut() {
            process_ready(node, &mut outbox);
        }
        if outbox.is_empty() {
            return;
        }
        for msg in outbox {
            // Ids are 1, 2, 3; a refused message is one raft chose to ignore.
            let to = msg.to as usize - 1;
            let _ = nodes[to].raft.step(msg);
        }
    }
}

/// Three nodes elect a leader, which replicates one proposal; returns what each applied.
fn run() -> Vec<Vec<Vec<u8>>> {
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| {
            let storage = MemStorage::new_with_conf_state(vec![1, 2, 3]);
            let mut config = Config::new(id);
            config.seed = 7;
            let raft = RawNode::new(&config, storage.clone()).expect("a valid config");
            Node {
                raft,
                storage,
                applied: Vec::new(),
            }
        })
        .collect();
    // Ticks drive elections: some node times out, campaigns and wins.
    for _ in 0..100 {
        if nodes.iter().any(|n| n.raft.raft.state == StateRole::Leader) {
            break;
        }
        for node in nodes.iter_mut() {
            node.raft.tick();
        }
        settle(&mut nodes);
    }
    let leader = nodes
        .iter()
        .position(|n| n.raft.raft.state == StateRole::Leader)
        .expect("a leader within 100 ticks");
    nodes[leader]
        .raft
        .propose(b"put k v".to_vec())
        .expect("the leader takes a proposal");
    settle(&mut nodes);
    // Followers learn the new commit index from the leader's next append or heartbeat.
    for node in nodes.iter_mut() {
        node.raft.tick();
    }
    settle(&mut nodes);
    nodes.into_iter().map(|n| n.applied).collect()
}

fn main() {
    for (i, applied) in run().iter().enumerate() {
        let commands: Vec<String> = applied
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        println!("node {} applied {commands:?}", i + 1);
    }
}

// lab:needs 2aa,2ab,2ac
#[cfg(test)]
mod tests {
    /// The example does what the book says: every node applies the one proposal.
    #[test]
    fn every_node_applies_the_proposal() {
        let want = vec![b"put k v".to_vec()];
        assert_eq!(super::run(), vec![want.clone(), want.clone(), want]);
    }
}
// lab:end-needs
