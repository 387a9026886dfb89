//! The raft-level test machinery: an in-memory, synchronous network of raft nodes and the
//! helpers the original course's raft tests are written with.
//!
//! Everything here is deterministic. The only randomness (message drops, the election
//! timeouts of the nodes built here) comes from a seed: [`labs_seed`] reads `LABS_SEED` from
//! the environment (default [`DEFAULT_SEED`]), and a [`Network`] that is dropped while its
//! thread panics prints the seed so a failing run can be replayed.
//!
//! ```no_run
//! use harness::raft_net::{Network, Slot, new_message};
//! use raft::eraftpb::MessageType;
//! use raft::StateRole;
//!
//! let mut net = Network::new(vec![Slot::New, Slot::New, Slot::BlackHole]);
//! net.send(vec![new_message(1, 1, MessageType::MsgHup, 0)]);
//! assert_eq!(net.peer(1).state, StateRole::Leader);
//! ```

mod helpers;
mod network;

pub use helpers::{
    accept_and_reply, commit_noop_entry, conf_state, empty_entry, ents_with_config, labs_seed,
    new_entry, new_message, new_message_with_entries, new_snapshot, new_test_config, new_test_raft,
    new_test_raft_with_config, next_ents, read_messages, sort_messages, voted_with_config,
    LogState, SeedReport, TestRaft, DEFAULT_SEED,
};
pub use network::{MessageHook, Network, Slot, MAX_DELIVERIES};
