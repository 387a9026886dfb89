//! The multi-Raft key-value store (stages 2b, 2c and 3b of the course).
//!
//! This crate will hold a `Store` that owns one `Peer` per region it replicates; each peer runs
//! a `raft::RawNode` over a `PeerStorage` that keeps the raft log and raft state in the store's
//! raft engine and the apply and region state in its kv engine (see `engine::keys`). A peer
//! message handler proposes client commands, processes `Ready`s (persist, send, apply, answer
//! callbacks) and applies admin commands (CompactLog, TransferLeader, ChangePeer, Split).
//!
//! The store never reads the clock and never spawns threads: it reacts to messages and ticks
//! from a runtime (the deterministic simulator in `harness`, or a threaded runtime) and talks to
//! other stores and to the scheduler only through `Transport` and `SchedulerClient` traits.
