//! Test machinery of the tinykv-rs course.
//!
//! | module | owns |
//! |---|---|
//! | [`raft_net`] | the raft-level test network the stage 2A, 2C and 3A suites drive |
//! | [`sim`] | the deterministic simulator: virtual clock, seeded RNG, event queue, trace, network model |
//! | [`cluster`] | stores on the simulator: clients, faults, background tasks, snapshot streams, the oracles (apply, leader completeness, liveness) |
//! | [`scheduler`] | the scheduler trait a cluster runs on, and the original's mock scheduler, failing the run on heartbeats that break its rules |
//! | [`linearizability`] | the checker of client histories |
//! | [`seeds`] | which seeds a test runs under, and how a failure names its replay seed |
//! | [`logging`] | the stores' logs in a test's output, when `RUST_LOG` asks for them |

pub mod cluster;
pub mod linearizability;
pub mod logging;
pub mod raft_net;
pub mod scheduler;
pub mod seeds;
pub mod sim;
