//! Test machinery of the tinykv-rs course.
//!
//! Today the harness holds the raft-level test network ([`raft_net`]) that the stage 2A, 2C
//! and 3A suites drive; the deterministic simulator, the mock clusters and the workload
//! checker of the later stages will live here too.

pub mod cluster;
pub mod linearizability;
pub mod mock_scheduler;
pub mod raft_net;
pub mod seeds;
pub mod sim;
