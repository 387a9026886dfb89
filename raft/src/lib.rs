//! The raft consensus core of tinykv-rs (course stages 2A, 2C and 3A).
//!
//! A state machine in the style of etcd's raft and raft-rs, with the names of the TinyKV
//! course (`prs`, `lead_transferee`, `pending_conf_index`, `stabled`, ...). It does no I/O,
//! reads no clock and spawns no threads: the application ticks it, steps messages into it,
//! and processes the [`Ready`] it hands out. Given the same [`Config::seed`] and the same
//! inputs it behaves the same way.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | [`Config`], the parameters of a node |
//! | [`storage`] | the [`Storage`] trait and the in-memory [`MemStorage`] |
//! | [`raft_log`] | [`RaftLog`]: entries, `committed` / `applied` / `stabled` |
//! | [`progress`] | [`Progress`]: the leader's view of a follower |
//! | [`raft`](mod@raft) | [`Raft`]: elections, replication, snapshots, transfer, membership |
//! | [`raw_node`] | [`RawNode`] and [`Ready`]: the application's interface |
//! | [`errors`] | [`Error`], [`StorageError`] |
//!
// lab:needs 2aa,2ab,2ac,2c,3a
//! # Tutorial: a single-node group
//!
//! Create a storage and a node, elect it, propose, and run the `Ready` loop:
//!
//! ```
//! use raft::{Config, MemStorage, RawNode, StateRole, Storage};
//!
//! // 1. A storage that knows the membership, and a node over it.
//! let storage = MemStorage::new_with_conf_state(vec![1]);
//! let config = Config::new(1); // election 10 ticks, heartbeat 1 tick
//! let mut node = RawNode::new(&config, storage.clone()).unwrap();
//!
//! // 2. Elect it: a single voter wins at once (ticking 2 * election_tick times would too).
//! node.campaign().unwrap();
//! assert_eq!(node.raft.state, StateRole::Leader);
//!
//! // 3. Propose a command.
//! node.propose(b"put k v".to_vec()).unwrap();
//!
//! // 4. Process Ready until there is nothing left to do.
//! let mut applied = Vec::new();
//! while node.has_ready() {
//!     let rd = node.ready();
//!     // Persist first: snapshot, entries, hard state.
//!     if let Some(snap) = &rd.snapshot {
//!         storage.wl().apply_snapshot(snap.clone()).unwrap();
//!     }
//!     storage.wl().append(&rd.entries).unwrap();
//!     if let Some(hs) = &rd.hard_state {
//!         storage.wl().set_hard_state(hs.clone());
//!     }
//!     // Then send the messages to the other nodes (there are none here).
//!     assert!(rd.messages.is_empty());
//!     // Then apply the committed entries to the state machine.
//!     for e in &rd.committed_entries {
//!         if !e.data.is_empty() {
//!             applied.push(e.data.to_vec());
//!         }
//!     }
//!     node.advance(rd);
//! }
//! assert_eq!(applied, vec![b"put k v".to_vec()]);
//! // The leader's no-op (index 1) and the command (index 2) are stored and committed.
//! assert_eq!(storage.last_index().unwrap(), 2);
//! assert_eq!(storage.rl().hard_state().commit, 2);
//! ```
//!
//! # Several nodes
//!
//! With more nodes, each `Ready`'s messages go to the node named by `to`, which steps them
//! with [`RawNode::step`]; replies flow back the same way. Ticks drive elections and
//! heartbeats:
//!
//! ```
//! use raft::{eraftpb::Message, Config, MemStorage, RawNode, StateRole};
//!
//! let mut nodes: Vec<RawNode<MemStorage>> = (1..=3)
//!     .map(|id| {
//!         let mut c = Config::new(id);
//!         c.seed = 42;
//!         RawNode::new(&c, MemStorage::new_with_conf_state(vec![1, 2, 3])).unwrap()
//!     })
//!     .collect();
//!
//! // Deliver every message until the network is quiet, persisting before sending.
//! fn pump(nodes: &mut [RawNode<MemStorage>]) {
//!     loop {
//!         let mut msgs: Vec<Message> = Vec::new();
//!         for n in nodes.iter_mut() {
//!             if n.has_ready() {
//!                 let rd = n.ready();
//!                 n.raft.raft_log.storage.wl().append(&rd.entries).unwrap();
//!                 if let Some(hs) = &rd.hard_state {
//!                     n.raft.raft_log.storage.wl().set_hard_state(hs.clone());
//!                 }
//!                 msgs.extend(rd.messages.iter().cloned());
//!                 n.advance(rd);
//!             }
//!         }
//!         if msgs.is_empty() {
//!             return;
//!         }
//!         for m in msgs {
//!             let to = m.to as usize - 1;
//!             let _ = nodes[to].step(m);
//!         }
//!     }
//! }
//!
//! // Tick until someone wins an election.
//! while !nodes.iter().any(|n| n.raft.state == StateRole::Leader) {
//!     for n in nodes.iter_mut() {
//!         n.tick();
//!     }
//!     pump(&mut nodes);
//! }
//! let leader = nodes.iter().position(|n| n.raft.state == StateRole::Leader).unwrap();
//! nodes[leader].propose(b"hello".to_vec()).unwrap();
//! pump(&mut nodes);
//! // Every node committed the no-op and the proposal.
//! for n in &nodes {
//!     assert_eq!(n.raft.raft_log.committed, 2);
//! }
//! ```
// lab:end-needs

#![deny(missing_docs)]

pub use raft_proto::eraftpb;

pub mod config;
pub mod errors;
pub mod progress;
pub mod raft;
pub mod raft_log;
pub mod raw_node;
pub mod storage;
mod util;

pub use crate::config::Config;
pub use crate::errors::{Error, Result, StorageError};
pub use crate::progress::Progress;
pub use crate::raft::{Raft, SnapshotStatus, SoftState, StateRole, INVALID_ID};
pub use crate::raft_log::RaftLog;
pub use crate::raw_node::{RawNode, Ready, Status};
pub use crate::storage::{MemStorage, MemStorageCore, RaftState, Storage};

// lab:needs 2aa,2ab,2ac,2c,3a
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;
// lab:end-needs
