//! The multi-Raft key-value store (stages 2b, 2c and 3b of the course).
//!
//! A [`Store`] owns one [`Peer`] per region it replicates; each peer runs a `raft::RawNode`
//! over a [`PeerStorage`] that keeps the raft log and raft state in the store's raft engine and
//! the apply and region state in its kv engine (see `engine::keys`). A peer message handler
//! proposes client commands, processes `Ready`s (persist, send, apply, answer callbacks) and
//! applies admin commands (CompactLog, TransferLeader, ChangePeer and Split).
//!
//! The store never reads the clock and never spawns threads: it reacts to messages, ticks and
//! finished tasks from a runtime (the deterministic simulator in `harness`, or a threaded
//! runtime), hands it background [`task`]s, and talks to other stores and to the scheduler only
//! through `Transport` and `SchedulerClient` traits ([`Effects`]).
//!
//! | module | owns |
//! |---|---|
//! | [`store`] | [`Store`]: the peers of one store, the entry point a runtime drives; [`Effects`] |
//! | [`msg`] | [`StoreEvent`]: what a runtime hands a store; what the store answers clients |
//! | [`peer`] | [`Peer`]: one replica, its proposals, sending its raft messages and snapshots |
//! | [`peer_msg_handler`] | one peer's events: proposing, processing `Ready`, applying, admin commands, the GC tick |
//! | [`peer_storage`] | [`PeerStorage`]: a peer's raft log and raft/apply state, the [`raft::Storage`] of its `RawNode`; taking in snapshots |
//! | [`snap`] | snapshot files: format, generation and application tasks, chunked transfer, the snapshot directory |
//! | [`task`] | background tasks and their results |
//! | [`raftlog_gc`] | deleting compacted raft log entries, after syncing the kv engine |
//! | [`split_check`] | measuring a region and choosing its split key |
//! | [`region_cleanup`] | deleting a destroyed peer's data |
//! | [`error`] | [`Error`] and its mapping onto the `errorpb` errors clients see |
//! | [`meta`] | typed reads and writes of the persisted per-region states; the initial log index/term 5 |
//! | [`util`] | region, epoch, key-range and peer facts (`check_key_in_region`, `is_epoch_stale`, `check_region_epoch`, ...) |
//! | [`bootstrap`] | writing a store's identity and the cluster's first region |
//! | [`transport`] | [`Transport`]: how raft messages and snapshots reach other stores |
//! | [`scheduler_client`] | [`SchedulerClient`]: heartbeats, id allocation and split ids from the scheduler |
//! | [`config`] | [`Config`]: ticks, GC limits, snapshot chunks, task batches |
//!
//! A bootstrapped store's first region, read back through raft's storage interface:
//!
//! ```
//! use engine::{Engines, EngineOptions};
//! use raft::Storage;
//! use raftstore::{bootstrap, PeerStorage};
//!
//! let dir = tempfile::tempdir()?;
//! let engines = Engines::open(dir.path(), &EngineOptions::for_tests())?;
//! bootstrap::bootstrap_store(&engines, 1, 1)?;
//! let region = bootstrap::prepare_bootstrap(&engines, 1, 1, 1)?;
//!
//! let ps = PeerStorage::new(engines, region, "[region 1] 1".into())?;
//! // The log starts after the virtual entry (5, 5), not at 0.
//! assert_eq!((ps.first_index(), ps.last_index(), ps.term(5)?), (6, 5, 5));
//! let state = ps.initial_state()?;
//! assert_eq!((state.hard_state.term, state.hard_state.commit), (5, 5));
//! assert_eq!(state.conf_state.voters, vec![1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod bootstrap;
pub mod cmd;
pub mod config;
pub mod error;
pub mod meta;
pub mod msg;
pub mod peer;
pub mod peer_msg_handler;
pub mod peer_storage;
pub mod raftlog_gc;
pub mod region_cleanup;
pub mod scheduler_client;
pub mod snap;
pub mod split_check;
pub mod store;
pub mod task;
pub mod transport;
pub mod util;

pub use crate::config::Config;
pub use crate::error::{Error, Result};
pub use crate::msg::{Callback, CmdResponse, RegionSnapshot, StoreEvent};
pub use crate::peer::Peer;
pub use crate::peer_storage::PeerStorage;
pub use crate::scheduler_client::SchedulerClient;
pub use crate::store::{Effects, Store, StoreContext};
pub use crate::task::{Task, TaskResult};
pub use crate::transport::Transport;
