//! The threaded runtime: the same [`raftstore::Store`] the simulator drives, on real threads,
//! a real clock and real disks.
//!
//! A store runs on its own thread ([`store_loop`]): it waits for the next event (a raft
//! message, a client command, a task's result) or the next base tick, takes every event
//! already queued behind it (up to [`LoopConfig::max_batch`]) and hands them to
//! [`raftstore::Store::handle_batch`], which processes each touched peer's ready once for
//! the whole batch: many proposals, one synced raft-engine write. Background tasks run on the
//! store's worker threads ([`workers`]) and come back as [`raftstore::StoreEvent::TaskDone`].
//! Stores reach each other through a [`Router`] (in one process, [`local::LocalTransport`])
//! and the scheduler through [`local::LocalScheduler`], which drives a real
//! [`scheduler::SchedulerService`] on the real clock.
//!
//! [`LocalCluster`] puts it together: a cluster of stores in one process on real
//! directories, with a [`Client`] that finds regions and leaders as a real client does. The
//! store's code is not changed for any of this: the simulator and this runtime share every
//! line of it.

pub mod client;
pub mod cluster;
pub mod error;
pub mod local;
pub mod node;
pub mod router;
pub mod store_loop;
pub mod workers;

pub use client::Client;
pub use cluster::{ClusterOptions, LocalCluster};
pub use error::{NodeError, Result};
pub use node::{start_node, ClusterBootstrap, NodeConfig};
pub use router::Router;
pub use store_loop::{LoopConfig, StoreLoop};
