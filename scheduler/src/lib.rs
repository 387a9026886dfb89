//! The placement driver of tinykv-rs (stage 3C of the course).
//!
//! - [`core`]: the cluster model: stores with their statistics and health (computed from the
//!   heartbeat times passed in, never from a clock), and the region cache indexed by id, by
//!   key range and per store (leaders, followers, pending peers, sizes).
//! - [`RaftCluster`]: the model behind one lock, with
//!   [`process_region_heartbeat`](RaftCluster::process_region_heartbeat) (stage 3C: refuse
//!   stale heartbeats, replace what they overlap, refresh the store statuses).
//! - [`operator`]: add peer, remove peer, transfer leader and chains of them, moved on by
//!   heartbeats until done, timed out or cancelled.
//! - [`schedulers`]: the balance-region scheduler (stage 3C)
//!   and the replica checker that replaces peers of down stores.
//! - [`SchedulerService`]: what stores and clients talk to: request checks, heartbeats,
//!   ask-split, operators, and the periodic jobs run by [`SchedulerService::tick`].
//!
//! The crate depends on `proto` only; the harness adapts it to simulated clusters.

pub mod cluster;
pub mod config;
pub mod core;
pub mod error;
pub mod meta;
pub mod operator;
pub mod schedulers;
pub mod service;

pub use cluster::RaftCluster;
pub use config::ScheduleConfig;
pub use error::{Epoch, Error, Result};
pub use meta::{MetaStore, SavedMeta};
pub use service::SchedulerService;
